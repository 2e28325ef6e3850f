# Crawler nodes scale on the sites due and waiting in the schedule, matcher workers on the
# stored files waiting in the Celery queue. Both numbers come from `haechi cluster metrics
# --cloudwatch`, run every minute as a task, into the Haechi namespace.

resource "aws_ecs_task_definition" "metrics" {
  family                   = "${var.name}-metrics"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.metrics.arn
  container_definitions = jsonencode([{
    name                   = "metrics"
    image                  = var.image
    command                = ["haechi", "cluster", "metrics", "--cloudwatch"]
    essential              = true
    readonlyRootFilesystem = true
    user                   = "1000:1000"
    environment            = concat(local.environment, [{ name = "HAECHI_HOME", value = "/tmp/haechi" }])
    secrets                = local.secrets
    mountPoints            = [{ sourceVolume = "scratch", containerPath = "/tmp" }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.service["metrics"].name
        awslogs-region        = var.region
        awslogs-stream-prefix = "metrics"
      }
    }
  }])
  volume {
    name = "scratch"
  }
}

resource "aws_cloudwatch_event_rule" "metrics" {
  name                = "${var.name}-metrics"
  description         = "Publish Haechi queue depths for autoscaling"
  schedule_expression = "rate(1 minute)"
}

resource "aws_cloudwatch_event_target" "metrics" {
  rule     = aws_cloudwatch_event_rule.metrics.name
  arn      = aws_ecs_cluster.main.arn
  role_arn = aws_iam_role.events.arn
  ecs_target {
    task_definition_arn = aws_ecs_task_definition.metrics.arn
    launch_type         = "FARGATE"
    network_configuration {
      subnets          = aws_subnet.private[*].id
      security_groups  = [aws_security_group.services.id]
      assign_public_ip = false
    }
  }
}

locals {
  scaled = {
    crawler = { bounds = var.crawler_nodes, metric = "SitesDue", per_task = var.sites_due_per_crawler }
    worker  = { bounds = var.matcher_workers, metric = "FilesQueued", per_task = var.files_queued_per_worker }
  }
}

resource "aws_appautoscaling_target" "service" {
  for_each           = local.scaled
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.service[each.key].name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = each.value.bounds.min
  max_capacity       = each.value.bounds.max
}

# Target tracking on the backlog per running task: AWS adds tasks while each has more than
# per_task waiting, and removes them (slowly) when the queue drains.
resource "aws_appautoscaling_policy" "backlog" {
  for_each           = local.scaled
  name               = "${var.name}-${each.key}-backlog"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.service[each.key].service_namespace
  resource_id        = aws_appautoscaling_target.service[each.key].resource_id
  scalable_dimension = aws_appautoscaling_target.service[each.key].scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = each.value.per_task
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    customized_metric_specification {
      metrics {
        id          = "backlog"
        label       = "${each.value.metric} per running task"
        expression  = "queued / FILL(tasks, 1)"
        return_data = true
      }
      metrics {
        id          = "queued"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "Haechi"
            metric_name = each.value.metric
            dimensions {
              name  = "Cluster"
              value = var.name
            }
          }
        }
      }
      metrics {
        id          = "tasks"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.main.name
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.service[each.key].name
            }
          }
        }
      }
    }
  }
}
