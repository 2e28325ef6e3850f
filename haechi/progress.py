"""Progress display for long work: a bar for people at a terminal, silence for pipes and CI.

tqdm is imported on first use: the command modules import this one while the parser is built.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate `items`, showing a bar on stderr only when stderr is a terminal."""
    from tqdm import tqdm

    yield from tqdm(items, desc=description, total=total, unit="file", file=sys.stderr,
                    disable=not sys.stderr.isatty(), leave=False)
