"""vPDQ (issue 15, video hash interop): vPDQ lists in HMA's and ThreatExchange's form load with
`haechi register --hashes` and match crawled videos by vPDQ's rule, sealed and withdrawn like
every other hash.

Only generated videos (testkit/synthetic.py pictures, tests/test_video.py's encoder), short, so
the suite stays quick on two cores.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from matcher.bank import BankError, VictimBank, victim_hashes
from matcher.match import Matcher
from matcher.signals import get_signal
from matcher.signals.vpdq import (
    VpdqFeature,
    VpdqSignal,
    VpdqTally,
    features_from_vpdq_lines,
    format_signal,
    frame_view,
    parse_signal,
    video_features,
)
from testkit.synthetic import synthetic_picture
from tests.test_video import make_video

HAECHI = str(Path(sys.executable).with_name("haechi"))

# The frames python-threatexchange expects of Meta's sample video chair-20-sd-bar.mp4 hashed at
# one frame a second, quality 100, timestamps 0.0, 1.0, ...: test_vpdq_from_string_path in
# python-threatexchange/threatexchange/extensions/vpdq/tests/test_vpdq_hash_and_match.py
# (facebook/ThreatExchange, commit 011fc608).
CHAIR_20_SD_BAR = (
    "e42926b9cb58d261383b699f0ff2e1076fe6183dff4986d82ca36da48034fc54",
    "4ce949b11f1035e2f2eb0a5e76f68716870e70f97bd91d1049a3dbe1d164b454",
    "643c8f9e5f0eb6866886355a4a4bdbe38343a4e924b969b41d321ba33a85f55e",
    "02b456d6bd4b6d695aa51772cdb8fa1df0ced12ea64b82f106e53d1b7e0b8050",
    "e64c35684e8d8926cc96324b66b9c999d92c37566669999b9bb166e464cbdd11",
    "46d86a5cc1ac1787f2b5cb895833c6a59e07b37ca60524ccaf1b69af9b2d9053",
    "c5f2ada74d0649858d6f1d26adace8fcd4b98d1938d131fca75a9611b41332d2",
    "093455b85518971cb48dad0f2b464a7552b3049345a905e904db2fde6ff66ff9",
    "e25339b25ecca73c5b1c84650a4b17a6afd21eac3d12fa14f00ff81bf03ce178",
    "8834b4ce2ca75b4d964e2526096f02cc27a63fa7be42fc16f83f486b487e4b78",
    "b26d60de1b62b499e0bc83680f8c3b25f0fae3b6c72b6e397c3414710e634d4e",
    "b506c921960c6d24e70705071c3b64e6e1a7ced61cf639ea199e1e345b726f6e",
    "93457d84eb67a4c33a63f4ca9307361b7161e709cc1578c129c93cbc94b0df5e",
    "419d81cc6926e1c6cfe67ae6e1e6c25b9af03349e7057641acc98c1c96196f5e",
    "64368799091de307e9855b6ee1e6c3e61ff633618701c64378c91c9d9499d75a",
    "256393c7dbcc7cb93665831385dae732586338abf439c89683c6a3e1d129b552",
    "cad9719334499e3dcb3361233744e9cc519b2a89d7e8a21734f679696921d556",
    "e0d8834b1f0bebf1e362e4ad0bac1b5efc9a81cb6ee97c34812793a19285e554",
    "9d4a35397761e5511559f178e5660f06dd4ec1b97f99b952122326e9e269d114",
    "792efd6e85e31b812a5162f95ea63a5622d60bb99d70a2564aab5de99549a154",
    "efc4c1861a3326f148d9de093bb9c1b65d46acab80dcdf42895e223d7f61c554",
)
# The same signal as python-threatexchange serialises it (vpdq_util.py vpdq_to_json: json.dumps
# of "pdq_hex,quality,timestamp" strings, the timestamp written with format spec ".3").
CHAIR_SIGNAL = "[" + ", ".join(f'"{h},100,{i}.0"' for i, h in enumerate(CHAIR_20_SD_BAR)) + "]"


def haechi(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([HAECHI, *args], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def victim_scenes() -> list:
    """Six one-second scenes of generated pictures: the stand-in victim video."""
    return [(synthetic_picture(seed), 1.0) for seed in range(70, 76)]


def write_list(path: Path, rows: list[list[str]], header=("victim", "algorithm", "hash")) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# --- the interchange format ----------------------------------------------------------------


def test_threatexchange_signal_string_round_trips_unchanged():
    features = parse_signal(CHAIR_SIGNAL)
    assert [f.code.hex() for f in features] == list(CHAIR_20_SD_BAR)
    assert {f.quality for f in features} == {100}
    assert [f.timestamp for f in features] == [float(i) for i in range(21)]
    assert format_signal(features) == CHAIR_SIGNAL
    # Three significant digits, as python-threatexchange writes them.
    assert str(VpdqFeature(features[0].code, 80, 0.0326)).endswith(",80,0.0326")
    assert str(VpdqFeature(features[0].code, 80, 12.3456)).endswith(",80,12.3")


def test_vpdq_tool_output_reads_as_the_same_frames():
    # Lines 1 and 31 of vpdq/sample-hashes/chair-20-sd-bar.txt (facebook/ThreatExchange): the
    # vpdq tool hashes every frame of the 30 fps video; frame 30 (second 0.977) is the frame
    # python-threatexchange's one-a-second list has at second 1.
    lines = ("0,100,e42926b9cb58d261383b699f0ff2e1076fe6183dff4986d82ca36da48034fc54,0\n"
             "30,100,4ce949b11f1035e2f2eb0a5e76f68716870e70f97bd91d1049a3dbe1d164b454,0.977\n")
    features = features_from_vpdq_lines(lines)
    assert [f.code.hex() for f in features] == list(CHAIR_20_SD_BAR[:2])
    assert [f.timestamp for f in features] == [0.0, 0.977]
    with pytest.raises(ValueError, match="line 3: a PDQ hash has 64 hex digits"):
        features_from_vpdq_lines(lines + "31,100,nothex,1.01\n")


@pytest.mark.parametrize(("signal", "reason"), [
    ("not json", "not JSON"),
    ('{"0": "x"}', "not a list"),
    ("[17]", "frame 1 is not"),
    (f'["{CHAIR_20_SD_BAR[0]},100"]', "2 fields, not 3"),
    (f'["{CHAIR_20_SD_BAR[0][:-2]},100,0.0"]', "64 hex digits"),
    (f'["{CHAIR_20_SD_BAR[0]},101,0.0"]', "outside 0-100"),
    (f'["{CHAIR_20_SD_BAR[0]},100,0.0", "{CHAIR_20_SD_BAR[1]},100,-1"]', "frame 2"),
])
def test_a_malformed_signal_says_which_frame_and_why(signal, reason):
    with pytest.raises(ValueError, match=reason):
        parse_signal(signal)


def test_registered_frames_drop_low_quality_and_repeated_frames_and_refuse_an_empty_video():
    signal = get_signal("vpdq")
    assert isinstance(signal, VpdqSignal)
    a, b = (bytes.fromhex(h) for h in CHAIR_20_SD_BAR[:2])
    text = format_signal([VpdqFeature(a, 100, 0.0), VpdqFeature(b, 49, 1.0),
                          VpdqFeature(a, 90, 2.0), VpdqFeature(b, 50, 3.0)])
    assert [(f.code, f.timestamp) for f in signal.registered_frames(text)] == [(a, 0.0),
                                                                               (b, 3.0)]
    with pytest.raises(ValueError, match="no frames"):
        signal.registered_frames("[]")
    with pytest.raises(ValueError, match="quality under 50"):
        signal.registered_frames(format_signal([VpdqFeature(a, 10, 0.0)]))


def test_the_match_rule_is_vpdqs_80_percent_of_the_query_frames_within_distance_31():
    signal = VpdqSignal()
    assert (signal.threshold, signal.min_quality) == (31, 50)
    assert (signal.query_match_percent, signal.compared_match_percent) == (80.0, 0.0)
    tally = VpdqTally(signal)
    # Five distinct query frames, four of them showing frames of a 100-frame video: 80%.
    for n in range(5):
        hits = [("V1", frame_view("abc", n, 100), 10 + n)] if n < 4 else []
        tally.add_frame(bytes([n]) * 32, float(n), hits)
    tally.add_frame(bytes([0]) * 32, 9.0, [])  # a repeat of frame 0: counted once
    (match,) = tally.matches()
    assert (match.victim, match.view, match.second) == ("V1", "vpdq:abc", 0.0)
    assert (match.query_percent, match.compared_percent, match.distance) == (80.0, 4.0, 12)
    tally.add_frame(bytes([7]) * 32, 10.0, [])  # a sixth frame without the video: 66%
    assert tally.matches() == []


# --- registering lists and matching crawled videos -----------------------------------------


@pytest.fixture(scope="module")
def victim_video() -> bytes:
    return make_video(victim_scenes())


def test_a_vpdq_list_matches_the_video_reencoded_and_resized_and_not_another(
        victim_video, tmp_path):
    signal = format_signal(video_features(victim_video))
    listing = write_list(tmp_path / "hma.csv", [["V-video", "vpdq", signal]])
    summary = json.loads(haechi("register", "--hashes", str(listing), "--json").stdout)
    assert (summary["victims"], summary["hashes"]) == (1, 6)
    crawled = tmp_path / "crawled"
    crawled.mkdir()
    (crawled / "copy.webm").write_bytes(make_video(victim_scenes(), size=(256, 192), fps=25,
                                                   codec="libvpx-vp9", fmt="webm"))
    (crawled / "other.mp4").write_bytes(make_video(
        [(synthetic_picture(seed), 1.0) for seed in range(90, 96)]))
    lines = {Path(o["path"]).name: o["matches"] for o in map(json.loads, haechi(
        "match", "--json", str(crawled)).stdout.splitlines())}
    (copy,) = lines["copy.webm"]
    assert set(copy) == {"victim", "algorithm", "distance", "second"}
    assert (copy["victim"], copy["algorithm"], copy["second"]) == ("V-video", "vpdq", 0.0)
    assert 0 <= copy["distance"] <= 31
    assert lines["other.mp4"] == []


def test_a_clip_matches_by_vpdq_from_80_percent_of_its_frames_showing_the_video(
        victim_video, bank, tmp_path):
    listing = write_list(tmp_path / "list.csv",
                         [["V-video", "vpdq", format_signal(video_features(victim_video))]])
    bank.import_hash_list(listing)
    five = [*victim_scenes()[:5], (synthetic_picture(80), 1.0)]
    matches = Matcher(bank).match_bytes(make_video(five))
    assert [(m.victim, m.algorithm) for m in matches] == [("V-video", "vpdq")]  # 5 of 6: 83%
    four = victim_scenes()[:4] + [(synthetic_picture(s), 1.0) for s in range(80, 82)]
    assert Matcher(bank).match_bytes(make_video(four)) == []  # 4 of 6: 67%


def test_python_threatexchange_csv_loads_under_its_collab_and_skips_types_haechi_lacks(
        victim_video, tmp_path):
    listing = write_list(tmp_path / "collab.csv", [
        ["NCII partner", "vpdq", format_signal(video_features(victim_video)), "POSITIVE_CLASS",
         "ncii"],
        ["NCII partner", "video_md5", "d41d8cd98f00b204e9800998ecf8427e", "POSITIVE_CLASS", ""],
        ["NCII partner", "pdq", CHAIR_20_SD_BAR[0], "POSITIVE_CLASS", ""],
    ], header=("collab", "signal_type", "signal_str", "category", "tags"))
    result = haechi("register", "--hashes", str(listing))
    assert "skipped signal types Haechi does not match: 1 video_md5" in result.stdout
    summary = json.loads(haechi("register", "--hashes", str(listing), "--json").stdout)
    assert summary["victims"] == 1 and summary["hashes"] == 7 and summary["added"] == 0
    assert summary["skipped"] == {"video_md5": 1}
    stats = json.loads(haechi("bank", "stats", "--json").stdout)["by_algorithm"]
    assert (stats["vpdq"], stats["pdq"]) == (6, 1)
    crawled = tmp_path / "copy.mp4"
    crawled.write_bytes(make_video(victim_scenes(), size=(480, 360), fps=15))
    (line,) = map(json.loads, haechi("match", "--json", str(crawled)).stdout.splitlines())
    assert [(m["victim"], m["algorithm"]) for m in line["matches"]] == [("NCII partner",
                                                                         "vpdq")]


def test_a_malformed_vpdq_line_is_a_usage_error_naming_it_and_adds_nothing(tmp_path):
    good = format_signal(parse_signal(CHAIR_SIGNAL))
    bad = good.replace(CHAIR_20_SD_BAR[3], CHAIR_20_SD_BAR[3][:-1] + "x")
    listing = write_list(tmp_path / "list.csv", [["V1", "pdq", CHAIR_20_SD_BAR[0]],
                                                 ["V2", "vpdq", good], ["V3", "vpdq", bad]])
    result = haechi("register", "--hashes", str(listing), check=False)
    assert result.returncode == 2
    assert f"{listing}, line 4: vPDQ frame 4" in result.stderr
    assert "not a hex PDQ hash" in result.stderr and "Traceback" not in result.stderr
    assert json.loads(haechi("bank", "stats", "--json").stdout)["hashes"] == 0


def test_vpdq_rows_are_sealed_and_withdrawal_deletes_them_and_their_matches(
        victim_video, bank, haechi_home, tmp_path):
    features = video_features(victim_video)
    listing = write_list(tmp_path / "list.csv", [["V-video", "vpdq", format_signal(features)]])
    bank.import_hash_list(listing)
    bank.save()
    with bank.engine.connect() as conn:
        rows = conn.execute(select(victim_hashes.c.code, victim_hashes.c.view).where(
            victim_hashes.c.algorithm == "vpdq")).all()
    assert len(rows) == len(features)
    assert {row.view.rsplit(":", 1)[1] for row in rows} == {f"{i}/6" for i in range(6)}
    stored = b"".join(f.read_bytes() for f in haechi_home.rglob("*") if f.is_file())
    for feature in features:
        assert feature.code not in stored and feature.code.hex().encode() not in stored
    copy = make_video(victim_scenes(), size=(400, 300))
    fresh = VictimBank.open()  # the saved index, loaded again
    assert [m.algorithm for m in Matcher(fresh).match_bytes(copy)] == ["vpdq"]
    assert fresh.withdraw("V-video") == len(features)
    assert Matcher(fresh).match_bytes(copy) == []
    assert Matcher(VictimBank.open()).match_bytes(copy) == []


def test_a_still_has_no_vpdq_hash_and_an_empty_video_registers_nothing(bank, tmp_path):
    from matcher.hasher import ImageHasher
    from testkit.synthetic import encode

    records = ImageHasher().registration_hashes(encode(synthetic_picture(3)))
    assert records and "vpdq" not in {r.algorithm for r in records}
    with pytest.raises(BankError, match="line 2"):
        bank.import_hash_list(write_list(tmp_path / "l.csv", [["V1", "vpdq", "[]"]]))
    assert bank.stats()["hashes"] == 0
