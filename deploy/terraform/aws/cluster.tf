# EKS with a private API endpoint, encrypted secrets, every control-plane log, an on-demand
# system pool and a tainted spot pool for training (the overlay's toleration and preferred
# affinity put training there, falling back to on-demand).
resource "aws_cloudwatch_log_group" "cluster" {
  name              = "/aws/eks/${local.name}/cluster"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.tradeloop.arn
}

data "aws_iam_policy_document" "assume_eks" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name               = "${local.name}-cluster"
  assume_role_policy = data.aws_iam_policy_document.assume_eks.json
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

resource "aws_security_group" "cluster" {
  name        = "${local.name}-cluster"
  description = "EKS control plane: reachable from the admin CIDRs only"
  vpc_id      = var.vpc_id

  ingress {
    description = "Kubernetes API from the admin networks"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.admin_cidrs
  }
}

resource "aws_eks_cluster" "tradeloop" {
  name                      = local.name
  version                   = var.kubernetes_version
  role_arn                  = aws_iam_role.cluster.arn
  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  vpc_config {
    subnet_ids              = var.private_subnet_ids
    security_group_ids      = [aws_security_group.cluster.id]
    endpoint_private_access = true
    endpoint_public_access  = false
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = aws_kms_key.tradeloop.arn
    }
  }

  depends_on = [aws_iam_role_policy_attachment.cluster, aws_cloudwatch_log_group.cluster]
}

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${local.name}-node"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
    "CloudWatchAgentServerPolicy",
  ])
  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value}"
}

resource "aws_eks_node_group" "system" {
  cluster_name    = aws_eks_cluster.tradeloop.name
  node_group_name = "system"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.private_subnet_ids
  capacity_type   = "ON_DEMAND"
  instance_types  = ["m6i.large"]

  scaling_config {
    min_size     = 2
    desired_size = 3
    max_size     = 6
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}

resource "aws_eks_node_group" "training" {
  cluster_name    = aws_eks_cluster.tradeloop.name
  node_group_name = "training-spot"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.private_subnet_ids
  capacity_type   = "SPOT"
  instance_types  = var.training_instance_types
  labels          = { "tradeloop.io/pool" = "training" }

  taint {
    key    = "tradeloop.io/training"
    value  = "spot"
    effect = "NO_SCHEDULE"
  }

  scaling_config {
    min_size     = 0
    desired_size = 0
    max_size     = 4
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}

# Metric and log export: the CloudWatch Observability add-on ships container logs and
# Container Insights metrics (including the pods' Prometheus endpoints) to CloudWatch.
resource "aws_eks_addon" "observability" {
  cluster_name = aws_eks_cluster.tradeloop.name
  addon_name   = "amazon-cloudwatch-observability"
  depends_on   = [aws_eks_node_group.system]
}

resource "aws_cloudwatch_log_group" "tradeloop" {
  name              = "/aws/containerinsights/${local.name}/application"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.tradeloop.arn
}
