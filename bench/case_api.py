"""What the case benchmarks share: the API processes, logins and tokens, the bench Redis, wrk Lua helpers."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench import procs
from bench.city import BenchDB
from bench.locate import wait_fresh
from bench.util import RESULTS, Row, app_env, console, slug

WORKERS = 2
FLAGS = ("--http", "httptools", "--loop", "uvloop")
APP = "grid_mgmt.app:create_app"
DIAG_APP = "bench.diag_app:create_app"
SEED = 20240601
PASSWORD = "demo"
TOKEN_REUSE_S = 600.0  # access tokens live 15 minutes: log in again after 10
NEEDS_WRK = "needs wrk (the Python fallback sends no Authorization header)"

REDIS_URL = os.environ.get("GRID_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")


# --- Redis (the routing jobs) ------------------------------------------------------------------------------


def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def redis_jobs() -> dict[str, int] | None:
    """Queued jobs per function (cases.route, and since the deadline work the sla.check of each report)."""
    from grid_mgmt.lib.jobcodec import deserialize

    try:
        r = _redis(REDIS_URL)
        try:
            ids = r.zrange("arq:queue", 0, -1)
            counts: dict[str, int] = {}
            for start in range(0, len(ids), 5000):
                for raw in r.mget([b"arq:job:" + i for i in ids[start : start + 5000]]):
                    name = str(deserialize(raw).get("f")) if raw else "?"
                    counts[name] = counts.get(name, 0) + 1
            return counts
        finally:
            r.close()
    except Exception:
        return None


def jobs_since(before: dict[str, int] | None, after: dict[str, int] | None, name: str) -> int | None:
    return None if before is None or after is None else after.get(name, 0) - before.get(name, 0)


def redis_cleanup(url: str = REDIS_URL) -> dict[str, Any]:
    """Delete the arq keys the load left in the bench Redis database (jobs nobody will run)."""
    try:
        r = _redis(url)
        try:
            queued = int(r.zcard("arq:queue"))
            deleted = 0
            batch: list[bytes] = []
            for key in r.scan_iter(match="arq:*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    deleted += int(r.delete(*batch))
                    batch = []
            if batch:
                deleted += int(r.delete(*batch))
            return {"queued": queued, "deleted_keys": deleted, "left": int(r.dbsize())}
        finally:
            r.close()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


# --- the API, users and tokens -----------------------------------------------------------------------------


def server(db: BenchDB, label: str, *, target: str = APP, workers: int = WORKERS, reuseport: bool = True,
           env_extra: dict[str, str] | None = None, redis_url: str = REDIS_URL) -> Any:  # fmt: skip
    """The API (`workers` processes) against the bench database; a context manager yielding (group, base URL)."""
    log = RESULTS / "logs" / f"{slug(label)}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = app_env(db.url, redis_url, **(env_extra or {}))
    return procs.uvicorn(
        target, factory=True, workers=workers, env=env, log=log, extra=FLAGS, ready_path="/health", reuseport=reuseport
    )


@dataclass
class Token:
    user_id: int
    username: str
    token: str
    at: float  # time.monotonic() of the login


_TOKENS: dict[tuple[str, str], Token] = {}


async def _login_all(base: str, usernames: list[str], concurrency: int = 8) -> dict[str, Token]:
    sem = asyncio.Semaphore(concurrency)
    out: dict[str, Token] = {}
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:

        async def one(name: str) -> None:
            async with sem:
                r = await client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
            if r.status_code != 200:
                errors.append(f"{name}: {r.status_code} {r.text[:200]}")
                return
            body = r.json()
            out[name] = Token(int(body["user"]["id"]), name, body["access_token"], time.monotonic())

        await asyncio.gather(*(one(n) for n in usernames))
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(usernames)} logins failed, e.g. {errors[:3]}")
    return out


def tokens(db: BenchDB, base: str, usernames: list[str]) -> dict[str, Token]:
    """Log each user in once (tokens are reused for 10 minutes: they are valid on every process)."""
    now = time.monotonic()
    need = [u for u in usernames if (db.name, u) not in _TOKENS or now - _TOKENS[(db.name, u)].at > TOKEN_REUSE_S]
    if need:
        t0 = time.monotonic()
        got = asyncio.run(_login_all(base, need))
        for name, tok in got.items():
            _TOKENS[(db.name, name)] = tok
        console.print(f"  logged in {len(need)} user(s) in {time.monotonic() - t0:.1f} s")
    return {u: _TOKENS[(db.name, u)] for u in usernames}


def ready(base: str, group: procs.Group, label: str) -> dict[str, Any]:
    fresh = wait_fresh(base, group)
    console.print(f"  {label}: grid index {'fresh' if fresh['fresh'] else 'NOT fresh'} after {fresh['seconds']} s")
    return fresh


def lua_str(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid Lua string literal for these characters


# Appended to the scripts: wrap the harness's done() (bench/wrk.py DONE_LUA, appended after this script) so
# that ours runs too. Ours prints one more JSON line: status counts from response() of every thread, and p95.
def lua_response(ok: str, also: str = "") -> str:
    """wrk's `response` function: an answer passing the Lua test `ok` counts in n_ok (then the Lua statements
    `also` run: e.g. counting empty pages); any other answer counts by status in n_other, the first one sampled."""
    return f"""response = function(status, headers, body)
  if {ok} then
    n_ok = n_ok + 1
    {also}
  else
    local k = tostring(status)
    n_other[k] = (n_other[k] or 0) + 1
    if sample_bad == nil then sample_bad = k .. " " .. string.sub(body or "", 1, 300) end
  end
