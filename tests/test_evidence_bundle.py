"""Evidence bundles vouch for nothing by themselves: a bundle is signed by the institution and
checked against its public key given separately. Forgeries fail at each layer (case.json
against its audit log, each entry's hash, the case's own chain, the signature), even one
recomputed throughout and re-signed with another key; and `haechi cases verify` reads what it
is given within bounds: a zip claiming a 3 GiB member, a member lying about its size, a zip of
many members or a file that is no zip are each a sentence (exit 1), in under 512 MB and 10 s."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engines.objects import LocalStore
from takedown import audit
from takedown.cases import CaseStore
from takedown.database import takedown_engine
from takedown.evidence import (
    PUBLIC_KEY_FILE,
    SIGNED_FILES,
    BundleError,
    check_bundle,
    export_bundle,
    load_public_key,
    signing_key,
)
from takedown.notices import notice_json
from tests.takedown_helpers import START, event

HAECHI = str(Path(sys.executable).with_name("haechi"))
# The bounds `cases verify` keeps to whatever it is given (issue 12).
PEAK_BYTES, SECONDS = 512 * 1024 * 1024, 10.0
BOMB_MEMBER_BYTES = 3 * 1024**3

# Builds the bomb in a process of its own: 3 GiB of zeros streamed into one member, which
# deflate packs into some 3 MB.
BOMB_BUILDER = """
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED, compresslevel=4) as bundle:
    with bundle.open(sys.argv[2], "w", force_zip64=True) as member:
        block = bytes(1 << 20)
        for _ in range(int(sys.argv[3]) >> 20):
            member.write(block)
"""
# Checks a file in a process of its own and reports what it took.
MEASURED_CHECK = """
import json, sys, time
from pathlib import Path
from takedown.evidence import BundleError, check_bundle
started = time.monotonic()
try:
    check_bundle(Path(sys.argv[1]))
    outcome = "checked"
except BundleError as exc:
    outcome = str(exc)
print(json.dumps({"outcome": outcome, "seconds": time.monotonic() - started}))
"""
# Runs a command and reports its peak memory: this process's only child is the command.
# Measured from a grandchild of the tests: Linux keeps a process's peak across fork and exec,
# so a child of a pytest that has grown to 800 MB would report 800 MB whatever it did.
MEASURED_COMMAND = """
import json, resource, subprocess, sys, time
started = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"code": done.returncode, "stderr": done.stderr, "stdout": done.stdout,
                  "seconds": time.monotonic() - started,
                  "peak": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))
"""


@pytest.fixture
def case_bundle(haechi_home: Path, tmp_path: Path) -> Path:
    """A case with four audit entries (opened, drafted, two views), exported."""
    store = CaseStore(takedown_engine(), store=LocalStore(haechi_home / "objects"))
    case_id = store.open_cases([event("ev.example", 1)])[0]
    for view in ("evidence:blurred", "evidence:reveal"):
        with store.engine.begin() as conn:
            audit.append(conn, actor="reviewer-1", action=view, at=START, case_id=case_id)
    case = store.get(case_id)
    return export_bundle(tmp_path / "bundle.zip", case,
                         audit.entries_for_case(store.engine, case_id),
                         notice_json(store.engine, case["notice_id"]))


@pytest.fixture
def public_key_file(case_bundle: Path, haechi_home: Path) -> Path:
    """The institution's public key, as signing_key() wrote it beside its private key."""
    return haechi_home / PUBLIC_KEY_FILE


def members(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as z:
        return {name: z.read(name) for name in z.namelist()}


def forge(bundle: Path, out: Path, change: Callable[[dict, list], None],
          key: Ed25519PrivateKey | None = None) -> Path:
    """The bundle with `change(case, entries)` made, its sums recomputed, and re-signed with
    `key` (else the original signature kept)."""
    files = members(bundle)
    case, entries = json.loads(files["case.json"]), json.loads(files["audit.json"])
    change(case, entries)
    files["case.json"] = json.dumps(case).encode()
    files["audit.json"] = json.dumps(entries).encode()
    manifest = json.loads(files["manifest.json"])
    manifest["files"] = {name: hashlib.sha256(files[name]).hexdigest() for name in SIGNED_FILES}
    files["manifest.json"] = json.dumps(manifest).encode()
    if key is not None:
        files["manifest.sig"] = key.sign(files["manifest.json"])
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out


def another_victim(case: dict, entries: list) -> None:
    case["victim"] = entries[0]["detail"]["event"]["victim"] = "V-other"
    case["image_url"] = entries[0]["detail"]["event"]["image_url"] = "http://other.example/x"


def rechain(entries: list) -> None:
    """Recompute every hash and case link, as a forger who read verify.py would."""
    last = audit.GENESIS
    for entry in entries:
        entry["case_prev"] = last
        entry["hash"] = last = audit.entry_hash(entry)


def test_a_bundle_is_signed_and_its_verify_py_checks_integrity(case_bundle, public_key_file,
                                                               tmp_path) -> None:
    check = check_bundle(case_bundle, load_public_key(public_key_file))
    assert check.problems == [] and check.origin_checked
    assert check.manifest["signer"]["public_key"].startswith("sha256:")
    unchecked = check_bundle(case_bundle)
    assert unchecked.problems == [] and not unchecked.origin_checked
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(case_bundle) as z:
        z.extractall(unpacked)
    ran = subprocess.run([sys.executable, str(unpacked / "verify.py")], capture_output=True,
                         text=True)
    assert ran.returncode == 0 and "bundle OK" in ran.stdout
    assert "Origin not checked" in ran.stdout
    if shutil.which("openssl"):  # the signature checks with a tool that is not Haechi's
        openssl = subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(public_key_file),
             "-rawin", "-in", str(unpacked / "manifest.json"), "-sigfile",
             str(unpacked / "manifest.sig")], capture_output=True, text=True)
        assert "Signature Verified Successfully" in openssl.stdout, openssl.stderr


