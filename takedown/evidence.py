"""Evidence: what proves a match without keeping the picture in the clear, bundles that show
who made them, and the audit log's head kept where the database's writers cannot reach.

The evidence of a case is its URL, page, hashes, distance, response headers, server address and
timestamps (all in the case row). A copy of the file is kept only when HAECHI_EVIDENCE_KEY is
set, encrypted with it (Fernet: AES-128-CBC with HMAC-SHA256) in the evidence store; every
decryption is written to the audit log.

**The media copy.** With the key set, the crawl's own copy of a matched file must not stay in
the clear beside its encrypted evidence: once the evidence copy is kept, the media copy is
*sealed*, replaced in the media store by the same bytes encrypted under the same key plus
`.enc` (`seal_media_copy`). The media store is content-addressed, so the sealed copy serves
whatever needs that file again: the next case of the same file (another URL, another victim),
a re-scan for a victim registered later, a preview, a re-hash (`media_bytes` reads either
form). A later crawl that fetches the file again stores it in the clear once more, and the
match event it raises seals it again. A failure to seal is logged and never costs a case.

**Bundles.** `export_bundle` writes a zip of case.json, audit.json (the case's audit entries),
notice.json and a stdlib-only verify.py, with manifest.json (their SHA-256 sums) and
manifest.sig, the institution's Ed25519 signature of manifest.json. Whoever holds a zip can
rewrite all of it, manifest and verify.py included, so nothing inside can vouch for itself:
only the signature, checked against the institution's public key obtained separately, shows
that a bundle is the institution's and unaltered (`check_bundle(path, public_key)`). Without
the key a check is of integrity alone: the sums, each audit entry's hash, the case's own chain
of entries (one dropped from the middle shows) and case.json against its opening entry and
last status.

A bundle to check comes from outside, so it is read within bounds: only the members a bundle
has, each unpacked in chunks against a limit (a zip's declared sizes are the sender's word),
and a zip whose directory is larger than a bundle's could be is refused before it is parsed.

**Anchors.** A MAC keeps anyone without the audit key from rewriting entries, but not from
deleting the newest ones. `anchor_chain` writes the chain's head (sequence number, hash, time),
signed with the same institution key, to the evidence store (on AWS the Object Lock bucket,
where nothing can be overwritten or deleted before its retention ends), and `verify_audit`
checks the log against the newest anchor.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import inspect
import json
import logging
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine

from engines.home import data_folder_key, data_home
from engines.objects import ObjectStore, open_store
from engines.sealed import (
    SealedMediaError,
    decrypted,
    media_bytes,
    media_cipher,
    sealed_key,
)
from engines.settings import current
from takedown import audit
from takedown.audit import (
    CHAIN_FORMAT,
    GENESIS,
    ChainCheck,
    ChainHead,
    entry_hash,
)

log = logging.getLogger(__name__)

STORE_VARIABLE = "HAECHI_EVIDENCE_STORE"
SIGNING_KEY_VARIABLE = "HAECHI_SIGNING_KEY"
SIGNING_KEY_FILE = "signing-key.pem"
PUBLIC_KEY_FILE = "signing-key.pub.pem"
# A PEM public key is a few hundred bytes; a --public-key file larger than this is not one.
MAX_KEY_FILE_BYTES = 64 * 1024

BUNDLE_FORMAT = "haechi-evidence-bundle/2"
ANCHOR_FORMAT = "haechi-audit-anchor/1"
# The files manifest.json lists (and so the signature covers), then the bundle's own two.
SIGNED_FILES = ("case.json", "audit.json", "notice.json", "verify.py")
BUNDLE_MEMBERS = (*SIGNED_FILES, "manifest.json", "manifest.sig")
# What the case's opening audit entry and case.json must agree on: who and what was found.
IDENTITY_FIELDS = ("victim", "image_url", "page_url", "sha256")
ANCHOR_PREFIX = "audit-anchors"

# A bundle is JSON text: a case, its audit entries (a few KB each; years of daily reminders
# and reviewers' views stay under 2 MB) and its notice. 16 MB of JSON parses into some
# 150 MB of Python objects, so even a member at the limit keeps a check well under 512 MB.
MAX_MEMBER_BYTES = 16 * 1024 * 1024
# All members together, unpacked: two members at the limit, no more.
MAX_BUNDLE_BYTES = 32 * 1024 * 1024
# A bundle has six members; a zip with many more is not one, and is refused unread.
MAX_MEMBERS = 16
# Central directory bytes ZipFile may parse: MAX_MEMBERS entries with long names and extra
# fields fit in this many. Parsing a bigger directory costs memory before any other check.
MAX_DIRECTORY_BYTES = MAX_MEMBERS * 1024
# Unpacked bytes read from a member at a time, against the running total.
READ_CHUNK = 1024 * 1024
# Times a case and its entries are read again when the case moved while they were read.
SNAPSHOT_ATTEMPTS = 5


class EvidenceError(SealedMediaError):
    """Evidence that cannot be read or verified; the message says why."""


class BundleError(EvidenceError):
    """A file that cannot be checked as a bundle at all (not a zip, or outside the bounds)."""


class SigningKeyError(EvidenceError):
    """The institution's signing key, or a public key given, cannot be used; says why."""


