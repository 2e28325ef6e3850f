# Media: what crawlers fetched, private and encrypted, expiring after media_expiry_days (a
# file that matched is copied into the evidence bucket, encrypted, before then).
resource "aws_s3_bucket" "media" {
  # Stored files become Celery tasks sent by the crawler itself; no one listens to S3 events.
  #checkov:skip=CKV2_AWS_62:nothing consumes S3 events (the crawler dispatches match tasks)
  # Victims' material stays in the region the agency chose (data residency); no copies abroad.
  #checkov:skip=CKV_AWS_144:no cross-region copies of victims' material (data residency)
  bucket_prefix = "${var.name}-media-"
}

# Evidence: copies of matched files and exported bundles, locked against deletion or change
# for evidence_retention_days (compliance mode: not even the account root can shorten it).
resource "aws_s3_bucket" "evidence" {
  # Stored files become Celery tasks sent by the crawler itself; no one listens to S3 events.
  #checkov:skip=CKV2_AWS_62:nothing consumes S3 events (the crawler dispatches match tasks)
  # Victims' material stays in the region the agency chose (data residency); no copies abroad.
  #checkov:skip=CKV_AWS_144:no cross-region copies of victims' material (data residency)
  bucket_prefix       = "${var.name}-evidence-"
  object_lock_enabled = true
}

# Server access logs of the two buckets above.
resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_145:S3 delivers access logs only into buckets with S3-managed keys
  # Stored files become Celery tasks sent by the crawler itself; no one listens to S3 events.
  #checkov:skip=CKV2_AWS_62:nothing consumes S3 events (the crawler dispatches match tasks)
  # Victims' material stays in the region the agency chose (data residency); no copies abroad.
  #checkov:skip=CKV_AWS_144:no cross-region copies of victims' material (data residency)
  bucket_prefix = "${var.name}-s3-logs-"
}

locals {
  buckets = {
    media    = aws_s3_bucket.media
    evidence = aws_s3_bucket.evidence
    logs     = aws_s3_bucket.logs
  }
}

resource "aws_s3_bucket_public_access_block" "all" {
  for_each                = local.buckets
  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "all" {
  for_each = local.buckets
  bucket   = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "media" {
  bucket = aws_s3_bucket.media.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.haechi.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "evidence" {
  bucket = aws_s3_bucket.evidence.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.haechi.arn
    }
    bucket_key_enabled = true
  }
}

# S3 delivers server access logs only into buckets encrypted with S3-managed keys.
resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "all" {
  for_each = local.buckets
  bucket   = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_logging" "media" {
  bucket        = aws_s3_bucket.media.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "media/"
}

resource "aws_s3_bucket_logging" "evidence" {
  bucket        = aws_s3_bucket.evidence.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "evidence/"
}

resource "aws_s3_bucket_object_lock_configuration" "evidence" {
  bucket = aws_s3_bucket.evidence.id
  rule {
    default_retention {
      mode = "COMPLIANCE"
      days = var.evidence_retention_days
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "media" {
  bucket = aws_s3_bucket.media.id
  rule {
    id     = "expire-crawled-media"
    status = "Enabled"
    filter {}
    expiration {
      days = var.media_expiry_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "evidence" {
  bucket = aws_s3_bucket.evidence.id
  rule {
    id     = "expire-after-retention"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.evidence_retention_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    id     = "expire-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.log_retention_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# Only TLS, only the account's principals.
data "aws_iam_policy_document" "bucket" {
  for_each = local.buckets
  statement {
    sid       = "DenyPlainHTTP"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "all" {
  for_each = local.buckets
  bucket   = each.value.id
  policy   = data.aws_iam_policy_document.bucket[each.key].json
}
