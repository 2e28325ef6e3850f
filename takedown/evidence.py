"""Evidence: what proves a match without keeping the picture in the clear, and the audit log's
head kept where the database's writers cannot reach.

The evidence of a case is its URL, page, hashes, distance, response headers, server address and
timestamps (all in the case row). A copy of the file is kept only when HAECHI_EVIDENCE_KEY is
set, encrypted with it (Fernet: AES-128-CBC with HMAC-SHA256) in the object store; every
decryption is written to the audit log. `export_bundle` writes a zip that verifies itself: a
manifest of SHA-256 sums, the case's audit entries with their chain hashes, and a stdlib-only
`verify.py`.

**Anchors.** A MAC keeps anyone without the audit key from rewriting entries, but not from
deleting the newest ones. `anchor_chain` writes the chain's head (sequence number, hash, time),
signed with the institution's Ed25519 key (HAECHI_SIGNING_KEY, else one kept in the data
folder), to the evidence store (on AWS the Object Lock bucket, where nothing can be
overwritten or deleted before its retention ends), and `verify_audit` checks the log against
the newest anchor.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import inspect
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine

from crawler.store import ObjectStore, open_store
from haechi.home import data_home
from takedown import audit
from takedown.audit import CHAIN_FORMAT, ChainCheck, ChainHead, data_folder_key, entry_hash

KEY_VARIABLE = "HAECHI_EVIDENCE_KEY"
STORE_VARIABLE = "HAECHI_EVIDENCE_STORE"
SIGNING_KEY_VARIABLE = "HAECHI_SIGNING_KEY"
SIGNING_KEY_FILE = "signing-key.pem"
PUBLIC_KEY_FILE = "signing-key.pub.pem"
# A PEM public key is a few hundred bytes; a --public-key file larger than this is not one.
MAX_KEY_FILE_BYTES = 64 * 1024
ANCHOR_FORMAT = "haechi-audit-anchor/1"
ANCHOR_PREFIX = "audit-anchors"


class EvidenceError(ValueError):
    """Evidence that cannot be read or verified; the message says why."""


class SigningKeyError(EvidenceError):
    """The institution's signing key, or a public key given, cannot be used; says why."""


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


# --- The institution's signing key ---------------------------------------------------------


def _new_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(key: Ed25519PublicKey) -> str:
    """How a public key is named in manifests, anchors and messages."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _private_key(data: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise SigningKeyError(f"{where} is encrypted: give an unencrypted PKCS#8 PEM key "
                              "(keep it readable by Haechi's user alone)") from None
    except ValueError as exc:
        raise SigningKeyError(f"{where} is not a PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{where} is not an Ed25519 key (make one with `openssl genpkey "
                              "-algorithm ed25519 -out signing-key.pem`)")
    return key


def signing_key() -> Ed25519PrivateKey:
    """The institution's key: the PEM file HAECHI_SIGNING_KEY names, else a key made on first
    use and kept (mode 600) in the data folder, its public key written beside it to give
    to whoever must check this installation's bundles."""
    configured = os.environ.get(SIGNING_KEY_VARIABLE)
    if configured:
        path = Path(configured).expanduser()
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SigningKeyError(f"{SIGNING_KEY_VARIABLE} names {path}, which cannot be read "
                                  f"({exc.strerror or exc})") from None
        return _private_key(data, f"{SIGNING_KEY_VARIABLE} ({path})")
    key = _private_key(data_folder_key(SIGNING_KEY_FILE, _new_private_pem),
                       str(data_home() / SIGNING_KEY_FILE))
    data_folder_key(PUBLIC_KEY_FILE, lambda: public_key_pem(key.public_key()))
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file at `path` (as `signing_key` writes beside it, or
    `openssl pkey -pubout` makes)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise SigningKeyError(f"{path} cannot be read ({exc.strerror or exc})") from None
    try:
        if len(data) > MAX_KEY_FILE_BYTES:
            raise ValueError("far too long")
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise SigningKeyError(f"{path} is not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path} is not an Ed25519 public key")
    return key


