# A private regional GKE cluster: private nodes and endpoint, Workload Identity, etcd secrets
# under the CMEK, Dataplane V2 (enforces NetworkPolicy), Shielded nodes, and logs plus managed
# Prometheus metrics exported to Cloud Logging and Monitoring.
resource "google_service_account" "nodes" {
  account_id   = "${local.name}-nodes"
  display_name = "tradeloop GKE nodes"
}

resource "google_project_iam_member" "nodes" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/artifactregistry.reader",
  ])
  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_container_cluster" "tradeloop" {
  #checkov:skip=CKV_GCP_69:GKE_METADATA is set on every node pool (the default pool is removed)
  #checkov:skip=CKV_GCP_68:Secure Boot is set on every node pool (the default pool is removed)
  #checkov:skip=CKV_GCP_12:Dataplane V2 (ADVANCED_DATAPATH) enforces NetworkPolicy; the network_policy block conflicts with it
  #checkov:skip=CKV_GCP_65:Google Groups for RBAC needs the organisation's gke-security-groups group; set authenticator_groups_config where it exists
  name                        = local.name
  location                    = var.region
  network                     = var.network
  subnetwork                  = var.subnetwork
  remove_default_node_pool    = true
  initial_node_count          = 1
  deletion_protection         = true
  datapath_provider           = "ADVANCED_DATAPATH"
  enable_shielded_nodes       = true
  enable_intranode_visibility = true
  resource_labels             = local.labels

  release_channel {
    channel = "REGULAR"
  }

  ip_allocation_policy {
    cluster_secondary_range_name  = "pods"
    services_secondary_range_name = "services"
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = true
    master_ipv4_cidr_block  = var.master_cidr
  }

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.admin_cidrs
      content {
        cidr_block   = cidr_blocks.value
        display_name = "admin"
      }
    }
  }

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }

  database_encryption {
    state    = "ENCRYPTED"
    key_name = google_kms_crypto_key.tradeloop.id
  }

  binary_authorization {
    evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"
  }

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  logging_config {
    enable_components = ["SYSTEM_COMPONENTS", "WORKLOADS", "APISERVER"]
  }

  monitoring_config {
    enable_components = ["SYSTEM_COMPONENTS"]
    managed_prometheus {
      enabled = true
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.agents]
}

locals {
  node_config = {
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
  }
}

resource "google_container_node_pool" "system" {
  name     = "system"
  cluster  = google_container_cluster.tradeloop.id
  location = var.region

  autoscaling {
    min_node_count = 1
    max_node_count = 3
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = "e2-standard-4"
    image_type      = "COS_CONTAINERD"
    service_account = local.node_config.service_account
    oauth_scopes    = local.node_config.oauth_scopes
    labels          = local.labels

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }
}

# Spot VMs for training; GKE labels them cloud.google.com/gke-spot=true and the taint keeps
# everything but the training pods (which tolerate it, see the gcp overlay) off them.
resource "google_container_node_pool" "training" {
  name     = "training-spot"
  cluster  = google_container_cluster.tradeloop.id
  location = var.region

  autoscaling {
    min_node_count = 0
    max_node_count = 4
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.training_machine_type
    image_type      = "COS_CONTAINERD"
    spot            = true
    service_account = local.node_config.service_account
    oauth_scopes    = local.node_config.oauth_scopes
    labels          = merge(local.labels, { "tradeloop-pool" = "training" })

    taint {
      key    = "cloud.google.com/gke-spot"
      value  = "true"
      effect = "NO_SCHEDULE"
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }
}

# Log export hook: tradeloop's container logs (the audit and prediction events among them)
# into their own log bucket with a year's retention.
resource "google_logging_project_bucket_config" "tradeloop" {
  project        = var.project_id
  location       = var.region
  bucket_id      = local.name
  retention_days = 365
}

resource "google_logging_project_sink" "tradeloop" {
  name                   = "${local.name}-logs"
  destination            = "logging.googleapis.com/${google_logging_project_bucket_config.tradeloop.id}"
  filter                 = "resource.type=\"k8s_container\" AND resource.labels.namespace_name=\"tradeloop\""
  unique_writer_identity = true
}
