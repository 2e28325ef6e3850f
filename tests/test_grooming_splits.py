"""The grooming splits as committed: rendered from their scripts, annotations never leaking into
what the importers read, and the frozen eval re-rendering byte for byte."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from testkit.grooming_eval.build import main, parse

TESTKIT = Path(__file__).resolve().parents[1] / "testkit"


def test_annotations_go_to_the_labels_never_into_the_chats(tmp_path: Path) -> None:
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "t.txt").write_text(
        "=== en_t01\nformat: telegram_json\nlang: en\ngrooming: yes\nkind: gift\n"
        "suspect: max\ntarget: lia\nroom: max\nstart: 2024-05-01 19:00\n---\n"
        "max: hey  {flattery}\nlia: hi im in 7th grade  {minor_self}\n"
        "* max: ill send u robux, dont tell ur mom  {gifts,secrecy}\n"
        "| ok?  {threat}\n", encoding="utf-8")
    main(tmp_path, annotated=True)
    label = json.loads((tmp_path / "labels.json").read_text("utf-8"))["en_t01.json"]
    assert label["signals"] == {"1": ["flattery"], "2": ["minor_self"],
                                "3": ["gifts", "secrecy", "threat"]}
    assert label["fair_point"] == 3
    rendered = (tmp_path / "chats" / "en_t01.json").read_text("utf-8")
    assert "{" + "gifts" not in rendered and "robux, dont tell ur mom" in rendered
    # Without annotated=True a brace suffix is text: the frozen eval's scripts never had one.
    plain = parse((tmp_path / "source" / "t.txt").read_text("utf-8"))
    assert plain[0].items[0].text == "hey  {flattery}"


def test_the_frozen_eval_re_renders_byte_for_byte(tmp_path: Path) -> None:
    shutil.copytree(TESTKIT / "grooming_eval" / "source", tmp_path / "source")
    main(tmp_path)
    for rendered in sorted((tmp_path / "chats").iterdir()):
        assert rendered.read_bytes() == (
            TESTKIT / "grooming_eval" / "chats" / rendered.name).read_bytes(), rendered.name
    assert (tmp_path / "labels.json").read_bytes() == (
        TESTKIT / "grooming_eval" / "labels.json").read_bytes()


def test_the_training_split_is_rendered_from_its_scripts(tmp_path: Path) -> None:
    shutil.copytree(TESTKIT / "grooming_train" / "source", tmp_path / "source")
    main(tmp_path, annotated=True)
    assert (tmp_path / "labels.json").read_bytes() == (
        TESTKIT / "grooming_train" / "labels.json").read_bytes()
