"""Stored media sealed at rest: with HAECHI_EVIDENCE_KEY set, the media store's copy of a matched
file is kept encrypted (`<key>.enc`) instead of as fetched. Ground floor: the matcher (re-scan,
Celery tasks) and takedown (evidence, previews) read stored files through `media_bytes`, so
none of them has to know whether a case has sealed the copy yet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from engines.settings import current

if TYPE_CHECKING:
    from engines.objects import ObjectStore

KEY_VARIABLE = "HAECHI_EVIDENCE_KEY"
# A sealed media copy's key: the plaintext copy's key plus this, so that it is found from the
# store key a case, a crawl record or a match task already holds.
SEALED_SUFFIX = ".enc"


class SealedMediaError(ValueError):
    """An encrypted copy that cannot be read (no key, a wrong key, altered); says why."""


def media_cipher() -> MultiFernet | None:
    """The cipher of HAECHI_EVIDENCE_KEY, or None when it is not set.

    The setting may name several keys, comma-separated, to rotate them: the first encrypts,
    every one decrypts, and `haechi cases rekey` re-encrypts what is kept under the first, after
    which the others can be dropped (Fernet's MultiFernet).
    """
    keys = [key.strip() for key in (current().evidence_key or "").split(",") if key.strip()]
    if not keys:
        return None
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise SealedMediaError(f"{KEY_VARIABLE} is not a valid key (make one with "
                               "`python -c 'from cryptography.fernet import Fernet; "
                               "print(Fernet.generate_key().decode())'`)") from exc


def decrypted(read: Callable[[], bytes], what: str) -> bytes:
    """`read()`'s token decrypted with HAECHI_EVIDENCE_KEY (read only when the key is set)."""
    cipher = media_cipher()
    if cipher is None:
        raise SealedMediaError(f"{KEY_VARIABLE} is not set: the {what} cannot be read")
    try:
        return cipher.decrypt(read())
    except InvalidToken as exc:
        raise SealedMediaError(f"the {what} does not decrypt with this key, or was "
                               "altered") from exc


def rekeyed(media: ObjectStore, key: str) -> bool:
    """Re-encrypt the token kept under `key` in `media` with the first HAECHI_EVIDENCE_KEY
    (written over the old one); False when there is none there. A token no key reads is a
    SealedMediaError, and nothing is written."""
    cipher = media_cipher()
    if cipher is None:
        raise SealedMediaError(f"{KEY_VARIABLE} is not set: there is no key to rotate to")
    if not media.exists(key):
        return False
    try:
        media.replace(key, cipher.rotate(media.get(key)))
    except InvalidToken as exc:
        raise SealedMediaError(f"{key} does not decrypt with any key of {KEY_VARIABLE}, or was "
                               "altered") from exc
    return True


def sealed_key(store_key: str) -> str:
    """Where the sealed (encrypted) form of the media copy under `store_key` is kept."""
    return f"{store_key}{SEALED_SUFFIX}"


def media_bytes(media: ObjectStore, store_key: str) -> bytes:
    """The bytes of the stored file under `store_key`: its plaintext copy, or its sealed one
    once a case has sealed it. FileNotFoundError when neither is there."""
    sealed = sealed_key(store_key)
    # The sealed copy is looked for first, since sealing writes it before deleting the other.
    if media.exists(sealed) and (media_cipher() is not None or not media.exists(store_key)):
        return decrypted(lambda: media.get(sealed), "sealed media copy")
    return media.get(store_key)
