"""Typed settings read from the environment (prefix GRID_); imports no feature."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from functools import lru_cache


def _env(name: str, default: str) -> str:
    return os.environ.get(f"GRID_{name}", default)


def _env_float(name: str, default: float) -> float:
    return float(_env(name, str(default)))


def _env_int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


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

    db_pool_size: int = field(default_factory=lambda: _env_int("DB_POOL_SIZE", 10))
    """Connections per API process in the SQLAlchemy pool."""

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

    auth_cache_seconds: float = field(default_factory=lambda: _env_float("AUTH_CACHE_SECONDS", 5.0))
    """Seconds a process trusts its cached user (active, token version, scope): the bound for revocations."""

    login_max_failures: int = field(default_factory=lambda: _env_int("LOGIN_MAX_FAILURES", 10))
    """Failed logins per username and client address within the window before answering 429."""

    login_failure_window_s: int = field(default_factory=lambda: _env_int("LOGIN_FAILURE_WINDOW_S", 300))
    """The window of `login_max_failures`, in seconds (also the longest Retry-After)."""

    @property
    def asyncpg_dsn(self) -> str:
        """The database URL in the form asyncpg and psql accept."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


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
