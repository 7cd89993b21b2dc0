"""The minimal arq worker settings: msgpack codec (no pickle) and the system.ping job through real Redis."""

from __future__ import annotations

import pickle
import uuid
import warnings
from datetime import UTC, datetime

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker, func

from grid_mgmt.lib.jobcodec import JobError, deserialize, serialize
from workers.settings import WorkerSettings


def test_codec_round_trips_plain_data_and_never_pickles() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    data = {"f": "system.ping", "a": (1, "二"), "k": {"at": when}, "et": 1, "r": None}
    encoded = serialize(data)
    assert not encoded.startswith(b"\x80")  # pickle's protocol marker
    decoded = deserialize(encoded)
    assert decoded == {"f": "system.ping", "a": [1, "二"], "k": {"at": when}, "et": 1, "r": None}
    with pytest.raises(TypeError):
        serialize({"obj": object()})
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(encoded)


def test_exceptions_travel_as_job_errors() -> None:
    decoded = deserialize(serialize({"r": ValueError("bad case id"), "s": False}))
    error = decoded["r"]
    assert isinstance(error, JobError)
    assert error.type_name == "builtins.ValueError" and error.message == "bad case id"
    assert deserialize(serialize({"r": error}))["r"].message == "bad case id"


async def _fail(ctx: dict[str, object]) -> None:
    raise RuntimeError("boom")


async def test_ping_job_runs_on_a_worker(suite_redis_url: str) -> None:
    queue = f"grid-test:{uuid.uuid4().hex}"
    settings = RedisSettings.from_dsn(suite_redis_url)
    pool = await create_pool(settings, job_serializer=serialize, job_deserializer=deserialize, default_queue_name=queue)
    functions = [*WorkerSettings.functions, func(_fail, name="test.fail", max_tries=1)]
    worker = Worker(
        functions=functions,
        redis_pool=pool,
        queue_name=queue,
        burst=True,
        handle_signals=False,
        poll_delay=0.05,
        job_serializer=WorkerSettings.job_serializer,
        job_deserializer=WorkerSettings.job_deserializer,
    )
    try:
        ping = await pool.enqueue_job("system.ping")
        fail = await pool.enqueue_job("test.fail")
        assert ping is not None and fail is not None
        await worker.main()
        assert await ping.result(timeout=5) == "pong"
        with pytest.raises(JobError, match="RuntimeError: boom"):
            await fail.result(timeout=5)
    finally:
        with warnings.catch_warnings():  # arq 0.26-0.28 still calls redis' deprecated close()
            warnings.filterwarnings("ignore", "Call to deprecated close", DeprecationWarning)
            await worker.close()
        await pool.delete(*[key async for key in pool.scan_iter(f"*{queue}*")], queue)
        await pool.aclose()


def test_worker_settings_point_at_grid_redis_url() -> None:
    assert WorkerSettings.health_check_interval > 0
    names = [f.name for f in WorkerSettings.functions]
    assert {"system.ping", "cases.route"} <= set(names) and len(names) == len(set(names))
    assert isinstance(WorkerSettings.redis_settings, RedisSettings)
