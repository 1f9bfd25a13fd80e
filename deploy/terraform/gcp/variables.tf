variable "project_id" {
  description = "The Google Cloud project every resource goes in."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid project id."
  }
}

variable "region" {
  description = "Region for the regional cluster, bucket, database and registry."
  type        = string
  default     = "europe-west1"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like europe-west1."
  }
}

variable "environment" {
  description = "Environment name, part of every resource name (dev, staging, prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment must be 2-16 lower-case letters, digits or dashes."
  }
}

variable "network" {
  description = "Self link of the VPC network (private service access is added to it)."
  type        = string
  validation {
    condition     = can(regex("/global/networks/[a-z0-9-]+$", var.network))
    error_message = "network must be a network self link (.../global/networks/NAME)."
  }
}

variable "subnetwork" {
  description = "Self link of the subnetwork with secondary ranges 'pods' and 'services'."
  type        = string
  validation {
    condition     = can(regex("/subnetworks/[a-z0-9-]+$", var.subnetwork))
    error_message = "subnetwork must be a subnetwork self link."
  }
}

variable "master_cidr" {
  description = "A /28 for the private control plane."
  type        = string
  default     = "172.16.0.0/28"
  validation {
    condition     = can(cidrhost(var.master_cidr, 0)) && endswith(var.master_cidr, "/28")
    error_message = "master_cidr must be a /28."
  }
}

variable "admin_cidrs" {
  description = "CIDRs allowed to reach the private control plane (VPN, bastion)."
  type        = list(string)
  validation {
    condition     = alltrue([for c in var.admin_cidrs : can(cidrhost(c, 0))]) && !contains(var.admin_cidrs, "0.0.0.0/0")
    error_message = "admin_cidrs must be CIDRs, and not 0.0.0.0/0."
  }
}

variable "db_tier" {
  description = "Cloud SQL machine tier."
  type        = string
  default     = "db-custom-2-7680"
  validation {
    condition     = startswith(var.db_tier, "db-")
    error_message = "db_tier must be a Cloud SQL tier (db-...)."
  }
}

variable "training_machine_type" {
  description = "Machine type of the Spot training pool."
  type        = string
  default     = "n2-standard-8"
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]+$", var.training_machine_type))
    error_message = "training_machine_type must be a machine type name."
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
  description = "An operator-role tradeloop token (`tradeloop tokens create --name pubsub --role operator`)."
  type        = string
  sensitive   = true
  validation {
    condition     = startswith(var.retrain_token, "tl_")
    error_message = "retrain_token must be a tradeloop token (tl_...)."
  }
}

variable "retrain_schedule" {
  description = "Cron for a periodic retraining request published by Cloud Scheduler; null for none."
  type        = string
  default     = null
  validation {
    condition     = var.retrain_schedule == null || length(split(" ", coalesce(var.retrain_schedule, "x"))) == 5
    error_message = "retrain_schedule must be a five-field cron expression."
  }
}
