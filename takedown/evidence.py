"""Evidence: what proves a match without keeping the picture in the clear.

The evidence of a case is its URL, page, hashes, distance, response headers, server address and
timestamps (all in the case row). A copy of the file is kept only when HAECHI_EVIDENCE_KEY is
set, encrypted with it (Fernet: AES-128-CBC with HMAC-SHA256) in the object store; every
decryption is written to the audit log. `export_bundle` writes a zip that verifies itself: a
manifest of SHA-256 sums, the case's audit entries with their chain hashes, and a stdlib-only
`verify.py`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import inspect
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from crawler.store import ObjectStore, open_store
from takedown.audit import CHAIN_FORMAT, entry_hash

KEY_VARIABLE = "HAECHI_EVIDENCE_KEY"
STORE_VARIABLE = "HAECHI_EVIDENCE_STORE"


class EvidenceError(ValueError):
    """Evidence that cannot be read or verified; the message says why."""


def evidence_cipher() -> Fernet | None:
    key = os.environ.get(KEY_VARIABLE)
    if not key:
        return None
    try:
        return Fernet(key.encode())
    except ValueError as exc:
        raise EvidenceError(f"{KEY_VARIABLE} is not a valid key (make one with "
                            "`python -c 'from cryptography.fernet import Fernet; "
                            "print(Fernet.generate_key().decode())'`)") from exc


@functools.cache
def _store_at(uri: str) -> ObjectStore:
    return open_store(uri)


def evidence_store(media: ObjectStore) -> ObjectStore:
    """Where evidence copies go: HAECHI_EVIDENCE_STORE (in AWS a bucket with Object Lock, so a
    copy cannot be altered or deleted before its retention ends), else the media store."""
    uri = os.environ.get(STORE_VARIABLE)
    return _store_at(uri) if uri else media


def keep_encrypted_copy(media: ObjectStore, store_key: str | None, case_id: int) -> str | None:
    """Encrypt the stored file into `evidence/<case>.enc` in the evidence store; None when no
    key or no file."""
    cipher = evidence_cipher()
    if cipher is None or not store_key:
        return None
    key = f"evidence/{case_id}.enc"
    evidence_store(media).put(key, cipher.encrypt(media.get(store_key)))
    return key


def read_encrypted_copy(media: ObjectStore, evidence_key: str) -> bytes:
    cipher = evidence_cipher()
    if cipher is None:
        raise EvidenceError(f"{KEY_VARIABLE} is not set: the evidence copy cannot be read")
    try:
        return cipher.decrypt(evidence_store(media).get(evidence_key))
    except InvalidToken as exc:
        raise EvidenceError("the evidence copy does not decrypt with this key, or was "
                            "altered") from exc


VERIFY_PY = '''"""Verify this evidence bundle: python verify.py (Python 3, no packages needed).

Checks every file against manifest.json, manifest.json against manifest.sha256, and each audit
entry against its own chain hash (the audit log's entry_hash, copied below).
"""
from __future__ import annotations

import hashlib, json, pathlib, sys

CHAIN_FORMAT = {chain_format!r}


{entry_hash}


root = pathlib.Path(__file__).parent
bad = []
manifest_bytes = (root / "manifest.json").read_bytes()
if hashlib.sha256(manifest_bytes).hexdigest() != (root / "manifest.sha256").read_text().strip():
    bad.append("manifest.json")
for name, digest in json.loads(manifest_bytes)["files"].items():
    if hashlib.sha256((root / name).read_bytes()).hexdigest() != digest:
        bad.append(name)
for e in json.loads((root / "audit.json").read_text()):
    if entry_hash(e) != e["hash"]:
        bad.append("audit entry %s" % e["id"])
print("bundle OK" if not bad else "bundle ALTERED: " + ", ".join(bad))
sys.exit(1 if bad else 0)
'''


@functools.cache
def verify_py() -> str:
    """The bundle's verify.py, with the audit log's own entry hash as source."""
    return VERIFY_PY.format(chain_format=CHAIN_FORMAT, entry_hash=inspect.getsource(entry_hash))


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str).encode()


def export_bundle(path: Path, case: dict[str, Any], audit_entries: list[dict[str, Any]],
                  notice: dict[str, Any] | None) -> Path:
    """Write the case's evidence bundle to `path` (a zip); returns the path."""
    files = {
        "case.json": _json(case),
        "audit.json": _json(audit_entries),
        "notice.json": _json(notice),
        "verify.py": verify_py().encode(),
    }
    manifest = {
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "case": case["id"],
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    manifest_bytes = _json(manifest)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
        bundle.writestr("manifest.json", manifest_bytes)
        bundle.writestr("manifest.sha256", hashlib.sha256(manifest_bytes).hexdigest() + "\n")
    return path


def verify_bundle(path: Path) -> list[str]:
    """What is wrong with the bundle at `path` (empty when it verifies)."""
    problems = []
    with zipfile.ZipFile(path) as bundle:
        names = set(bundle.namelist())
        manifest_bytes = bundle.read("manifest.json")
        if bundle.read("manifest.sha256").decode().strip() != hashlib.sha256(
                manifest_bytes).hexdigest():
            problems.append("manifest.json was changed")
        manifest = json.loads(manifest_bytes)
        for name, digest in manifest["files"].items():
            if name not in names:
                problems.append(f"{name} is missing")
            elif hashlib.sha256(bundle.read(name)).hexdigest() != digest:
                problems.append(f"{name} was changed")
    return problems
