variable "region" {
  description = "AWS region for every resource."
  type        = string
  default     = "us-east-1"
  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like us-east-1."
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

variable "vpc_id" {
  description = "The VPC the cluster and database live in."
  type        = string
  validation {
    condition     = startswith(var.vpc_id, "vpc-")
    error_message = "vpc_id must be a VPC id (vpc-...)."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets (no route from the internet), in at least two zones."
  type        = list(string)
  validation {
    condition     = length(var.private_subnet_ids) >= 2 && alltrue([for s in var.private_subnet_ids : startswith(s, "subnet-")])
    error_message = "private_subnet_ids needs at least two subnet ids (subnet-...)."
  }
}

variable "admin_cidrs" {
  description = "CIDRs allowed to reach the private cluster endpoint (VPN, bastion)."
  type        = list(string)
  validation {
    condition     = alltrue([for c in var.admin_cidrs : can(cidrhost(c, 0))]) && !contains(var.admin_cidrs, "0.0.0.0/0")
    error_message = "admin_cidrs must be CIDRs, and not 0.0.0.0/0."
  }
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.33"
  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.33."
  }
}

variable "training_instance_types" {
  description = "Instance types for the spot training pool (several, so spot capacity is found)."
  type        = list(string)
  default     = ["m6i.2xlarge", "m6a.2xlarge", "m5.2xlarge"]
  validation {
    condition     = length(var.training_instance_types) >= 2
    error_message = "give at least two instance types so spot capacity can be found."
  }
}

variable "db_instance_class" {
  description = "RDS instance class for tradeloop's and MLflow's PostgreSQL."
  type        = string
  default     = "db.t4g.medium"
  validation {
    condition     = startswith(var.db_instance_class, "db.")
    error_message = "db_instance_class must be an RDS class (db....)."
  }
}

variable "retrain_endpoint" {
  description = "The gateway's retraining endpoint, https://<host>/v1/retrain (through the ALB)."
  type        = string
  validation {
    condition     = can(regex("^https://[^/]+/v1/retrain$", var.retrain_endpoint))
    error_message = "retrain_endpoint must be https://<host>/v1/retrain."
  }
}

variable "retrain_token" {
  description = "An operator-role tradeloop token (`tradeloop tokens create --name eventbridge --role operator`)."
  type        = string
  sensitive   = true
  validation {
    condition     = startswith(var.retrain_token, "tl_")
    error_message = "retrain_token must be a tradeloop token (tl_...)."
  }
}

variable "retrain_schedule" {
  description = "EventBridge schedule expression for a periodic retraining request; null for none."
  type        = string
  default     = null
  validation {
    condition     = var.retrain_schedule == null || can(regex("^(rate|cron)\\(.+\\)$", var.retrain_schedule))
    error_message = "retrain_schedule must be rate(...) or cron(...)."
  }
}

variable "log_retention_days" {
  description = "CloudWatch retention for cluster and tradeloop logs."
  type        = number
  default     = 365
  validation {
    condition     = var.log_retention_days >= 365
    error_message = "keep logs for at least a year (the audit trail points into them)."
  }
}
