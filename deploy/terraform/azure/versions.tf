# AKS, Blob storage, Azure Database for PostgreSQL, ACR, Workload Identity and the Event Grid
# retraining path for tradeloop's azure overlay.
terraform {
  required_version = ">= 1.6"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.14"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

provider "azurerm" {
  features {
    key_vault {
      purge_soft_delete_on_destroy = false
    }
  }
}

data "azurerm_client_config" "current" {}

locals {
  name = "tradeloop-${var.environment}"
  # Storage accounts, ACR and Key Vault names allow letters and digits only.
  compact = "tradeloop${replace(var.environment, "-", "")}"
  # One user-assigned identity per Kubernetes ServiceAccount in deploy/k8s/base/rbac.yaml.
  roles = toset(["gateway", "trainer", "deployer", "monitor", "training-job", "mlflow"])
  tags  = { "part-of" = "tradeloop", environment = var.environment }
}

resource "azurerm_resource_group" "tradeloop" {
  name     = local.name
  location = var.location
  tags     = local.tags
}
