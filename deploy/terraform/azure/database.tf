# Azure Database for PostgreSQL flexible server: VNet-injected (delegated subnet, private DNS),
# no public access, CMEK, zone-redundant HA, geo-redundant backups.
resource "random_password" "db" {
  length  = 32
  special = false
}

# For the cluster's tradeloop-db Secret (synced by the Key Vault CSI provider, or by hand).
resource "azurerm_key_vault_secret" "db_password" {
  name            = "db-password"
  key_vault_id    = azurerm_key_vault.tradeloop.id
  value           = random_password.db.result
  content_type    = "PostgreSQL password for tradeloop"
  expiration_date = "2030-01-01T00:00:00Z"
}

resource "azurerm_private_dns_zone" "postgres" {
  name                = "${local.name}.postgres.database.azure.com"
  resource_group_name = azurerm_resource_group.tradeloop.name
}

resource "azurerm_private_dns_zone_virtual_network_link" "postgres" {
  name                  = "${local.name}-postgres"
  resource_group_name   = azurerm_resource_group.tradeloop.name
  private_dns_zone_name = azurerm_private_dns_zone.postgres.name
  virtual_network_id    = var.vnet_id
}

resource "azurerm_postgresql_flexible_server" "tradeloop" {
  #checkov:skip=CKV2_AZURE_57:VNet-injected through the delegated subnet, which excludes a private endpoint; no public access either way
  name                          = local.name
  resource_group_name           = azurerm_resource_group.tradeloop.name
  location                      = azurerm_resource_group.tradeloop.location
  version                       = "16"
  sku_name                      = var.db_sku
  storage_mb                    = 65536
  delegated_subnet_id           = var.db_subnet_id
  private_dns_zone_id           = azurerm_private_dns_zone.postgres.id
  public_network_access_enabled = false
  backup_retention_days         = 14
  geo_redundant_backup_enabled  = true
  zone                          = "1"
  tags                          = local.tags

  administrator_login    = "tradeloop"
  administrator_password = random_password.db.result

  authentication {
    active_directory_auth_enabled = true
    password_auth_enabled         = true # tradeloop's and MLflow's URLs carry a password
    tenant_id                     = data.azurerm_client_config.current.tenant_id
  }

  high_availability {
    mode                      = "ZoneRedundant"
    standby_availability_zone = "2"
  }

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.cmk.id]
  }

  customer_managed_key {
    key_vault_key_id                  = azurerm_key_vault_key.tradeloop.id
    primary_user_assigned_identity_id = azurerm_user_assigned_identity.cmk.id
  }

  depends_on = [azurerm_private_dns_zone_virtual_network_link.postgres]
}

resource "azurerm_postgresql_flexible_server_configuration" "log_connections" {
  name      = "log_connections"
  server_id = azurerm_postgresql_flexible_server.tradeloop.id
  value     = "on"
}

resource "azurerm_postgresql_flexible_server_database" "db" {
  for_each  = toset(["tradeloop", "mlflow"])
  name      = each.key
  server_id = azurerm_postgresql_flexible_server.tradeloop.id
}
