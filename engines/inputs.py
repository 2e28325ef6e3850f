"""What a person gives on the command line, read as what it should be: files and folders
expanded, CSV lists read line by line, and argument values (case references, URLs, counts)
checked by argparse so that a wrong one is a sentence and exit code 2, never a traceback.

Light on purpose (the standard library only): every command's parser uses it at start-up.
"""

from __future__ import annotations

import argparse
import csv
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

# A case's reference as people see it (`haechi cases list`, notices): this prefix and its id;
# takedown/notices.py reference_of() writes it, case_id() below reads it back.
CASE_REFERENCE_PREFIX = "HAECHI-"


def walk_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Each path as given, with directories replaced by the files under them in sorted order.

    Hidden files and folders are skipped; a path that does not exist, or a folder that cannot
    be listed, is yielded as it is, so the caller reports it like any other unreadable input
    instead of it vanishing.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and _listable(path):
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path).parts
                if any(part.startswith(".") for part in relative):
                    continue
                if child.is_file() or (child.is_dir() and not _listable(child)):
                    yield child
        else:
            yield path


def _listable(folder: Path) -> bool:
    return os.access(folder, os.R_OK | os.X_OK)


class InputFileError(ValueError):
    """An input file that cannot be read as what it should be; the message names the file
    and, when it can, the line."""


class CsvFormatError(InputFileError):
    """A CSV input without the columns it needs, or with a line that is not UTF-8 text."""


def _utf8_lines(handle: Iterable[bytes], path: Path) -> Iterator[str]:
    """The file's lines as text, a byte-order mark dropped; a line that is not UTF-8 raises
    CsvFormatError naming it (a whole-file decode could only say at which byte)."""
    for number, raw in enumerate(handle, start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise CsvFormatError(
                f"{path}, line {number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                f"position {exc.start + 1} of the line); save the file as UTF-8") from None


def read_csv(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row of a UTF-8 CSV whose header names at least
    `columns`.

    Blank lines are skipped; a missing column or value, a line that is not UTF-8 or not CSV
    raises CsvFormatError naming the line, a file that cannot be read InputFileError.
    """
    try:
        with open(path, "rb") as handle:
            yield from _csv_rows(handle, path, columns)
    except OSError as exc:
        raise InputFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _csv_rows(handle: Iterable[bytes], path: Path, columns: tuple[str, ...]
              ) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(_utf8_lines(handle, path))
    try:
        header = [name.strip().lower() for name in reader.fieldnames or []]
        missing = [c for c in columns if c not in header]
        if missing:
            raise CsvFormatError(
                f"{path}: header must name {','.join(columns)}; missing {','.join(missing)}"
            )
        reader.fieldnames = header
        for row in reader:
            # Fields past the header's (under the key None) are not read, blank or not.
            if not any((row.get(name) or "").strip() for name in header):
                continue
            values = {c: (row.get(c) or "").strip() for c in columns}
            empty = [c for c, v in values.items() if not v]
            if empty:
                raise CsvFormatError(f"{path}, line {reader.line_num}: empty {','.join(empty)}")
            yield reader.line_num, values
    except csv.Error as exc:
        raise CsvFormatError(f"{path}, line {reader.line_num}: not CSV ({exc})") from None


def case_id(text: str) -> int:
    """A case argument: its reference as listed (HAECHI-000001, any case) or its bare id."""
    value = text.strip()
    if value.upper().startswith(CASE_REFERENCE_PREFIX):
        value = value[len(CASE_REFERENCE_PREFIX):]
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise argparse.ArgumentTypeError(
            f"not a case: {text!r} (give its reference, e.g. {CASE_REFERENCE_PREFIX}000001, "
            "or its number)")
    return int(value)


def positive_int(text: str) -> int:
    """A count that must be at least 1 (pages, processes)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def port_number(text: str) -> int:
    """A TCP port to listen on."""
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value} (ports go up to 65535)")
    return value


def http_url(text: str) -> str:
    """A site to crawl: an http:// or https:// URL with a host."""
    scheme, _, rest = text.partition("://")
    if scheme not in ("http", "https") or not rest.split("/", 1)[0]:
        raise argparse.ArgumentTypeError(
            f"not an http(s) URL: {text!r} (a site is given as https://host/)")
    return text
