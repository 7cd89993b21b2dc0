"""Turn raw attribute values from a file (str, numbers, dates, NaN, numpy arrays) into typed column values."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from grid_mgmt.imports.layers import Column

_DATE = re.compile(r"(\d{4})[-/.]?(\d{1,2})[-/.]?(\d{1,2})(?:[T ].*)?")
_TRUE = {"1", "true", "t", "yes", "y", "是", "on"}
_FALSE = {"0", "false", "f", "no", "n", "否", "off"}


def to_list(values: Sequence[Any] | np.ndarray[Any, Any]) -> list[Any]:
    """Plain Python objects (numpy arrays go through `tolist`, NaT/NaN become None later)."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "M":
            return list(values.astype("datetime64[D]").tolist())
        return list(values.tolist())
    return list(values)


def _text_of(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, float):
        if math.isnan(v):
            return None
        return str(int(v)) if v.is_integer() and abs(v) < 1e18 else repr(v)
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    text = str(v).strip()
    return text or None


def as_text(values: Sequence[Any] | np.ndarray[Any, Any]) -> list[str | None]:
    """Strings stripped of surrounding blanks; '' / None / NaN → None; 42.0 → '42' (numeric DBF fields)."""
    return [(v.strip() or None) if type(v) is str else _text_of(v) for v in to_list(values)]


def _int_of(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if not v.is_integer():
            raise ValueError
        return int(v)
    text = str(v).strip()
    try:
        return int(text)
    except ValueError:
        f = float(text)
        if not f.is_integer():
            raise
        return int(f)


def _float_of(v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError
    f = float(v)
    if not math.isfinite(f):
        raise ValueError
    return f


def _date_of(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    m = _DATE.fullmatch(str(v).strip())
    if m is None:
        raise ValueError
    return dt.date(int(m[1]), int(m[2]), int(m[3]))


def _json_of(v: Any) -> str:
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False, default=str)
    parsed = json.loads(str(v))
    if not isinstance(parsed, dict):
        raise ValueError
    return json.dumps(parsed, ensure_ascii=False)


def _bool_of(v: Any) -> bool:
    if isinstance(v, bool | np.bool_):
        return bool(v)
    text = str(v).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError


_PARSERS = {"int": _int_of, "float": _float_of, "date": _date_of, "json": _json_of, "bool": _bool_of}
_EXPECTED = {
    "int": "a whole number",
    "float": "a number",
    "date": "a date (YYYY-MM-DD)",
    "json": "a JSON object",
    "bool": "true or false",
}


def _is_null(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def convert(col: Column, values: Sequence[Any] | np.ndarray[Any, Any]) -> tuple[list[Any], dict[int, str]]:
    """Typed values for `col` (None for empty cells) and a message per bad value, by position."""
    errors: dict[int, str] = {}
    if col.kind == "text":
        out: list[Any] = as_text(values)
        if col.aliases:
            aliases = col.aliases
            out = [aliases.get(v, v) if v is not None else None for v in out]
        if col.choices is not None:
            allowed = set(col.choices)
            for i, v in enumerate(out):
                if v is None or v in allowed:
                    continue
                if v.lower() in allowed or v.upper() in allowed:  # "Intact", "a"
                    out[i] = v.lower() if v.lower() in allowed else v.upper()
                else:
                    errors[i] = f"{col.name} {v!r} is not one of {', '.join(col.choices)}"
        if col.max_len is not None:
            limit = col.max_len
            for i, v in enumerate(out):
                if v is not None and len(v) > limit and i not in errors:
                    errors[i] = f"{col.name} is {len(v)} characters long; at most {limit} allowed"
        return out, errors
    raw = to_list(values)
    if col.kind == "int" and isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        out = raw  # already whole numbers, no nulls possible
    else:
        parse = _PARSERS[col.kind]
        out = []
        append = out.append
        for i, v in enumerate(raw):
            if _is_null(v):
                append(None)
                continue
            try:
                append(parse(v))
            except (ValueError, TypeError, OverflowError):
                errors[i] = f"{col.name} {v!r} is not {_EXPECTED[col.kind]}"
                append(None)
    if col.minimum is not None or col.maximum is not None:
        for i, v in enumerate(out):
            if v is None:
                continue
            low_bad = col.minimum is not None and (v <= col.minimum if col.exclusive_min else v < col.minimum)
            if low_bad or (col.maximum is not None and v > col.maximum):
                lo = "" if col.minimum is None else f"{'>' if col.exclusive_min else '≥'} {col.minimum:g}"
                hi = "" if col.maximum is None else f"≤ {col.maximum:g}"
                errors[i] = f"{col.name} {v} is out of range (must be {' and '.join(p for p in (lo, hi) if p)})"
    return out, errors
