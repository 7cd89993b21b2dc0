"""Project-local PostgreSQL cluster: initdb once, start on a free port as a non-root user, stop."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grid_mgmt.runner.probe import ServiceError, probe_postgres, say
from grid_mgmt.runner.proc import START_TIMEOUT, claim, free_port, owner_alive, pid_alive, release, tail

PG_USER = "gridpg"
"""System user that owns and runs the local cluster when we are root (PostgreSQL refuses to run as root)."""

FAST_PG_SETTINGS: Mapping[str, str] = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
"""Settings for throwaway test data: much faster, but an OS crash can corrupt the cluster."""


def find_pg_bindir() -> Path:
    """The newest PostgreSQL server binaries: Debian's /usr/lib/postgresql/<major>/bin, else pg_ctl on PATH."""
    found: list[tuple[int, Path]] = []
    for candidate in Path("/usr/lib/postgresql").glob("*/bin"):
        if (candidate / "initdb").exists() and (candidate / "postgres").exists() and candidate.parent.name.isdigit():
            found.append((int(candidate.parent.name), candidate))
    if found:
        return max(found)[1]
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl and (Path(pg_ctl).resolve().parent / "initdb").exists():
        return Path(pg_ctl).resolve().parent
    raise ServiceError(
        "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb, no pg_ctl on PATH); "
        "run scripts/install.sh as root, or set GRID_DATABASE_URL to a PostGIS database"
    )


