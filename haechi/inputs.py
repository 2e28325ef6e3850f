"""Expanding the file and directory arguments a person gives on the command line."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path


def walk_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Each path as given, with directories replaced by the files under them in sorted order.

    Hidden files and folders are skipped; a path that does not exist is yielded as it is, so
    the caller reports it like any other unreadable input instead of it vanishing.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path).parts
                if child.is_file() and not any(part.startswith(".") for part in relative):
                    yield child
        else:
            yield path


class CsvFormatError(ValueError):
    """A CSV input without the columns it needs; the message names the file and the columns."""


def read_csv(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row of a CSV whose header names at least `columns`.

    Blank lines are skipped; a missing column or value raises CsvFormatError naming the line.
    """
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip().lower() for name in reader.fieldnames or []]
        missing = [c for c in columns if c not in header]
        if missing:
            raise CsvFormatError(
                f"{path}: header must name {','.join(columns)}; missing {','.join(missing)}"
            )
        reader.fieldnames = header
        for row in reader:
            if not any((value or "").strip() for value in row.values()):
                continue
            values = {c: (row.get(c) or "").strip() for c in columns}
            empty = [c for c, v in values.items() if not v]
            if empty:
                raise CsvFormatError(f"{path}, line {reader.line_num}: empty {','.join(empty)}")
            yield reader.line_num, values
