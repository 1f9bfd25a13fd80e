variable "location" {
  description = "Azure region for every resource."
  type        = string
  default     = "westeurope"
  validation {
    condition     = can(regex("^[a-z0-9]+$", var.location))
    error_message = "location must be a region name such as westeurope."
  }
}

variable "environment" {
  description = "Environment name, part of every resource name (dev, staging, prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment must be 2-10 lower-case letters or digits (storage names are short)."
  }
}

variable "aks_subnet_id" {
  description = "Subnet for the AKS nodes (Azure CNI)."
  type        = string
  validation {
    condition     = can(regex("/subnets/[^/]+$", var.aks_subnet_id))
    error_message = "aks_subnet_id must be a subnet resource id."
  }
}

variable "db_subnet_id" {
  description = "Subnet delegated to Microsoft.DBforPostgreSQL/flexibleServers."
  type        = string
  validation {
    condition     = can(regex("/subnets/[^/]+$", var.db_subnet_id))
    error_message = "db_subnet_id must be a subnet resource id."
  }
}

variable "endpoint_subnet_id" {
  description = "Subnet for the private endpoints of storage, registry and Key Vault."
  type        = string
  validation {
    condition     = can(regex("/subnets/[^/]+$", var.endpoint_subnet_id))
    error_message = "endpoint_subnet_id must be a subnet resource id."
  }
}

variable "vnet_id" {
  description = "The virtual network the subnets belong to (the private DNS zone links to it)."
  type        = string
  validation {
    condition     = can(regex("/virtualNetworks/[^/]+$", var.vnet_id))
    error_message = "vnet_id must be a virtual network resource id."
  }
}

variable "kubernetes_version" {
  description = "AKS Kubernetes version."
  type        = string
  default     = "1.33"
  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.33."
  }
}

variable "training_vm_size" {
  description = "VM size of the spot training pool."
  type        = string
  default     = "Standard_D8s_v5"
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]+$", var.training_vm_size))
    error_message = "training_vm_size must be a machine type name."
  }
}

variable "db_sku" {
  description = "Azure Database for PostgreSQL flexible server SKU."
  type        = string
  default     = "GP_Standard_D2ds_v5"
  validation {
    condition     = can(regex("^(B|GP|MO)_", var.db_sku))
    error_message = "db_sku must be a flexible server SKU (B_, GP_ or MO_...)."
  }
}

variable "retrain_endpoint" {
  description = "The gateway's retraining endpoint, https://<host>/v1/retrain."
  type        = string
  validation {
    condition     = can(regex("^https://[^/]+/v1/retrain$", var.retrain_endpoint))
    error_message = "retrain_endpoint must be https://<host>/v1/retrain."
  }
}

variable "retrain_token" {
  description = "An operator-role tradeloop token (`tradeloop tokens create --name eventgrid --role operator`)."
  type        = string
  sensitive   = true
  validation {
    condition     = startswith(var.retrain_token, "tl_")
    error_message = "retrain_token must be a tradeloop token (tl_...)."
  }
}

variable "log_retention_days" {
  description = "Log Analytics retention."
  type        = number
  default     = 365
  validation {
    condition     = var.log_retention_days >= 90
    error_message = "keep logs for at least 90 days."
  }
}