@pytest.mark.parametrize(("change", "found"), [
    # Victim and URL changed in case.json alone, sums recomputed.
    (lambda case, entries: case.update(victim="V-other", image_url="http://other.example/x"),
     "disagree on victim"),
    # ...and in the opening audit entry too: its hash no longer matches.
    (another_victim, "audit entry 1 was changed"),
    # ...and that entry's hash recomputed: the next entry of the case no longer follows it.
    (lambda case, entries: (another_victim(case, entries),
                            entries[0].update(hash=audit.entry_hash(entries[0]))),
     "before audit entry 2 is missing"),
    # An entry dropped from the middle of the case's chain.
    # (The case's entries are 1, 2, 4 and 5: entry 3 is its notice's, of no case.)
    (lambda case, entries: entries.pop(1), "before audit entry 4 is missing"),
    # Every entry after the opening dropped: the case's status no longer matches its log.
    (lambda case, entries: (entries.pop(), entries.pop(), entries.pop()),
     "its audit log that it is detected"),
    # An entry of another case slipped in.
    (lambda case, entries: entries[2].update(case_id=99), "audit entry 4 is not about this"),
])
def test_a_forged_bundle_fails_its_integrity_check(case_bundle, tmp_path, change,
                                                   found) -> None:
    forged = forge(case_bundle, tmp_path / "forged.zip", change)
    problems = check_bundle(forged).problems
    assert any(found in p for p in problems), problems


def test_a_forgery_recomputed_throughout_and_re_signed_fails_against_the_real_key(
        case_bundle, public_key_file, tmp_path) -> None:
    def thorough(case: dict, entries: list) -> None:
        another_victim(case, entries)
        del entries[2]
        rechain(entries)

    forged = forge(case_bundle, tmp_path / "forged.zip", thorough,
                   key=Ed25519PrivateKey.generate())
    # Everything inside agrees: integrity alone cannot tell, which is why it says so.
    assert check_bundle(forged).problems == []
    check = check_bundle(forged, load_public_key(public_key_file))
    assert not check.origin_checked
    assert any("not a signature by the given public key" in p for p in check.problems)
    # Kept with the institution's own signature, the changed manifest fails it too.
    kept = forge(case_bundle, tmp_path / "kept.zip", thorough)
    assert not check_bundle(kept, load_public_key(public_key_file)).origin_checked


def haechi(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HAECHI, *args], capture_output=True, text=True, timeout=120)


def test_cases_verify_with_and_without_the_public_key(case_bundle, public_key_file,
                                                      tmp_path) -> None:
    signed = haechi("cases", "verify", str(case_bundle), "--public-key", str(public_key_file))
    assert signed.returncode == 0, signed.stderr
    assert signed.stdout.splitlines()[0] == "bundle OK" and "signed by" in signed.stdout
    unsigned = haechi("cases", "verify", str(case_bundle))
    assert unsigned.returncode == 0 and unsigned.stdout.strip() == "bundle OK"
    assert "origin is not" in unsigned.stderr
    forged = forge(case_bundle, tmp_path / "forged.zip", another_victim,
                   key=Ed25519PrivateKey.generate())
    refused = haechi("cases", "verify", str(forged), "--public-key", str(public_key_file))
    assert refused.returncode == 1 and refused.stdout.startswith("ALTERED")
    not_a_key = tmp_path / "key.pem"
    not_a_key.write_text("hello")
    bad_key = haechi("cases", "verify", str(case_bundle), "--public-key", str(not_a_key))
    assert bad_key.returncode == 2 and "not a PEM public key" in bad_key.stderr
    assert "Traceback" not in bad_key.stderr


