# MLflow artifacts in GCS: versioned, CMEK, uniform access, never public.
resource "google_storage_bucket" "artifacts" {
  #checkov:skip=CKV_GCP_62:access logs need a separate log bucket the platform team owns; Data Access audit logs cover reads
  name                        = "${var.project_id}-tradeloop-artifacts"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels

  versioning {
    enabled = true
  }

  encryption {
    default_kms_key_name = google_kms_crypto_key.tradeloop.id
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 5
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.agents]
}

resource "google_artifact_registry_repository" "tradeloop" {
  repository_id = "tradeloop"
  location      = var.region
  format        = "DOCKER"
  kms_key_name  = google_kms_crypto_key.tradeloop.id
  labels        = local.labels

  docker_config {
    immutable_tags = true
  }

  depends_on = [google_kms_crypto_key_iam_member.agents]
}
