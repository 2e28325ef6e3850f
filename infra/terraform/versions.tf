# Haechi on AWS: one codebase, roles switched on by the command each ECS service runs
# (crawler nodes, matcher workers, the takedown consumer, the review app), on ElastiCache
# Redis, RDS PostgreSQL and S3, as docs in README.md "Cluster mode" describe.
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      Project = "haechi"
      Stage   = var.name
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}
