"""Cases kept as encoded JSON per API process, keyed by row version: the case list reads references, not rows.

A page of the list reads `(id, row_version, sort key)` for its 50 cases, takes each case's JSON from this cache
while its `row_version` is the one in the table (the trigger of migration 0009 bumps it on every UPDATE, whoever
writes), and reads in one statement only the cases it lacks. The JSON is `CaseRead` as Litestar encodes it, less
`next_actions`, which depend on the reader's roles: they are appended per (status, roles).

Why: a page of full rows cost PostgreSQL about 0.2 µs per value sent (50 rows × 42 columns), the API decoding
them, building `CaseRead`s and encoding them again — for cases that mostly had not changed since the last page.

Staleness cannot happen through a missed change: every UPDATE of a case changes its row version, and a
cached entry is used only for the row version just read. A class named otherwise in the class dictionary empties
the cache. Entries leave in insertion order once `capacity` is reached.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from grid_mgmt.cases.lifecycle import Status, actions_for
from grid_mgmt.cases.repository import CASE_COLUMNS, CASE_FROM, ClassFacts, class_dictionary, to_case
from grid_mgmt.lib.sql import Source

ROW_SQL = f"SELECT {CASE_COLUMNS}, c.row_version {CASE_FROM}"
"""A case as `to_case` reads it and, last, its row version."""

_ACTIONS_TAIL = b'"next_actions":[]}'


@dataclass(frozen=True, slots=True)
class Entry:
    row_version: int
    status: str
    head: bytes
    """The case's JSON up to and with `"next_actions":` (the actions and the closing brace follow)."""


@dataclass(slots=True)
class Stats:
    hits: int = 0
    misses: int = 0
    stale: int = 0
    """Misses of a case whose cached row version was older (it had changed)."""
    cleared: int = 0


class EncodedCases:
    """The per-process cache of encoded cases (see the module docstring)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.stats = Stats()
        self._entries: dict[int, Entry] = {}
        self._classes: dict[str, ClassFacts] | None = None
        self._tails: dict[frozenset[str], dict[str, bytes]] = {}
        self._encoder = msgspec.json.Encoder()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, refs: Sequence[Any]) -> tuple[list[Entry | None], list[int]]:
        """For references `(id, row_version, …)`: per reference its case as cached at that row version (None when it
        is not), and the ids of those not cached."""
        entries = self._entries
        found = [e if (e := entries.get(ref[0])) is not None and e.row_version == ref[1] else None for ref in refs]
        missing = [ref[0] for ref, e in zip(refs, found, strict=True) if e is None]
        if missing:
            self.stats.stale += sum(1 for case_id in missing if case_id in entries)
        self.stats.hits += len(refs) - len(missing)
        self.stats.misses += len(missing)
        return found, missing

    def add(self, rows: Sequence[Any]) -> dict[int, Entry]:
        """Encode rows of `ROW_SQL` (with the dictionary `check_classes` took) and keep them; returns them by id."""
        classes = self._classes or {}
        entries = self._entries
        added: dict[int, Entry] = {}
        for row in rows:
            case = to_case(row[:-1], classes, frozenset())
            body = self._encoder.encode(case)
            assert body.endswith(_ACTIONS_TAIL), "next_actions must be CaseRead's last field"
            entries.pop(row[0], None)  # a changed case moves to the young end
            entries[row[0]] = added[row[0]] = Entry(row[-1], case.status, body[: len(body) - 3])  # less `[]}`
        over = len(entries) - self.capacity
        if over > 0:
            for key in list(itertools.islice(entries, over)):  # the oldest
                del entries[key]
        return added

    def page(self, found: Sequence[Entry | None], roles: frozenset[str]) -> msgspec.Raw:
        """The JSON array of the cases `found`, in that order, with the `next_actions` of `roles` (joined once: a
        page is one allocation). None is left out: a case that left the reader's scope (or the table) between the
        two statements of a page."""
        tails = self._tails.get(roles) or self._tails_of(roles)
        parts: list[bytes] = []
        for entry in found:
            if entry is not None:
                parts += (b",", entry.head, tails[entry.status])
        if not parts:
            return msgspec.Raw(b"[]")
        parts[0] = b"["  # the first comma
        parts.append(b"]")
        return msgspec.Raw(b"".join(parts))

    def _tails_of(self, roles: frozenset[str]) -> dict[str, bytes]:
        """`"next_actions":` follows each head: the actions of `roles` per status, and the closing brace."""
        tails = {s.value: self._encoder.encode(actions_for(s.value, roles)) + b"}" for s in Status}
        self._tails[roles] = tails
        return tails

    async def check_classes(self, source: Source, rows: Sequence[Any] = ()) -> None:
        """Take the current class dictionary (cached for CLASSES_CACHE_S, read again when it lacks a class of
        `rows`); when it names or kinds a class otherwise than the one the entries were encoded with, empty them."""
        classes = await class_dictionary(source, rows)
        if classes is self._classes:
            return
        if self._classes is not None and _labels(classes) != _labels(self._classes):
            self._entries.clear()
            self.stats.cleared += 1
        self._classes = classes


def _labels(classes: dict[str, ClassFacts]) -> dict[str, tuple[str, str]]:
    return {code: (facts.name, facts.kind) for code, facts in classes.items()}
