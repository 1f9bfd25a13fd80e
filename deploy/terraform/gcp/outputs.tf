# What deploy/k8s/overlays/gcp needs.
output "cluster_name" {
  description = "GKE cluster (gcloud container clusters get-credentials ...)."
  value       = google_container_cluster.tradeloop.name
}

output "service_account_emails" {
  description = "iam.gke.io/gcp-service-account for each tradeloop-<role> ServiceAccount."
  value       = { for k, sa in google_service_account.workload : "tradeloop-${k}" => sa.email }
}

output "artifact_destination" {
  description = "MLFLOW_ARTIFACTS_DESTINATION for the tradeloop-mlflow ConfigMap."
  value       = "gs://${google_storage_bucket.artifacts.name}/mlflow"
}

output "db_private_ip" {
  description = "Cloud SQL private IP for the tradeloop-db Secret's URLs."
  value       = google_sql_database_instance.tradeloop.private_ip_address
}

output "image_repository" {
  description = "Artifact Registry path for the tradeloop image (the overlay's images: newName)."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.tradeloop.repository_id}/tradeloop"
}

output "retrain_topic" {
  description = "Pub/Sub topic that requests a retraining run when published to."
  value       = google_pubsub_topic.retrain.id
}