def postgis_installed(bindir: Path) -> bool:
    """Whether the PostGIS extension files exist for the PostgreSQL at `bindir`."""
    sharedirs = [Path("/usr/share/postgresql") / bindir.parent.name]
    pg_config = bindir / "pg_config"
    if pg_config.exists():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([str(pg_config), "--sharedir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                sharedirs.insert(0, Path(out.stdout.strip()))
    return any((d / "extension" / "postgis.control").exists() for d in sharedirs)


def ensure_system_user(name: str = PG_USER) -> pwd.struct_passwd:
    """The system user `name`, created with useradd when missing (needs root)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    cmd = [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
    cmd += ["--shell", "/usr/sbin/nologin", name]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        return pwd.getpwnam(name)  # a concurrent run may have created it
    except KeyError:
        raise ServiceError(f"cannot create system user {name!r}: {result.stderr.strip()}") from None


def traversable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether `user` can reach `path` (search permission on it and every ancestor; ACLs ignored)."""
    current = path.resolve()
    for directory in [current, *current.parents]:
        try:
            st = directory.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == user.pw_uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid == user.pw_gid:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            return False
    return True


@dataclass
class LocalPostgres:
    """A PostgreSQL cluster in `root` (data/, run/, log/) that this process started."""

    root: Path
    bindir: Path
    port: int
    user: pwd.struct_passwd | None
    """The owner we run the server as (None: ourselves)."""
    owned: bool = True
    """False when another live process started this server: we use it and leave it running."""

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "log" / "postgres.log"

    def url(self, database: str) -> str:
        """SQLAlchemy URL of `database` on this cluster (superuser postgres, trust auth, TCP)."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def postmaster_pid(self) -> int | None:
        """The server's process id from postmaster.pid, if the file exists."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def running_port(self) -> int | None:
        """The port of the running server of this cluster (line 4 of postmaster.pid), if it runs."""
        pid = self.postmaster_pid()
        if not pid or not pid_alive(pid):
            return None
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n")[3])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """pg_ctl stop -m fast (kill the postmaster if that fails); nothing when we only borrowed it."""
        if not self.owned:
            return
        self._stop()
        release(self.root)

    def _stop(self) -> None:
        pid = self.postmaster_pid()
        result = _pg_ctl(self, ["stop", "-m", "fast", "-w", "-t", "30"])
        if result.returncode != 0 and pid and pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
        if pid:
            deadline = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)


def _as_user(user: pwd.struct_passwd | None) -> dict[str, Any]:
    if user is None or os.geteuid() != 0:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _pg_ctl(pg: LocalPostgres, args: list[str]) -> subprocess.CompletedProcess[str]:
    cmd = [str(pg.bindir / "pg_ctl"), "-D", str(pg.data), *args]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=pg.root,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        check=False,
        **_as_user(pg.user),
    )


def _chown(path: Path, user: pwd.struct_passwd | None) -> None:
    if user is not None and os.geteuid() == 0:
        os.chown(path, user.pw_uid, user.pw_gid)


def _cluster_root(root: Path, user: pwd.struct_passwd | None) -> Path:
    """`root`, or a per-project directory under the temp dir when the server user cannot reach `root`."""
    root.parent.mkdir(parents=True, exist_ok=True)
    if user is None or traversable_by(root.parent, user):
        return root
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    fallback = Path(tempfile.gettempdir()) / f"grid-mgmt-{digest}" / "pg"
    say(f"user {user.pw_name} cannot reach {root}; keeping the local cluster in {fallback}")
    fallback.parent.mkdir(mode=0o755, exist_ok=True)
    st = fallback.parent.lstat()  # a predictable name in a shared directory: it must be ours, not a planted link
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise ServiceError(f"{fallback.parent} exists but is not a private directory of ours; remove it")
    fallback.parent.chmod(0o755)  # searchable by the cluster user whatever the umask
    return fallback


def _write_conf(pg: LocalPostgres, settings: Mapping[str, str]) -> None:
    main_conf = pg.data / "postgresql.conf"
    include = "include_if_exists = 'grid_mgmt.conf'"
    if include not in main_conf.read_text():
        with main_conf.open("a") as fh:
            fh.write(f"\n# added by grid-mgmt: per-start settings\n{include}\n")
    sockdir = pg.root / "run"
    socket_path = sockdir / f".s.PGSQL.{pg.port}"
    values = {
        "port": str(pg.port),
        "listen_addresses": "127.0.0.1",
        # unix socket paths are limited to ~107 bytes: fall back to TCP only
        "unix_socket_directories": str(sockdir) if len(str(socket_path)) < 100 else "",
        "max_connections": "200",
        "shared_buffers": "128MB",
        "logging_collector": "off",
        "timezone": "UTC",
        **settings,
    }
    lines = ["# written by grid-mgmt at every start of the local cluster"]
    lines += [f"{key} = '{value.replace(chr(39), chr(39) * 2)}'" for key, value in values.items()]
    conf = pg.data / "grid_mgmt.conf"
    conf.write_text("\n".join(lines) + "\n")
    _chown(conf, pg.user)


def _initdb(pg: LocalPostgres) -> None:
    if (pg.data / "PG_VERSION").exists():
        return
    if pg.data.exists():  # left over from an interrupted initdb
        shutil.rmtree(pg.data)
    say(f"creating a local PostgreSQL cluster in {pg.data}")
    cmd = [str(pg.bindir / "initdb"), "-D", str(pg.data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
    cmd += ["--no-locale"]
    result = subprocess.run(
        cmd, capture_output=True, text=True, cwd=pg.root, stdin=subprocess.DEVNULL, check=False, **_as_user(pg.user)
    )
    if result.returncode != 0:
        raise ServiceError(f"initdb failed in {pg.data}:\n{(result.stdout + result.stderr).strip()[-2000:]}")


def start_local_postgres(root: Path, settings: Mapping[str, str] | None = None) -> LocalPostgres:
    """Create (once) and start a PostgreSQL cluster under `root` on a free port; wait until it answers."""
    bindir = find_pg_bindir()
    if not postgis_installed(bindir):
        raise ServiceError(
            f"PostGIS is not installed for PostgreSQL {bindir.parent.name}; run scripts/install.sh as root "
            f"(apt-get install postgresql-{bindir.parent.name}-postgis-3)"
        )
    user = ensure_system_user() if os.geteuid() == 0 else None
    root = _cluster_root(root, user)
    for directory in (root, root / "run", root / "log"):
        directory.mkdir(parents=True, exist_ok=True)
        _chown(directory, user)
    pg = LocalPostgres(root=root, bindir=bindir, port=0, user=user)
    _initdb(pg)
    running = pg.running_port()
    if running is not None:
        pg.port = running
        try:
            probe_postgres(pg.url("postgres"))
        except ServiceError:
            say(f"stopping an unresponsive local PostgreSQL in {pg.data}")
            pg._stop()
        else:
            pg.owned = not owner_alive(root)
            if pg.owned:
                claim(root)
            say(f"using the local PostgreSQL already running in {pg.data} (port {pg.port})")
            return pg
    claim(root)
    for attempt in range(3):
        pg.port = free_port()
        _write_conf(pg, settings or {})
        result = _pg_ctl(pg, ["start", "-w", "-t", str(int(START_TIMEOUT)), "-l", str(pg.log)])
        if result.returncode == 0:
            break
        if "already in use" not in tail(pg.log) or attempt == 2:
            release(root)
            raise ServiceError(f"local PostgreSQL did not start (log {pg.log}):\n{tail(pg.log)}")
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            probe_postgres(pg.url("postgres"))
            break
        except ServiceError:
            if time.monotonic() > deadline:
                pg.stop()
                raise
            time.sleep(0.2)
    return pg
