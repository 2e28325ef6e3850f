# PostgreSQL (bank, cases, audit log) and Redis (frontier, Celery broker, match-event stream).

resource "random_password" "db" {
  length  = 40
  special = false
}

resource "random_password" "redis" {
  length  = 48
  special = false
}

resource "aws_db_subnet_group" "main" {
  name       = var.name
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_db_parameter_group" "postgres" {
  name   = "${var.name}-postgres16"
  family = "postgres16"
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.assume["monitoring.rds.amazonaws.com"].json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "main" {
  identifier                            = var.name
  engine                                = "postgres"
  engine_version                        = "16"
  instance_class                        = var.db_instance_class
  allocated_storage                     = 100
  max_allocated_storage                 = 1000
  storage_encrypted                     = true
  kms_key_id                            = aws_kms_key.haechi.arn
  db_name                               = "haechi"
  username                              = "haechi"
  password                              = random_password.db.result
  db_subnet_group_name                  = aws_db_subnet_group.main.name
  parameter_group_name                  = aws_db_parameter_group.postgres.name
  vpc_security_group_ids                = [aws_security_group.data.id]
  publicly_accessible                   = false
  multi_az                              = true
  deletion_protection                   = true
  backup_retention_period               = 35
  copy_tags_to_snapshot                 = true
  skip_final_snapshot                   = false
  final_snapshot_identifier             = "${var.name}-final"
  auto_minor_version_upgrade            = true
  iam_database_authentication_enabled   = true
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.haechi.arn
  monitoring_interval                   = 30
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
}

resource "aws_elasticache_subnet_group" "main" {
  name       = var.name
  subnet_ids = aws_subnet.private[*].id
}

# Two nodes in two zones with automatic failover: a failed primary is replaced by its
# replica in under a minute, which Haechi's clients ride out (they retry for about a minute).
resource "aws_elasticache_replication_group" "main" {
  replication_group_id       = var.name
  description                = "Haechi frontier, Celery broker and match-event stream"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.redis_node_type
  num_cache_clusters         = 2
  automatic_failover_enabled = true
  multi_az_enabled           = true
  port                       = 6379
  subnet_group_name          = aws_elasticache_subnet_group.main.name
  security_group_ids         = [aws_security_group.data.id]
  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.haechi.arn
  transit_encryption_enabled = true
  auth_token                 = random_password.redis.result
  snapshot_retention_limit   = 7
  auto_minor_version_upgrade = true
  # The queues must not lose entries to eviction.
  parameter_group_name = aws_elasticache_parameter_group.redis.name
}

resource "aws_elasticache_parameter_group" "redis" {
  name   = "${var.name}-redis7"
  family = "redis7"
  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }
}

# The connection URLs the services read as REDIS_URL and DATABASE_URL.
resource "aws_secretsmanager_secret" "redis_url" {
  name_prefix = "${var.name}-redis-url-"
  kms_key_id  = aws_kms_key.haechi.arn
  # checkov:skip=CKV2_AWS_57:rotated by applying with a new random_password (the auth token and the URL change together)
}

resource "aws_secretsmanager_secret_version" "redis_url" {
  secret_id     = aws_secretsmanager_secret.redis_url.id
  secret_string = "rediss://:${random_password.redis.result}@${aws_elasticache_replication_group.main.primary_endpoint_address}:6379/0"
}

resource "aws_secretsmanager_secret" "database_url" {
  name_prefix = "${var.name}-database-url-"
  kms_key_id  = aws_kms_key.haechi.arn
  # checkov:skip=CKV2_AWS_57:rotated by applying with a new random_password (the password and the URL change together)
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id     = aws_secretsmanager_secret.database_url.id
  secret_string = "postgresql+psycopg://haechi:${random_password.db.result}@${aws_db_instance.main.address}:5432/haechi?sslmode=require"
}

# The key of the encrypted evidence copies (HAECHI_EVIDENCE_KEY, a Fernet key). Set its value
# once with `aws secretsmanager put-secret-value`; Terraform never sees it.
resource "aws_secretsmanager_secret" "evidence_key" {
  name_prefix = "${var.name}-evidence-key-"
  kms_key_id  = aws_kms_key.haechi.arn
  # checkov:skip=CKV2_AWS_57:a new key would leave old evidence unreadable; rotation is a re-encryption job, not a schedule
}

# The key of the audit log's MACs (HAECHI_AUDIT_KEY): every service that writes cases, notices
# or reviews must hold the same one, and the database must not. Set its value once with
# `aws secretsmanager put-secret-value` (`openssl rand -hex 32`) and keep a copy offline: the log
# cannot be verified without it.
resource "aws_secretsmanager_secret" "audit_key" {
  name_prefix = "${var.name}-audit-key-"
  kms_key_id  = aws_kms_key.haechi.arn
  # checkov:skip=CKV2_AWS_57:entries are MACed under the key they were written with; a new key is a new key id, not a schedule
}

# The review app's session secret (HAECHI_SECRET_KEY), shared by its tasks so that a session
# made by one is valid on the others.
resource "random_password" "session_secret" {
  length  = 48
  special = false
}

resource "aws_secretsmanager_secret" "session_secret" {
  name_prefix = "${var.name}-session-secret-"
  kms_key_id  = aws_kms_key.haechi.arn
  # checkov:skip=CKV2_AWS_57:rotated by applying with a new random_password (reviewers log in again)
}

resource "aws_secretsmanager_secret_version" "session_secret" {
  secret_id     = aws_secretsmanager_secret.session_secret.id
  secret_string = random_password.session_secret.result
}

# The mail server notices go out through (HAECHI_SMTP_URL: an smtps URL with the provider's
# user name and password in it).
# Set its value once with `aws secretsmanager put-secret-value`.
resource "aws_secretsmanager_secret" "smtp_url" {
  name_prefix = "${var.name}-smtp-url-"
  kms_key_id  = aws_kms_key.haechi.arn
  # checkov:skip=CKV2_AWS_57:the mail provider's credentials are rotated at the provider
}
