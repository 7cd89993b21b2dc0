"""The checks of a report that need no database: text, accuracy, device time, keys, who may report as what.

Pure functions; each raises InvalidInput (422) with the offending field in `extra`, or DomainError(403).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from zoneinfo import ZoneInfo

import msgspec

from grid_mgmt.intake.schemas import CaseIn
from grid_mgmt.lib.errors import DomainError, InvalidInput

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
"""Device times without an offset are read in the city's time zone."""
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
"""How far a device clock may run ahead of the server before captured_at counts as in the future."""
MAX_DESCRIPTION = 4000
MAX_ADDRESS = 200
MAX_KEY = 100

#: role → the sources it may report as (the first is its default).
SOURCES_BY_ROLE: dict[str, tuple[str, ...]] = {
    "worker": ("worker",),
    "leader": ("leader", "hotline", "video", "inspection"),
    "acceptor": ("hotline", "video", "inspection"),
    "dispatcher": ("hotline", "video", "inspection"),
}
REPORTING_ROLES = tuple(SOURCES_BY_ROLE)


def description(text: str) -> str:
    """The description without surrounding blanks; 1 – 4,000 characters."""
    cleaned = text.strip()
    if not cleaned:
        raise InvalidInput("description is empty: say what is wrong", extra={"field": "description"})
    if len(cleaned) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"description has {len(cleaned):,} characters; at most {MAX_DESCRIPTION:,} are accepted",
            extra={"field": "description"},
        )
    return cleaned


def address(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    cleaned = text.strip()
    if len(cleaned) > MAX_ADDRESS:
        raise InvalidInput(f"address has {len(cleaned)} characters; at most {MAX_ADDRESS}", extra={"field": "address"})
    return cleaned


def accuracy(value: float | None, limit_m: float) -> float | None:
    """A device accuracy in metres: finite, ≥ 0 and no coarser than `limit_m`."""
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        raise InvalidInput(f"accuracy_m must be a finite number ≥ 0, got {value}", extra={"field": "accuracy_m"})
    if value > limit_m:
        raise InvalidInput(
            f"accuracy_m {value:g} m is too coarse to place a case (at most {limit_m:g} m): wait for a better "
            "GPS fix, or give the component code or pick the spot on the map",
            extra={"field": "accuracy_m"},
        )
    return float(value)


def captured_at(value: dt.datetime | None, now: dt.datetime, max_age_days: int) -> dt.datetime | None:
    """Device time, timezone-aware; not in the future (beyond 5 minutes of clock skew) nor too old."""
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=LOCAL_TZ)
    if aware > now + MAX_CLOCK_SKEW:
        ahead = aware - now
        raise InvalidInput(
            f"captured_at {aware.isoformat()} is {_span(ahead)} in the future (server time "
            f"{now.isoformat(timespec='seconds')}): check the phone's clock",
            extra={"field": "captured_at"},
        )
    if aware < now - dt.timedelta(days=max_age_days):
        raise InvalidInput(
            f"captured_at {aware.isoformat()} is more than {max_age_days} days ago; such old observations are "
            "not accepted as new reports",
            extra={"field": "captured_at"},
        )
    return aware


def _span(delta: dt.timedelta) -> str:
    minutes = delta.total_seconds() / 60
    if minutes < 120:
        return f"{minutes:.0f} minutes"
    hours = minutes / 60
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"


def location_given(data: CaseIn) -> bool:
    """True with lon and lat, False with neither; 422 with only one, or with neither and no component."""
    if (data.lon is None) != (data.lat is None):
        missing = "lat" if data.lat is None else "lon"
        raise InvalidInput(f"{missing} is missing: send both lon and lat, or neither", extra={"field": missing})
    if data.lon is None and not data.component_code:
        raise InvalidInput("a report needs a location (lon, lat) or a component_code", extra={"field": "lon"})
    return data.lon is not None


def idempotency_key(header: str | None, client_id: str | None) -> str | None:
    """The key of a request: the Idempotency-Key header, else the body's client_id (≤ 100 characters)."""
    head = header.strip() if header is not None else None
    body = client_id.strip() if client_id is not None else None
    if head == "":
        raise InvalidInput("the Idempotency-Key header is empty", extra={"field": "Idempotency-Key"})
    if body == "":
        raise InvalidInput("client_id is empty: leave it out or send the phone's id of the report",
                           extra={"field": "client_id"})  # fmt: skip
    if head and body and head != body:
        raise InvalidInput(
            "the Idempotency-Key header and client_id differ; send one key per report", extra={"field": "client_id"}
        )
    key = head or body
    if key is not None and len(key) > MAX_KEY:
        raise InvalidInput(
            f"the idempotency key has {len(key)} characters; at most {MAX_KEY}", extra={"field": "client_id"}
        )
    return key


def request_hash(route: str, data: CaseIn) -> str:
    """A fingerprint of what was asked (the key itself excluded): equal requests, equal hashes."""
    canonical = msgspec.json.encode(msgspec.structs.replace(data, client_id=None))
    return hashlib.sha256(route.encode() + b"\n" + canonical).hexdigest()


def source(roles: frozenset[str], asked: str | None) -> str:
    """The report's source: what was asked if the caller's roles allow it (403 otherwise), else the default."""
    allowed = [s for role in REPORTING_ROLES if role in roles for s in SOURCES_BY_ROLE[role]]
    if not allowed:
        raise DomainError(f"reporting needs one of the roles {', '.join(REPORTING_ROLES)}", status_code=403)
    if asked is None:
        return allowed[0]
    if asked not in allowed:
        raise DomainError(
            f"you may report as {', '.join(dict.fromkeys(allowed))}, not as {asked}",
            status_code=403,
            extra={"field": "source"},
        )
    return asked
