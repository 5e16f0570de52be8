"""Who may connect to the embedded server: scram passwords for every role over TCP and for every
role but the owner on its private socket; `evalhouse db url --role` prints a URL that works."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from evals.warehouse.access import HBA
from evals.warehouse.embedded import EmbeddedPostgres

EVALHOUSE = [sys.executable, "-m", "evals.cli"]
USERS = {"owner": "postgres", "web": "evalhouse_web", "bi": "evalhouse_bi"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "EVALHOUSE_HOME": str(home)}
    return subprocess.run(
        [*EVALHOUSE, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        input=stdin,
    )


def _url(home: Path, role: str, *tcp: str) -> str:
    """What `evalhouse db url --role ROLE [--tcp]` prints (asked in-process: a CLI start costs 3 s;
    the CLI itself is tested once below)."""
    return EmbeddedPostgres(home).url(role=USERS[role], tcp=bool(tcp))


def _with_password(url: str, password: str | None) -> str:
    """`url` with another password, or with none."""
    parts = urlsplit(url)
    user = parts.username + (f":{password}" if password is not None else "")
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.netloc.rpartition('@')[2]}"))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[Path, int]]:
    """One embedded server listening on the socket and on loopback TCP (no schema needed)."""
    home = tmp_path_factory.mktemp("access") / "home"
    port = _free_port()
    server = EmbeddedPostgres(home)
    server.ensure_running(tcp_port=port)  # what `evalhouse db up --tcp PORT` does
    yield home, port
    server.stop()


def test_evalhouse_db_url_prints_a_working_url_for_the_bi_role(server):
    home, _port = server
    result = _cli(home, "db", "url", "--role", "bi", "--tcp")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == _url(home, "bi", "--tcp")
    with psycopg.connect(result.stdout.strip()) as conn:
        assert conn.execute("select current_user").fetchone() == ("evalhouse_bi",)


@pytest.mark.parametrize("tcp", [(), ("--tcp",)], ids=["socket", "tcp"])
@pytest.mark.parametrize("role", sorted(USERS))
def test_the_url_of_each_role_connects_as_that_role(server, role, tcp):
    home, _port = server
    with psycopg.connect(_url(home, role, *tcp)) as conn:
        assert conn.execute("select current_user").fetchone() == (USERS[role],)


@pytest.mark.parametrize(
    ("role", "tcp"),
    [("owner", ("--tcp",)), ("web", ()), ("web", ("--tcp",)), ("bi", ()), ("bi", ("--tcp",))],
)
def test_a_wrong_or_missing_password_is_refused(server, role, tcp):
    home, _port = server
    url = _url(home, role, *tcp)
    for password in ("wrong-password", None):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(_with_password(url, password), connect_timeout=10)


def test_db_password_sets_a_chosen_password_and_db_url_prints_it(server):
    home, _port = server
    before = _url(home, "bi", "--tcp")
    result = _cli(home, "db", "password", "--role", "bi", "--stdin", stdin="choose-one-please\n")
    assert result.returncode == 0, result.stderr
    after = _url(home, "bi", "--tcp")
    assert urlsplit(after).password == "choose-one-please"
    with psycopg.connect(after) as conn:
        assert conn.execute("select current_user").fetchone() == ("evalhouse_bi",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(before)


@pytest.mark.parametrize("role", ["web", "bi"])
def test_no_role_but_the_owner_writes_server_files(server, role, tmp_path):
    home, _port = server
    target = tmp_path / "stolen.csv"
    with (
        psycopg.connect(_url(home, role, "--tcp")) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="pg_write_server_files"),
    ):
        conn.execute(f"copy (select 1) to '{target}'")
    assert not target.exists()


def test_passwords_and_the_server_log_are_private_and_passwords_generated_once(server):
    home, port = server
    path = home / "passwords.json"
    before = path.read_text()
    for private in (path, home / "provisioned", home / "postgres.log"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    EmbeddedPostgres(home).ensure_running(tcp_port=port)
    assert path.read_text() == before
    assert set(EmbeddedPostgres(home).passwords.load()) == set(USERS.values())


def test_the_socket_directory_is_private_and_the_rules_are_evalhouses(server):
    home, _port = server
    server_ = EmbeddedPostgres(home)
    socket_dir = server_.status().socket_dir
    assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
    assert (server_.pgdata / "pg_hba.conf").read_text() == HBA


@pytest.mark.parametrize("running", [False, True], ids=["stopped", "still-running"])
def test_an_older_data_dir_is_locked_down_on_db_up_and_keeps_its_rows(tmp_path, running):
    """A data dir made by an older evalhouse: initdb's trust rules, no passwords, BI NOLOGIN;
    stopped, or still served by a server that older evalhouse started."""
    home = tmp_path / "old"
    old = EmbeddedPostgres(home)
    old.ensure_running()
    with psycopg.connect(old.url(), autocommit=True) as conn:
        conn.execute("create table kept (v text)")
        conn.execute("insert into kept values ('café ✓')")
        conn.execute("alter role evalhouse_bi nologin password null")
        conn.execute("drop role evalhouse_web")
        conn.execute("alter role postgres password null")
    (old.pgdata / "pg_hba.conf").write_text(
        "local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"
    )
    (home / "passwords.json").unlink()
    (home / "provisioned").write_text("")
    if running:
        old._pg_ctl("reload")
        old.ensure_running()  # what `evalhouse db up` does
    else:
        old.stop()
        old.ensure_running(tcp_port=_free_port())  # what `evalhouse db up --tcp PORT` does
    tcp = () if running else ("--tcp",)
    try:
        with psycopg.connect(_url(home, "bi", *tcp)) as conn:
            assert conn.execute("select current_user").fetchone() == ("evalhouse_bi",)
        with psycopg.connect(_url(home, "owner", *tcp)) as conn:
            assert conn.execute("select v from kept").fetchall() == [("café ✓",)]
        for role in ("bi", "web") if running else ("owner", "bi", "web"):
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(_with_password(_url(home, role, *tcp), "any"))
    finally:
        old.stop()


def test_db_url_refuses_an_unknown_role(server):
    home, _port = server
    result = _cli(home, "db", "url", "--role", "admin")
    assert result.returncode == 2
    assert "--role must be one of owner, web, bi" in result.stderr


def test_row_security_leaves_other_writers_what_their_grants_give(warehouse_url):
    """Only the web role is narrowed: a capture role that is not the owner still writes any
    source (through INSERT … SELECT, as Postgres refuses it COPY under row-level security)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from evals.runlog import RunRecord, write_runs

    role = f"capture_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(warehouse_url, autocommit=True) as owner:
        owner.execute(f"create role {role} login password 'capture-password'")
        owner.execute(f"grant usage on schema raw to {role}")
        owner.execute(f"grant select, insert on raw.eval_runs, raw.eval_run_keys to {role}")
        try:
            capture = make_conninfo(
                **{**conninfo_to_dict(warehouse_url), "user": role, "password": "capture-password"}
            )
            runs = [
                RunRecord(
                    idempotency_key=f"capture-{source}",
                    source=source,
                    role="candidate",
                    model="app-model",
                    started_at=datetime.now(UTC),
                    status="ok",
                )
                for source in ("production", "golden")
            ]
            with psycopg.connect(capture, autocommit=True) as conn:
                assert write_runs(conn, runs) == 2
                assert write_runs(conn, runs) == 0  # idempotent, as for the owner
            stored = owner.execute(
                "select source from raw.eval_runs where model = 'app-model' order by source"
            ).fetchall()
            assert stored == [("golden",), ("production",)]
        finally:
            owner.execute(f"drop owned by {role}")
            owner.execute(f"drop role {role}")


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a directory to another user needs root")
def test_a_short_socket_directory_is_made_private_or_refused_when_someone_else_owns_it(tmp_path):
    """A data dir deep enough for the 107-byte socket limit gets its socket in /tmp, under a
    name others can predict: one made 0777 by an older evalhouse is tightened, one another user
    made is refused, never used."""
    import hashlib
    import pwd
    import tempfile

    from evals.warehouse.embedded import EmbeddedPostgresError

    server = EmbeddedPostgres(tmp_path / ("deep" * 20))
    server.pgdata.mkdir(parents=True)
    short = Path(tempfile.gettempdir()) / (
        "evalhouse-" + hashlib.sha256(str(server.pgdata).encode()).hexdigest()[:12]
    )
    try:
        short.mkdir(mode=0o777)
        short.chmod(0o777)
        assert server._socket_dir() == short
        assert stat.S_IMODE(short.stat().st_mode) == 0o700
        nobody = pwd.getpwnam("nobody")
        os.chown(short, nobody.pw_uid, nobody.pw_gid)
        with pytest.raises(EmbeddedPostgresError, match="must be private"):
            server._socket_dir()
    finally:
        short.rmdir()
