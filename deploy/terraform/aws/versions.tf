# EKS, S3, RDS, ECR, IRSA and the EventBridge retraining path for tradeloop's aws overlay.
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { "app.kubernetes.io/part-of" = "tradeloop", environment = var.environment }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  name      = "tradeloop-${var.environment}"
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  # One IAM role per Kubernetes ServiceAccount in deploy/k8s/base/rbac.yaml.
  roles = toset(["gateway", "trainer", "deployer", "monitor", "training-job", "mlflow"])
}
