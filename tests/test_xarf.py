"""The X-ARF reports Haechi attaches to notices pass the official X-ARF v4 schemas (vendored in
docs/xarf/v4/, `$ref`s resolved from those files, never the network): adult victims' reports
as Haechi's content/ncii extension, victims registered as minors at capture as the official
content/csam type with its required fields; for streamed-video segments, notices of many URLs,
the JSON parts of a mail a real SMTP server received, and a case without a server address.
The reports Haechi sent before (a `hash:sha256:<hex>` tag, a reporter with a domain) fail
them, so a regression fails here first. And `haechi register --minor-at-capture` end to end:
register, match, case, notice, csam report; withdrawal takes the victim's row away."""

from __future__ import annotations

import dataclasses
import email
import json
import uuid
from email import policy
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from sqlalchemy import select

from engines.mail import SmtpServer
from engines.objects import LocalStore
from haechi.cli import main
from matcher.bank import VictimBank, note_victim, victims
from matcher.match import Matcher
from takedown.cases import CaseStore
from takedown.database import takedown_engine
from takedown.notices import approve_notice, notice_for_case, notice_json
from takedown.sending import NoticeSender
from takedown.xarf import CSAM_FLOOR, DESCRIPTION_CHARS, tag
from testkit.testweb.server import free_port
from tests.takedown_helpers import START, FakeClock, event, start_smtp

DOCS = Path(__file__).resolve().parents[1] / "docs"
OFFICIAL = DOCS / "xarf" / "v4"
BASE = "https://xarf.org/schemas/v4/"
MASTER = BASE + "xarf-v4-master.json"
CORE = BASE + "xarf-core.json"
CONTENT_BASE = BASE + "types/content-base.json"
CSAM = BASE + "types/content-csam.json"
NCII = "https://haechi.invalid/schemas/xarf/v4/types/content-ncii.json"
ORG = "Test Victim Support Centre"
FROM = "takedown@support.example"
MANIFEST = "http://tube.example/live/master.m3u8"


def _offline(uri: str) -> Resource:
    """Every `$ref` must be one of the vendored files: a reference to anything else fails the
    test instead of being fetched."""
    raise NoSuchResource(ref=uri)


def _registry() -> Registry:
    files = [*OFFICIAL.rglob("*.json"), DOCS / "xarf-content-ncii.schema.json"]
    resources = [Resource.from_contents(json.loads(f.read_text(encoding="utf-8")))
                 for f in files]
    return Registry(retrieve=_offline).with_resources(
        (resource.id(), resource) for resource in resources)


REGISTRY = _registry()
# What a desk validates a report of each type against: the master, and the type's own file
# (the master's dispatch lists no content type Haechi sends; see takedown/xarf.py).
TYPE_SCHEMAS = {"csam": CSAM, "ncii": NCII}


def errors(report: dict[str, Any], schema: str) -> list[str]:
    """What `schema` (by its $id) finds wrong with `report`, formats checked where the
    installed checkers can (uuid, date-time, e-mail)."""
    validator = Draft202012Validator({"$ref": schema}, registry=REGISTRY,
                                     format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(report)]


def assert_valid(report: dict[str, Any]) -> None:
    """0 errors against the master, the core, content-base and the report's type file."""
    found = {schema: errors(report, schema)
             for schema in (MASTER, CORE, CONTENT_BASE, TYPE_SCHEMAS[report["type"]])}
    assert found == {schema: [] for schema in found}, json.dumps(report, indent=1)


@pytest.fixture(autouse=True)
def configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAECHI_ORG_NAME", ORG)
    monkeypatch.setenv("HAECHI_FROM", FROM)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(haechi_home: Path, clock: FakeClock) -> CaseStore:
    return CaseStore(takedown_engine(), store=LocalStore(haechi_home / "objects"), clock=clock)


def registered_minor(store: CaseStore, victim: str) -> None:
    """`victim` registered as a minor at capture, as `haechi register` records it."""
    with store.engine.begin() as conn:
        note_victim(conn, victim, True, START)


def reports_of(store: CaseStore, case_id: int) -> list[dict[str, Any]]:
    return notice_json(store.engine, notice_for_case(store.engine, case_id))["xarf"]


def segment(site: str, number: int, victim: str, manifest: str = MANIFEST):
    """A match in one segment of a streamed video, as the crawler raises it."""
    return dataclasses.replace(
        event(site, number, victim=victim), image_url=f"http://{site}/live/seg{number}.ts",
        media_type="video/mp2t", manifest_url=manifest, segment_start=60.0, second=63.4)


def test_an_adult_victims_report_is_the_ncii_extension_and_passes_the_official_schemas(
        store) -> None:
    (report,) = reports_of(store, store.open_cases([event("gallery.example", 1)])[0])
    assert_valid(report)
    assert (report["category"], report["type"]) == ("content", "ncii")
    assert report["reporter"] == {"org": ORG, "contact": FROM, "type": "automated"}
    assert report["source_identifier"] == "127.0.0.1"
    assert report["domain"] == "gallery.example"
    assert report["hash_values"]["sha256"] == event("gallery.example", 1).sha256
    assert report["detection_method"] == "hash_match" and report["media_type"] == "image"
    assert "classification" not in report
    assert all(t.count(":") == 1 for t in report["tags"]) and "match:pdq" in report["tags"]


