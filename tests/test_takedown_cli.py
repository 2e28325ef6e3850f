"""The takedown commands as people run them: cases show/export/verify, notices show/send,
users add, track and report, against a real SMTP server and a real web server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from engines.objects import LocalStore
from takedown.cases import CaseStore
from takedown.database import takedown_engine
from takedown.notices import approve_notice, notice_for_case
from testkit.synthetic import encode, synthetic_picture
from testkit.testweb.server import free_port
from tests.takedown_helpers import event, site_facts, start_smtp

HAECHI = str(Path(sys.executable).with_name("haechi"))


def haechi(*args: str, stdin: str | None = None, env: dict | None = None,
           check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([HAECHI, *args], capture_output=True, text=True, input=stdin,
                            env=env, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {result.stderr}")
    return result


@pytest.fixture
def web_root(tmp_path: Path):
    root = tmp_path / "www"
    root.mkdir()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                               "127.0.0.1", "--directory", str(root)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    yield root, f"127.0.0.1:{port}"
    server.terminate()
    server.wait(10)


def test_case_notice_send_track_report_round_trip(haechi_home: Path, web_root, tmp_path,
                                                  monkeypatch):
    monkeypatch.setenv("HAECHI_ORG_NAME", "Test Victim Support Centre")
    monkeypatch.setenv("HAECHI_FROM", "takedown@support.example")
    root, host = web_root
    picture = encode(synthetic_picture(seed=77))
    (tmp_path / "victim.jpg").write_bytes(picture)
    haechi("register", "--victim", "V1", str(tmp_path / "victim.jpg"))
    (root / "1.jpg").write_bytes(picture)
    media = LocalStore(haechi_home / "objects")
    store = CaseStore(takedown_engine(), store=media)
    site = host.split(":")[0]
    site_facts(store.engine, site, language="es")
    e = event(site, 1, data=picture)
    e = e.__class__(**{**e.__dict__, "image_url": f"http://{host}/1.jpg"})
    case_id = store.open_cases([e])[0]

    shown = json.loads(haechi("cases", "show", str(case_id), "--json").stdout)
    assert shown["status"] == "drafted" and shown["headers"] == e.headers
    notice = json.loads(haechi("notices", "show", str(case_id), "--json").stdout)
    for key in ("language", "to", "subject", "body", "urls"):
        assert key in notice
    assert notice["language"] == "es" and notice["urls"] == [e.image_url]
    assert notice["to"] == "abuse@[127.0.0.1]"

    bundle = Path(haechi("cases", "export", str(case_id), "--out",
                         str(tmp_path / "b.zip")).stdout.strip())
    assert haechi("cases", "verify", str(bundle)).stdout.strip() == "bundle OK"
    with zipfile.ZipFile(bundle, "a") as z, pytest.warns(UserWarning, match="Duplicate"):
        z.writestr("notice.json", "{}")  # a second, altered copy is what unzip tools read
    assert haechi("cases", "verify", str(bundle), check=False).returncode == 1

    approve_notice(store.engine, notice_for_case(store.engine, case_id), "alice",
                   store.clock())
    smtp, mailbox = start_smtp(free_port())
    # The tracker fetches only public addresses; this test's web server is on 127.0.0.1.
    env = {**os.environ, "HAECHI_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
           "HAECHI_FETCH_ALLOW": os.environ["HAECHI_FETCH_ALLOW"] + ",127.0.0.1/32"}
    try:
        sent = json.loads(haechi("notices", "send", "--json", env=env).stdout)
        assert len(sent["sent"]) == 1 and len(mailbox.messages) == 1
        still = json.loads(haechi("track", "--json", env=env).stdout)
        assert still["checked"] == 1 and still["removed"] == [] and still["resent"] == []
        (root / "1.jpg").unlink()
        gone = json.loads(haechi("track", "--json", env=env).stdout)
        assert gone["removed"] == [case_id]
    finally:
        smtp.stop()
    report = json.loads(haechi("report", "--json", "--html", str(tmp_path / "r.html")).stdout)
    assert report["overall"]["removed"] == 1 and report["overall"]["removal_rate"] == 1.0
    assert report["hosts"][site]["median_notice_to_removal_s"] is not None
    assert "<svg" in (tmp_path / "r.html").read_text()


def test_users_add_rejects_short_passwords_and_notices_show_unknown_case(haechi_home):
    bad = haechi("users", "add", "bob", stdin="short\n", check=False)
    assert bad.returncode != 0 and "at least" in bad.stderr
    assert "can log in" in haechi("users", "add", "bob", stdin="long enough pass\n").stdout
    missing = haechi("notices", "show", "999", "--json", check=False)
    assert missing.returncode != 0 and "no notice" in missing.stderr
    assert haechi("cases", "show", "999", check=False).returncode != 0