@functools.cache
def _store_at(uri: str) -> ObjectStore:
    return open_store(uri)


def evidence_store(media: ObjectStore) -> ObjectStore:
    """Where evidence copies go: HAECHI_EVIDENCE_STORE (in AWS a bucket with Object Lock, so a
    copy cannot be altered or deleted before its retention ends), else the media store."""
    uri = current().evidence_store
    return _store_at(uri) if uri else media


def keep_encrypted_copy(media: ObjectStore, store_key: str | None, case_id: int) -> str | None:
    """Encrypt the stored file into `evidence/<case>.enc` in the evidence store (once: a case's
    copy is never rewritten), then seal the media copy; the evidence key, or None when no key
    or no file."""
    cipher = media_cipher()
    if cipher is None or not store_key:
        return None
    key = f"evidence/{case_id}.enc"
    target = evidence_store(media)
    if not target.exists(key):
        target.put(key, cipher.encrypt(media_bytes(media, store_key)))
    seal_media_copy(media, store_key)
    return key


def read_encrypted_copy(media: ObjectStore, evidence_key: str) -> bytes:
    return decrypted(lambda: evidence_store(media).get(evidence_key), "evidence copy")


def seal_media_copy(media: ObjectStore, store_key: str | None) -> None:
    """Replace the plaintext media copy under `store_key` by its sealed form (when
    HAECHI_EVIDENCE_KEY is set and the plaintext is there). The sealed copy is written before
    the plaintext is deleted, so the file is never in neither form; a store that refuses
    (a bucket policy without delete) leaves the plaintext, says so in the log and stops no
    case: the next event for the file tries again."""
    cipher = media_cipher()
    if cipher is None or not store_key:
        return
    try:
        if not media.exists(store_key):
            return
        sealed = sealed_key(store_key)
        if not media.exists(sealed):
            media.put(sealed, cipher.encrypt(media.get(store_key)))
        media.delete(store_key)
    except FileNotFoundError:
        return  # another process sealed it between the two looks
    except Exception as exc:
        log.error("the media copy %s stays in plaintext: it could not be sealed (%s: %s)",
                  store_key, type(exc).__name__, exc)


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
    configured = current().signing_key
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


# --- What a bundle's contents must say, checked here and by the bundle's verify.py ---------
# These functions are copied into every bundle's verify.py: the standard library only, and
# no names but the constants verify.py defines.


def manifest_problems(manifest: Any, sums: dict[str, str | None]) -> list[str]:
    """What is wrong with the bundle's files against manifest.json; `sums` is each file's
    SHA-256 (None: missing)."""
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        return ["manifest.json is not the manifest of a signed bundle (a bundle from before "
                "bundles were signed, or not one Haechi wrote)"]
    listed = manifest.get("files")
    if not isinstance(listed, dict) or sorted(listed) != sorted(SIGNED_FILES):
        return ["manifest.json does not list the bundle's files"]
    problems = []
    for name in SIGNED_FILES:
        if sums.get(name) is None:
            problems.append(name + " is missing")
        elif sums[name] != listed[name]:
            problems.append(name + " was changed")
    return problems