def test_a_victim_registered_as_a_minor_gets_the_official_csam_type_with_its_fields(
        store) -> None:
    registered_minor(store, "V-minor")
    (report,) = reports_of(store, store.open_cases(
        [event("gallery.example", 1, victim="V-minor")])[0])
    assert_valid(report)
    assert (report["category"], report["type"]) == ("content", "csam")
    # content-csam.json's required fields: the mildest class Haechi can vouch for, and how.
    assert (report["classification"], report["detection_method"]) == (CSAM_FLOOR, "hash_match")
    assert report["media_type"] == "image"
    assert "minor when it was taken" in report["description"]


def test_segments_of_a_streamed_video_name_their_stream_and_pass(store) -> None:
    registered_minor(store, "V-minor")
    long_manifest = "http://tube.example/" + "x" * 1500 + ".m3u8"
    opened = store.open_cases([segment("tube.example", 1, "V1"),
                               segment("tube.example", 2, "V-minor"),
                               segment("tube.example", 3, "V1", manifest=long_manifest)])
    reports = reports_of(store, opened[0])
    assert [r["type"] for r in reports] == ["ncii", "csam", "ncii"]
    for report in reports:
        assert_valid(report)
        assert report["media_type"] == "video" and "media:stream_segment" in report["tags"]
        assert report["url"].endswith(".ts")
    assert reports[0]["stream"] == {"manifest_url": MANIFEST, "time": "0:01:03"}
    assert MANIFEST in reports[0]["description"]
    # A manifest URL longer than the core allows a description is cut, not sent broken.
    assert len(reports[2]["description"]) == DESCRIPTION_CHARS
    assert reports[2]["stream"]["manifest_url"] == long_manifest


def test_a_notice_of_many_urls_carries_one_valid_report_per_url(store) -> None:
    registered_minor(store, "V-minor")
    events = [event("big.example", n, victim="V-minor" if n % 3 == 0 else f"V{n % 2}")
              for n in range(40)]
    opened = store.open_cases(events)
    notice = notice_json(store.engine, notice_for_case(store.engine, opened[0]))
    assert len(notice["xarf"]) == len(notice["urls"]) == 40
    assert [r["url"] for r in notice["xarf"]] == notice["urls"]
    assert len({r["report_id"] for r in notice["xarf"]}) == 40
    for report, evt in zip(notice["xarf"], events, strict=True):
        assert report["type"] == ("csam" if evt.victim == "V-minor" else "ncii")
        assert_valid(report)


def test_the_xarf_parts_of_a_sent_mail_pass(store, clock) -> None:
    registered_minor(store, "V-minor")
    opened = store.open_cases([event("mail.example", 1), event("mail.example", 2, "V-minor"),
                               segment("mail.example", 3, "V1")])
    notice_id = notice_for_case(store.engine, opened[0])
    approve_notice(store.engine, notice_id, "reviewer-1", clock())
    controller, mailbox = start_smtp(free_port())
    try:
        sender = NoticeSender(store.engine, SmtpServer("127.0.0.1", controller.port),
                              clock=clock, backoff=0)
        assert len(sender.send_approved()["sent"]) == 1
    finally:
        controller.stop()
    (received,) = mailbox.messages
    message = email.message_from_bytes(received.content, policy=policy.default)
    parts = [json.loads(p.get_content()) for p in message.iter_attachments()
             if p.get_content_type() == "application/json"]
    assert [p["type"] for p in parts] == ["ncii", "csam", "ncii"]
    for report in parts:
        assert_valid(report)


def test_a_case_without_a_server_address_names_the_site_and_passes(store) -> None:
    by_name = dataclasses.replace(event("noip.example", 1), server_ip=None)
    by_address = dataclasses.replace(event("192.0.2.7", 2), server_ip=None)
    (named,) = reports_of(store, store.open_cases([by_name])[0])
    (numbered,) = reports_of(store, store.open_cases([by_address])[0])
    assert named["source_identifier"] == "noip.example" and named["domain"] == "noip.example"
    # An address is no domain: the optional field is left out rather than sent wrong.
    assert numbered["source_identifier"] == "192.0.2.7" and "domain" not in numbered
    assert_valid(named)
    assert_valid(numbered)


def old_style_report() -> dict[str, Any]:
    """A report as takedown/notices.py built them before takedown/xarf.py."""
    return {
        "xarf_version": "4.0.0", "report_id": str(uuid.uuid4()),
        "timestamp": START.isoformat(),
        "reporter": {"org": ORG, "contact": FROM, "domain": "support.example"},
        "sender": {"org": ORG, "contact": FROM, "domain": "support.example"},
        "source_identifier": "127.0.0.1", "category": "content", "type": "ncii",
        "url": "http://gallery.example/img/1.jpg", "evidence_source": "automated_hash_match",
        "description": "Intimate image published without consent",
        "tags": ["hash:sha256:" + "ab" * 32, "match:pdq"],
    }