end
"""


COUNTERS = "  n_ok = 0\n  n_empty = 0\n  n_other = {}\n  sample_bad = nil"
"""Lua: the per-thread counters that WRAP_DONE adds up; every script's `init` starts them."""

WRAP_DONE = r"""
local extra_done
setmetatable(_G, {__newindex = function(t, k, v)
  if k == "done" and type(v) == "function" then
    rawset(t, k, function(summary, latency, requests)
      v(summary, latency, requests)
      extra_done(summary, latency, requests)
    end)
  else
    rawset(t, k, v)
  end
end})
local function esc(s) return (string.gsub(s or "", '[%c"\\]', " ")) end
extra_done = function(summary, latency, requests)
  local ok, empty, other, sample = 0, 0, {}, ""
  for _, t in ipairs(threads) do
    ok = ok + (t:get("n_ok") or 0)
    empty = empty + (t:get("n_empty") or 0)
    local o = t:get("n_other") or {}
    for k, n in pairs(o) do other[k] = (other[k] or 0) + n end
    local s = t:get("sample_bad")
    if s and sample == "" then sample = s end
  end
  local parts = {}
  for k, n in pairs(other) do parts[#parts + 1] = string.format('"%s":%d', k, n) end
  io.write(string.format(
    'BENCH_CASES {"ok":%d,"empty":%d,"other":{%s},"p95_us":%d,"sample_bad":"%s"}\n',
    ok, empty, table.concat(parts, ","), latency:percentile(95), esc(sample)))
end
threads = {}
setup = function(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
"""


def parse_extra(raw: str) -> dict[str, Any]:
    m = re.search(r"^BENCH_CASES (\{.*\})$", raw, re.M)
    return json.loads(m.group(1)) if m else {}


def per_request_cpu(split: dict[str, Any], rps: float) -> str:
    """CPU microseconds per request of the main groups, and the busy CPU no sampled process accounts for."""
    if rps <= 0:
        return ""
    parts = []
    for name, g in split["groups"].items():
        if name in ("api (uvicorn)", "postgresql (bench db)", "wrk", "redis", "postgresql (background)"):
            parts.append(f"{name} {g['cores'] / rps * 1e6:,.0f}")
    busy = split["system_busy_cores"] - split.get("stolen_cores", 0.0)  # steal is no process's CPU
    unattributed = busy - sum(g["cores"] for g in split["groups"].values())
    text = "CPU µs per request: " + ", ".join(parts)
    if unattributed >= 0.05:
        text += (
            f"; machine CPU not attributed to any sampled process: {unattributed:.2f} cores"
            f" ({unattributed / rps * 1e6:,.0f} µs per request: processes that lived between two 0.25 s samples,"
            " most likely PostgreSQL backends of pool connections opened and closed)"
        )
    return text


def no_python(_: random.Random) -> tuple[str, str, bytes | None]:
    raise RuntimeError("this benchmark needs wrk (the Python load generator sends no Authorization header)")


def not_run(name: str, target: str, why: str) -> Row:
    return Row(name, target, "not run", False, why)
