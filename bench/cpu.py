"""Where the CPU went during a measurement: per-process utime+stime from /proc, grouped (wrk, API, PostgreSQL…)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


_KERNEL = -2  # pgid marker for kernel threads (children of kthreadd)


def _read_all() -> dict[int, tuple[str, int, float]]:
    """pid -> (comm, pgid, cpu seconds so far) for every live process; kernel threads get pgid _KERNEL."""
    out: dict[int, tuple[str, int, float]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            raw = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        head, _, tail = raw.rpartition(")")
        comm = head.split("(", 1)[1]
        f = tail.split()
        # after comm: state(0) ppid(1) pgrp(2) ... utime(11) stime(12)
        pid, ppid = int(d), int(f[1])
        pgid = _KERNEL if pid == 2 or ppid == 2 else int(f[2])
        out[pid] = (comm, pgid, (int(f[11]) + int(f[12])) / TICK)
    return out


def _system_busy() -> tuple[float, float, float]:
    """(busy, total, stolen) jiffies of all CPUs from /proc/stat; stolen = the hypervisor ran someone else while
    this machine wanted the CPU ("steal"; counted as busy too)."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    vals = [int(x) for x in parts[:8]]
    idle = vals[3] + vals[4]  # idle + iowait
    total = sum(vals)
    return float(total - idle), float(total), float(vals[7])


