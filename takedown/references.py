"""Where a case's file is, as notices and X-ARF reports name it: the case's reference, and
for a segment of a streamed video the stream's manifest and the time in the video.

Apart from takedown/notices.py so the notice text and the X-ARF reports (takedown/xarf.py)
read one definition without the two modules importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def reference_of(case_id: int) -> str:
    return f"HAECHI-{case_id:06d}"


def video_time(seconds: float) -> str:
    """A second of a video as players show it, H:MM:SS (the second it falls in: 754.6 is
    0:12:34, where a player seeking to 12:34 shows the frame)."""
    whole = max(0, int(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def stream_of(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """Where a case's file is in its streamed video: the manifest's URL, the segment's, the
    segment's start and the time of the match (H:MM:SS); None for a file that is no segment
    of a stream."""
    if not row.get("manifest_url"):
        return None
    second = row.get("second")
    if second is None:
        second = row.get("segment_start") or 0.0
    return {"manifest_url": row["manifest_url"], "segment_url": row["image_url"],
            "segment_start": row.get("segment_start"), "time": video_time(second)}
