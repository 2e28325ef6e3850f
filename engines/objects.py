"""The object store for fetched media: one class per URL scheme, chosen by HAECHI_STORE.

Like Scrapy's feed storages, `open_store` picks the class from the scheme of the configured
URL: a plain path or `file://` keeps files in a local folder (the embedded default), `s3://`
keeps them in a bucket through boto3 (cluster mode; AWS_ENDPOINT_URL points boto3 at moto or
another S3-compatible server). Keys are content addresses, so a file fetched again from any
URL is stored once.

A local store's folders are made mode 700 and its files written 600 (a private temporary file
renamed into place), whatever the umask: the matched pictures of victims are among them, and
a store folder named by HAECHI_STORE may lie outside the private data folder.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from engines.home import data_home, private_folder, write_atomically
from engines.settings import current

if TYPE_CHECKING:
    from botocore.exceptions import ClientError


def media_key(sha256: str) -> str:
    """The content address of a file: fanned out so no folder holds millions of entries."""
    return f"media/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class ObjectStore(Protocol):
    """Where fetched bytes live. Implementations must make `put` of an existing key cheap."""

    uri: str

    def put(self, key: str, data: bytes) -> bool:
        """Store `data` under `key`; False when the key was already there (nothing written)."""

    def get(self, key: str) -> bytes:
        """The bytes under `key`; FileNotFoundError when there are none."""

    def exists(self, key: str) -> bool: ...

    def replace(self, key: str, data: bytes) -> None:
        """Store `data` under `key` whether or not it was there, atomically (a reader sees the
        old bytes or the new, whole): re-encryption under a rotated key."""

    def delete(self, key: str) -> None:
        """Remove `key` (nothing when it is not there): an encrypted case's plaintext copy."""


class LocalStore:
    """A folder on this machine; writes are atomic, so a crash never leaves half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uri = root.as_uri()
        private_folder(root)
        # The folder's own path, resolved once: each key then costs an lstat per component
        # of the key alone, not two resolutions of the whole path (35,000 lstat calls and
        # 1.5 s a crawl, issue 18).
        self._real = os.path.realpath(root)

    @classmethod
    def from_uri(cls, uri: str) -> LocalStore:
        parts = urlsplit(uri)
        return cls(Path(parts.path if parts.scheme == "file" else uri).expanduser())

    def _lookup(self, key: str) -> tuple[Path, bool, bool]:
        """`key`'s file, whether its folder exists and whether the file does. A key never
        leaves the store folder: an absolute key, a `..` component or a NUL is refused, and
        each existing component is checked for a symbolic link, which is followed only to a
        place inside the folder. Resolved once, from the folder's resolved path."""
        parts = key.split("/")
        if not key or key.startswith("/") or ".." in parts or "\0" in key:
            raise ValueError(f"object key escapes the store: {key!r}")
        parts = [part for part in parts if part not in ("", ".")]
        if not parts:
            raise ValueError(f"object key names the store itself: {key!r}")
        current = self._real
        for depth, part in enumerate(parts):
            current = os.path.join(current, part)
            try:
                mode = os.lstat(current).st_mode
            except (FileNotFoundError, NotADirectoryError):
                # Nothing below a missing component exists yet, so there is no link to follow.
                return Path(current, *parts[depth + 1:]), depth == len(parts) - 1, False
            if stat.S_ISLNK(mode):
                return self._followed(key, os.path.join(current, *parts[depth + 1:]))
        return Path(current), True, True

    def _followed(self, key: str, path: str) -> tuple[Path, bool, bool]:
        real = os.path.realpath(path)
        if real == self._real or not Path(real).is_relative_to(self._real):
            raise ValueError(f"object key escapes the store: {key!r}")
        return Path(real), os.path.isdir(os.path.dirname(real)), os.path.exists(real)

    def _path(self, key: str) -> Path:
        return self._lookup(key)[0]

    def exists(self, key: str) -> bool:
        return self._lookup(key)[2]

    def put(self, key: str, data: bytes) -> bool:
        path, folder, exists = self._lookup(key)
        if exists:
            return False
        self._write(path, data, folder)
        return True

    def replace(self, key: str, data: bytes) -> None:
        path, folder, _ = self._lookup(key)
        self._write(path, data, folder)

    @staticmethod
    def _write(path: Path, data: bytes, folder: bool = False) -> None:
        if not folder:
            private_folder(path.parent)
        write_atomically(path, data)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Store:
    """A bucket and key prefix, `s3://bucket/prefix`, through boto3."""

    def __init__(self, bucket: str, prefix: str) -> None:
        import boto3  # imported here: the embedded default never needs it loaded

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.client = boto3.client("s3")

    @classmethod
    def from_uri(cls, uri: str) -> S3Store:
        parts = urlsplit(uri)
        if not parts.netloc:
            raise ValueError(f"an S3 store needs a bucket: {uri!r} (use s3://bucket/prefix)")
        return cls(parts.netloc, parts.path)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def put(self, key: str, data: bytes) -> bool:
        if self.exists(key):
            return False
        self.replace(key, data)
        return True

    def replace(self, key: str, data: bytes) -> None:
        """In a versioned bucket (Object Lock) the old version is kept until it may expire."""
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _missing(exc):  # one error for a missing object, whatever the store
                raise FileNotFoundError(f"{self.uri}/{key}") from exc
            raise
        return response["Body"].read()

    def delete(self, key: str) -> None:
        """Delete `key`; in a versioned bucket the old version stays until its lifecycle rule
        expires it (infra/terraform: a day for the media bucket)."""
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def _missing(exc: ClientError) -> bool:
    """Whether boto3's ClientError says the object is not there."""
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


STORES: dict[str, type] = {"": LocalStore, "file": LocalStore, "s3": S3Store}


def store_uri() -> str:
    """HAECHI_STORE if set, else the `objects` folder in the data folder."""
    return current().store or str(data_home() / "objects")


def open_store(uri: str | None = None) -> ObjectStore:
    """The store for `uri` (default: `store_uri()`), by its scheme."""
    uri = uri or store_uri()
    scheme = urlsplit(uri).scheme
    if len(scheme) == 1:  # a Windows drive letter, not a scheme
        scheme = ""
    try:
        store_class = STORES[scheme]
    except KeyError:
        raise ValueError(
            f"HAECHI_STORE {uri!r}: no store for scheme {scheme!r} "
            f"(known: a folder path, file://, s3://)"
        ) from None
    return store_class.from_uri(uri)