class CpuMeter:
    """Samples every process every `interval` s in a thread; `split()` gives CPU-seconds (and cores) per group.

    Processes born during the window count from zero; a process that exits loses at most `interval` s of
    its tail. Groups: processes in `groups` (name -> process group id), then by command name
    (wrk, postgres, redis-server), the benchmark itself, and "other".
    """

    def __init__(
        self,
        groups: dict[str, int] | None = None,
        interval: float = 0.25,
        top_at: float | None = None,
        database: str | None = None,
    ):
        self.groups = dict(groups or {})
        self.database = database
        self._cmdlines: dict[int, str] = {}
        self.interval = interval
        self.top_at = top_at
        self.top_snapshot: str | None = None
        self._first: dict[int, tuple[str, int, float]] = {}
        self._last: dict[int, tuple[str, int, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = self._t1 = 0.0
        self._sys0 = self._sys1 = (0.0, 0.0)

    def __enter__(self) -> CpuMeter:
        self._first = _read_all()
        self._last = dict(self._first)
        for pid, rec in self._first.items():
            if rec[0] == "postgres":
                self._cmdlines[pid] = _cmdline(pid)
        self._sys0 = _system_busy()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="cpu-meter")
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self._sample()
        self._t1 = time.monotonic()
        self._sys1 = _system_busy()

    def _sample(self) -> None:
        for pid, rec in _read_all().items():
            self._last[pid] = rec
            # A backend's title names its database; read it while the process lives (it may exit before
            # split()). A just-forked backend still shows the postmaster's command line: retry next time.
            if rec[0] == "postgres" and not self._cmdlines.get(pid, "").startswith("postgres: "):
                self._cmdlines[pid] = _cmdline(pid)

    def _loop(self) -> None:
        deadline = time.monotonic() + 24 * 3600
        while not self._stop.wait(self.interval) and time.monotonic() < deadline:
            self._sample()
            if self.top_at is not None and self.top_snapshot is None and time.monotonic() - self._t0 >= self.top_at:
                self.top_snapshot = top_snapshot()

    def _group_of(self, pid: int, comm: str, pgid: int) -> str:
        for name, gid in self.groups.items():
            if pgid == gid:
                return name
        if pid == os.getpid():
            return "bench (this process)"
        if pgid == _KERNEL:
            return "kernel threads (I/O writeback, softirq…)"
        if comm == "wrk":
            return "wrk"
        if comm in ("postgres", "postmaster"):
            return _postgres_group(self._cmdline(pid), self.database)
        if comm.startswith("redis"):
            return "redis"
        from bench.procs import STARTED

        if pgid in STARTED:
            return f"bench child ({comm})"
        return "other"

    def _cmdline(self, pid: int) -> str:
        if not self._cmdlines.get(pid):
            self._cmdlines[pid] = _cmdline(pid)
        return self._cmdlines[pid]

    def split(self) -> dict[str, Any]:
        """{'wall_s', 'system_busy_cores', 'groups': {name: {'cpu_s', 'cores', 'share'}}}."""
        wall = max(self._t1 - self._t0, 1e-9)
        per: dict[str, float] = defaultdict(float)
        per_pid: dict[str, dict[int, float]] = defaultdict(dict)
        others: dict[str, float] = defaultdict(float)
        for pid, (comm, pgid, cpu) in self._last.items():
            base = self._first.get(pid)
            # same pid, and CPU time did not go down (else the pid was reused); kworkers rename themselves
            start = base[2] if base is not None and cpu >= base[2] else 0.0
            delta = cpu - start
            if delta > 0:
                group = self._group_of(pid, comm, pgid)
                per[group] += delta
                if group in self.groups:
                    per_pid[group][pid] = round(delta / wall, 2)
                if group in ("other", "postgresql (other databases)"):
                    others[_short_cmd(self._cmdline(pid)) or comm] += delta
        elapsed = max(self._sys1[1] - self._sys0[1], 1)
        busy = (self._sys1[0] - self._sys0[0]) / elapsed * NCPU
        stolen = (self._sys1[2] - self._sys0[2]) / elapsed * NCPU
        total = sum(per.values()) or 1e-9
        groups = {
            name: {"cpu_s": round(s, 2), "cores": round(s / wall, 2), "share": round(s / total, 3)}
            for name, s in sorted(per.items(), key=lambda kv: -kv[1])
            if s >= 0.005
        }
        top_others = {
            k: round(v / wall, 2) for k, v in sorted(others.items(), key=lambda kv: -kv[1])[:6] if v / wall >= 0.02
        }
        return {
            "wall_s": round(wall, 2),
            "system_busy_cores": round(busy, 2),
            "stolen_cores": round(stolen, 2),
            "ncpu": NCPU,
            "groups": groups,
            "others_cores": top_others,
            "processes": {g: {str(pid): c for pid, c in p.items() if c >= 0.01} for g, p in per_pid.items()},
        }


FOREIGN = ("other", "postgresql (other databases)")


def foreign_cores(split: dict[str, Any]) -> float:
    """Cores used during the window by processes that are not part of the benchmark (other users' work)."""
    return float(sum(g["cores"] for name, g in split["groups"].items() if name in FOREIGN))


def describe(split: dict[str, Any], top: int = 4) -> str:
    """'CPU cores: api (uvicorn) 1.10, wrk 0.40, postgresql (bench db) 0.30 (machine 1.90/2 busy)'."""
    ours = [(n, g) for n, g in split["groups"].items() if n not in FOREIGN]
    parts = [f"{name} {g['cores']:.2f}" for name, g in ours[:top]]
    text = f"CPU cores: {', '.join(parts)} (machine {split['system_busy_cores']:.2f}/{split['ncpu']} busy)"
    stolen = split.get("stolen_cores", 0.0)
    if stolen >= 0.05:
        text += f"; the hypervisor held back {stolen:.2f} cores (steal: this virtual machine waited for a CPU)"
    noise = foreign_cores(split)
    if noise >= 0.1:
        text += f"; NOISY: other users' processes took {noise:.2f} cores"
    return text


def top_snapshot() -> str:
    """`top -b -n1` (first 25 lines), or why not."""
    try:
        cp = subprocess.run(["top", "-b", "-n1", "-w", "160"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"top unavailable: {exc}"
    return "\n".join(cp.stdout.splitlines()[:25])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _short_cmd(cmd: str) -> str:
    return cmd[:70]


def _postgres_group(cmd: str, database: str | None) -> str:
    """System-cluster backends carry 'postgres: 15/main: user db host ...' in their title."""
    if not cmd.startswith("postgres: "):
        return "other"  # another postmaster (a test cluster in /tmp, say)
    parts = cmd.split()
    # 'postgres: 15/main: postgres grid_bench 127.0.0.1(5555) idle' vs 'postgres: 15/main: checkpointer'
    if len(parts) >= 5 and ("(" in parts[4] or parts[4] == "[local]"):
        if database is not None and parts[3] == database:
            return "postgresql (bench db)"
        return "postgresql (other databases)"
    return "postgresql (background)"


def machine_busy(seconds: float = 1.0) -> float:
    """Cores busy over the next `seconds` (all processes)."""
    a = _system_busy()
    time.sleep(seconds)
    b = _system_busy()
    return (b[0] - a[0]) / max(b[1] - a[1], 1) * NCPU


def wait_quiet(threshold: float = 0.35, max_wait: float = 90.0, need: int = 3) -> dict[str, Any]:
    """Wait (bounded) until the machine is nearly idle for `need` consecutive seconds; report what was seen.

    The machine is shared; others' tests or profiling runs would otherwise be measured as our cost.
    """
    t0 = time.monotonic()
    seen: list[float] = []
    quiet = 0
    while time.monotonic() - t0 < max_wait:
        busy = machine_busy(1.0)
        seen.append(round(busy, 2))
        quiet = quiet + 1 if busy < threshold else 0
        if quiet >= need:
            break
    return {"quiet": quiet >= need, "waited_s": round(time.monotonic() - t0, 1), "busy_cores_last": seen[-need:]}


def connections_by_pid(port: int) -> dict[str, int]:
    """Established TCP connections to 127.0.0.1:`port`, per server process (from `ss -tnp`)."""
    import re

    try:
        cp = subprocess.run(
            ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    counts: dict[str, int] = defaultdict(int)
    for line in cp.stdout.splitlines():
        m = re.search(r"pid=(\d+)", line)
        counts[m.group(1) if m else "?"] += 1
    return dict(counts)