def test_the_reports_sent_before_fail_the_official_schemas() -> None:
    found = errors(old_style_report(), MASTER)
    assert any(e.startswith("tags/0:") and "does not match" in e for e in found), found
    assert any(e.startswith("reporter:") for e in found), found
    # `ncii` under content without the extension's fields fails the extension.
    assert any("detection_method" in e for e in errors(old_style_report(), NCII))


def test_each_old_mistake_alone_fails_a_report_that_passes(store) -> None:
    (report,) = reports_of(store, store.open_cases([event("gallery.example", 1)])[0])
    assert_valid(report)
    hashed_tag = {**report, "tags": [*report["tags"], "hash:sha256:" + "ab" * 32]}
    reporter_domain = {**report, "reporter": {**report["reporter"], "domain": "x.example"}}
    assert errors(hashed_tag, MASTER) and errors(hashed_tag, CORE)
    assert errors(reporter_domain, MASTER)


def test_the_master_checks_no_content_type_so_the_type_file_is_checked_too(store) -> None:
    """Why assert_valid also takes the type's own file: the master dispatches by if/then with
    no else, so a type it does not list (csam, ncii) passes on the core alone."""
    registered_minor(store, "V-minor")
    (report,) = reports_of(store, store.open_cases(
        [event("gallery.example", 1, victim="V-minor")])[0])
    unclassified = {k: v for k, v in report.items() if k != "classification"}
    assert errors(unclassified, MASTER) == []
    assert errors(unclassified, CSAM)
    assert errors({**report, "type": "anything"}, MASTER) == []


def test_tags_are_made_to_the_cores_pattern() -> None:
    assert tag("match", "pdq") == "match:pdq"
    assert tag("Match", "local-orb/v2") == "match:local_orb_v2"
    assert tag("match", "") == "match:unknown"


def haechi(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if "--json" in argv and out.strip() else out


def test_register_minor_at_capture_end_to_end(tmp_path, capsys, store, picture_bytes) -> None:
    picture = tmp_path / "victim.jpg"
    picture.write_bytes(picture_bytes)
    code, summary = haechi(capsys, "register", "--victim", "V-minor", "--minor-at-capture",
                           str(picture), "--json")
    assert code == 0 and summary["minor_at_capture"] == {"V-minor": True}
    code, text = haechi(capsys, "register", "--victim", "V-adult", str(picture))
    assert code == 0 and "minor at capture" not in text

    # The matcher finds the picture; the case it opens is reported as CSAM for the minor.
    found = {m.victim for m in Matcher(VictimBank.open()).match_bytes(picture_bytes)}
    assert found == {"V-minor", "V-adult"}
    opened = store.open_cases([event("host.example", 1, victim="V-minor"),
                               event("host.example", 2, victim="V-adult")])
    reports = reports_of(store, opened[0])
    assert [r["type"] for r in reports] == ["csam", "ncii"]
    for report in reports:
        assert_valid(report)

    # Registering more pictures without the flag does not take back what the victim said.
    code, summary = haechi(capsys, "register", "--victim", "V-minor", str(picture), "--json")
    assert summary["minor_at_capture"] == {"V-minor": True}

    code, _ = haechi(capsys, "withdraw", "--victim", "V-minor")
    assert code == 0
    with store.engine.connect() as conn:
        left = set(conn.execute(select(victims.c.victim)).scalars())
    assert left == {"V-adult"}


def test_a_manifest_says_per_row_which_victims_were_minors(tmp_path, capsys,
                                                           picture_bytes) -> None:
    (tmp_path / "a.jpg").write_bytes(picture_bytes)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("victim,path,minor_at_capture\nV-a,a.jpg,yes\nV-b,a.jpg,no\n")
    code, summary = haechi(capsys, "register", "--manifest", str(manifest), "--json")
    assert code == 0 and summary["minor_at_capture"] == {"V-a": True, "V-b": False}

    manifest.write_text("victim,path,minor_at_capture\nV-c,a.jpg,perhaps\n")
    assert main(["register", "--manifest", str(manifest)]) == 2
    assert "minor_at_capture must be yes or no" in capsys.readouterr().err


def test_a_hash_list_registered_with_the_flag_marks_every_victim_it_names(tmp_path,
                                                                          capsys) -> None:
    listing = tmp_path / "list.csv"
    listing.write_text("victim,algorithm,hash\nV-h1,pdq," + "ab" * 32 + "\nV-h2,pdq,"
                       + "cd" * 32 + "\n")
    code, summary = haechi(capsys, "register", "--hashes", str(listing), "--minor-at-capture",
                           "--json")
    assert code == 0 and summary["minor_at_capture"] == {"V-h1": True, "V-h2": True}


def test_the_vendored_and_the_extension_schemas_are_2020_12_schemas() -> None:
    for path in [*OFFICIAL.rglob("*.json"), DOCS / "xarf-content-ncii.schema.json"]:
        Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))
    example = json.loads((DOCS / "xarf-content-ncii.schema.json").read_text())["examples"][0]
    assert_valid(example)
