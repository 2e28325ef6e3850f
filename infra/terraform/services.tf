# One image, five roles (as HMA does): each ECS service runs another `haechi` command with the
# same environment. Crawler nodes and matcher workers scale on queue depth (scaling.tf).

locals {
  environment = [
    { name = "HAECHI_STORE", value = "s3://${aws_s3_bucket.media.bucket}/media" },
    { name = "HAECHI_EVIDENCE_STORE", value = "s3://${aws_s3_bucket.evidence.bucket}/evidence" },
    { name = "AWS_REGION", value = var.region },
    { name = "HAECHI_CLUSTER_NAME", value = var.name },
    { name = "HAECHI_ORG_NAME", value = var.org_name },
    { name = "HAECHI_FROM", value = var.notice_from },
    # Read by the review app only: it is reached through the ALB's HTTPS listener (Secure
    # cookies), and the ALB is the one proxy whose X-Forwarded-For entry names the client.
    { name = "HAECHI_REVIEW_HTTPS", value = "1" },
    { name = "HAECHI_REVIEW_TRUST_PROXY", value = "1" },
    # Read by crawler nodes only: Chromium pages open at once (each about 150-250 MB).
    { name = "HAECHI_BROWSER_PAGES", value = tostring(var.browser_pages) },
  ]
  secrets = [
    { name = "REDIS_URL", valueFrom = aws_secretsmanager_secret.redis_url.arn },
    { name = "DATABASE_URL", valueFrom = aws_secretsmanager_secret.database_url.arn },
    { name = "HAECHI_EVIDENCE_KEY", valueFrom = aws_secretsmanager_secret.evidence_key.arn },
    { name = "HAECHI_AUDIT_KEY", valueFrom = aws_secretsmanager_secret.audit_key.arn },
    { name = "HAECHI_SECRET_KEY", valueFrom = aws_secretsmanager_secret.session_secret.arn },
    { name = "HAECHI_SMTP_URL", valueFrom = aws_secretsmanager_secret.smtp_url.arn },
  ]
  services = {
    crawler  = { command = ["haechi", "crawler"], cpu = 1024, memory = 3072, count = var.crawler_nodes.min, port = null }
    worker   = { command = ["haechi", "worker", "--concurrency", "2"], cpu = 2048, memory = 4096, count = var.matcher_workers.min, port = null }
    consumer = { command = ["haechi", "cases", "consume"], cpu = 512, memory = 1024, count = 2, port = null }
    review   = { command = ["haechi", "review", "serve", "--host", "0.0.0.0", "--port", "8080"], cpu = 512, memory = 1024, count = var.review_tasks, port = 8080 }
  }
}

resource "aws_ecs_cluster" "main" {
  name = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "service" {
  for_each          = toset(concat(keys(local.services), ["metrics"]))
  name              = "/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.haechi.arn
}

resource "aws_ecs_task_definition" "service" {
  for_each                 = local.services
  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task[each.key].arn
  container_definitions = jsonencode([{
    name                   = each.key
    image                  = var.image
    command                = each.value.command
    essential              = true
    readonlyRootFilesystem = true
    user                   = "1000:1000"
    environment            = concat(local.environment, [{ name = "HAECHI_HOME", value = "/tmp/haechi" }])
    secrets                = local.secrets
    portMappings           = each.value.port == null ? [] : [{ containerPort = each.value.port, protocol = "tcp" }]
    mountPoints            = [{ sourceVolume = "scratch", containerPath = "/tmp" }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.service[each.key].name
        awslogs-region        = var.region
        awslogs-stream-prefix = each.key
      }
    }
  }])
  volume {
    name = "scratch"
  }
}

resource "aws_ecs_service" "service" {
  for_each         = local.services
  name             = each.key
  cluster          = aws_ecs_cluster.main.id
  task_definition  = aws_ecs_task_definition.service[each.key].arn
  desired_count    = each.value.count
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  # A crawler node or worker that stops hands its leased requests and unacknowledged tasks
  # back after their lease; a rolling deploy never stops more than half.
  deployment_minimum_healthy_percent = 50
  deployment_maximum_percent         = 200
  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.services.id]
    assign_public_ip = false
  }
  dynamic "load_balancer" {
    for_each = each.value.port == null ? [] : [1]
    content {
      target_group_arn = aws_lb_target_group.review.arn
      container_name   = each.key
      container_port   = each.value.port
    }
  }
  lifecycle {
    ignore_changes = [desired_count] # set by autoscaling
  }
}

# --- the review app: an internal HTTPS load balancer, reachable from the agency's network ----

resource "aws_lb" "review" {
  name                       = "${var.name}-review"
  internal                   = true
  load_balancer_type         = "application"
  subnets                    = aws_subnet.private[*].id
  security_groups            = [aws_security_group.review_alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = true
  access_logs {
    bucket  = aws_s3_bucket.logs.id
    prefix  = "review-alb"
    enabled = true
  }
  # checkov:skip=CKV2_AWS_28:internal load balancer reachable only from review_allowed_cidrs; no WAF in front of a private network
}

resource "aws_lb_target_group" "review" {
  name        = "${var.name}-review"
  port        = 8080
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = aws_vpc.main.id
  health_check {
    path    = "/login"
    matcher = "200"
  }
}

resource "aws_lb_listener" "review" {
  load_balancer_arn = aws_lb.review.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.review_certificate_arn
  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.review.arn
  }
}
