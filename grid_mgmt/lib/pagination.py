"""Keyset pagination: an opaque cursor over the record code, a bounded page size."""

from __future__ import annotations

import base64
import binascii

from grid_mgmt.lib.errors import InvalidInput


def encode_cursor(last_key: str) -> str:
    """A URL-safe opaque cursor pointing after `last_key`."""
    return base64.urlsafe_b64encode(last_key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The key a cursor points after; a cursor we did not issue is a 422."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("cursor is not one this API issued", extra={"field": "cursor"}) from exc
    if not key or len(key) > 64:
        raise InvalidInput("cursor is not one this API issued", extra={"field": "cursor"})
    return key


def check_limit(limit: int | None, *, default: int, maximum: int) -> int:
    """The page size to use: the default when absent, 422 outside 1..maximum."""
    if limit is None:
        return default
    if limit < 1 or limit > maximum:
        raise InvalidInput(f"limit must be between 1 and {maximum}; got {limit}", extra={"field": "limit"})
    return limit
