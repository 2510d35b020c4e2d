"""The nine ``db.*`` faults for the fault catalog: real servers in the lab's server namespace.

``db_scenarios(lab)`` adds the lab addresses below to the server namespace's veth, starts
real MariaDB, PostgreSQL and Redis servers there (concurrently: the data directories are
initialised once and copied), builds each fault, and yields one :class:`Scenario` per code.
Everything is stopped and removed on exit, also when starting fails half-way.

====  =====  ========================================================================
addr  port   server and fault
====  =====  ========================================================================
.20   3306   MariaDB, skip-name-resolve: ``app`` may use ``appdb`` only
.21   3306   MariaDB with name resolution and max_connect_errors=3: client host blocked
.22   5432   PostgreSQL: database ``closeddb`` has ALLOW_CONNECTIONS false
.23   5432   PostgreSQL standby (standby.signal, hot_standby off): in recovery
.24   5432   PostgreSQL, max_connections=3, every slot held by a session
.25   6379   Redis, SIGSTOPped: the kernel accepts, nobody answers
.26   6432   PgBouncer (Debian's) whose PostgreSQL is down: it holds every login
====  =====  ========================================================================

The servers' own administration goes through their Unix sockets (files in the temporary
directories, reachable from the root namespace); nothing here sends a packet to a lab
address from the root namespace. The client host is blocked by a short Python run in the
lab's client namespace (no default route).

Every scenario can be diagnosed any number of times, concurrently, except that the stopped
Redis never accepts: each diagnosis leaves one connection in its accept queue (511 long),
so a few hundred diagnoses of that scenario per context are the limit.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from netprobe.protocols import postgres as pg
from nplab.dbservers import APP_PASSWORD, MariaDB, Postgres, RedisServer, write_postgres_conf
from nplab.realservers.pgbouncer import PgBouncer
from nplab.scenario import Scenario
from nplab.topology import PY, Lab, pid_alive, sh

__all__ = ["ADDRESSES", "APP_PASSWORD", "db_scenarios"]

MARIADB_IP = "198.18.0.20"
BLOCKING_IP = "198.18.0.21"
PG_IP = "198.18.0.22"
STANDBY_IP = "198.18.0.23"
FULL_PG_IP = "198.18.0.24"
STOPPED_REDIS_IP = "198.18.0.25"
PGBOUNCER_IP = "198.18.0.26"
ADDRESSES = (
    MARIADB_IP, BLOCKING_IP, PG_IP, STANDBY_IP, FULL_PG_IP, STOPPED_REDIS_IP, PGBOUNCER_IP
)  # fmt: skip
#: PgBouncer's port, and the port of its PostgreSQL (on the server namespace's loopback,
#: where nothing listens: the server is down).
PGBOUNCER_PORT = 6432
DOWN_PG_PORT = 5499

#: The lab client's address on the segment (nplab/topology.py).
CLIENT_IP = "198.18.0.1"
#: max_connections of the full PostgreSQL; as many sessions hold the slots.
FULL_PG_SLOTS = 3
#: max_connect_errors of the blocking MariaDB.
MAX_CONNECT_ERRORS = 3


def _wait(check: Callable[[], bool], what: str, proc: Any = None, timeout: float = 30.0) -> None:
    """Poll ``check`` (bounded in time); fail early when the server process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the server exited with {proc.returncode}")
        time.sleep(0.03)
    raise RuntimeError(f"{what}: not ready after {timeout:g} s")


def _unix_connects(path: str) -> bool:
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
        s.settimeout(0.5)
        s.connect(path)
        return True
    return False


#: Every server's directory lives under one temporary root named with this process's pid,
#: so that a root left by a process that died without its teardown can be recognised.
TMP_PREFIX = "netprobe-labdb-"