def case_problems(case: Any, entries: Any) -> list[str]:
    """What is wrong between case.json and audit.json: each entry's hash, that every entry is
    this case's, in order and (keyed entries) each naming the case's previous entry, that the
    first is the case's opening and agrees with case.json on who and what was found, and that
    the last status in the log is case.json's."""
    if not isinstance(case, dict) or "id" not in case:
        return ["case.json is not a case"]
    if not isinstance(entries, list) or not entries:
        return ["audit.json holds no audit entries"]
    problems = []
    status, last = "detected", None
    for number, entry in enumerate(entries, 1):
        try:
            name = f"audit entry {entry['seq']}"
            if entry_hash(entry) != entry["hash"]:
                problems.append(name + " was changed")
            if entry["case_id"] != case["id"]:
                problems.append(name + " is not about this case")
            if last is not None and not entry["seq"] > last["seq"]:
                problems.append(name + " is out of order")
            if entry["case_prev"] is not None:
                if entry["case_prev"] != (last["hash"] if last is not None else GENESIS):
                    problems.append(f"an audit entry of this case before {name} is missing")
            elif last is not None and last["case_prev"] is not None:
                problems.append(name + " has no case link, yet follows entries that have")
            if number == 1:
                event = entry["detail"]["event"] if entry["action"] == "case:opened" else None
                if event is None:
                    problems.append("the first audit entry is not the case's opening (earlier "
                                    "entries are missing)")
                for key in IDENTITY_FIELDS:
                    if event is not None and event.get(key) != case.get(key):
                        problems.append("case.json and the case's opening audit entry "
                                        "disagree on " + key)
            if entry["action"].startswith("status:"):
                status = entry["action"][len("status:"):]
            last = entry
        except (KeyError, TypeError, AttributeError, ValueError):
            problems.append(f"audit entry {number} is not an audit entry")
            return problems
    if case.get("status") != status:
        problems.append(f"case.json says the case is {case.get('status')}, its audit log "
                        f"that it is {status}")
    return problems


@functools.cache
def verify_py() -> str:
    """The bundle's verify.py: the checks above and the audit log's entry hash, as source."""
    constants = {"GENESIS": GENESIS, "CHAIN_FORMAT": CHAIN_FORMAT,
                 "BUNDLE_FORMAT": BUNDLE_FORMAT, "SIGNED_FILES": SIGNED_FILES,
                 "IDENTITY_FIELDS": IDENTITY_FIELDS}
    shared = "\n\n".join(inspect.getsource(function) for function in (
        entry_hash, manifest_problems, case_problems))
    return VERIFY_PY.format(
        constants="\n".join(f"{name} = {value!r}" for name, value in constants.items()),
        shared=shared)


VERIFY_PY = '''"""Check this evidence bundle's integrity: python3 verify.py (no packages needed).

Checks every file against manifest.json, each audit entry against its hash, the case's chain
of entries, and case.json against its audit log. This file travels inside the bundle, so it
cannot show who made it: that is manifest.sig, checked against the institution's public key
obtained from the institution (see the end of the output).
"""
from __future__ import annotations

import hashlib
import json
import pathlib
import sys

{constants}


{shared}


def file_sum(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main():
    root = pathlib.Path(__file__).resolve().parent
    sums = {{name: file_sum(root / name) if (root / name).is_file() else None
            for name in SIGNED_FILES}}
    try:
        manifest = json.loads((root / "manifest.json").read_bytes())
        bad = manifest_problems(manifest, sums)
        if not bad:
            bad = case_problems(json.loads((root / "case.json").read_bytes()),
                                json.loads((root / "audit.json").read_bytes()))
    except (OSError, ValueError) as exc:
        bad = [f"the bundle cannot be read ({{exc}})"]
    print("bundle OK" if not bad else "bundle ALTERED: " + "; ".join(bad))
    print("Origin not checked. To check who signed it, with the institution's public key: "
          "haechi cases verify BUNDLE.zip --public-key KEY.pem, or openssl pkeyutl -verify "
          "-pubin -inkey KEY.pem -rawin -in manifest.json -sigfile manifest.sig")
    sys.exit(1 if bad else 0)


main()
'''


