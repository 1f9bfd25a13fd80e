# IRSA: the cluster's OIDC issuer, and one IAM role per ServiceAccount that only that
# ServiceAccount in the tradeloop namespace can assume (the aws overlay's role-arn annotations).
data "tls_certificate" "oidc" {
  url = aws_eks_cluster.tradeloop.identity[0].oidc[0].issuer
}

resource "aws_iam_openid_connect_provider" "eks" {
  url             = aws_eks_cluster.tradeloop.identity[0].oidc[0].issuer
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = [data.tls_certificate.oidc.certificates[0].sha1_fingerprint]
}

locals {
  issuer = replace(aws_eks_cluster.tradeloop.identity[0].oidc[0].issuer, "https://", "")
}

data "aws_iam_policy_document" "irsa" {
  for_each = local.roles
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.eks.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:sub"
      values   = ["system:serviceaccount:tradeloop:tradeloop-${each.key}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "workload" {
  for_each           = local.roles
  name               = "tradeloop-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.irsa[each.key].json
}

# Only MLflow touches the bucket (it proxies artifacts for everyone else).
data "aws_iam_policy_document" "mlflow_artifacts" {
  statement {
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.artifacts.arn]
  }
  statement {
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.artifacts.arn}/*"]
  }
  statement {
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.tradeloop.arn]
  }
}

resource "aws_iam_role_policy" "mlflow_artifacts" {
  name   = "artifacts"
  role   = aws_iam_role.workload["mlflow"].id
  policy = data.aws_iam_policy_document.mlflow_artifacts.json
}
