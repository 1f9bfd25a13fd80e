# GKE, GCS, Cloud SQL, Artifact Registry, Workload Identity and the Pub/Sub retraining path
# for tradeloop's gcp overlay.
terraform {
  required_version = ">= 1.6"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.14"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

data "google_project" "current" {}

locals {
  name = "tradeloop-${var.environment}"
  # One Google service account per Kubernetes ServiceAccount in deploy/k8s/base/rbac.yaml.
  roles  = toset(["gateway", "trainer", "deployer", "monitor", "training-job", "mlflow"])
  labels = { "part-of" = "tradeloop", environment = var.environment }
}
