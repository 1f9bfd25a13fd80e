# Cloud SQL for PostgreSQL on a private IP only (private service access into the VPC), CMEK,
# TLS required, regional HA, backups with point-in-time recovery, and the audit flags on.
resource "google_compute_global_address" "sql" {
  name          = "${local.name}-sql"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = var.network
}

resource "google_service_networking_connection" "sql" {
  network                 = var.network
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.sql.name]
}

resource "google_sql_database_instance" "tradeloop" {
  #checkov:skip=CKV_GCP_6:require_ssl is deprecated; ssl_mode = ENCRYPTED_ONLY below refuses unencrypted connections
  #checkov:skip=CKV_GCP_79:PostgreSQL 16 is the major version tradeloop's suite runs against
  name                = local.name
  database_version    = "POSTGRES_16"
  region              = var.region
  encryption_key_name = google_kms_crypto_key.tradeloop.id
  deletion_protection = true

  settings {
    tier              = var.db_tier
    availability_type = "REGIONAL"
    user_labels       = local.labels

    ip_configuration {
      ipv4_enabled                                  = false
      private_network                               = var.network
      ssl_mode                                      = "ENCRYPTED_ONLY"
      enable_private_path_for_google_cloud_services = true
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
    }

    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_duration"
      value = "on"
    }
  }

  depends_on = [google_service_networking_connection.sql, google_kms_crypto_key_iam_member.agents]
}

resource "google_sql_database" "tradeloop" {
  name     = "tradeloop"
  instance = google_sql_database_instance.tradeloop.name
}

resource "google_sql_database" "mlflow" {
  name     = "mlflow"
  instance = google_sql_database_instance.tradeloop.name
}
