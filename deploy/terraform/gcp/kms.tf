# Customer-managed keys (CMEK), rotated every 90 days, for the bucket, database, registry,
# Pub/Sub and GKE's etcd secrets.
resource "google_kms_key_ring" "tradeloop" {
  name     = local.name
  location = var.region
}

resource "google_kms_crypto_key" "tradeloop" {
  name            = local.name
  key_ring        = google_kms_key_ring.tradeloop.id
  rotation_period = "7776000s"
  lifecycle {
    prevent_destroy = true
  }
}

# The Google-managed service agents that encrypt with the key on our behalf.
locals {
  agents = {
    gcs      = "serviceAccount:service-${data.google_project.current.number}@gs-project-accounts.iam.gserviceaccount.com"
    sql      = "serviceAccount:service-${data.google_project.current.number}@gcp-sa-cloud-sql.iam.gserviceaccount.com"
    gke      = "serviceAccount:service-${data.google_project.current.number}@container-engine-robot.iam.gserviceaccount.com"
    registry = "serviceAccount:service-${data.google_project.current.number}@gcp-sa-artifactregistry.iam.gserviceaccount.com"
    pubsub   = "serviceAccount:service-${data.google_project.current.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  }
}

resource "google_kms_crypto_key_iam_member" "agents" {
  for_each      = local.agents
  crypto_key_id = google_kms_crypto_key.tradeloop.id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = each.value
}
