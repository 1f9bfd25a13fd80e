# One customer-managed key for the bucket, database, registry, logs, queues and EKS secrets.
data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_111:a key policy's "*" resource means this key only
  #checkov:skip=CKV_AWS_356:a key policy's "*" resource means this key only
  #checkov:skip=CKV_AWS_109:the account root administers its own key, as AWS's default key policy does
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
  statement {
    sid       = "CloudWatchLogsUse"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "tradeloop" {
  description             = "${local.name}: artifacts, database, registry, logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "tradeloop" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.tradeloop.key_id
}
