# Least privilege: each service's task role may touch only its own buckets, and only the
# actions it performs; the execution role only pulls, logs and reads the six secrets.

data "aws_iam_policy_document" "assume" {
  for_each = toset(["ecs-tasks.amazonaws.com", "monitoring.rds.amazonaws.com",
  "vpc-flow-logs.amazonaws.com", "events.amazonaws.com"])
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = [each.key]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.assume["ecs-tasks.amazonaws.com"].json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    actions = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.redis_url.arn, aws_secretsmanager_secret.database_url.arn,
      aws_secretsmanager_secret.evidence_key.arn, aws_secretsmanager_secret.audit_key.arn,
    aws_secretsmanager_secret.session_secret.arn, aws_secretsmanager_secret.smtp_url.arn]
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.haechi.arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

locals {
  media_objects    = "${aws_s3_bucket.media.arn}/*"
  evidence_objects = "${aws_s3_bucket.evidence.arn}/*"
  # What each service's task role may do in S3. The crawler reads what it writes (a file is
  # stored once: the store asks whether it is there first). `seal`: where a matched file's
  # plaintext media copy is replaced by its encrypted one (HAECHI_EVIDENCE_KEY).
  s3_access = {
    crawler  = { read = [local.media_objects], write = [local.media_objects], seal = [] }
    worker   = { read = [local.media_objects], write = [], seal = [] }
    consumer = { read = [local.media_objects], write = [local.evidence_objects], seal = [local.media_objects] }
    review   = { read = [local.media_objects, local.evidence_objects], write = [local.evidence_objects], seal = [local.media_objects] }
  }
}

resource "aws_iam_role" "task" {
  for_each           = local.s3_access
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume["ecs-tasks.amazonaws.com"].json
}

data "aws_iam_policy_document" "task" {
  for_each = local.s3_access
  dynamic "statement" {
    for_each = length(each.value.read) > 0 ? [1] : []
    content {
      actions   = ["s3:GetObject"]
      resources = each.value.read
    }
  }
  dynamic "statement" {
    for_each = length(each.value.write) > 0 ? [1] : []
    content {
      actions   = ["s3:PutObject"]
      resources = each.value.write
    }
  }
  dynamic "statement" {
    for_each = length(each.value.seal) > 0 ? [1] : []
    content {
      actions   = ["s3:PutObject", "s3:DeleteObject"]
      resources = each.value.seal
    }
  }
  statement {
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.haechi.arn]
  }
}

resource "aws_iam_role_policy" "task" {
  for_each = local.s3_access
  name     = "haechi-${each.key}"
  role     = aws_iam_role.task[each.key].id
  policy   = data.aws_iam_policy_document.task[each.key].json
}

# The metrics task publishes queue depths, in Haechi's own namespace only.
resource "aws_iam_role" "metrics" {
  name               = "${var.name}-metrics"
  assume_role_policy = data.aws_iam_policy_document.assume["ecs-tasks.amazonaws.com"].json
}

data "aws_iam_policy_document" "metrics" {
  statement {
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"] # PutMetricData has no resource; the namespace condition narrows it
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = ["Haechi"]
    }
  }
}

resource "aws_iam_role_policy" "metrics" {
  name   = "metrics"
  role   = aws_iam_role.metrics.id
  policy = data.aws_iam_policy_document.metrics.json
}

resource "aws_iam_role" "flow_logs" {
  name               = "${var.name}-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.assume["vpc-flow-logs.amazonaws.com"].json
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow.arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}

# EventBridge starts the metrics task every minute.
resource "aws_iam_role" "events" {
  name               = "${var.name}-events"
  assume_role_policy = data.aws_iam_policy_document.assume["events.amazonaws.com"].json
}

data "aws_iam_policy_document" "events" {
  statement {
    actions   = ["ecs:RunTask"]
    resources = [aws_ecs_task_definition.metrics.arn_without_revision, aws_ecs_task_definition.metrics.arn]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.main.arn]
    }
  }
  statement {
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.execution.arn, aws_iam_role.metrics.arn]
  }
}

resource "aws_iam_role_policy" "events" {
  name   = "run-metrics-task"
  role   = aws_iam_role.events.id
  policy = data.aws_iam_policy_document.events.json
}
