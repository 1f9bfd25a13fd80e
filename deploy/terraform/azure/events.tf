# The retraining trigger path: anything publishes to the Event Grid topic (an Azure Monitor
# alert, a schedule, CI); its subscription delivers to a Logic App, which POSTs to the
# gateway's /v1/retrain with the event id as the request id (so Event Grid's retries train
# once) and the operator token from Key Vault.
resource "azurerm_eventgrid_topic" "retrain" {
  name                          = "${local.name}-retrain"
  location                      = azurerm_resource_group.tradeloop.location
  resource_group_name           = azurerm_resource_group.tradeloop.name
  input_schema                  = "CloudEventSchemaV1_0"
  public_network_access_enabled = false
  local_auth_enabled            = false
  tags                          = local.tags

  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_logic_app_workflow" "retrain" {
  name                = "${local.name}-retrain"
  location            = azurerm_resource_group.tradeloop.location
  resource_group_name = azurerm_resource_group.tradeloop.name
  tags                = local.tags

  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_role_assignment" "logic_app_token" {
  scope                = azurerm_key_vault_secret.retrain_token.resource_versionless_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_logic_app_workflow.retrain.identity[0].principal_id
}

resource "azurerm_logic_app_trigger_http_request" "event" {
  name         = "event"
  logic_app_id = azurerm_logic_app_workflow.retrain.id
  schema = jsonencode({
    type       = "object"
    properties = { id = { type = "string" }, source = { type = "string" }, type = { type = "string" } }
  })
}

resource "azurerm_logic_app_action_custom" "token" {
  name         = "token"
  logic_app_id = azurerm_logic_app_workflow.retrain.id
  body = jsonencode({
    type = "Http"
    inputs = {
      method         = "GET"
      uri            = "${azurerm_key_vault.tradeloop.vault_uri}secrets/${azurerm_key_vault_secret.retrain_token.name}?api-version=7.4"
      authentication = { type = "ManagedServiceIdentity", audience = "https://vault.azure.net" }
    }
    runAfter = {}
  })
}

resource "azurerm_logic_app_action_http" "retrain" {
  name         = "retrain"
  logic_app_id = azurerm_logic_app_workflow.retrain.id
  method       = "POST"
  uri          = var.retrain_endpoint
  headers = {
    "Content-Type"  = "application/json"
    "Authorization" = "Bearer @{body('token')?['value']}"
  }
  body = jsonencode({
    id     = "eventgrid:@{triggerBody()?['id']}"
    reason = "Event Grid ${local.name}-retrain: @{triggerBody()?['type']} from @{triggerBody()?['source']}"
  })

  run_after {
    action_name   = azurerm_logic_app_action_custom.token.name
    action_result = "Succeeded"
  }
}

resource "azurerm_eventgrid_event_subscription" "retrain" {
  name                  = "${local.name}-retrain"
  scope                 = azurerm_eventgrid_topic.retrain.id
  event_delivery_schema = "CloudEventSchemaV1_0"

  webhook_endpoint {
    url = azurerm_logic_app_trigger_http_request.event.callback_url
  }

  retry_policy {
    max_delivery_attempts = 10
    event_time_to_live    = 1440
  }
}
