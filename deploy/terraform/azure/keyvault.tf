# Key Vault holding the customer-managed key (storage, registry, database) and the retrain
# token; purge-protected, RBAC-authorised, private endpoint only.
resource "azurerm_key_vault" "tradeloop" {
  name                          = "${local.compact}kv"
  location                      = azurerm_resource_group.tradeloop.location
  resource_group_name           = azurerm_resource_group.tradeloop.name
  tenant_id                     = data.azurerm_client_config.current.tenant_id
  sku_name                      = "premium"
  purge_protection_enabled      = true
  soft_delete_retention_days    = 90
  enable_rbac_authorization     = true
  public_network_access_enabled = false
  tags                          = local.tags

  network_acls {
    default_action = "Deny"
    bypass         = "AzureServices"
  }
}

resource "azurerm_private_endpoint" "keyvault" {
  name                = "${local.name}-kv"
  location            = azurerm_resource_group.tradeloop.location
  resource_group_name = azurerm_resource_group.tradeloop.name
  subnet_id           = var.endpoint_subnet_id

  private_service_connection {
    name                           = "keyvault"
    private_connection_resource_id = azurerm_key_vault.tradeloop.id
    subresource_names              = ["vault"]
    is_manual_connection           = false
  }
}

resource "azurerm_key_vault_key" "tradeloop" {
  name            = "tradeloop-cmk"
  key_vault_id    = azurerm_key_vault.tradeloop.id
  key_type        = "RSA-HSM"
  key_size        = 3072
  key_opts        = ["wrapKey", "unwrapKey"]
  expiration_date = "2030-01-01T00:00:00Z"

  rotation_policy {
    automatic {
      time_before_expiry = "P30D"
    }
    expire_after         = "P365D"
    notify_before_expiry = "P29D"
  }
}

resource "azurerm_user_assigned_identity" "cmk" {
  name                = "${local.name}-cmk"
  location            = azurerm_resource_group.tradeloop.location
  resource_group_name = azurerm_resource_group.tradeloop.name
}

resource "azurerm_role_assignment" "cmk" {
  scope                = azurerm_key_vault.tradeloop.id
  role_definition_name = "Key Vault Crypto Service Encryption User"
  principal_id         = azurerm_user_assigned_identity.cmk.principal_id
}

resource "azurerm_key_vault_secret" "retrain_token" {
  name            = "retrain-token"
  key_vault_id    = azurerm_key_vault.tradeloop.id
  value           = var.retrain_token
  content_type    = "tradeloop operator token"
  expiration_date = "2030-01-01T00:00:00Z"
}
