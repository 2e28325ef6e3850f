# One customer-managed key for everything Haechi stores: media, evidence, database, Redis,
# logs and secrets. Rotated yearly by AWS.
resource "aws_kms_key" "haechi" {
  description             = "${var.name}: media, evidence, database, cache, logs, secrets"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "haechi" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.haechi.key_id
}

data "aws_iam_policy_document" "kms" {
  # A key policy always names "*" (the key itself); the account statement is AWS's default.
  #checkov:skip=CKV_AWS_111:key policy: the resource is the key itself
  #checkov:skip=CKV_AWS_356:key policy: the resource is the key itself
  #checkov:skip=CKV_AWS_109:key policy: the account must keep administering its own key
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  statement {
    sid       = "CloudWatchLogsEncrypt"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:*"]
    }
  }
}
