# Two availability zones; services, database and cache in private subnets. Crawlers reach the
# web through NAT gateways (one per zone, so one zone failing does not stop crawling).
locals {
  zones = var.availability_zones
}

resource "aws_vpc" "main" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.name }
}

# Nothing may use the default security group.
resource "aws_default_security_group" "default" {
  vpc_id = aws_vpc.main.id
}

resource "aws_subnet" "public" {
  count             = length(local.zones)
  vpc_id            = aws_vpc.main.id
  availability_zone = local.zones[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, count.index)
  tags              = { Name = "${var.name}-public-${count.index}" }
}

resource "aws_subnet" "private" {
  count             = length(local.zones)
  vpc_id            = aws_vpc.main.id
  availability_zone = local.zones[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 8, 10 + count.index)
  tags              = { Name = "${var.name}-private-${count.index}" }
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
}

resource "aws_eip" "nat" {
  count  = length(local.zones)
  domain = "vpc"
}

resource "aws_nat_gateway" "main" {
  count         = length(local.zones)
  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }
}

resource "aws_route_table_association" "public" {
  count          = length(local.zones)
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_route_table" "private" {
  count  = length(local.zones)
  vpc_id = aws_vpc.main.id
  route {
    cidr_block     = "0.0.0.0/0"
    nat_gateway_id = aws_nat_gateway.main[count.index].id
  }
}

resource "aws_route_table_association" "private" {
  count          = length(local.zones)
  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[count.index].id
}

# S3 traffic stays inside AWS (and off the NAT bill).
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.main.id
  service_name      = "com.amazonaws.${data.aws_region.current.name}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.private[*].id
}

resource "aws_flow_log" "main" {
  vpc_id          = aws_vpc.main.id
  traffic_type    = "ALL"
  log_destination = aws_cloudwatch_log_group.flow.arn
  iam_role_arn    = aws_iam_role.flow_logs.arn
}

resource "aws_cloudwatch_log_group" "flow" {
  name              = "/${var.name}/vpc-flow"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.haechi.arn
}

# --- security groups: each service reaches only what it needs ------------------------------

# Its egress rules are the separate resources below (the web outside private ranges, the data
# stores, DNS): with no egress block here, Terraform removes AWS's allow-all default.
resource "aws_security_group" "services" {
  name        = "${var.name}-services"
  description = "Haechi ECS tasks: crawlers, workers, consumer, review app"
  vpc_id      = aws_vpc.main.id
}

locals {
  # Every IPv4 address outside the ranges a network of ours may use: 10/8, 172.16/12 and
  # 192.168/16 (RFC 1918: this VPC, peered VPCs, a VPN), 100.64/10 (shared space, which VPCs may
  # use too), 127/8, and 224/3 (multicast and reserved). Security groups can only allow, so
  # "the web but not the VPC" is this list of what is left (40 rules, under the 60 a group
  # holds); tests/test_outbound_policy.py checks it is exactly that. A hostile page can then
  # not make a task reach RDS, Redis or any other host inside, whatever the application does;
  # the application's outbound policy (engines/fetch.py) refuses these ranges too, plus the
  # finer special-purpose ones and link-local (the metadata endpoints, which security groups
  # never filter).
  internet_ipv4 = [
    "0.0.0.0/5", "8.0.0.0/7", "11.0.0.0/8", "12.0.0.0/6", "16.0.0.0/4", "32.0.0.0/3",
    "64.0.0.0/3", "96.0.0.0/6", "100.0.0.0/10", "100.128.0.0/9", "101.0.0.0/8", "102.0.0.0/7",
    "104.0.0.0/5", "112.0.0.0/5", "120.0.0.0/6", "124.0.0.0/7", "126.0.0.0/8", "128.0.0.0/3",
    "160.0.0.0/5", "168.0.0.0/6", "172.0.0.0/12", "172.32.0.0/11", "172.64.0.0/10",
    "172.128.0.0/9", "173.0.0.0/8", "174.0.0.0/7", "176.0.0.0/4", "192.0.0.0/9",
    "192.128.0.0/11", "192.160.0.0/13", "192.169.0.0/16", "192.170.0.0/15", "192.172.0.0/14",
    "192.176.0.0/12", "192.192.0.0/10", "193.0.0.0/8", "194.0.0.0/7", "196.0.0.0/6",
    "200.0.0.0/5", "208.0.0.0/4",
  ]
  # The only VPC-internal destinations the services need: the database and the cache.
  data_ports = { postgresql = 5432, redis = 6379 }
}

# Crawled sites listen on any port, so TCP is open outward, to public addresses only.
resource "aws_vpc_security_group_egress_rule" "services_web" {
  for_each          = toset(local.internet_ipv4)
  security_group_id = aws_security_group.services.id
  description       = "the web outside private ranges: crawled sites (any port), AWS APIs, SMTP"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 1
  to_port           = 65535
}

resource "aws_vpc_security_group_egress_rule" "services_data" {
  for_each                     = local.data_ports
  security_group_id            = aws_security_group.services.id
  description                  = "${each.key} in the data security group"
  referenced_security_group_id = aws_security_group.data.id
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
}

# The VPC resolver is the VPC's base address plus two; answers too long for UDP come over TCP.
resource "aws_vpc_security_group_egress_rule" "services_dns" {
  for_each          = toset(["udp", "tcp"])
  security_group_id = aws_security_group.services.id
  description       = "DNS to the VPC resolver (${each.value})"
  cidr_ipv4         = "${cidrhost(var.vpc_cidr, 2)}/32"
  ip_protocol       = each.value
  from_port         = 53
  to_port           = 53
}

resource "aws_vpc_security_group_ingress_rule" "review_from_alb" {
  security_group_id            = aws_security_group.services.id
  description                  = "review app, from the internal load balancer only"
  referenced_security_group_id = aws_security_group.review_alb.id
  from_port                    = 8080
  to_port                      = 8080
  ip_protocol                  = "tcp"
}

resource "aws_security_group" "data" {
  name        = "${var.name}-data"
  description = "Haechi PostgreSQL and Redis, reachable from Haechi services only"
  vpc_id      = aws_vpc.main.id

  ingress {
    description     = "PostgreSQL from Haechi services"
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_security_group.services.id]
  }
  ingress {
    description     = "Redis from Haechi services"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = [aws_security_group.services.id]
  }
}

resource "aws_security_group" "review_alb" {
  name        = "${var.name}-review-alb"
  description = "Internal load balancer of the review app"
  vpc_id      = aws_vpc.main.id

  ingress {
    description = "HTTPS from the agency's network"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.review_allowed_cidrs
  }
  egress {
    description = "to the review app tasks"
    from_port   = 8080
    to_port     = 8080
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }
}
