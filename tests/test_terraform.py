"""The AWS deployment (infra/terraform): every file parses, the buckets are private and
encrypted, the data stores are encrypted and private, and checkov finds nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest

ROOT = Path(__file__).resolve().parents[1]
TERRAFORM = ROOT / "infra" / "terraform"


def _plain(value: Any) -> Any:
    """python-hcl2 keeps HCL's quotes on names and strings; drop them and its comment keys."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()
                if k not in ("__comments__", "__is_block__")}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


@pytest.fixture(scope="module")
def resources() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    files = sorted(TERRAFORM.glob("*.tf"))
    assert len(files) >= 8
    for path in files:
        with path.open() as handle:
            parsed = _plain(hcl2.load(handle))  # a syntax error fails here, naming the file
        for block in parsed.get("resource", []):
            for kind, named in block.items():
                for name, body in named.items():
                    found[(kind, name)] = body
    return found


def _block(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body[name]
    return value[0] if isinstance(value, list) else value


def test_buckets_are_private_and_encrypted(resources) -> None:
    buckets = {name for kind, name in resources if kind == "aws_s3_bucket"}
    assert buckets == {"media", "evidence", "logs"}
    access = resources[("aws_s3_bucket_public_access_block", "all")]
    assert access["for_each"] == "${local.buckets}"
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                 "restrict_public_buckets"):
        assert access[flag] is True
    for name in ("media", "evidence"):
        rule = _block(resources[("aws_s3_bucket_server_side_encryption_configuration", name)],
                      "rule")
        default = _block(rule, "apply_server_side_encryption_by_default")
        assert default["sse_algorithm"] == "aws:kms"
        assert default["kms_master_key_id"] == "${aws_kms_key.haechi.arn}"
    logs = _block(_block(resources[("aws_s3_bucket_server_side_encryption_configuration",
                                    "logs")], "rule"), "apply_server_side_encryption_by_default")
    assert logs["sse_algorithm"] == "AES256"
    policy = resources[("aws_s3_bucket_policy", "all")]
    assert policy["for_each"] == "${local.buckets}"  # TLS only, on every bucket


def test_evidence_is_locked_and_media_expire(resources) -> None:
    assert resources[("aws_s3_bucket", "evidence")]["object_lock_enabled"] is True
    lock = _block(_block(resources[("aws_s3_bucket_object_lock_configuration", "evidence")],
                         "rule"), "default_retention")
    assert lock["mode"] == "COMPLIANCE"
    rule = _block(resources[("aws_s3_bucket_lifecycle_configuration", "media")], "rule")
    assert _block(rule, "expiration")["days"] == "${var.media_expiry_days}"
    assert resources[("aws_kms_key", "haechi")]["enable_key_rotation"] is True


def test_database_and_cache_are_encrypted_and_private(resources) -> None:
    db = resources[("aws_db_instance", "main")]
    assert db["storage_encrypted"] is True and db["publicly_accessible"] is False
    assert db["deletion_protection"] is True and db["multi_az"] is True
    cache = resources[("aws_elasticache_replication_group", "main")]
    assert cache["at_rest_encryption_enabled"] is True
    assert cache["transit_encryption_enabled"] is True
    assert cache["automatic_failover_enabled"] is True
    scaled = resources[("aws_appautoscaling_policy", "backlog")]
    assert scaled["policy_type"] == "TargetTrackingScaling"


def test_checkov_finds_nothing() -> None:
    result = subprocess.run([str(ROOT / "scripts" / "checkov.sh"), "-d", str(TERRAFORM)],
                            capture_output=True, text=True, timeout=900)
    assert "Failed checks: 0" in result.stdout, result.stdout[-4000:]
    assert result.returncode == 0, result.stdout[-4000:]
