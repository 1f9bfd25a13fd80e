# Workload Identity: one user-assigned identity per Kubernetes ServiceAccount, federated with
# the cluster's OIDC issuer for system:serviceaccount:tradeloop:tradeloop-<role> only (the
# azure overlay's client-id annotations).
resource "azurerm_user_assigned_identity" "workload" {
  for_each            = local.roles
  name                = "tradeloop-${each.key}"
  location            = azurerm_resource_group.tradeloop.location
  resource_group_name = azurerm_resource_group.tradeloop.name
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "workload" {
  for_each            = local.roles
  name                = "tradeloop-${each.key}"
  resource_group_name = azurerm_resource_group.tradeloop.name
  parent_id           = azurerm_user_assigned_identity.workload[each.key].id
  audience            = ["api://AzureADTokenExchange"]
  issuer              = azurerm_kubernetes_cluster.tradeloop.oidc_issuer_url
  subject             = "system:serviceaccount:tradeloop:tradeloop-${each.key}"
}

# Only MLflow touches the container (it proxies artifacts for everyone else).
resource "azurerm_role_assignment" "mlflow_blob" {
  scope                = azurerm_storage_container.artifacts.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_user_assigned_identity.workload["mlflow"].principal_id
}
