"""Argon2id password hashes, computed in a worker thread: one hash costs ~50 ms and must not block the loop."""

from __future__ import annotations

import asyncio
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to verify against when the user is unknown, so both answers take the same time."""
    return _hasher.hash("no such user: this hash only burns the same time")


def _verify(password_hash: str | None, password: str) -> tuple[bool, bool]:
    try:
        ok = _hasher.verify(password_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False, False
    if password_hash is None:
        return False, False
    return ok, _hasher.check_needs_rehash(password_hash)


async def verify_password(password_hash: str | None, password: str) -> tuple[bool, bool]:
    """(matches, needs rehash with the current parameters); `None` (unknown user) costs the same and fails."""
    return await asyncio.to_thread(_verify, password_hash, password)


def hash_password_sync(password: str) -> str:
    """The argon2id hash of `password` with the current parameters (blocking; for threads and the CLI)."""
    return _hasher.hash(password)


async def hash_password(password: str) -> str:
    """The argon2id hash of `password`, computed off the event loop."""
    return await asyncio.to_thread(_hasher.hash, password)
