# Workload Identity: one Google service account per Kubernetes ServiceAccount, which only
# tradeloop/tradeloop-<role> may impersonate (the gcp overlay's iam.gke.io annotations).
resource "google_service_account" "workload" {
  for_each     = local.roles
  account_id   = "tradeloop-${each.key}"
  display_name = "tradeloop ${each.key} (Workload Identity)"
}

resource "google_service_account_iam_member" "workload_identity" {
  for_each           = local.roles
  service_account_id = google_service_account.workload[each.key].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[tradeloop/tradeloop-${each.key}]"
}

# Only MLflow touches the bucket (it proxies artifacts for everyone else).
resource "google_storage_bucket_iam_member" "mlflow" {
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.workload["mlflow"].email}"
}

# Everything that reaches Cloud SQL connects as a client of it.
resource "google_project_iam_member" "sql_client" {
  for_each = toset(["gateway", "trainer", "deployer", "monitor", "training-job", "mlflow"])
  project  = var.project_id
  role     = "roles/cloudsql.client"
  member   = "serviceAccount:${google_service_account.workload[each.key].email}"
}