def test_export_records_the_audit_log_check_in_the_signed_manifest(haechi_home,
                                                                   tmp_path) -> None:
    store = CaseStore(takedown_engine(), store=LocalStore(haechi_home / "objects"))
    case_id = store.open_cases([event("cli.example", 1)])[0]
    exported = haechi("cases", "export", str(case_id), "--out", str(tmp_path / "b.zip"))
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads(members(tmp_path / "b.zip")["manifest.json"])
    assert manifest["audit_log"]["verified"] is True
    assert manifest["audit_log"]["entries"] == 3  # opened, drafted, and the notice drafted
    assert check_bundle(tmp_path / "b.zip", signing_key().public_key()).origin_checked


# --- Bounds -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 MB zip whose case.json unpacks to 3 GiB of zeros."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    subprocess.run([sys.executable, "-c", BOMB_BUILDER, str(path), "case.json",
                    str(BOMB_MEMBER_BYTES)], check=True, timeout=300)
    assert path.stat().st_size < 8 * 1024 * 1024
    return path


def measured(script: str, *args: str) -> dict:
    """What `script` printed (one JSON object), with the peak memory of the process that ran
    it (measured as MEASURED_COMMAND measures, from a small parent)."""
    outer = command_measured(sys.executable, "-c", script, *args)
    assert outer["code"] == 0, outer["stderr"]
    return {"seconds": outer["seconds"], **json.loads(outer["stdout"]), "peak": outer["peak"]}


def command_measured(*argv: str) -> dict:
    ran = subprocess.run([sys.executable, "-c", MEASURED_COMMAND, *argv], capture_output=True,
                         text=True, timeout=120, check=True)
    return json.loads(ran.stdout)


def assert_within_bounds(result: dict) -> None:
    assert result["peak"] < PEAK_BYTES, result
    assert result["seconds"] < SECONDS, result


def test_a_zip_claiming_a_3_gib_member_is_refused_unread(bomb: Path) -> None:
    result = measured(MEASURED_CHECK, str(bomb))
    assert "refused unread" in result["outcome"]
    assert_within_bounds(result)
    command = command_measured(HAECHI, "cases", "verify", str(bomb))
    assert command["code"] == 1 and "Traceback" not in command["stderr"]
    assert "not an evidence bundle" in command["stderr"]
    assert "case.json says it unpacks to 3,072 MiB" in command["stderr"]
    assert_within_bounds(command)


def lie_about_size(path: Path, name: str, size: int) -> None:
    """Make the zip at `path` declare `size` bytes for member `name` (local and central
    headers), as a hand-made zip would."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(name)
    struct.pack_into("<L", data, info.header_offset + 22, size)
    central = data.rindex(b"PK\x01\x02")
    struct.pack_into("<L", data, central + 24, size)
    path.write_bytes(bytes(data))


def test_a_member_larger_than_it_says_is_refused_within_bounds(tmp_path: Path) -> None:
    liar = tmp_path / "liar.zip"
    subprocess.run([sys.executable, "-c", BOMB_BUILDER, str(liar), "audit.json",
                    str(300 * 1024 * 1024)], check=True, timeout=120)
    lie_about_size(liar, "audit.json", 1000)
    with zipfile.ZipFile(liar) as z:
        assert z.getinfo("audit.json").file_size == 1000
    result = measured(MEASURED_CHECK, str(liar))
    assert "audit.json cannot be unpacked" in result["outcome"]
    assert_within_bounds(result)


def test_too_many_members_and_non_zips_are_sentences(tmp_path: Path) -> None:
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as z:
        for n in range(5000):
            z.writestr(f"{n}.json", "{}")
    with pytest.raises(BundleError, match="zip directory"):
        check_bundle(many)
    some = tmp_path / "some.zip"
    with zipfile.ZipFile(some, "w") as z:
        for n in range(20):
            z.writestr(f"{n}", "")
    with pytest.raises(BundleError, match="holds 20 files"):
        check_bundle(some)
    for name, data in (("photo.zip", b"\xff\xd8\xff" + bytes(5000)), ("empty.zip", b""),
                       ("cut.zip", many.read_bytes()[:-30])):
        (tmp_path / name).write_bytes(data)
        refused = haechi("cases", "verify", str(tmp_path / name))
        assert refused.returncode == 1, refused.stderr
        assert "not an evidence bundle" in refused.stderr and "Traceback" not in refused.stderr
    folder = haechi("cases", "verify", str(tmp_path))
    assert folder.returncode == 1 and "cannot be read" in folder.stderr


def test_foreign_and_doubled_members_are_named_not_read(case_bundle: Path) -> None:
    with zipfile.ZipFile(case_bundle, "a") as z, pytest.warns(UserWarning, match="Duplicate"):
        z.writestr("notice.json", "{}")
        z.writestr("payload.bin", b"x" * 100)
    problems = check_bundle(case_bundle).problems
    assert any("notice.json is in the zip 2 times" in p for p in problems)
    assert any("payload.bin is not part of a bundle" in p for p in problems)


def test_the_memory_measure_sees_a_large_allocation() -> None:
    """The bound means something: a process that holds 600 MB is measured above it."""
    result = measured("block = b'x' * (600 * 1024 * 1024)\nprint('{}')")
    assert result["peak"] > PEAK_BYTES
