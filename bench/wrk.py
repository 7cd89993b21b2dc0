"""Drive wrk (HTTP load) and parse what it prints: req/s, latency percentiles, errors, non-2xx responses."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import procs

#: A Lua `done()` that prints exact figures as one JSON line (percentiles in microseconds).
DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"lat_mean_us":%.1f,"lat_max_us":%d,"p50_us":%d,"p75_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
"""


def static_script(method: str = "GET", body: str | None = None, headers: dict[str, str] | None = None) -> str:
    """A wrk script sending the same request every time (plus the JSON summary)."""
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = {json.dumps(body)}")
    for k, v in (headers or {}).items():
        lines.append(f'wrk.headers["{k}"] = "{v}"')
    return "\n".join(lines) + "\n" + DONE_LUA


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class WrkResult:
    """One wrk run. Latencies in milliseconds."""

    url: str
    threads: int
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float | None
    mean_ms: float | None
    max_ms: float | None
    non_2xx: int
    socket_errors: dict[str, int]
    raw: str = field(repr=False)

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse(out: str, *, url: str, threads: int, connections: int) -> WrkResult:
    """Parse wrk's `--latency` text output; exact figures from the Lua JSON line win when present."""
    rps_m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    total_m = re.search(r"(\d+) requests in ([0-9.]+\w+)", out)
    if not rps_m or not total_m:
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    pct = {int(p): _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}
    non2xx_m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock_m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    sock = dict(zip(("connect", "read", "write", "timeout"), map(int, sock_m.groups()), strict=True)) if sock_m else {}
    res = WrkResult(
        url=url,
        threads=threads,
        connections=connections,
        duration_s=_ms(total_m.group(2)) / 1e3,
        requests=int(total_m.group(1)),
        rps=float(rps_m.group(1)),
        p50_ms=pct.get(50, float("nan")),
        p75_ms=pct.get(75, float("nan")),
        p90_ms=pct.get(90, float("nan")),
        p99_ms=pct.get(99, float("nan")),
        p999_ms=None,
        mean_ms=None,
        max_ms=None,
        non_2xx=int(non2xx_m.group(1)) if non2xx_m else 0,
        socket_errors=sock,
        raw=out,
    )
    js = re.search(r"^BENCH_JSON (\{.*\})$", out, re.M)
    if js:
        d = json.loads(js.group(1))
        res.requests = d["requests"]
        res.duration_s = d["duration_us"] / 1e6
        res.rps = d["requests"] / res.duration_s if res.duration_s else 0.0
        res.p50_ms, res.p75_ms, res.p90_ms = d["p50_us"] / 1e3, d["p75_us"] / 1e3, d["p90_us"] / 1e3
        res.p99_ms, res.p999_ms = d["p99_us"] / 1e3, d["p999_us"] / 1e3
        res.mean_ms, res.max_ms = d["lat_mean_us"] / 1e3, d["lat_max_us"] / 1e3
        res.non_2xx = d["status_errors"]
        res.socket_errors = {
            k: d[f"{k}_errors" if k != "timeout" else "timeouts"] for k in ("connect", "read", "write")
        }
        res.socket_errors["timeout"] = d["timeouts"]
    return res


def available() -> str | None:
    return shutil.which("wrk")


def run(
    url: str,
    *,
    script: str,
    duration: float,
    connections: int = 64,
    threads: int = 1,
    timeout_s: float = 10.0,
) -> WrkResult:
    """Run wrk against a 127.0.0.1 URL for `duration` seconds (killed if it overruns by 30 s)."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"load stays on 127.0.0.1, got {url}")
    exe = available()
    if exe is None:
        raise RuntimeError("wrk is not installed")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-", delete=False) as f:
        f.write(script)
        script_path = Path(f.name)
    try:
        argv = [
            exe,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            f"--timeout={timeout_s:g}s",
            "--latency",
            "-s",
            str(script_path),
            url,
        ]
        cp = procs.run(argv, timeout=duration + 30)
    finally:
        script_path.unlink(missing_ok=True)
    if cp.returncode != 0:
        raise RuntimeError(f"wrk failed ({cp.returncode}): {cp.stderr or cp.stdout}")
    return parse(cp.stdout, url=url, threads=threads, connections=connections)


def version() -> str:
    exe = available()
    if not exe:
        return "not installed"
    cp = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10, check=False)
    return (cp.stdout or cp.stderr).splitlines()[0].strip() if (cp.stdout or cp.stderr) else "?"
