# What deploy/k8s/overlays/aws needs.
output "cluster_name" {
  description = "EKS cluster (aws eks update-kubeconfig --name ...)."
  value       = aws_eks_cluster.tradeloop.name
}

output "service_account_role_arns" {
  description = "eks.amazonaws.com/role-arn for each tradeloop-<role> ServiceAccount."
  value       = { for k, r in aws_iam_role.workload : "tradeloop-${k}" => r.arn }
}

output "artifact_destination" {
  description = "MLFLOW_ARTIFACTS_DESTINATION for the tradeloop-mlflow ConfigMap."
  value       = "s3://${aws_s3_bucket.artifacts.bucket}/mlflow"
}

output "db_endpoint" {
  description = "RDS host:port for the tradeloop-db Secret's URLs."
  value       = aws_db_instance.tradeloop.endpoint
}

output "db_master_secret_arn" {
  description = "Secrets Manager secret holding the RDS master password."
  value       = aws_db_instance.tradeloop.master_user_secret[0].secret_arn
}

output "image_repository" {
  description = "ECR repository for the tradeloop image (the overlay's images: newName)."
  value       = aws_ecr_repository.tradeloop.repository_url
}
