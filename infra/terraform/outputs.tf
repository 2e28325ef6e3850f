output "media_bucket" {
  description = "HAECHI_STORE bucket: crawled media (private, KMS, expiring)."
  value       = aws_s3_bucket.media.bucket
}

output "evidence_bucket" {
  description = "HAECHI_EVIDENCE_STORE bucket: evidence copies (Object Lock, KMS)."
  value       = aws_s3_bucket.evidence.bucket
}

output "review_url" {
  description = "The review app, on the agency's network."
  value       = "https://${aws_lb.review.dns_name}/"
}

output "redis_url_secret" {
  description = "Secrets Manager secret holding REDIS_URL."
  value       = aws_secretsmanager_secret.redis_url.arn
}

output "database_url_secret" {
  description = "Secrets Manager secret holding DATABASE_URL."
  value       = aws_secretsmanager_secret.database_url.arn
}
