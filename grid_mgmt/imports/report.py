"""The result of an import: per-feature problems grouped by kind, counts, and a readable text form."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

PROBLEM_KINDS = (
    "read_error",
    "missing_field",
    "malformed_code",
    "duplicate_code",
    "wrong_geometry_type",
    "invalid_geometry",
    "bad_value",
    "unknown_reference",
    "crosses_community",
    "outside_grids",
    "database_error",  # the database refused the write for a reason that is not the data (privileges, locks …)
)

#: Problems kept per kind; the rest are summarised by one file-level problem of that kind.
MAX_PER_KIND = 10_000


@dataclass
class Problem:
    """Something wrong with one feature (`index`, 0-based in the file) or with the whole file (`index` None)."""

    index: int | None
    code: str | None
    kind: str
    message: str

    def __str__(self) -> str:
        where = "file" if self.index is None else f"#{self.index}"
        code = f" {self.code}" if self.code else ""
        return f"{where}{code}: {self.message}"


@dataclass
class ImportReport:
    """What happened: `inserted`/`updated` rows (both 0 when rejected or dry-run) and every problem found."""

    layer: str
    total: int
    inserted: int
    updated: int
    problems: list[Problem]
    seconds: float
    dry_run: bool = False
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def unchanged(self) -> int:
        """Existing rows the file repeats exactly (not rewritten)."""
        return self.total - self.inserted - self.updated if self.ok else 0

    @property
    def ok(self) -> bool:
        """True when nothing is wrong (the rows were written, or would be on a dry run)."""
        return not self.problems

    @property
    def rate(self) -> float:
        """Features per second."""
        return self.total / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line: what was written, or why nothing was."""
        if not self.ok:
            n = len(self.problems)
            return (
                f"{self.layer}: REJECTED, nothing written: {n:,} problem{'s' if n != 1 else ''} in "
                f"{self.total:,} feature{'s' if self.total != 1 else ''}"
            )
        if self.dry_run:
            done = (
                f"would insert {self.inserted:,}, update {self.updated:,}, leave {self.unchanged:,} unchanged"
                " (dry run, nothing written)"
            )
        else:
            done = f"inserted {self.inserted:,}, updated {self.updated:,}, unchanged {self.unchanged:,}"
        return f"{self.layer}: {self.total:,} features, {done} in {self.seconds:.2f} s ({self.rate:,.0f} features/s)"

    def to_text(self, limit: int = 50) -> str:
        """The summary, then the problems grouped by kind (at most `limit` lines per kind)."""
        lines = [self.summary()]
        if self.ignored_columns:
            lines.append(f"ignored fields (no such column): {', '.join(self.ignored_columns)}")
        counts = Counter(p.kind for p in self.problems)
        order = {k: i for i, k in enumerate(PROBLEM_KINDS)}
        for kind in sorted(counts, key=lambda k: (order.get(k, len(order)), k)):
            items = [p for p in self.problems if p.kind == kind]
            lines.append(f"{kind} ({counts[kind]:,}):")
            for p in items[: max(limit, 0)]:
                lines.append(f"  {p}")
            if len(items) > limit:
                lines.append(f"  … and {len(items) - limit:,} more")
        return "\n".join(lines)


class Problems:
    """Collects problems, keeping at most MAX_PER_KIND per kind plus a count of the rest."""

    def __init__(self, codes: list[str | None] | None = None) -> None:
        self.items: list[Problem] = []
        self.codes = codes
        self._per_kind: Counter[str] = Counter()
        self.read_errors: set[int] = set()

    def __len__(self) -> int:
        return sum(self._per_kind.values())

    def __bool__(self) -> bool:
        return bool(self._per_kind)

    def add(self, index: int | None, kind: str, message: str, code: str | None = None) -> None:
        if index is not None and index in self.read_errors and kind != "read_error":
            return  # a feature that could not be read has no other problem worth listing
        self._per_kind[kind] += 1
        if self._per_kind[kind] > MAX_PER_KIND:
            return
        if code is None and index is not None and self.codes is not None and 0 <= index < len(self.codes):
            code = self.codes[index]
        self.items.append(Problem(index, code, kind, message))

    def add_many(self, pairs: Iterable[tuple[int, str]], kind: str) -> None:
        for index, message in pairs:
            self.add(index, kind, message)

    def finish(self) -> list[Problem]:
        """The problems sorted by feature index (file-level first), with a note per truncated kind."""
        items = sorted(self.items, key=lambda p: (-1 if p.index is None else p.index, p.kind))
        for kind, n in self._per_kind.items():
            if n > MAX_PER_KIND:
                items.append(Problem(None, None, kind, f"… and {n - MAX_PER_KIND:,} more features with this problem"))
        return items