def _signed_text(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, ensure_ascii=True, separators=(",", ":")).encode()


# --- Anchors: the chain's head outside the database ----------------------------------------


def _anchor_key(slot: int) -> str:
    return f"{ANCHOR_PREFIX}/{slot:08d}.json"


def _last_slot(store: ObjectStore) -> int:
    """The number of the newest anchor (0: none). Anchors fill slots 1, 2, 3... and are never
    removed, so the newest is found with a doubling then a halving search: a few dozen
    `exists` calls for a century of hourly anchors, and no listing (object stores here have
    none)."""
    if not store.exists(_anchor_key(1)):
        return 0
    present, absent = 1, 2
    while store.exists(_anchor_key(absent)):
        present, absent = absent, absent * 2
    while absent - present > 1:
        middle = (present + absent) // 2
        if store.exists(_anchor_key(middle)):
            present = middle
        else:
            absent = middle
    return present


def latest_anchor(store: ObjectStore, public_key: Ed25519PublicKey) -> ChainHead | None:
    """The newest anchored head in `store`, its signature checked with `public_key`; None when
    nothing was anchored yet."""
    slot = _last_slot(store)
    if not slot:
        return None
    where = f"{store.uri}/{_anchor_key(slot)}"
    try:
        document = json.loads(store.get(_anchor_key(slot)))
        fields = document["anchor"]
        signature = base64.b64decode(document["signature"], validate=True)
        head = ChainHead(int(fields["seq"]), str(fields["hash"]), str(fields["at"]))
        ok = fields["format"] == ANCHOR_FORMAT
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise EvidenceError(f"the audit anchor {where} cannot be read ({exc})") from None
    try:
        public_key.verify(signature, _signed_text(fields))
    except InvalidSignature:
        ok = False
    if not ok:
        raise EvidenceError(f"the audit anchor {where} is not signed by this institution's key "
                            f"({fingerprint(public_key)})")
    return head


def _anchor_store(media: ObjectStore | None) -> ObjectStore:
    return evidence_store(media if media is not None else open_store())


def verify_audit(engine: Engine, media: ObjectStore | None = None) -> ChainCheck:
    """The whole audit log checked (order, hashes, MACs) and held to its newest anchor.
    Raises SigningKeyError when the institution's key cannot be loaded."""
    public_key = signing_key().public_key()
    try:
        anchor = latest_anchor(_anchor_store(media), public_key)
    except EvidenceError as exc:
        return ChainCheck(False, 0, None, str(exc))
    return audit.verify(engine, anchor=anchor)


def anchor_chain(engine: Engine, media: ObjectStore | None = None,
                 now: Callable[[], dt.datetime] | None = None) -> ChainHead | None:
    """Write the chain's head, signed, to the evidence store, after checking the chain up to
    it; returns the newest anchor (unchanged when no entry was added since), None for an
    empty log. Run it on a schedule: entries after the newest anchor can be deleted unseen."""
    store = _anchor_store(media)
    key = signing_key()
    check = audit.verify(engine, anchor=latest_anchor(store, key.public_key()))
    if not check.ok:
        raise EvidenceError(f"the audit log does not verify, so its head is not anchored: "
                            f"{check.reason}")
    head = check.head
    if head is None or head.seq == 0:
        return None
    if check.anchor is not None and check.anchor.seq == head.seq:
        return check.anchor
    at = (now or (lambda: dt.datetime.now(dt.UTC)))().astimezone(dt.UTC).isoformat()
    fields = {"format": ANCHOR_FORMAT, "seq": head.seq, "hash": head.hash, "at": at}
    document = _json({"anchor": fields, "signer": fingerprint(key.public_key()),
                      "signature": base64.b64encode(key.sign(_signed_text(fields))).decode()})
    slot = _last_slot(store) + 1
    while not store.put(_anchor_key(slot), document):
        slot += 1  # another anchorer took the slot: the next one is ours
    return ChainHead(head.seq, head.hash, at)


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
