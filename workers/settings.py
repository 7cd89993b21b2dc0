"""arq WorkerSettings: job functions, the Redis connection from GRID_REDIS_URL and the msgpack codec."""

from __future__ import annotations

from typing import Any, ClassVar

from arq.connections import RedisSettings
from arq.worker import Function, func

from grid_mgmt.lib.jobcodec import deserialize, serialize
from grid_mgmt.settings import get_settings


async def ping(ctx: dict[str, Any]) -> str:
    """system.ping: proves that a worker consumes the queue."""
    return "pong"


class WorkerSettings:
    """Read by `arq workers.settings.WorkerSettings` (and `grid-mgmt worker`)."""

    functions: ClassVar[list[Function]] = [func(ping, name="system.ping")]
    redis_settings: ClassVar[RedisSettings] = RedisSettings.from_dsn(get_settings().redis_url)
    job_serializer = serialize
    job_deserializer = deserialize
    health_check_interval: ClassVar[int] = 30
    """Seconds between health-check records in Redis (arq:queue:health-check)."""
