variable "region" {
  description = "AWS region to run Haechi in."
  type        = string
  default     = "ap-northeast-2"
}

variable "name" {
  description = "Name prefix of every resource (one installation per name)."
  type        = string
  default     = "haechi"
}

variable "image" {
  description = "The Haechi container image (one image; each service runs another command)."
  type        = string
}

variable "availability_zones" {
  description = "The two availability zones the services, database and cache run in."
  type        = list(string)
  default     = ["ap-northeast-2a", "ap-northeast-2c"]
}

variable "vpc_cidr" {
  description = "Address range of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "browser_pages" {
  description = "Browser pages one crawler node renders at once (HAECHI_BROWSER_PAGES); a node's memory allows about 4."
  type        = number
  default     = 4
}

variable "crawler_nodes" {
  description = "Crawler nodes: the least and the most the service scales between."
  type        = object({ min = number, max = number })
  default     = { min = 2, max = 40 }
}

variable "matcher_workers" {
  description = "Matcher workers: the least and the most the service scales between."
  type        = object({ min = number, max = number })
  default     = { min = 2, max = 20 }
}

variable "review_tasks" {
  description = "Review app tasks behind the internal load balancer."
  type        = number
  default     = 2
}

variable "sites_due_per_crawler" {
  description = "Sites due per crawler node at which another node is started."
  type        = number
  default     = 200
}

variable "files_queued_per_worker" {
  description = "Stored files waiting per matcher worker at which another worker is started."
  type        = number
  default     = 500
}

variable "media_expiry_days" {
  description = "Days crawled media are kept (evidence of matches is kept apart)."
  type        = number
  default     = 30
}

variable "evidence_retention_days" {
  description = "Days evidence copies are locked against deletion (S3 Object Lock)."
  type        = number
  default     = 1825
}

variable "log_retention_days" {
  description = "Days service logs are kept."
  type        = number
  default     = 365
}

variable "db_instance_class" {
  description = "RDS PostgreSQL instance class."
  type        = string
  default     = "db.r6g.large"
}

variable "redis_node_type" {
  description = "ElastiCache Redis node type."
  type        = string
  default     = "cache.r7g.large"
}

variable "review_certificate_arn" {
  description = "ACM certificate of the review app's internal HTTPS listener."
  type        = string
}

variable "review_allowed_cidrs" {
  description = "Networks (the agency's VPN) that may reach the review app."
  type        = list(string)
  default     = ["10.0.0.0/8"]
}

variable "org_name" {
  description = "The institution that signs takedown notices (HAECHI_ORG_NAME); until it is set, notices are drafted unsigned and never sent."
  type        = string
}

variable "notice_from" {
  description = "The address notices come from and hosts reply to (HAECHI_FROM)."
  type        = string
}
