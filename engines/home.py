"""Where Haechi keeps its data: one folder, chosen by HAECHI_HOME.

Every stage asks this module for its paths so that nothing is written anywhere else, and a test
or a second installation can point HAECHI_HOME at a folder of its own.

The folder holds victims' cases, hashes, matched files and the institution's keys, so it is
Haechi's user's alone: made mode 700, and tightened to 700 when found open to others (unless
it is no folder of Haechi's to change: someone else's, a shared one such as /tmp, or a home
folder; then a warning says so). The first time a process opens it, the process's umask
becomes 077, so every file written afterwards (SQLite and its WAL, index files, keys, logs,
object store files, exports), by whichever module writes it, is mode 600 without each open()
having to say so.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

import platformdirs

from engines.settings import current

log = logging.getLogger(__name__)

# Folders Haechi makes: its user may list, enter and write them; nobody else may even enter.
PRIVATE_FOLDER_MODE = 0o700
# Files Haechi creates where it says the mode itself (a new SQLite database).
PRIVATE_FILE_MODE = 0o600
# The permission bits of group and others: none of them may be set on what Haechi keeps, and
# the umask that clears them on everything a process creates once it has opened the data folder.
GROUP_OTHER_BITS = 0o077


def private_folder(path: Path) -> Path:
    """Make `path` and each missing parent with PRIVATE_FOLDER_MODE (mkdir -p would give the
    parents the umask's mode); a folder that exists is left as it is."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            folder.mkdir(mode=PRIVATE_FOLDER_MODE)
    return path


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` as `path` through a private temporary file beside it (mode 600) renamed
    into place, so a reader sees the old file or the whole new one, never half of it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _not_haechis(folder: Path, info: os.stat_result) -> str | None:
    """Why an existing data folder open to others must not be tightened, or None."""
    if info.st_uid != os.geteuid():
        return "it belongs to another user"
    if info.st_mode & stat.S_ISVTX:
        return "it is a shared folder (sticky bit, like /tmp)"
    with contextlib.suppress(RuntimeError, KeyError):  # no home folder known: nothing to spare
        home = Path.home().resolve()
        if folder.resolve() in (home, *home.parents):
            return "it is a home folder or holds one"
    return None


@functools.cache
def _opened(home: Path) -> None:
    """Once per process and folder: the umask set, the folder tightened."""
    umask = os.umask(GROUP_OTHER_BITS)
    if umask & ~GROUP_OTHER_BITS:  # it was stricter still: keep that
        os.umask(umask | GROUP_OTHER_BITS)
    info = home.stat()
    mode = stat.S_IMODE(info.st_mode)
    if not mode & GROUP_OTHER_BITS:
        return
    reason = _not_haechis(home, info)
    if reason is None:
        home.chmod(mode & ~GROUP_OTHER_BITS)
        log.info("data folder %s was open to other users (mode %o): now %o", home, mode,
                 mode & ~GROUP_OTHER_BITS)
    else:
        log.warning("data folder %s is open to other users (mode %o) and is left so, since "
                    "%s: point HAECHI_HOME at a folder of Haechi's own", home, mode, reason)


def data_home() -> Path:
    """The data folder: HAECHI_HOME if set, else the per-user data folder of the platform;
    made (or tightened to) PRIVATE_FOLDER_MODE, see the module docstring."""
    configured = current().home
    if configured:
        home = Path(configured).expanduser()
    else:
        home = Path(platformdirs.user_data_dir("haechi"))
    private_folder(home)
    _opened(home)
    return home


class KeySettingError(ValueError):
    """A key setting, or a key file kept in the data folder, that cannot be used; the message
    says how to fix it."""


def data_folder_key(name: str, make: Callable[[], bytes]) -> bytes:
    """The key kept in the data folder's file `name` (mode 600), made by `make()` on first use.

    The file is written whole to a private temporary file and then linked into place, so a
    process starting at the same moment reads either no file or the whole key, and when two
    make one at once the first link wins and both use it. For every setting whose default is
    a key of this installation: the audit key, the signing key (and its public half), the
    review app's session secret, the pseudonym key.
    """
    path = data_home() / name
    if not path.exists():
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(make())
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it first:
                os.link(temporary, path)  # theirs is the key
        finally:
            os.unlink(temporary)
    kept = path.read_bytes()
    if not kept.strip():
        raise KeySettingError(f"{path} is empty: remove it and a new key is made (what the "
                              "old one made will no longer verify)")
    return kept