# --- Writing and checking bundles -----------------------------------------------------------


def _json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str).encode()


def consistent_snapshot(read_case: Callable[[], dict[str, Any] | None],
                        read_entries: Callable[[], list[dict[str, Any]]]
                        ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """A case and its audit entries as of one moment: read again while the case changed
    between the reads (a bundle whose case.json and audit.json disagree does not verify)."""
    for _ in range(SNAPSHOT_ATTEMPTS):
        case = read_case()
        entries = read_entries()
        if read_case() == case:
            return case, entries
    raise EvidenceError("the case kept changing while it was read; export it again")


def export_bundle(path: Path, case: dict[str, Any], audit_entries: list[dict[str, Any]],
                  notice: dict[str, Any] | None, *, chain: ChainCheck | None = None,
                  key: Ed25519PrivateKey | None = None) -> Path:
    """Write the case's evidence bundle to `path` (a zip), signed with `key` (default: the
    institution's); `chain`, the audit log's check at export time, is recorded in the signed
    manifest. Returns the path."""
    key = key or signing_key()
    files = {"case.json": _json(case), "audit.json": _json(audit_entries),
             "notice.json": _json(notice), "verify.py": verify_py().encode()}
    too_big = [name for name, data in files.items() if len(data) > MAX_MEMBER_BYTES]
    if too_big or sum(map(len, files.values())) > MAX_BUNDLE_BYTES:
        raise EvidenceError(f"the bundle would exceed what a bundle may hold "
                            f"({', '.join(too_big) or 'in all'}); nobody could check it")
    manifest: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "case": case["id"],
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        "signer": {"algorithm": "Ed25519", "public_key": fingerprint(key.public_key())},
    }
    if chain is not None:
        manifest["audit_log"] = {
            "verified": chain.ok, "entries": chain.entries, "problem": chain.reason or None,
            "anchored": {"seq": chain.anchor.seq, "at": chain.anchor.at} if chain.anchor
            else None}
    manifest_bytes = _json(manifest)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
        bundle.writestr("manifest.json", manifest_bytes)
        bundle.writestr("manifest.sig", key.sign(manifest_bytes))
    return path


@dataclass(frozen=True)
class BundleCheck:
    """What a check found: `problems` (empty: intact), whether the origin was checked (a
    public key was given and the signature is its), and the manifest as read."""

    problems: list[str]
    origin_checked: bool = False
    manifest: dict[str, Any] = field(default_factory=dict)


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def _open_bounded(handle: BinaryIO) -> zipfile.ZipFile:
    """The zip in `handle`, refused before ZipFile parses its directory when the directory is
    larger than a bundle's could be."""
    # The end record ZipFile itself will trust (its own private reader, so both agree on
    # which record that is): its directory size is what ZipFile would read and parse.
    end = zipfile._EndRecData(handle)
    if end is None:
        raise BundleError("not a zip file")
    directory = end[zipfile._ECD_SIZE]
    if directory > MAX_DIRECTORY_BYTES:
        raise BundleError(f"its zip directory is {directory:,} bytes, more than a bundle's "
                          f"{MAX_MEMBERS} members take: refused unread")
    handle.seek(0)
    try:
        return zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise BundleError(f"not a readable zip file ({exc})") from None


