"""The command-line contract of issue 2, run as a person runs it: the installed `haechi` command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from testkit.edits import EDITS
from testkit.synthetic import encode, synthetic_picture
from tests.conftest import PDQ_REFERENCE

HAECHI = str(Path(sys.executable).with_name("haechi"))


def haechi(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run([HAECHI, *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {result.stderr}")
    return result


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def victim_files(tmp_path: Path) -> dict[str, Path]:
    files = {}
    for victim, seed in (("V1", 11), ("V2", 12)):
        path = tmp_path / "victims" / f"{victim}.jpg"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(encode(synthetic_picture(seed)))
        files[victim] = path
    return files


def test_register_match_withdraw_round_trip_keeps_the_json_contract(victim_files, tmp_path):
    haechi("register", "--victim", "V1", str(victim_files["V1"]))
    haechi("register", "--victim", "V2", str(victim_files["V2"]))
    crawled = tmp_path / "crawled"
    (crawled / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    (crawled / "a.jpg").write_bytes(encode(EDITS["caption_bar"](synthetic_picture(11), rng)))
    (crawled / "sub" / "b.png").write_bytes(
        encode(EDITS["mirror"](synthetic_picture(12), rng), "PNG")
    )
    (crawled / "c.jpg").write_bytes(encode(synthetic_picture(99)))
    (crawled / "broken.jpg").write_bytes(b"<html>not an image</html>")

    result = haechi("match", "--json", str(crawled))
    lines = {Path(o["path"]).name: o for o in json_lines(result.stdout)}
    assert set(lines) == {"a.jpg", "b.png", "c.jpg", "broken.jpg"}
    assert {m["victim"] for m in lines["a.jpg"]["matches"]} == {"V1"}
    assert {m["victim"] for m in lines["b.png"]["matches"]} == {"V2"}
    assert lines["c.jpg"] == {"path": lines["c.jpg"]["path"], "matches": []}
    assert "HTML" in lines["broken.jpg"]["error"] and lines["broken.jpg"]["matches"] == []
    for match in lines["a.jpg"]["matches"]:
        assert set(match) == {"victim", "algorithm", "distance"}
        assert isinstance(match["distance"], int)

    stats = json.loads(haechi("bank", "stats", "--json").stdout)
    assert stats["victims"] == 2 and stats["by_algorithm"]["pdq"] > 2

    haechi("withdraw", "--victim", "V1")
    again = {Path(o["path"]).name: o for o in json_lines(haechi("match", "--json",
                                                                 str(crawled)).stdout)}
    assert again["a.jpg"]["matches"] == []
    assert json.loads(haechi("bank", "stats", "--json").stdout)["victims"] == 1


def test_manifest_registration_resolves_paths_relative_to_the_csv(victim_files, tmp_path):
    manifest = tmp_path / "victims" / "manifest.csv"
    manifest.write_text("victim,path\nV1,V1.jpg\nV2,V2.jpg\n")
    haechi("register", "--manifest", str(manifest))
    assert json.loads(haechi("bank", "stats", "--json").stdout)["victims"] == 2


def test_register_reports_a_bad_file_and_still_registers_the_good_one(victim_files, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    result = haechi("register", "--victim", "V1", str(bad), str(victim_files["V1"]), check=False)
    assert result.returncode == 1
    assert "empty file" in result.stderr
    assert json.loads(haechi("bank", "stats", "--json").stdout)["victims"] == 1


def test_match_exits_zero_with_errors_and_nonzero_for_usage_errors(tmp_path):
    result = haechi("match", "--json", str(tmp_path / "missing.jpg"))
    assert "error" in json_lines(result.stdout)[0]
    assert haechi("match", check=False).returncode == 2
    assert haechi("register", "--victim", "V1", check=False).returncode == 2


def test_standard_pdq_hash_list_matches_every_reference_file_rotated_and_mirrored(tmp_path):
    """Registering only aaa-orig.jpg's standard PDQ hash is enough for every reference file."""
    listing = tmp_path / "stopncii.csv"
    listing.write_text(
        "victim,algorithm,hash\n"
        "NCII-1,pdq,f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22\n"
    )
    haechi("register", "--hashes", str(listing))
    files = tmp_path / "ref"
    shutil.copytree(PDQ_REFERENCE, files)
    lines = json_lines(haechi("match", "--json", str(files)).stdout)
    images = [o for o in lines if o["path"].endswith(".jpg")]
    assert len(images) == 20
    for line in images:
        assert [m["victim"] for m in line["matches"]] == ["NCII-1"], line["path"]


def test_bad_hash_list_is_a_usage_error_that_names_the_line(tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_text("victim,algorithm,hash\nV1,pdq,nothex\n")
    result = haechi("register", "--hashes", str(listing), check=False)
    assert result.returncode == 2 and "line 2" in result.stderr


def test_haechi_home_keeps_all_data_in_that_folder(victim_files, haechi_home):
    haechi("register", "--victim", "V1", str(victim_files["V1"]))
    assert (haechi_home / "haechi.sqlite3").exists()
    assert (haechi_home / "index" / "pdq.index").exists()


def test_demo_crawls_the_test_web_finds_every_planted_picture_and_leaves_the_bank_alone():
    result = haechi("demo", "--json", timeout=900)  # ~2 min at a load average of 8
    summary = json.loads(result.stdout)
    assert summary["planted"] >= 18
    assert summary["found"] == summary["planted"]
    assert summary["false_cases"] == 0
    assert summary["crawl"]["errors"]  # the hostile files were met and survived
    assert {n["language"] for n in summary["notices"]} >= {"ko", "en", "ja"}
    assert sum(len(n["urls"]) for n in summary["notices"]) == summary["planted"]
    tiers = {Path(c["file"]).name: c["tier"] for c in summary["chats"]}
    assert tiers == {"friends.txt": "none", "stranger.txt": "urgent"}
    # One case climbs the ladder: its site, the hosting network the local RDAP server names
    # (in German, by the network's country), then (no CDN, no registrar for a site known by
    # its address) the authority, in Korean; every rung approved and sent.
    ladder = summary["ladder"]
    assert [(s["rung"], s["language"]) for s in ladder] == [
        ("site", ladder[0]["language"]), ("host", "de"), ("authority", "ko")]
    assert ladder[1]["to"] == "abuse@demo-hosting.example"
    assert [s["rung"] for s in ladder[2]["skipped"]] == ["cdn", "registrar"]
    climbed = [c for c in summary["cases"] if c["status"] == "escalated"]
    assert len(climbed) >= 1
    assert json.loads(haechi("bank", "stats", "--json").stdout)["victims"] == 0
    assert json.loads(haechi("cases", "list", "--json").stdout) == []


def test_unusable_database_is_a_configuration_error_with_exit_code_3(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'missing' / 'dir' / 'bank.db'}")
    result = haechi("bank", "stats", "--json", check=False)
    assert result.returncode == 3
    assert "configuration error" in result.stderr
