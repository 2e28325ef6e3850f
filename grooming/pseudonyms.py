"""Keyed pseudonyms: a speaker's name becomes `P-` and ten hex digits of an HMAC, so the same
person keeps one pseudonym across files and runs, and nobody without the key can go back from
the pseudonym to the name (a plain hash of a name is reversed by hashing a list of names).

The key is HAECHI_PSEUDONYM_KEY, or a random key kept in the data folder (mode 0600), made on
first use.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from engines.home import data_folder_key
from engines.settings import current


def _key() -> bytes:
    configured = current().pseudonym_key
    if configured:
        return configured.encode()
    return data_folder_key("pseudonym.key", lambda: secrets.token_hex(32).encode()).strip()


class Pseudonymiser:
    def __init__(self, key: bytes | None = None) -> None:
        self.key = key if key is not None else _key()

    def __call__(self, name: str, kind: str = "P") -> str:
        digest = hmac.new(self.key, name.strip().casefold().encode(), hashlib.sha256)
        return f"{kind}-{digest.hexdigest()[:10]}"
