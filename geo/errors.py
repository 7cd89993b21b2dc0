"""Error type raised by the geo toolkit for every bad input (maps to an HTTP 4xx/422)."""

from __future__ import annotations

__all__ = ["GeoInputError"]


class GeoInputError(ValueError):
    """Bad spatial input: a message for humans plus optional field name and item index.

    ``field`` names the offending request field (``"bbox"``, ``"crs"``, ``"geometry"`` …) and
    ``index`` the position of the offending item in a batch (feature number, row number …).
    """

    message: str
    field: str | None
    index: int | None

    def __init__(self, message: str, *, field: str | None = None, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.index = index

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"GeoInputError({self.message!r}, field={self.field!r}, index={self.index!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keep keyword-only attributes when pickled (e.g. sent across worker processes).
        return (_rebuild, (self.message, self.field, self.index))


def _rebuild(message: str, field: str | None, index: int | None) -> GeoInputError:
    return GeoInputError(message, field=field, index=index)
