"""Pure rules of Open311: parameter checks (an empty parameter is absent), statuses, the public timeline, answers to
a service's questions. Every refusal is a 400 naming the parameter."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from geo.errors import GeoInputError
from geo.validate import parse_bbox
from grid_mgmt.cases.lifecycle import TERMINAL, Status
from grid_mgmt.lib.errors import DomainError

CLOSED: tuple[str, ...] = tuple(sorted(str(s) for s in TERMINAL))
"""Detailed statuses Open311 calls `closed`."""
OPEN: tuple[str, ...] = tuple(str(s) for s in Status if s not in TERMINAL and s != Status.MERGED)
"""Detailed statuses Open311 calls `open` (merged duplicates are not service requests of their own)."""

STATUS_NOTES: dict[str, str] = {
    "verifying": "Received; a grid worker will verify it on site",
    "reported": "Verified; waiting to be registered",
    "registered": "Registered; waiting to be sent to the responsible agency",
    "dispatched": "Sent to the responsible agency",
    "handling": "The responsible agency is working on it",
    "handled": "The agency reports it fixed; waiting for an on-site check",
    "checking": "A grid worker is checking the work on site",
    "checked": "Checked on site; about to be closed",
    "shelved": "Deferred: it cannot be solved for now",
    "closed": "Fixed and closed",
    "rejected": "Not accepted: nothing to act on was found, or it is not a matter of city management",
    "declined": "Not registered as a case",
    "cancelled": "Cancelled",
}
"""`status_notes` of each detailed status (fixed public wording: never a note somebody typed)."""

NOTES: dict[str, tuple[str, str, bool]] = {
    "report": ("opened", "Request received", False),
    "verify_pass": ("verified", "Verified on site", False),
    "verify_fail": ("closed", "Not confirmed on site", False),
    "register": ("accepted", "Registered", False),
    "reject": ("closed", "Not accepted", False),
    "decline": ("closed", "Not registered", False),
    "self_handle": ("resolved", "Fixed on the spot by the grid worker", False),
    "dispatch": ("assigned", "Sent to", True),
    "forward": ("assigned", "Passed on to", True),
    "acknowledge": ("in_progress", "Taken up by", True),
    "send_back": ("activity", "Returned for another agency", False),
    "feed_back": ("resolved", "Reported fixed by", True),
    "request_check": ("activity", "On-site check requested", False),
    "check_pass": ("activity", "Check passed", False),
    "check_fail": ("activity", "Check failed: back for rework", False),
    "close": ("closed", "Closed", False),
    "reopen": ("reopened", "Reopened: it was not really fixed", False),
    "shelve": ("activity", "Deferred", False),
    "unshelve": ("activity", "Taken up again", False),
    "split": ("activity", "Handled as a request of its own", False),
    "cancel": ("closed", "Cancelled", False),
    "overdue": ("overdue", "Past its deadline", False),
}
"""Timeline action → (note type, summary, summary followed by the agency's name). Actions not listed (urging,
postponement requests, warnings) stay internal; notes never carry the typed note, a person or a contact."""

MAX_IDS = 100
DEFAULT_RADIUS_M = 1000.0
MAX_DESCRIPTION = 4000
MAX_STRING = 500
_CASE_NO = re.compile(r"[0-9A-Za-z-]{1,20}")
_SERVICE_CODE = re.compile(r"[CE][0-9]{4,5}")
_UNSENDABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


class BadParameter(DomainError):
    """A parameter Open311 cannot use: malformed, out of range, inconsistent (HTTP 400)."""

    status_code = 400


def _bad(field: str, detail: str) -> BadParameter:
    return BadParameter(detail, extra={"field": field})


def present(value: str | None) -> str | None:
    """The parameter's value, or None when it is missing or empty (Open311: an empty parameter is absent)."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def text_value(value: str | None) -> str | None:
    """A text field without the characters that cannot travel in XML; None when empty."""
    value = present(value)
    return _UNSENDABLE.sub("", value) if value is not None else None


def id_list(value: str | None, field: str, pattern: re.Pattern[str], shape: str) -> tuple[str, ...]:
    """A comma-separated list (`a,b,c`): each item of the shape, at most MAX_IDS, repeats dropped."""
    items: list[str] = []
    for part in (present(value) or "").split(","):
        item = part.strip()
        if not item:
            continue
        if not pattern.fullmatch(item):
            raise _bad(field, f"{field} {item!r} is not {shape}")
        if item not in items:
            items.append(item)
    if len(items) > MAX_IDS:
        raise _bad(field, f"{field} lists {len(items)} values; at most {MAX_IDS}")
    return tuple(items)


def request_ids(value: str | None) -> tuple[str, ...]:
    return id_list(value, "service_request_id", _CASE_NO, "a service request id (a case number)")


def service_codes(value: str | None) -> tuple[str, ...]:
    return id_list(value, "service_code", _SERVICE_CODE, "a service code such as E0102")


