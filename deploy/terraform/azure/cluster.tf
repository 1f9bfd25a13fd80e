# AKS: private API server, OIDC issuer and Workload Identity, Azure CNI with network policy,
# local accounts off (Entra ID with Azure RBAC), Container Insights to Log Analytics, and a
# spot pool for training (the azure overlay tolerates its scalesetpriority taint).
resource "azurerm_log_analytics_workspace" "tradeloop" {
  name                = local.name
  location            = azurerm_resource_group.tradeloop.location
  resource_group_name = azurerm_resource_group.tradeloop.name
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}

# Node OS and data disks under the customer-managed key.
resource "azurerm_disk_encryption_set" "tradeloop" {
  name                      = "${local.name}-disks"
  location                  = azurerm_resource_group.tradeloop.location
  resource_group_name       = azurerm_resource_group.tradeloop.name
  key_vault_key_id          = azurerm_key_vault_key.tradeloop.versionless_id
  auto_key_rotation_enabled = true

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.cmk.id]
  }

  depends_on = [azurerm_role_assignment.cmk]
}

resource "azurerm_kubernetes_cluster" "tradeloop" {
  #checkov:skip=CKV_AZURE_226:ephemeral OS disks depend on the VM size's cache; the managed disks are encrypted at the host
  #checkov:skip=CKV_AZURE_115:private_cluster_enabled is set; this check misreads the attribute in provider 4.x
  name                              = local.name
  location                          = azurerm_resource_group.tradeloop.location
  resource_group_name               = azurerm_resource_group.tradeloop.name
  dns_prefix                        = local.name
  kubernetes_version                = var.kubernetes_version
  sku_tier                          = "Standard"
  private_cluster_enabled           = true
  local_account_disabled            = true
  oidc_issuer_enabled               = true
  workload_identity_enabled         = true
  azure_policy_enabled              = true
  automatic_upgrade_channel         = "stable"
  role_based_access_control_enabled = true
  disk_encryption_set_id            = azurerm_disk_encryption_set.tradeloop.id
  tags                              = local.tags

  azure_active_directory_role_based_access_control {
    azure_rbac_enabled = true
    tenant_id          = data.azurerm_client_config.current.tenant_id
  }

  default_node_pool {
    name                         = "system"
    vm_size                      = "Standard_D4s_v5"
    vnet_subnet_id               = var.aks_subnet_id
    auto_scaling_enabled         = true
    min_count                    = 2
    max_count                    = 5
    max_pods                     = 50
    host_encryption_enabled      = true
    only_critical_addons_enabled = true
    zones                        = ["1", "2", "3"]
  }

  identity {
    type = "SystemAssigned"
  }

  network_profile {
    network_plugin = "azure"
    network_policy = "azure"
  }

  oms_agent {
    log_analytics_workspace_id      = azurerm_log_analytics_workspace.tradeloop.id
    msi_auth_for_monitoring_enabled = true
  }

  key_vault_secrets_provider {
    secret_rotation_enabled = true
  }

  monitor_metrics {}
}

resource "azurerm_kubernetes_cluster_node_pool" "training" {
  name                    = "trainspot"
  kubernetes_cluster_id   = azurerm_kubernetes_cluster.tradeloop.id
  vm_size                 = var.training_vm_size
  vnet_subnet_id          = var.aks_subnet_id
  priority                = "Spot"
  eviction_policy         = "Delete"
  spot_max_price          = -1
  auto_scaling_enabled    = true
  min_count               = 0
  max_count               = 4
  max_pods                = 50
  host_encryption_enabled = true
  node_labels             = { "tradeloop.io/pool" = "training" }
  node_taints             = ["kubernetes.azure.com/scalesetpriority=spot:NoSchedule"]
  tags                    = local.tags
}

# Log export hook beyond Container Insights: the control plane's audit logs.
resource "azurerm_monitor_diagnostic_setting" "aks" {
  name                       = "${local.name}-aks"
  target_resource_id         = azurerm_kubernetes_cluster.tradeloop.id
  log_analytics_workspace_id = azurerm_log_analytics_workspace.tradeloop.id

  enabled_log {
    category = "kube-audit-admin"
  }
  enabled_log {
    category = "kube-apiserver"
  }
  metric {
    category = "AllMetrics"
  }
}
