"""Password hashing for review accounts: argon2id with stated parameters, a few at a time.

argon2 is meant to be expensive: each check takes ARGON2_MEMORY_KIB of memory for about a
tenth of a second. Unbounded, 40 concurrent login requests took 2.2 GB, and a review task on
AWS has 1 GiB, so a burst of logins (a guesser, or a shift starting) could kill the task. Every
hash and check therefore goes through a pool of CONCURRENT_CHECKS slots per process: the peak
is CONCURRENT_CHECKS x ARGON2_MEMORY_KIB = 128 MiB whatever arrives, and a request that waits
longer than SLOT_WAIT_SECONDS for a slot is told to try again (PasswordPoolBusy) instead of
queueing without end. Throttling (takedown/review/throttle.py) runs first, so a refused
guesser costs no argon2 at all.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Protocol

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

# RFC 9106's second recommended option (argon2-cffi's default today, stated here so that a new
# release cannot change it silently): 3 passes over 64 MiB, 4 lanes, argon2id.
ARGON2_TIME_COST = 3
ARGON2_MEMORY_KIB = 64 * 1024
ARGON2_PARALLELISM = 4
ARGON2_HASH_BYTES = 32
ARGON2_SALT_BYTES = 16

# Checks at once per process. Two keep both cores of a review task busy (about 20 logins a
# second) at a peak of 128 MiB; more would not log anyone in faster.
CONCURRENT_CHECKS = 2
# How long a login waits for a slot before it is asked to try again: 40 logins at once clear
# in about 2 s on two slots, so only a flood waits this long.
SLOT_WAIT_SECONDS = 5.0


class Hasher(Protocol):
    """What the pool needs of argon2-cffi's PasswordHasher (tests wrap one to count calls)."""

    def hash(self, password: str) -> str: ...

    def verify(self, hash: str, password: str) -> bool: ...


class PasswordPoolBusy(RuntimeError):
    """Every slot stayed taken for SLOT_WAIT_SECONDS: the login should be tried again."""


def argon2_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB,
                          parallelism=ARGON2_PARALLELISM, hash_len=ARGON2_HASH_BYTES,
                          salt_len=ARGON2_SALT_BYTES, type=Type.ID)


class PasswordPool:
    """At most `size` argon2 computations at once; the others wait up to `wait` seconds."""

    def __init__(self, hasher: Hasher | None = None, size: int = CONCURRENT_CHECKS,
                 wait: float = SLOT_WAIT_SECONDS) -> None:
        self.hasher: Hasher = hasher or argon2_hasher()
        self.size = size
        self.wait = wait
        self._slots = threading.BoundedSemaphore(size)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        if not self._slots.acquire(timeout=self.wait):
            raise PasswordPoolBusy("the server is busy checking other logins")
        try:
            yield
        finally:
            self._slots.release()

    def hash(self, password: str) -> str:
        with self.slot():
            return self.hasher.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        with self.slot():
            try:
                return self.hasher.verify(stored, password)
            except (VerificationError, InvalidHashError):
                return False


# The pool of this process: every review app and `haechi users add` in it shares the slots.
PASSWORDS = PasswordPool()
