# What deploy/k8s/overlays/azure needs.
output "cluster_name" {
  description = "AKS cluster (az aks get-credentials --name ...)."
  value       = azurerm_kubernetes_cluster.tradeloop.name
}

output "workload_client_ids" {
  description = "azure.workload.identity/client-id for each tradeloop-<role> ServiceAccount."
  value       = { for k, id in azurerm_user_assigned_identity.workload : "tradeloop-${k}" => id.client_id }
}

output "artifact_destination" {
  description = "MLFLOW_ARTIFACTS_DESTINATION for the tradeloop-mlflow ConfigMap."
  value       = "wasbs://${azurerm_storage_container.artifacts.name}@${azurerm_storage_account.artifacts.name}.blob.core.windows.net/mlflow"
}

output "db_host" {
  description = "PostgreSQL flexible server host for the tradeloop-db Secret's URLs (password: Key Vault secret db-password)."
  value       = azurerm_postgresql_flexible_server.tradeloop.fqdn
}

output "image_repository" {
  description = "ACR path for the tradeloop image (the overlay's images: newName)."
  value       = "${azurerm_container_registry.tradeloop.login_server}/tradeloop"
}

output "retrain_topic_endpoint" {
  description = "Event Grid topic endpoint that requests a retraining run when an event is published."
  value       = azurerm_eventgrid_topic.retrain.endpoint
}
