"""Hostile chat exports are one file's error: nesting thousands deep, messages that are not
objects, files far too large; the others in the same run are read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grooming.importers import ChatImportError, load
from grooming.pseudonyms import Pseudonymiser

PSEUDONYM = Pseudonymiser(b"test-key")
TELEGRAM = {"name": "민지", "type": "personal_chat", "id": 42, "messages": [
    {"id": 1, "type": "message", "date": "2026-11-20T20:01:00", "from": "아저씨",
     "from_id": "user1", "text": "안녕 뭐해?"}]}


def test_json_nested_thousands_deep_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    depth = 200_000
    path.write_text('{"messages": [], "from_id": 1, "x": ' + "[" * depth + "]" * depth + "}")
    with pytest.raises(ChatImportError, match="could not be read"):
        load(path, PSEUDONYM)


def test_messages_that_are_not_objects_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    export = {**TELEGRAM, "messages": [7, "text", None, *TELEGRAM["messages"]]}
    path.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    [conversation] = load(path, PSEUDONYM)
    assert [m.text for m in conversation.messages] == ["안녕 뭐해?"]


def test_a_chat_list_that_is_not_objects_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text('{"chats": {"list": [1, 2]}, "from_id": 1}')
    with pytest.raises(ChatImportError, match="Telegram"):
        load(path, PSEUDONYM)


def test_one_hostile_export_does_not_stop_the_scan_of_the_others(tmp_path: Path,
                                                                 haechi_home: Path) -> None:
    hostile, good = tmp_path / "hostile.json", tmp_path / "good.json"
    hostile.write_text('{"messages": [], "from_id": 1, "x": ' + "[" * 100_000 + "]" * 100_000
                       + "}")
    good.write_text(json.dumps(TELEGRAM, ensure_ascii=False), encoding="utf-8")
    haechi = str(Path(sys.executable).with_name("haechi"))
    result = subprocess.run([haechi, "chats", "scan", "--json", "--no-alerts", str(hostile),
                             str(good)], env={**os.environ, "HAECHI_HOME": str(haechi_home)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "hostile.json" in result.stderr and "Traceback" not in result.stderr
    assert [Path(json.loads(line)["file"]).name for line in result.stdout.splitlines()] == \
        ["good.json"]