def _unpack(bundle: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, unpacked in chunks and refused past MAX_MEMBER_BYTES whatever its
    header says."""
    chunks, total = [], 0
    try:
        with bundle.open(info) as member:
            while chunk := member.read(READ_CHUNK):
                total += len(chunk)
                if total > MAX_MEMBER_BYTES:
                    raise BundleError(f"{info.filename} unpacks to more than "
                                      f"{_megabytes(MAX_MEMBER_BYTES)}: refused")
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
            ValueError) as exc:
        if isinstance(exc, BundleError):
            raise
        raise BundleError(f"{info.filename} cannot be unpacked ({exc})") from None
    return b"".join(chunks)


def read_bundle(path: Path) -> tuple[dict[str, bytes], list[str]]:
    """The bundle's members by name, read within the bounds, and what is wrong with the zip's
    list of members (missing, doubled or foreign ones, which are not read). Raises BundleError
    for a file that cannot be checked, OSError for one that cannot be read."""
    with path.open("rb") as handle, _open_bounded(handle) as bundle:
        infos = bundle.infolist()
        if len(infos) > MAX_MEMBERS:
            raise BundleError(f"it holds {len(infos):,} files; a bundle has "
                              f"{len(BUNDLE_MEMBERS)}: refused unread")
        problems = []
        names = [info.filename for info in infos]
        for name in sorted(set(names)):
            if names.count(name) > 1:
                problems.append(f"{name} is in the zip {names.count(name)} times (an unzip "
                                "tool may show any of them)")
            elif name not in BUNDLE_MEMBERS:
                problems.append(f"{name} is not part of a bundle (left unread)")
        ours = [info for info in infos if info.filename in BUNDLE_MEMBERS
                and names.count(info.filename) == 1]
        for info in ours:
            if info.file_size > MAX_MEMBER_BYTES:
                raise BundleError(f"{info.filename} says it unpacks to "
                                  f"{_megabytes(info.file_size)}, more than a bundle's files "
                                  f"may ({_megabytes(MAX_MEMBER_BYTES)}): refused unread")
        declared = sum(info.file_size for info in ours)
        if declared > MAX_BUNDLE_BYTES:
            raise BundleError(f"its files say they unpack to {_megabytes(declared)}, more than "
                              f"a bundle may ({_megabytes(MAX_BUNDLE_BYTES)}): refused unread")
        members = {info.filename: _unpack(bundle, info) for info in ours}
    problems += [f"{name} is missing" for name in BUNDLE_MEMBERS
                 if name not in members and name not in names]
    return members, problems


def _parsed(data: bytes | None) -> Any:
    try:
        return json.loads(data) if data is not None else None
    except ValueError:
        return None


def check_bundle(path: Path, public_key: Ed25519PublicKey | None = None) -> BundleCheck:
    """Check the bundle at `path`: its integrity always, its origin when `public_key` (the
    institution's, obtained separately) is given. Raises BundleError for a file that is not a
    bundle or breaks the bounds, OSError for one that cannot be read."""
    members, problems = read_bundle(path)
    manifest = _parsed(members.get("manifest.json"))
    sums = {name: hashlib.sha256(members[name]).hexdigest() if name in members else None
            for name in SIGNED_FILES}
    found = manifest_problems(manifest, sums)
    problems += found
    if not found:
        case = _parsed(members["case.json"])
        problems += case_problems(case, _parsed(members["audit.json"]))
        if isinstance(case, dict) and manifest.get("case") != case.get("id"):
            problems.append("manifest.json names another case than case.json")
    manifest = manifest if isinstance(manifest, dict) else {}
    origin = False
    if public_key is not None and "manifest.json" in members:
        try:
            public_key.verify(members.get("manifest.sig", b""), members["manifest.json"])
            origin = True
        except InvalidSignature:
            signer = manifest.get("signer")
            named = signer.get("public_key") if isinstance(signer, dict) else None
            problems.append(f"manifest.sig is not a signature by the given public key "
                            f"({fingerprint(public_key)}): the bundle was altered or signed by "
                            f"another key (it names {str(named)[:80] if named else 'none'})")
    return BundleCheck(problems, origin, manifest)


def verify_bundle(path: Path, public_key: Ed25519PublicKey | None = None) -> list[str]:
    """What is wrong with the bundle at `path` (empty when it verifies); see check_bundle."""
    return check_bundle(path, public_key).problems
