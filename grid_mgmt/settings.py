"""Typed settings read from the environment (prefix GRID_); imports no feature."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass, field, fields
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def _env(name: str, default: str) -> str:
    return os.environ.get(f"GRID_{name}", default)


def _env_float(name: str, default: float) -> float:
    return float(_env(name, str(default)))


def _env_int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


def _env_share(name: str, default: float) -> float:
    value = _env_float(name, default)
    if not 0 < value < 1:
        raise ValueError(f"GRID_{name}={value}: must be a share strictly between 0 and 1, e.g. 0.8")
    return value


def _env_timezone(name: str, default: str) -> str:
    value = _env(name, default)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"GRID_{name}={value!r}: not an IANA time zone such as Asia/Shanghai") from None
    return value


def _env_schedule(name: str, default: str) -> str:
    value = _env(name, default)
    try:
        parse_schedule(value)
    except ValueError as e:
        raise ValueError(f"GRID_{name}={value!r}: {e}") from None
    return value


def _env_networks(name: str, default: str) -> str:
    value = _env(name, default)
    for part in (p.strip() for p in value.split(",")):
        try:
            if part:
                ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ValueError(f"GRID_{name}: {part!r} is not an IP address or CIDR network such as 10.0.0.0/8") from None
    return value


def parse_schedule(text: str) -> tuple[tuple[dt.time, dt.time], ...]:
    """`08:00-12:00,14:00-18:00` → the working periods of a day, in order; a ValueError says what is wrong."""
    periods: list[tuple[dt.time, dt.time]] = []
    for part in (p.strip() for p in text.split(",")):
        begin, dash, end = part.partition("-")
        malformed = ValueError(f"working period {part!r} is not HH:MM-HH:MM (periods are separated by commas)")
        try:
            a, b = dt.time.fromisoformat(begin.strip()), dt.time.fromisoformat(end.strip())
        except ValueError:
            raise malformed from None
        if not dash or a.tzinfo is not None or b.tzinfo is not None:
            raise malformed
        if a >= b:
            raise ValueError(f"working period {part!r} must end after it begins")
        if periods and a < periods[-1][1]:
            raise ValueError(f"working period {part!r} overlaps or precedes the one before it")
        periods.append((a, b))
    return tuple(periods)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every field reads `GRID_<NAME>`; the line under it says what it is for."""

    database_url: str = field(
        default_factory=lambda: _env("DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/grid_mgmt")
    )
    """SQLAlchemy URL of the PostGIS database (driver postgresql+asyncpg)."""

    redis_url: str = field(default_factory=lambda: _env("REDIS_URL", "redis://127.0.0.1:6379/0"))
    """Redis URL for the job queue, rate limits and pub/sub."""

    host: str = field(default_factory=lambda: _env("HOST", "127.0.0.1"))
    """Address the API binds to."""

    port: int = field(default_factory=lambda: _env_int("PORT", 8000))
    """Port the API listens on."""

    workers: int = field(default_factory=lambda: _env_int("WORKERS", 1))
    """Number of API processes `grid-mgmt serve` starts."""

    db_pool_size: int = field(default_factory=lambda: _env_int("DB_POOL_SIZE", 20))
    """Connections kept per API process (workers keep half). Size it to the
    concurrent requests a process serves: connections opened and closed at peaks cost more than waiting."""

    db_pool_overflow: int = field(default_factory=lambda: _env_int("DB_POOL_OVERFLOW", 0))
    """Connections allowed beyond the pool under a burst. Each is opened and closed per use (a new PostgreSQL
    backend and asyncpg's setup every time: milliseconds of CPU on both sides), so 0 — callers wait for a pooled
    connection instead — and a pool sized to the load is the faster choice."""

    read_database_url: str = field(default_factory=lambda: _env("READ_DATABASE_URL", ""))
    """Where case lists read (a streaming replica at scale); empty = GRID_DATABASE_URL."""

    list_timeout_ms: int = field(default_factory=lambda: _env_int("LIST_TIMEOUT_MS", 5000))
    """The longest a case list statement may run (then 422: narrow the filters)."""

    read_pool_size: int = field(default_factory=lambda: _env_int("READ_POOL_SIZE", 5))
    """Connections of each of an API process's two case-list pools (`db.listpool`; autocommit, no parallel workers,
    a statement timeout; one plans per statement, one once per connection), opened on demand, apart from the pool
    that writes. Fewer connections than concurrent lists queue them first come first served in the process, which
    kept the tail tighter than more statements time-sliced by PostgreSQL: the case list at 64 connections on 2
    cores, alternating in one hour, p95 37–42 ms with 5 against 43–53 ms with 10."""

    case_cache_rows: int = field(default_factory=lambda: _env_int("CASE_CACHE_ROWS", 100_000))
    """Cases each API process keeps encoded for the case list (`cases.encoded`), about 1.3 kB each (100,000:
    ~130 MB); a case is used from it only while unchanged. Size it to the cases consoles look at (the open ones);
    `0` turns it off."""

    jurisdiction_buffer_m: float = field(default_factory=lambda: _env_float("JURISDICTION_BUFFER_M", 2000.0))
    """How far outside the district boundary a reported point is still accepted, in metres."""

    max_page_size: int = field(default_factory=lambda: _env_int("MAX_PAGE_SIZE", 1000))
    """Largest `limit` a list endpoint accepts."""

    default_page_size: int = field(default_factory=lambda: _env_int("DEFAULT_PAGE_SIZE", 100))
    """`limit` of a list endpoint when the client sends none."""

    max_bbox_deg: float = field(default_factory=lambda: _env_float("MAX_BBOX_DEG", 2.0))
    """Largest width or height of a `bbox` filter, in degrees."""

    locate_cache: bool = field(default_factory=lambda: _env("LOCATE_CACHE", "1") not in ("0", "false", "no"))
    """Keep an in-process spatial index of the unit grids for /grids/locate (refreshed on change)."""

    debug: bool = field(default_factory=lambda: _env("DEBUG", "0") in ("1", "true", "yes"))
    """Litestar debug mode (tracebacks in error responses; never in production)."""

    media_dir: str = field(default_factory=lambda: _env("MEDIA_DIR", "./var/media"))
    """Directory of uploaded photos, stored content-addressed as ab/cd/<sha256>.<ext> (shared by all processes)."""

    max_photo_bytes: int = field(default_factory=lambda: _env_int("MAX_PHOTO_BYTES", 10 * 1024 * 1024))
    """Largest photo upload in bytes (larger: 413); the upload route's body limit is this plus 64 KiB."""

    max_photo_pixels: int = field(default_factory=lambda: _env_int("MAX_PHOTO_PIXELS", 40_000_000))
    """Largest photo in pixels (width × height), checked on the header before decoding (decompression bombs)."""

    snap_radius_m: float = field(default_factory=lambda: _env_float("SNAP_RADIUS_M", 5.0))
    """A report of a component class without a component code is linked to the nearest such component this close."""

    photo_far_m: float = field(default_factory=lambda: _env_float("PHOTO_FAR_M", 200.0))
    """A photo whose EXIF position is farther than this from its case, in metres, is flagged `photo_far`."""

    thumb_px: int = field(default_factory=lambda: _env_int("THUMB_PX", 320))
    """Longest side of the photo thumbnails the media worker makes, in pixels."""

    idempotency_retention_days: int = field(default_factory=lambda: _env_int("IDEMPOTENCY_RETENTION_DAYS", 7))
    """Days an idempotency record (the first response to a phone's request) is kept before the nightly purge."""

    pipeline_radius_m: float = field(default_factory=lambda: _env_float("PIPELINE_RADIUS_M", 30.0))
    """A subsurface case (burst main, collapse, blocked sewer) goes to the owner of the nearest matching pipeline
    within this many metres."""

    recovery_age_s: float = field(default_factory=lambda: _env_float("RECOVERY_AGE_S", 60.0))
    """The recovery sweep re-enqueues work (unrouted cases, unflagged deadlines) older than this many seconds."""

    max_accuracy_m: float = field(default_factory=lambda: _env_float("MAX_ACCURACY_M", 500.0))
    """Coarsest reported GPS accuracy (`accuracy_m`) a report is accepted with, in metres."""

    report_max_age_days: int = field(default_factory=lambda: _env_int("REPORT_MAX_AGE_DAYS", 30))
    """Oldest device time (`captured_at`) of an offline report that is still accepted, in days."""

    jwt_secret: str = field(default_factory=lambda: _env("JWT_SECRET", ""))
    """HS256 key of access tokens, same on every process (32+ random bytes); empty: insecure dev key, warned."""

    access_token_minutes: int = field(default_factory=lambda: _env_int("ACCESS_TOKEN_MINUTES", 15))
    """Lifetime of an access token (JWT), in minutes."""

    refresh_token_days: int = field(default_factory=lambda: _env_int("REFRESH_TOKEN_DAYS", 30))
    """Lifetime of a refresh token (a login session), in days; each refresh rotates it and restarts the clock."""

    refresh_retry_s: int = field(default_factory=lambda: _env_int("REFRESH_RETRY_S", 30))
    """Seconds after a refresh during which the old refresh token may be sent once more, as a phone does that lost
    the answer, while the new token is unused: the new one is replaced instead of the login being ended. 0: any
    second use ends the login."""

    auth_cache_seconds: float = field(default_factory=lambda: _env_float("AUTH_CACHE_SECONDS", 5.0))
    """Seconds a process trusts its cached user (active, token version, scope): the bound for revocations."""

    login_max_failures: int = field(default_factory=lambda: _env_int("LOGIN_MAX_FAILURES", 10))
    """Failed logins per username and client address within the window before answering 429."""

    login_failure_window_s: int = field(default_factory=lambda: _env_int("LOGIN_FAILURE_WINDOW_S", 300))
    """The window of `login_max_failures`, in seconds (also the longest Retry-After)."""

    work_timezone: str = field(default_factory=lambda: _env_timezone("WORK_TIMEZONE", "Asia/Shanghai"))
    """Time zone of the working calendar: workdays, working hours and deadlines are reckoned on its clock."""

    work_schedule: str = field(default_factory=lambda: _env_schedule("WORK_SCHEDULE", "08:00-12:00,14:00-18:00"))
    """Working periods of a workday, `HH:MM-HH:MM` in order, separated by commas (checked at startup)."""

    calendar_cache_s: float = field(default_factory=lambda: _env_float("CALENDAR_CACHE_S", 60.0))
    """Seconds a process reuses the working calendar it loaded (an edit refreshes it at once in that process)."""

    deadline_warn_share: float = field(default_factory=lambda: _env_share("DEADLINE_WARN_SHARE", 0.8))
    """Share of a stage's time limit after which a case is flagged as nearly due (strictly between 0 and 1)."""

    webhook_timeout_s: float = field(default_factory=lambda: _env_float("WEBHOOK_TIMEOUT_S", 5.0))
    """Longest a webhook delivery may take in total (connect, send, answer), in seconds."""

    webhook_backoff_s: float = field(default_factory=lambda: _env_float("WEBHOOK_BACKOFF_S", 10.0))
    """Wait before the first webhook retry, in seconds; it doubles per failure (at most an hour, with jitter)."""

    webhook_max_attempts: int = field(default_factory=lambda: _env_int("WEBHOOK_MAX_ATTEMPTS", 8))
    """Delivery attempts of a notification before it is given up (then listed as failed in /api/v1/outbox)."""

    events_keepalive_s: float = field(default_factory=lambda: _env_float("EVENTS_KEEPALIVE_S", 15.0))
    """Seconds between keep-alive comments on an idle /api/v1/events stream (keeps proxies from closing it)."""

    stream_ticket_ttl_s: int = field(default_factory=lambda: _env_int("STREAM_TICKET_TTL_S", 60))
    """How long a ticket of POST /api/v1/auth/stream-ticket opens /api/v1/events?ticket= (browsers' EventSource)."""

    outbox_retention_days: int = field(default_factory=lambda: _env_int("OUTBOX_RETENTION_DAYS", 30))
    """Delivered or given-up notifications are deleted this many days later (the live stream replays an hour)."""

    # --- public (citizens' reports) ---

    public_max_body: int = field(default_factory=lambda: _env_int("PUBLIC_MAX_BODY", 64 * 1024))
    """Largest JSON body of a citizen's report, comment, rating or reopen request, in bytes (larger: 413)."""

    public_max_photos: int = field(default_factory=lambda: _env_int("PUBLIC_MAX_PHOTOS", 3))
    """Photos a citizen may send with one report or one upload (each at most GRID_MAX_PHOTO_BYTES)."""

    public_reports_per_address: int = field(default_factory=lambda: _env_int("PUBLIC_REPORTS_PER_ADDRESS", 10))
    """Citizens' reports per client address within GRID_PUBLIC_ADDRESS_WINDOW_S before 429 (0: no limit)."""

    public_address_window_s: int = field(default_factory=lambda: _env_int("PUBLIC_ADDRESS_WINDOW_S", 600))
    """The window of the per-address limits, in seconds."""

    public_reports_per_contact: int = field(default_factory=lambda: _env_int("PUBLIC_REPORTS_PER_CONTACT", 5))
    """Citizens' reports per contact phone or e-mail (normalised) within GRID_PUBLIC_CONTACT_WINDOW_S (0: no limit)."""

    public_contact_window_s: int = field(default_factory=lambda: _env_int("PUBLIC_CONTACT_WINDOW_S", 3600))
    """The window of the per-contact limit, in seconds."""

    public_followups_per_address: int = field(default_factory=lambda: _env_int("PUBLIC_FOLLOWUPS_PER_ADDRESS", 30))
    """Comments, photo uploads, ratings and reopen requests per client address within the address window."""

    public_reopen_days: int = field(default_factory=lambda: _env_int("PUBLIC_REOPEN_DAYS", 7))
    """Days after closure within which a citizen may ask to reopen a report that was not really fixed."""

    contact_retention_days: int = field(default_factory=lambda: _env_int("CONTACT_RETENTION_DAYS", 180))
    """Days a citizen's contact details are kept after the report (then the nightly public.purge_contacts)."""

    trusted_proxy_header: str = field(default_factory=lambda: _env("TRUSTED_PROXY_HEADER", ""))
    """Header naming the client behind a reverse proxy, e.g. X-Forwarded-For (empty: the socket address)."""

    trusted_proxies: str = field(default_factory=lambda: _env_networks("TRUSTED_PROXIES", ""))
    """Comma list of proxy addresses/CIDRs whose GRID_TRUSTED_PROXY_HEADER is believed (checked at startup)."""

    # --- open311 (GeoReport v2 for 311 clients) ---

    open311_page_size: int = field(default_factory=lambda: _env_int("OPEN311_PAGE_SIZE", 1000))
    """Service requests per page of GET /open311/v2/requests when the client sends no page_size (the spec's 1000)."""

    open311_max_page_size: int = field(default_factory=lambda: _env_int("OPEN311_MAX_PAGE_SIZE", 1000))
    """Largest page_size an Open311 client may ask for (larger: 400)."""

    open311_max_days: int = field(default_factory=lambda: _env_int("OPEN311_MAX_DAYS", 90))
    """GET requests without dates covers the last this many days; start_date to end_date may span no more (400)."""

    open311_max_radius_m: float = field(default_factory=lambda: _env_float("OPEN311_MAX_RADIUS_M", 5000.0))
    """Largest `radius` of the lat/long/radius search, in metres (larger: 400)."""

    open311_key_posts_per_hour: int = field(default_factory=lambda: _env_int("OPEN311_KEY_POSTS_PER_HOUR", 600))
    """Service requests one Open311 api_key may post per hour before 429 (0: no limit; citizens' limits apply too)."""

    open311_base_url: str = field(default_factory=lambda: _env("OPEN311_BASE_URL", ""))
    """Public URL of the Open311 endpoint in the discovery document (empty: this server's URL + /open311/v2)."""

    open311_contact: str = field(
        default_factory=lambda: _env("OPEN311_CONTACT", "Digital city management centre: call 12345")
    )
    """The `contact` line of the Open311 discovery document."""

    open311_key_service: str = field(
        default_factory=lambda: _env("OPEN311_KEY_SERVICE", "Ask the city management centre for an api_key")
    )
    """The `key_service` line of the Open311 discovery document: how a client obtains an api_key."""

    @property
    def asyncpg_dsn(self) -> str:
        """The database URL in the form asyncpg and psql accept."""
        return _plain_dsn(self.database_url)

    @property
    def read_asyncpg_dsn(self) -> str:
        """Where case lists read (GRID_READ_DATABASE_URL, else the database), in the form asyncpg accepts."""
        return _plain_dsn(self.read_database_url or self.database_url)


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def describe() -> list[tuple[str, str, str]]:
    """(environment variable, default, meaning) for every setting — used by `grid-mgmt settings`."""
    import ast
    import inspect
    import itertools

    source = inspect.getsource(Settings)
    docs: dict[str, str] = {}
    tree = ast.parse(source)
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in itertools.pairwise(body):
        named = isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        if named and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = str(nxt.value.value)
    defaults = Settings()
    return [(f"GRID_{f.name.upper()}", str(getattr(defaults, f.name)), docs.get(f.name, "")) for f in fields(Settings)]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests build their own `Settings` instead)."""
    return Settings()