def remove_stale_roots() -> None:
    """Remove the server directories of earlier runs whose process is gone (killed before
    its teardown; topology.cleanup_stale kills their servers with their namespaces)."""
    for path in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*"):
        pid = path.name.removeprefix(TMP_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _own_dir(server_dir: str | Path, root: Path, name: str) -> Path:
    """Replace the directory the base class made in /tmp with one under ``root``."""
    shutil.rmtree(server_dir, ignore_errors=True)
    path = root / name
    path.mkdir()
    return path


def _server_veth(lab: Lab) -> str:
    links = json.loads(sh("ip", "-n", lab.server, "-j", "link", "show", "type", "veth").stdout)
    names = [str(link["ifname"]) for link in links]
    if len(names) != 1:
        raise RuntimeError(f"expected one veth in {lab.server}, found {names}")
    return names[0]


# ------------------------------------------------------------------------------------------------
# Servers in the lab's server namespace. They reuse nplab/dbservers.py (sql(), psql(), stop()),
# and differ in where they run: `ip netns exec <server>`, a fixed lab address, the default port.


def _mariadb_template(root: Path) -> Path:
    data = root / "mariadb-template"
    subprocess.run(
        ["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={data}",
         "--skip-test-db", "--auth-root-authentication-method=socket"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return data


def _postgres_template(root: Path, bindir: str) -> Path:
    (root / "pg-template").mkdir()
    shutil.chown(root / "pg-template", "postgres", "postgres")
    data = root / "pg-template" / "data"
    subprocess.run(
        ["runuser", "-u", "postgres", "--", f"{bindir}/initdb", "-D", str(data), "-U", "postgres",
         "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return data


class LabMariaDB(MariaDB):
    """mariadbd on ``ip``:3306 in namespace ``ns``, its data directory copied from a template.

    ``resolve``: name resolution on (so MariaDB keeps its host cache and can block a host),
    from a private /etc/hosts that names the lab client and an nsswitch.conf that says
    ``hosts: files`` (no DNS query ever leaves), bind-mounted in a private mount namespace.
    """

    def __init__(
        self, root: Path, ns: str, ip: str, *, resolve: bool = False, args: tuple[str, ...] = ()
    ) -> None:
        super().__init__()
        self.dir = _own_dir(self.dir, root, f"mariadb-{ip}")
        self.socket = str(self.dir / "mysqld.sock")
        self.ns, self.ip, self.port = ns, ip, 3306
        self.resolve, self.args = resolve, args

    def start_from(self, template: Path) -> LabMariaDB:
        data = self.dir / "data"
        subprocess.run(["cp", "-a", str(template), str(data)], check=True, timeout=60)
        mariadbd = [
            shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults", "--user=root",
            f"--datadir={data}", f"--socket={self.socket}", f"--port={self.port}",
            f"--bind-address={self.ip}", f"--pid-file={self.dir / 'mysqld.pid'}",
            f"--log-error={self.dir / 'error.log'}", "--innodb-buffer-pool-size=16M",
            "--skip-log-bin", "--performance-schema=OFF", *self.args,
        ]  # fmt: skip
        if self.resolve:
            etc = self.dir / "etc"
            etc.mkdir()
            (etc / "hosts").write_text(f"127.0.0.1 localhost\n{CLIENT_IP} lab-client\n")
            (etc / "nsswitch.conf").write_text("hosts: files\n")
            inner = (
                f"mount --bind {etc / 'hosts'} /etc/hosts && "
                f"mount --bind {etc / 'nsswitch.conf'} /etc/nsswitch.conf && "
                f"exec {' '.join(mariadbd)}"
            )
            cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner]
        else:
            cmd = [*mariadbd, "--skip-name-resolve"]
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, *cmd],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(lambda: _unix_connects(self.socket), f"MariaDB on {self.ip}", self.proc)
        return self


class LabPostgres(Postgres):
    """PostgreSQL on ``ip``:5432 in namespace ``ns`` (plain text), data copied from a template.

    pg_hba.conf: trust on the Unix socket (the lab's own administration), scram-sha-256 from
    the lab segment.
    """

    def __init__(
        self, root: Path, ns: str, ip: str, *, max_connections: int = 20, standby: bool = False
    ) -> None:
        super().__init__(max_connections=max_connections, standby=standby)
        self.dir = _own_dir(self.dir, root, f"pg-{ip}")
        self.ns, self.ip, self.port = ns, ip, 5432

    @property
    def socket_path(self) -> str:
        return str(self.dir / f".s.PGSQL.{self.port}")

    def start_from(self, template: Path) -> LabPostgres:
        shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        subprocess.run(["cp", "-a", str(template), str(data)], check=True, timeout=60)
        (data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 198.18.0.0/24 scram-sha-256\n"
        )
        write_postgres_conf(
            data,
            listen=self.ip,
            port=self.port,
            socket_dir=self.dir,
            max_connections=self.max_connections,
            ssl=False,
            standby=self.standby,
        )
        # pg_ctl -w returns once postmaster.pid says "ready" (or "standby" for the standby).
        self.started = True
        subprocess.run(
            ["ip", "netns", "exec", self.ns, "runuser", "-u", "postgres", "--",
             f"{self.bindir}/pg_ctl", "-D", str(data), "-l", str(self.dir / "server.log"),
             "-w", "-t", "30", "start"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        return self


class LabRedis(RedisServer):
    """redis-server on ``ip``:6379 in namespace ``ns``, administered over its Unix socket."""

    def __init__(self, root: Path, ns: str, ip: str, *args: str) -> None:
        super().__init__(*args)
        self.dir = str(_own_dir(self.dir, root, f"redis-{ip}"))
        self.ns, self.ip, self.port = ns, ip, 6379
        self.socket_path = os.path.join(self.dir, "redis.sock")

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    def start(self) -> LabRedis:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, self.binary, "--port", str(self.port),
             "--bind", self.ip, "--unixsocket", self.socket_path, "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--logfile", os.path.join(self.dir, "redis.log"), *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(lambda: self._answers(), f"Redis on {self.ip}", self.proc)
        return self

    def _answers(self) -> bool:
        try:
            return self.command("PING").startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str, password: str | None = None) -> bytes:
        from netprobe.protocols.redis import build_command

        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2.0)
            s.connect(self.socket_path)
            if password is not None:
                s.sendall(build_command("AUTH", password))
                s.recv(1024)
            s.sendall(build_command(*args))
            return s.recv(65536)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a stopped process never handles SIGTERM
        super().stop()


# ------------------------------------------------------------------------------------------------
# The faults.


def hold_pg_sessions(server: LabPostgres, n: int) -> list[socket.socket]:
    """``n`` logged-in sessions over the Unix socket (trust), kept open: each takes a slot."""
    held: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_UNIX)
            held.append(s)
            s.settimeout(5.0)
            s.connect(server.socket_path)
            s.sendall(pg.build_startup("postgres", "postgres", application_name="lab-holder"))
            msg = _read_pg_until_ready(s)
            if not isinstance(msg, pg.ReadyForQuery):
                raise RuntimeError(f"a holding session was refused: {msg}")
    except BaseException:
        release_pg_sessions(held)
        raise
    return held


def _read_pg_until_ready(s: socket.socket) -> pg.BackendMessage:
    buf = b""
    for _ in range(200):  # bounded: a login is a handful of messages
        parsed = pg.parse_message(buf)
        if parsed is None:
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("the server closed the session")
            buf += chunk
            continue
        msg, buf = parsed
        if isinstance(msg, pg.ReadyForQuery) or (
            isinstance(msg, pg.ErrorResponse) and not msg.notice
        ):
            return msg
    raise RuntimeError("no ReadyForQuery")


def release_pg_sessions(held: list[socket.socket]) -> None:
    for s in held:
        with contextlib.suppress(OSError):
            s.sendall(pg.build_terminate())
        s.close()
    held.clear()


_BLOCK_CODE = """
import socket, struct, sys, time
host, port, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + 15
for i in range(limit):
    with socket.create_connection((host, port), timeout=3) as s:
        data = s.recv(4096)
        if len(data) > 6 and data[4] == 0xFF and struct.unpack_from("<H", data, 5)[0] == 1129:
            print(i)
            sys.exit(0)
    # Hung up after the greeting: MariaDB counts a connection error for this host.
    if time.monotonic() > deadline:
        break
    time.sleep(0.05)
sys.exit("the host was not blocked")
"""


def block_client_host(lab: Lab, server: LabMariaDB) -> int:
    """Hang up after the greeting from the lab client until MariaDB answers 1129.

    Runs in the client namespace (the only place whose address MariaDB should block); returns
    how many hang-ups it took.
    """
    out = subprocess.run(
        ["ip", "netns", "exec", lab.client, PY, "-c", _BLOCK_CODE, server.ip, str(server.port),
         str(MAX_CONNECT_ERRORS + 10)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"could not get the lab client blocked: {out.stderr.strip()}")
    return int(out.stdout.strip())


def _scenarios(pw: str) -> list[Scenario]:
    return [
        Scenario(
            code="db.too_many_connections",
            title="PostgreSQL with every connection slot taken",
            setup=(
                f"PostgreSQL on `{FULL_PG_IP}:5432` with `max_connections = {FULL_PG_SLOTS}` "
                "and `superuser_reserved_connections = 0`; "
                f"{FULL_PG_SLOTS} logged-in sessions (over the server's Unix socket) hold "
                "every slot, so each new connection is refused before authentication with "
                "SQLSTATE 53300 *sorry, too many clients already*."
            ),
            target=f"postgresql://{FULL_PG_IP}:5432/postgres",
        ),
        Scenario(
            code="db.host_blocked",
            title="MariaDB blocking the client host after handshake errors",
            setup=(
                f"MariaDB on `{BLOCKING_IP}:3306` with name resolution on (its host cache is "
                f"used; `/etc/hosts` names the lab client) and `max_connect_errors = "
                f"{MAX_CONNECT_ERRORS}`; an account `app@'%'` exists. The lab client read the "
                "greeting and hung up until the server blocked its address: MariaDB now "
                "answers every connection from it with error 1129 instead of a greeting."
            ),
            target=f"mysql://{BLOCKING_IP}:3306",
        ),
        Scenario(
            code="db.not_ready",
            title="PostgreSQL standby with hot_standby off",
            setup=(
                f"PostgreSQL on `{STANDBY_IP}:5432` started in recovery (`standby.signal`, "
                "no primary to follow) with `hot_standby = off`: the postmaster accepts "
                "connections but refuses every session with SQLSTATE 57P03 *the database "
                "system is not accepting connections*."
            ),
            target=f"postgresql://{STANDBY_IP}:5432/postgres",
        ),
        Scenario(
            code="db.greeting_timeout",
            title="Redis process stopped (SIGSTOP)",
            setup=(
                f"redis-server on `{STOPPED_REDIS_IP}:6379`, then stopped with SIGSTOP: the "
                "kernel still completes the TCP handshake (the listening socket's backlog), "
                "but the process never reads the PING nor answers; `--read-timeout 1` keeps "
                "the wait short."
            ),
            target=f"redis://{STOPPED_REDIS_IP}:6379",
            cli_args=("--read-timeout", "1"),
        ),
        Scenario(
            code="db.protocol_mismatch",
            title="A PostgreSQL client pointed at a MariaDB port",
            setup=(
                f"MariaDB on `{MARIADB_IP}:3306` (`skip-name-resolve`), probed as PostgreSQL: "
                "the server speaks first with its MySQL handshake packet where a PostgreSQL "
                "server answers the SSLRequest with one byte."
            ),
            target=f"postgresql://{MARIADB_IP}:3306/appdb",
        ),
        Scenario(
            code="db.auth_failed",
            title="MariaDB login with a wrong password",
            setup=(
                f"MariaDB on `{MARIADB_IP}:3306` (`skip-name-resolve`) with an account "
                "`app@'198.18.0.%'` that has a password and all rights on `appdb`; the DSN "
                "carries another password, so the login fails with 1045 *Access denied*."
            ),
            target=f"mysql://app:wrong-password@{MARIADB_IP}:3306/appdb",
        ),
        Scenario(
            code="db.access_denied",
            title="MariaDB user without rights on the database",
            setup=(
                f"MariaDB on `{MARIADB_IP}:3306` (`skip-name-resolve`); the account "
                "`app@'198.18.0.%'` has all rights on `appdb` and none on `secretdb`. The DSN "
                "has the right password and names `secretdb`: the login fails with 1044."
            ),
            target=f"mysql://app:{pw}@{MARIADB_IP}:3306/secretdb",
        ),
        Scenario(
            code="db.server_error",
            title="PostgreSQL database that accepts no connections",
            setup=(
                f"PostgreSQL on `{PG_IP}:5432` (scram-sha-256 from the lab segment), role "
                "`app` with a password; database `closeddb` altered with "
                "`ALLOW_CONNECTIONS false`. The login succeeds, then the server refuses the "
                "database with SQLSTATE 55000 (*object not in prerequisite state*), a code "
                "netprobe has no specific verdict for."
            ),
            target=f"postgresql://app:{pw}@{PG_IP}:5432/closeddb",
        ),
        Scenario(
            code="db.upstream_unavailable",
            title="PgBouncer whose PostgreSQL server is down",
            setup=(
                f"PgBouncer 1.18 (Debian's) on `{PGBOUNCER_IP}:{PGBOUNCER_PORT}`, "
                "`auth_type = scram-sha-256` with an `auth_file` holding `app`'s password, "
                f"`[databases] appdb = host=127.0.0.1 port={DOWN_PG_PORT}` where nothing "
                "listens: its server is down. PgBouncer answers the SCRAM exchange itself, "
                "then holds the login while it retries its server (`server_login_retry`); "
                "the DSN has the right password. `--read-timeout 1` keeps the wait short."
            ),
            target=f"postgresql://app:{pw}@{PGBOUNCER_IP}:{PGBOUNCER_PORT}/appdb",
            cli_args=("--read-timeout", "1"),
        ),
    ]


@contextlib.contextmanager
def db_scenarios(lab: Lab) -> Iterator[list[Scenario]]:
    """Start the database servers in ``lab``'s server namespace; yield the nine scenarios."""
    ns = lab.server
    veth = _server_veth(lab)
    with contextlib.ExitStack() as stack:
        for ip in ADDRESSES:
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", veth)
            stack.callback(sh, "ip", "-n", ns, "addr", "del", f"{ip}/24", "dev", veth, check=False)
        remove_stale_roots()
        root = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        os.chmod(root, 0o711)  # the postgres user reaches its directories inside

        mariadb = LabMariaDB(root, ns, MARIADB_IP, args=("--max-connect-errors=100000",))
        blocking = LabMariaDB(
            root,
            ns,
            BLOCKING_IP,
            resolve=True,
            args=(f"--max-connect-errors={MAX_CONNECT_ERRORS}",),
        )
        main_pg = LabPostgres(root, ns, PG_IP)
        standby = LabPostgres(root, ns, STANDBY_IP, standby=True)
        full = LabPostgres(root, ns, FULL_PG_IP, max_connections=FULL_PG_SLOTS)
        stopped = LabRedis(root, ns, STOPPED_REDIS_IP)
        bouncer = PgBouncer(
            upstream=("127.0.0.1", DOWN_PG_PORT),
            users={"app": APP_PASSWORD},
            databases=["appdb"],
            host=PGBOUNCER_IP,
            port=PGBOUNCER_PORT,
            netns=ns,
        )
        held: list[socket.socket] = []
        # Registered before anything starts: a failure half-way stops what did start.
        # (ExitStack unwinds last-in first-out: the sessions go before their server.)
        for server in (mariadb, blocking, main_pg, standby, full, stopped):
            stack.callback(server.stop)
        stack.enter_context(bouncer)
        stack.callback(release_pg_sessions, held)

        def start_mariadb(server: LabMariaDB, template: Future[Path], sql: str) -> None:
            server.start_from(template.result())
            server.sql(sql)

        def start_pg(server: LabPostgres, template: Future[Path], *sql: str) -> None:
            server.start_from(template.result())
            for statement in sql:
                server.psql(statement)

        def start_full_pg(template: Future[Path]) -> None:
            full.start_from(template.result())
            held.extend(hold_pg_sessions(full, FULL_PG_SLOTS))

        def start_stopped_redis() -> None:
            stopped.start()
            assert stopped.proc is not None
            os.kill(stopped.proc.pid, signal.SIGSTOP)

        with ThreadPoolExecutor(max_workers=8) as pool:
            my_template = pool.submit(_mariadb_template, root)
            pg_template = pool.submit(_postgres_template, root, main_pg.bindir)
            jobs = [
                pool.submit(
                    start_mariadb, mariadb, my_template,
                    "CREATE DATABASE appdb; CREATE DATABASE secretdb;"
                    f"CREATE USER 'app'@'198.18.0.%' IDENTIFIED BY '{APP_PASSWORD}';"
                    "GRANT ALL ON appdb.* TO 'app'@'198.18.0.%';",
                ),
                pool.submit(
                    start_mariadb, blocking, my_template,
                    f"CREATE USER 'app'@'%' IDENTIFIED BY '{APP_PASSWORD}';",
                ),
                pool.submit(
                    start_pg, main_pg, pg_template,
                    f"CREATE ROLE app LOGIN PASSWORD '{APP_PASSWORD}'",
                    "CREATE DATABASE appdb OWNER app",
                    "CREATE DATABASE closeddb ALLOW_CONNECTIONS false",
                ),
                pool.submit(start_pg, standby, pg_template),
                pool.submit(start_full_pg, pg_template),
                pool.submit(start_stopped_redis),
            ]  # fmt: skip
            every: list[Future[Any]] = [my_template, pg_template, *jobs]
            errors = [job.exception() for job in every]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise RuntimeError(f"a lab database did not start: {first}") from first
        block_client_host(lab, blocking)
        yield _scenarios(APP_PASSWORD)


if __name__ == "__main__":  # build the lab and the servers, print the scenarios, hold until Enter
    import sys

    from nplab.topology import build_lab

    started = time.perf_counter()
    with build_lab() as lab_, db_scenarios(lab_) as scenarios:
        print(f"ready in {time.perf_counter() - started:.1f} s; client namespace {lab_.client}")
        for sc in scenarios:
            print(f"{sc.code:26} {sc.target} {' '.join(sc.cli_args)}", flush=True)
        sys.stdin.readline()
