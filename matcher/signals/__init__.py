"""The registry of signal types; adding an algorithm adds its module and one line here."""

from __future__ import annotations

from matcher.signals.base import ImageHash, SignalType
from matcher.signals.local import LocalSignal
from matcher.signals.pdq import PdqSignal
from matcher.signals.phash import PhashSignal
from matcher.signals.sha256 import Sha256Signal
from matcher.signals.vpdq import VpdqSignal

SIGNAL_TYPES: dict[str, SignalType] = {
    signal.name: signal for signal in (PdqSignal(), PhashSignal(), Sha256Signal(), LocalSignal(),
                                       VpdqSignal())
}


def get_signal(name: str) -> SignalType:
    """The signal type called `name`; raises ValueError listing the known ones."""
    try:
        return SIGNAL_TYPES[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(SIGNAL_TYPES))
        raise ValueError(f"unknown algorithm {name!r}; known algorithms: {known}") from None


__all__ = ["SIGNAL_TYPES", "ImageHash", "SignalType", "get_signal"]
