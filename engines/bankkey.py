"""The victim bank's key: registered hashes kept with the care of the pictures themselves.

A hash is no picture, but a PDQ or pHash code finds the picture wherever it is posted, and a
row tells who registered it; whoever reads the database (a backup, a replica, a dump) must learn
neither. So the bank keeps each code encrypted (AES-256-GCM, a random nonce per row, bound to
its algorithm, digest and victim) and beside it a digest, an HMAC-SHA256 of algorithm and code
under a second key, which finds exact (SHA-256) matches and repeated registrations without
decrypting anything. The saved search indexes are encrypted too. Both keys are derived
(HKDF-SHA256) from one setting, HAECHI_BANK_KEY, else a random key kept in the data folder.

Ground floor: the matcher's bank and index, and the revision that encrypted the rows of banks
written before (engines/migrations/versions/0006_bank_sealed.py), use it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import os
import secrets
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engines.home import KeySettingError, data_folder_key, data_home
from engines.settings import ConfigurationError, current

KEY_VARIABLE = "HAECHI_BANK_KEY"
KEY_FILE = "bank.key"
# As for the audit key: 32 random characters or more (`openssl rand -hex 32` gives 64); a
# shorter one is a password someone chose and is refused.
MIN_KEY_CHARS = 32
# Named in what each derived key is for, and in every row's and file's associated data, so a
# sealed code cannot be passed off as an index file, nor one row's code as another's.
ENCRYPTION_INFO = b"haechi-bank/encryption/1"
DIGEST_INFO = b"haechi-bank/digest/1"
ROW_FORMAT = b"haechi-bank-row/1"
# The first bytes of a sealed index file; a file without them is no sealed index (a plaintext
# one written before the bank was encrypted, or something else).
FILE_MAGIC = b"HAECHI-BANK-INDEX/1\n"
# The folder of the data folder the bank saves its indexes in (one `<algorithm>.index` each).
INDEX_FOLDER = "index"
NONCE_BYTES = 12
TAG_BYTES = 16
# Index files are encrypted and decrypted in pieces this size: a saved index of 10M hashes is
# about 3 GB, more than one AES-GCM call takes (2 GiB), and its ciphertext is never in memory
# whole.
FILE_CHUNK = 16 * 1024 * 1024


class BankKeyError(KeySettingError, ConfigurationError):
    """The bank's key cannot be used, or is not the key its hashes were written under; the
    message says how to fix it (and the command line exits 3 with it)."""


@functools.cache
def _key_in(folder: str) -> bytes:
    del folder  # the cache key: the data folder the key file is in
    return data_folder_key(KEY_FILE, lambda: secrets.token_hex(32).encode()).strip()


def _configured() -> bytes | None:
    configured = current().bank_key
    if not configured:
        return None
    if len(configured) < MIN_KEY_CHARS:
        raise BankKeyError(f"{KEY_VARIABLE} is {len(configured)} characters: it must be at "
                           f"least {MIN_KEY_CHARS} random ones (`openssl rand -hex 32`)")
    return configured.encode()


def bank_key() -> bytes:
    """HAECHI_BANK_KEY, else a random key kept (mode 600) in the data folder.

    Every process that registers or matches must use the same key: in cluster mode set
    HAECHI_BANK_KEY (the services do not share a data folder).
    """
    return _configured() or _key_in(str(data_home()))


def key_for_existing_rows(database: str | None) -> bytes:
    """The key to encrypt a bank's existing rows under, for a database at SQLite path
    `database` (None: another database).

    Rows encrypted under a key kept in the data folder of whichever process happened to
    migrate would be lost to every other process, and to that one once its folder is gone: the
    data folder's key serves only a database in that folder, and any other needs
    HAECHI_BANK_KEY.
    """
    configured = _configured()
    if configured:
        return configured
    home = data_home()
    if database and Path(database).resolve().is_relative_to(home.resolve()):
        return _key_in(str(home))
    raise BankKeyError(f"the victim bank's existing hashes are to be encrypted, and this "
                       f"database is not the data folder's: set {KEY_VARIABLE} to the key every "
                       "process that registers or matches will use (`openssl rand -hex 32`), "
                       "then upgrade again")


def _derived(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


class BankCipher:
    """The bank's two keys: one seals codes and index files, the other makes digests."""

    def __init__(self, key: bytes) -> None:
        self._encryption = _derived(key, ENCRYPTION_INFO)
        self._rows = AESGCM(self._encryption)
        self._digests = _derived(key, DIGEST_INFO)

    def digest(self, algorithm: str, code: bytes) -> str:
        """The keyed digest of `code` under `algorithm`: equal codes, equal digests, and
        nothing of the code without the key."""
        message = algorithm.encode() + b"\0" + code
        return hmac.new(self._digests, message, hashlib.sha256).hexdigest()

    @staticmethod
    def _row_data(algorithm: str, digest: str, victim: str) -> bytes:
        return b"\0".join((ROW_FORMAT, algorithm.encode(), digest.encode(), victim.encode()))

    def seal(self, algorithm: str, digest: str, victim: str, code: bytes) -> bytes:
        """`code` encrypted for the row of `victim` whose digest is `digest`."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._rows.encrypt(nonce, code, self._row_data(algorithm, digest,
                                                                      victim))

    def unseal(self, algorithm: str, digest: str, victim: str, sealed: bytes) -> bytes:
        """The code sealed in a row; BankKeyError when it does not decrypt with this key."""
        try:
            return self._rows.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:],
                                      self._row_data(algorithm, digest, victim))
        except InvalidTag:
            raise BankKeyError(
                f"the victim bank's hashes do not decrypt with this key ({KEY_VARIABLE}, else "
                f"{KEY_FILE} in the data folder): set the key they were registered under (or "
                "a row was altered)") from None

    def write_file(self, handle: BinaryIO) -> SealedFile:
        """A file-like object that encrypts what is written to it into `handle`."""
        return SealedFile(self._encryption, handle)

    def read_file(self, path: Path) -> io.BytesIO | None:
        """The decrypted content of the sealed file at `path`, or None when it is none (no
        such file, not sealed, another key, altered or cut short)."""
        prefix = len(FILE_MAGIC) + NONCE_BYTES
        try:
            size = path.stat().st_size
            with path.open("rb") as handle:
                header = handle.read(prefix)
                if size < prefix + TAG_BYTES or not header.startswith(FILE_MAGIC):
                    return None
                handle.seek(size - TAG_BYTES)
                tag = handle.read(TAG_BYTES)
                handle.seek(prefix)
                decryptor = Cipher(algorithms.AES(self._encryption),
                                   modes.GCM(header[len(FILE_MAGIC):], tag)).decryptor()
                decryptor.authenticate_additional_data(FILE_MAGIC)
                plain = io.BytesIO()
                left = size - prefix - TAG_BYTES
                while left > 0:
                    chunk = handle.read(min(FILE_CHUNK, left))
                    if not chunk:  # cut short since its size was read
                        return None
                    plain.write(decryptor.update(chunk))
                    left -= len(chunk)
                plain.write(decryptor.finalize())
        except (OSError, InvalidTag):
            return None
        plain.seek(0)
        return plain


class SealedFile(io.RawIOBase):
    """Write-only: AES-256-GCM over everything written, the magic and nonce first and the tag
    last, once `close()` is called. np.savez writes to it as to a file it cannot seek in."""

    def __init__(self, key: bytes, handle: BinaryIO) -> None:
        super().__init__()
        nonce = os.urandom(NONCE_BYTES)
        self._handle = handle
        self._encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
        self._encryptor.authenticate_additional_data(FILE_MAGIC)
        handle.write(FILE_MAGIC + nonce)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        for start in range(0, len(view), FILE_CHUNK):
            self._handle.write(self._encryptor.update(view[start:start + FILE_CHUNK]))
        return len(view)

    def close(self) -> None:
        if not self.closed:
            self._handle.write(self._encryptor.finalize() + self._encryptor.tag)
            self._handle.flush()
        super().close()


def drop_unsealed(path: Path) -> bool:
    """Delete the index file at `path` if it is not sealed: a copy saved before the bank was
    encrypted holds victims' hashes in the clear (and is rebuilt, sealed, from the rows)."""
    try:
        with path.open("rb") as handle:
            if handle.read(len(FILE_MAGIC)) == FILE_MAGIC:
                return False
        path.unlink()
    except OSError:
        return False
    return True


@functools.cache
def _cipher_for(key: bytes) -> BankCipher:
    return BankCipher(key)


def bank_cipher() -> BankCipher:
    """The cipher of this process's bank key (see `bank_key`)."""
    return _cipher_for(bank_key())