def statuses(value: str | None) -> tuple[str, ...]:
    """`open`, `closed` or both → the detailed statuses they stand for (empty: any)."""
    wanted = [s.strip().lower() for s in (present(value) or "").split(",") if s.strip()]
    unknown = [s for s in wanted if s not in ("open", "closed")]
    if unknown:
        raise _bad("status", f"status {unknown[0]!r} is not open or closed (or both: open,closed)")
    if not wanted or set(wanted) == {"open", "closed"}:
        return ()
    return OPEN if wanted[0] == "open" else CLOSED


def moment(value: str | None, field: str, tz: ZoneInfo, *, end: bool = False) -> dt.datetime | None:
    """An ISO 8601 date-time (`2026-03-01T08:00:00+08:00`, `…Z`) or date; without an offset it is `tz`'s time.
    A bare date is the start of that day, or with `end` the end of it."""
    text = present(value)
    if text is None:
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text) + dt.timedelta(days=1 if end else 0)
            return dt.datetime.combine(day, dt.time(), tz)
        parsed = dt.datetime.fromisoformat(text.replace(" ", "T", 1).replace("z", "Z"))
    except ValueError:
        raise _bad(
            field, f"{field} {text!r} is not an ISO 8601 date-time such as 2026-03-01T08:00:00+08:00 (or a date)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)


def window(
    start: dt.datetime | None, end: dt.datetime | None, now: dt.datetime, max_days: int
) -> tuple[dt.datetime, dt.datetime | None]:
    """The requested_datetime range: without dates the last `max_days` days; one date alone spans `max_days` from
    it; more than `max_days` between them, or an end before the start, is 400."""
    span = dt.timedelta(days=max_days)
    if start is None and end is None:
        return now - span, None
    if start is None:
        assert end is not None
        return end - span, end
    if end is None:
        return start, start + span
    if end < start:
        raise _bad("end_date", "end_date is before start_date")
    if end - start > span:
        raise _bad(
            "end_date",
            f"start_date and end_date are {(end - start).days} days apart; at most {max_days} days at once",
        )
    return start, end


def number(value: str | None, field: str) -> float | None:
    text = present(value)
    if text is None:
        return None
    try:
        result = float(text)
    except ValueError:
        raise _bad(field, f"{field} {text!r} is not a number") from None
    if not math.isfinite(result):
        raise _bad(field, f"{field} must be a finite number")
    return result


def point(lat: str | None, long: str | None) -> tuple[float, float] | None:
    """(lon, lat) in WGS84 from the `lat` and `long` parameters, both or neither."""
    y, x = number(lat, "lat"), number(long, "long")
    if (x is None) != (y is None):
        field = "long" if x is None else "lat"
        raise _bad(field, f"{field} is missing: lat and long go together")
    if x is None or y is None:
        return None
    if not -90 <= y <= 90:
        raise _bad("lat", f"lat {y:g} is outside -90 … 90")
    if not -180 <= x <= 180:
        raise _bad("long", f"long {x:g} is outside -180 … 180")
    return x, y


def radius(value: str | None, where: tuple[float, float] | None, max_m: float) -> float | None:
    """The search radius in metres around `where` (default DEFAULT_RADIUS_M, at most `max_m`)."""
    r = number(value, "radius")
    if where is None:
        if r is not None:
            raise _bad("radius", "radius needs lat and long: the centre of the search")
        return None
    r = min(DEFAULT_RADIUS_M, max_m) if r is None else r
    if r <= 0:
        raise _bad("radius", f"radius must be more than 0 metres; got {r:g}")
    if r > max_m:
        raise _bad("radius", f"radius {r:g} m is too big: at most {max_m:g} m")
    return r


def bbox(value: str | None, max_deg: float) -> tuple[float, float, float, float] | None:
    text = present(value)
    if text is None:
        return None
    try:
        return parse_bbox(text, max_span_deg=max_deg)
    except GeoInputError as exc:
        raise _bad("bbox", exc.message) from None


def whole(value: str | None, field: str, default: int, low: int, high: int) -> int:
    text = present(value)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit():
        raise _bad(field, f"{field} {text!r} is not a whole number")
    result = int(text)
    if not low <= result <= high:
        raise _bad(field, f"{field} must be between {low} and {high}; got {result}")
    return result


def flag(value: str | None, field: str) -> bool:
    text = (present(value) or "false").lower()
    if text not in ("true", "false", "1", "0"):
        raise _bad(field, f"{field} {text!r} is not true or false")
    return text in ("true", "1")


@dataclass(frozen=True, slots=True)
class RequestQuery:
    """A checked `GET requests`: ids override every other filter (as the spec says)."""

    ids: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    updated_after: dt.datetime | None = None
    where: tuple[float, float] | None = None
    radius_m: float | None = None
    bbox: tuple[float, float, float, float] | None = None
    page: int = 1
    page_size: int = 1000
    extensions: bool = False


def request_query(
    params: Mapping[str, str | None], now: dt.datetime, tz: ZoneInfo, *, max_days: int, default_size: int,
    max_size: int, max_radius_m: float, max_bbox_deg: float,
) -> RequestQuery:  # fmt: skip
    """Check the parameters of `GET requests` (and its extensions) into a RequestQuery."""
    ids = request_ids(params.get("service_request_id"))
    start, end = window(
        moment(params.get("start_date"), "start_date", tz),
        moment(params.get("end_date"), "end_date", tz, end=True),
        now,
        max_days,
    )
    updated_after = moment(params.get("updated_after"), "updated_after", tz)
    dated = present(params.get("start_date")) or present(params.get("end_date"))
    since: dt.datetime | None = start
    if updated_after is not None and not dated:
        since, end = None, None  # changes since then, whenever the cases came in
    where = point(params.get("lat"), params.get("long"))
    return RequestQuery(
        ids=ids,
        codes=service_codes(params.get("service_code")),
        statuses=statuses(params.get("status")),
        start=since,
        end=end,
        updated_after=updated_after,
        where=where,
        radius_m=radius(params.get("radius"), where, max_radius_m),
        bbox=bbox(params.get("bbox"), max_bbox_deg),
        page=whole(params.get("page"), "page", 1, 1, 1_000_000),
        page_size=whole(params.get("page_size"), "page_size", min(default_size, max_size), 1, max_size),
        extensions=flag(params.get("extensions"), "extensions"),
    )


# ---- api keys -----------------------------------------------------------------------------------------------

KEY_PREFIX_LENGTH = 8


def new_key() -> str:
    """A new api_key: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    """What is stored of a key: its sha256 (hex)."""
    return hashlib.sha256(key.encode()).hexdigest()


# ---- posting a request -------------------------------------------------------------------------------------

_ATTRIBUTE = re.compile(r"attribute\[([^\]]+)\](\[\])?")


def attribute_answers(fields: Mapping[str, Any]) -> dict[str, list[str]]:
    """`attribute[code]=v` (repeated, or `attribute[code][]=v`, for multivaluelist) and JSON `"attribute": {…}`."""
    answers: dict[str, list[str]] = {}
    nested = fields.get("attribute")
    if isinstance(nested, Mapping):
        for code, value in nested.items():
            answers.setdefault(str(code), []).extend(_strings(value))
    for name, value in fields.items():
        m = _ATTRIBUTE.fullmatch(name)
        if m:
            answers.setdefault(m.group(1), []).extend(_strings(value))
    return {code: [v for v in values if v.strip()] for code, values in answers.items()}


def _strings(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v is not None]
    return [] if value is None else [str(value)]


def check_answers(
    service_code: str, questions: Sequence[Mapping[str, Any]], given: dict[str, list[str]]
) -> dict[str, str]:
    """The answers as stored (`code` → text; a multivaluelist's keys comma-separated), checked against the class's
    questions: known codes, required ones answered, list values among the keys, numbers and date-times parse."""
    by_code = {str(q["code"]): q for q in questions}
    unknown = [code for code in given if code not in by_code]
    if unknown:
        raise _bad(
            f"attribute[{unknown[0]}]",
            f"service {service_code} has no question {unknown[0]!r}: GET services/{service_code}.json lists them",
        )
    out: dict[str, str] = {}
    for code, q in by_code.items():
        field, values = f"attribute[{code}]", given.get(code, [])
        if not values:
            if q.get("required"):
                raise _bad(field, f"{field} is required: {q.get('description', code)}")
            continue
        kind = q.get("datatype", "string")
        keys = [str(v.get("key")) for v in q.get("values") or []]
        if kind != "multivaluelist" and len(values) > 1:
            raise _bad(field, f"{field} takes one value, not {len(values)}")
        for value in values:
            _check_answer(field, kind, keys, value.strip())
        out[code] = ",".join(v.strip() for v in values)
    return out


def _check_answer(field: str, kind: str, keys: list[str], value: str) -> None:
    if kind in ("singlevaluelist", "multivaluelist"):
        if value not in keys:
            raise _bad(field, f"{field} {value!r} is not one of {', '.join(keys)}")
    elif kind == "number":
        number(value, field)
    elif kind == "datetime":
        moment(value, field, ZoneInfo("UTC"))
    limit = MAX_DESCRIPTION if kind == "text" else MAX_STRING
    if len(value) > limit:
        raise _bad(field, f"{field} has {len(value):,} characters; at most {limit:,}")


def description(value: str | None) -> str | None:
    """The request's description without unsendable characters; at most 4,000 characters (400 above)."""
    text = text_value(value)
    if text is not None and len(text) > MAX_DESCRIPTION:
        raise _bad("description", f"description has {len(text):,} characters; at most {MAX_DESCRIPTION:,} are accepted")
    return text
