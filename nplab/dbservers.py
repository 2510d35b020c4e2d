"""Real database servers for the tests: MariaDB, PostgreSQL and Redis, started by the tests.

Each server runs from a temporary data directory, on loopback and a free port, once per test
session, with settings that let the tests build each fault with real sessions. The system
instances on 3306 / 5432 / 6379 are never touched. Missing binaries skip on a laptop and fail
under CI=true (``require_binary``).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from netprobe.testing import RedisServer, closed_port
from nplab.require import require, require_binary

__all__ = [
    "APP_PASSWORD",
    "NS_SERVER_IP",
    "ClientNamespace",
    "MariaDB",
    "Postgres",
    "RedisServer",
    "ResolvingMariaDB",
    "TlsRedis",
    "blocking_lab",
    "mariadb",
    "postgres",
    "postgres_standby",
    "redis_auth",
    "redis_plain",
    "redis_replica",
    "redis_tls",
    "stopped",
]

APP_PASSWORD = "app-secret-pw"


def _wait_port(port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.3):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout} s")


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """SIGSTOP a server: the kernel still accepts connections, the server says nothing."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


class MariaDB:
    """mariadbd with skip-name-resolve, on 127.0.0.1 and ::1.

    Accounts: ``app``@``127.0.0.1`` (password APP_PASSWORD, all on ``appdb``) and nothing for
    ``::1``: a connection from ::1 matches no account, which MariaDB answers with 1130.
    """

    def __init__(self) -> None:
        self.port = closed_port()
        self.dir = Path(tempfile.mkdtemp(prefix="netprobe-mariadb-"))
        self.socket = str(self.dir / "mysqld.sock")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MariaDB:
        data = self.dir / "data"
        subprocess.run(
            [
                "mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={data}",
                "--skip-test-db", "--auth-root-authentication-method=socket",
            ],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        self.proc = subprocess.Popen(
            [
                shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults", "--user=root",
                f"--datadir={data}", f"--socket={self.socket}", f"--port={self.port}",
                "--bind-address=127.0.0.1,::1", "--skip-name-resolve",
                f"--pid-file={self.dir / 'mysqld.pid'}", f"--log-error={self.dir / 'error.log'}",
                "--max-connections=20", "--max-connect-errors=100000", "--connect-timeout=5",
                "--innodb-buffer-pool-size=16M", "--skip-log-bin", "--performance-schema=OFF",
                "--thread-handling=one-thread-per-connection",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_port(self.port)
        self.sql(
            "CREATE DATABASE appdb; CREATE DATABASE secretdb;"
            f"CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY '{APP_PASSWORD}';"
            "GRANT ALL ON appdb.* TO 'app'@'127.0.0.1';"
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def sql(self, statement: str) -> str:
        """Run SQL as root over the unix socket (never through the TCP port under test)."""
        out = subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "-N",
             "-e", statement],
            check=True, capture_output=True, timeout=30, text=True,
        )  # fmt: skip
        return out.stdout

    def status(self, name: str) -> int:
        row = self.sql(f"SHOW GLOBAL STATUS LIKE '{name}'").split()
        return int(row[1])

    def log(self) -> str:
        return (self.dir / "error.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


def write_postgres_conf(
    data: Path,
    *,
    listen: str,
    port: int,
    socket_dir: Path,
    max_connections: int,
    ssl: bool,
    standby: bool,
) -> None:
    """The test instance's settings, appended to ``data/postgresql.conf``; a standby gets
    ``hot_standby = off`` and its standby.signal (it then refuses clients with 57P03)."""
    conf = [
        f"listen_addresses = '{listen}'",
        f"port = {port}",
        f"unix_socket_directories = '{socket_dir}'",
        f"max_connections = {max_connections}",
        "superuser_reserved_connections = 0",
        f"ssl = {'on' if ssl else 'off'}",
        "shared_buffers = 16MB",
        "fsync = off",
        "log_connections = on",
    ]
    if standby:
        conf.append("hot_standby = off")
        (data / "standby.signal").touch()
        shutil.chown(data / "standby.signal", "postgres", "postgres")
    with open(data / "postgresql.conf", "a", encoding="utf-8") as f:
        f.write("\n".join(conf) + "\n")


class Postgres:
    """PostgreSQL as the ``postgres`` user (initdb refuses root), TLS on, small max_connections.

    pg_hba: trust on the unix socket, scram-sha-256 from 127.0.0.1, and no entry for ::1.
    ``standby=True`` makes a server stuck in recovery with hot_standby off (57P03).
    """

    def __init__(self, *, max_connections: int = 6, standby: bool = False) -> None:
        self.port = closed_port()
        self.dir = Path(tempfile.mkdtemp(prefix="netprobe-pg-"))
        self.max_connections = max_connections
        self.standby = standby
        self.started = False
        self.bindir = _pg_bindir()

    def _as_postgres(self, *cmd: str, timeout: float = 120) -> str:
        out = subprocess.run(
            ["runuser", "-u", "postgres", "--", *cmd],
            check=True, capture_output=True, timeout=timeout, text=True,
        )  # fmt: skip
        return out.stdout

    def start(self) -> Postgres:
        shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        pwfile = self.dir / "pw"
        pwfile.write_text("postgres-pw\n")
        shutil.chown(pwfile, "postgres", "postgres")
        self._as_postgres(
            f"{self.bindir}/initdb", "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        (data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        )
        self.ca = trustme.CA(organization_name="netprobe test PG CA")
        self.ca.cert_pem.write_to_path(str(self.dir / "ca.pem"))
        self._write_certificate(self.ca.issue_cert("localhost", "127.0.0.1"))
        shutil.chown(data / "pg_hba.conf", "postgres", "postgres")
        write_postgres_conf(
            data,
            listen="127.0.0.1,::1",
            port=self.port,
            socket_dir=self.dir,
            max_connections=self.max_connections,
            ssl=True,
            standby=self.standby,
        )
        self._as_postgres(
            f"{self.bindir}/pg_ctl", "-D", str(data), "-l", str(self.dir / "server.log"),
            "--no-wait", "start",
        )  # fmt: skip
        self.started = True
        _wait_port(self.port)
        if not self.standby:
            self._wait_ready()
            for sql in (
                f"CREATE ROLE app LOGIN PASSWORD '{APP_PASSWORD}'",
                "CREATE DATABASE appdb OWNER app",
                "CREATE DATABASE lockeddb",
                "REVOKE CONNECT ON DATABASE lockeddb FROM PUBLIC",
            ):
                self.psql(sql)
        return self

    def _write_certificate(self, cert: trustme.LeafCert) -> bytes:
        data = self.dir / "data"
        cert.private_key_pem.write_to_path(str(data / "server.key"))
        cert.cert_chain_pems[0].write_to_path(str(data / "server.crt"))
        for name in ("server.key", "server.crt"):
            shutil.chown(data / name, "postgres", "postgres")
        os.chmod(data / "server.key", 0o600)
        return ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())

    @contextlib.contextmanager
    def certificate(
        self,
        *,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> Iterator[None]:
        """Serve a leaf from the same CA with other dates (e.g. expired), then the valid one.

        PostgreSQL reloads ssl_cert_file on SIGHUP (pg_reload_conf); new connections get the
        new certificate once the postmaster has read it, which this waits for.
        """
        leaf = self.ca.issue_cert(
            "localhost", "127.0.0.1", not_before=not_before, not_after=not_after
        )
        try:
            self._reload_certificate(self._write_certificate(leaf))
            yield
        finally:
            self._reload_certificate(
                self._write_certificate(self.ca.issue_cert("localhost", "127.0.0.1"))
            )

    def _reload_certificate(self, der: bytes) -> None:
        self.psql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.presented_certificate() == der:
                return
            time.sleep(0.05)
        raise RuntimeError("postgres did not reload its certificate")

    def presented_certificate(self) -> bytes | None:
        """The leaf the server presents now (SSLRequest, then a non-verifying handshake)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", self.port), timeout=3) as raw:
            raw.sendall(b"\x00\x00\x00\x08\x04\xd2\x16\x2f")  # SSLRequest
            if raw.recv(1) != b"S":
                return None
            with ctx.wrap_socket(raw) as tls:
                return tls.getpeercert(binary_form=True)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.psql("SELECT 1")
                return
            except subprocess.CalledProcessError:
                time.sleep(0.1)
        raise RuntimeError("postgres did not become ready")

    def psql(self, sql: str) -> str:
        out = subprocess.run(
            ["psql", "-h", str(self.dir), "-p", str(self.port), "-U", "postgres", "-d", "postgres",
             "-v", "ON_ERROR_STOP=1", "-Atc", sql],
            check=True, capture_output=True, timeout=30, text=True,
        )  # fmt: skip
        return out.stdout

    @property
    def ca_file(self) -> str:
        return str(self.dir / "ca.pem")

    def log(self) -> str:
        try:
            return (self.dir / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(subprocess.SubprocessError):
                self._as_postgres(
                    f"{self.bindir}/pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate",
                    "-w", "stop", timeout=60,
                )  # fmt: skip
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)


def _pg_bindir() -> str:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return str(candidate)
    initdb = shutil.which("initdb")
    return str(Path(initdb).resolve().parent) if initdb else "/usr/local/bin"


# ------------------------------------------------------------------------------------------------
# Session fixtures: each server starts once, on first use.


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    require_binary("mariadbd") if shutil.which("mariadbd") else _require_path("/usr/sbin/mariadbd")
    require_binary("mariadb-install-db")
    require(os.geteuid() == 0, "MariaDB tests run mariadbd --user=root (needs root)")
    server = MariaDB()
    try:
        yield server.start()
    finally:
        server.stop()


def _require_path(path: str) -> None:
    require(os.path.exists(path), f"needs {path}")


def _require_pg() -> None:
    require(os.geteuid() == 0, "PostgreSQL tests run initdb as the postgres user (needs root)")
    require(shutil.which("runuser") is not None, "needs runuser")
    require(Path(_pg_bindir(), "initdb").exists(), "needs the PostgreSQL server binaries")
    require_binary("psql")
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        require(False, "needs a 'postgres' system user")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    _require_pg()
    server = Postgres()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_standby() -> Iterator[Postgres]:
    _require_pg()
    server = Postgres(standby=True)
    try:
        yield server.start()
    finally:
        server.stop()


def _redis(*args: str) -> Iterator[RedisServer]:
    require_binary("redis-server")
    with RedisServer(*args) as server:
        yield server


@pytest.fixture(scope="session")
def redis_plain() -> Iterator[RedisServer]:
    yield from _redis()


@pytest.fixture(scope="session")
def redis_auth() -> Iterator[RedisServer]:
    """requirepass, plus an ACL user that may not run PING (NOPERM)."""
    for server in _redis("--requirepass", APP_PASSWORD):
        reply = server.command(
            "ACL", "SETUSER", "limited", "on", f">{APP_PASSWORD}", "-@all", password=APP_PASSWORD
        )
        assert reply.startswith(b"+OK"), reply
        yield server


class TlsRedis(RedisServer):
    """redis-server with a plain port and a TLS port (trustme certificate, no client certs)."""

    def __init__(self) -> None:
        super().__init__()
        self.tls_port = closed_port()
        while self.tls_port == self.port:  # bounded in practice: the kernel rotates ports
            self.tls_port = closed_port()
        ca = trustme.CA(organization_name="netprobe test Redis CA")
        cert = ca.issue_cert("localhost", "127.0.0.1")
        files = {name: os.path.join(self.dir, name) for name in ("ca.pem", "c.pem", "k.pem")}
        ca.cert_pem.write_to_path(files["ca.pem"])
        cert.cert_chain_pems[0].write_to_path(files["c.pem"])
        cert.private_key_pem.write_to_path(files["k.pem"])
        self.ca_file = files["ca.pem"]
        self.args = (
            "--tls-port", str(self.tls_port), "--tls-cert-file", files["c.pem"],
            "--tls-key-file", files["k.pem"], "--tls-ca-cert-file", files["ca.pem"],
            "--tls-auth-clients", "no",
        )  # fmt: skip


@pytest.fixture(scope="session")
def redis_tls() -> Iterator[TlsRedis]:
    require_binary("redis-server")
    with TlsRedis() as server:
        yield server


@pytest.fixture(scope="session")
def redis_replica() -> Iterator[RedisServer]:
    """A replica of a master that does not exist, serving no stale data: MASTERDOWN."""
    yield from _redis(
        "--replicaof", "127.0.0.1", str(closed_port()), "--replica-serve-stale-data", "no"
    )


# ------------------------------------------------------------------------------------------------
# Host blocking (1129) needs MariaDB's host cache, which it never uses for 127.0.0.1 / ::1 or
# with skip-name-resolve. So: a client network namespace (no default route) on a
# veth pair, and a MariaDB that resolves names in a private mount namespace whose
# /etc/nsswitch.conf says "hosts: files" (no DNS query ever leaves) and whose /etc/hosts
# names the client.

# The /30 of the veth pair comes from this process's pid (one of 512 in 198.18.200.0/21): the
# host end lives in the root namespace, and two test runs at once (two checkouts) each need
# their own, or the second one's routes collide with the first's.
_NS_NET = 0xC612C800 + 4 * (os.getpid() % 512)  # 198.18.200.0 + 4n
NS_SERVER_IP = f"198.18.{(_NS_NET >> 8) & 0xFF}.{(_NS_NET & 0xFF) + 1}"
NS_CLIENT_IP = f"198.18.{(_NS_NET >> 8) & 0xFF}.{(_NS_NET & 0xFF) + 2}"


class ClientNamespace:
    def __init__(self) -> None:
        tag = os.getpid()  # the whole pid: cleanup_stale() removes it once the pid is gone
        self.name = f"npdb{tag}"
        self.host_if, self.peer_if = f"npdbh{tag}", f"npdbc{tag}"

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)

    def start(self) -> ClientNamespace:
        from nplab.topology import cleanup_stale

        cleanup_stale()  # those of killed runs (their veth's host end is in the root namespace)
        self.stop()
        self._ip("netns", "add", self.name)
        self._ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.peer_if)
        self._ip("link", "set", self.peer_if, "netns", self.name)
        self._ip("addr", "add", f"{NS_SERVER_IP}/30", "dev", self.host_if)
        self._ip("link", "set", self.host_if, "up")
        ns = ("-n", self.name)
        self._ip(*ns, "addr", "add", f"{NS_CLIENT_IP}/30", "dev", self.peer_if)
        self._ip(*ns, "link", "set", self.peer_if, "up")
        self._ip(*ns, "link", "set", "lo", "up")
        return self

    def run_python(self, code: str, timeout: float = 120) -> str:
        """Run Python code in the client namespace with this checkout's interpreter."""
        py = str(Path(__file__).resolve().parent.parent / ".venv" / "bin" / "python")
        out = subprocess.run(
            ["ip", "netns", "exec", self.name, py, "-c", code],
            check=True, capture_output=True, timeout=timeout, text=True,
        )  # fmt: skip
        return out.stdout

    def stop(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)


class ResolvingMariaDB(MariaDB):
    """MariaDB with name resolution (host cache on), listening on the veth address."""

    def start(self) -> ResolvingMariaDB:
        etc = self.dir / "etc"
        etc.mkdir()
        (etc / "hosts").write_text(f"127.0.0.1 localhost\n{NS_CLIENT_IP} netprobe-client\n")
        (etc / "nsswitch.conf").write_text("hosts: files\n")
        data = self.dir / "data"
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={data}",
             "--skip-test-db", "--auth-root-authentication-method=socket"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        inner = (
            f"mount --bind {etc / 'hosts'} /etc/hosts && "
            f"mount --bind {etc / 'nsswitch.conf'} /etc/nsswitch.conf && "
            f"exec {mariadbd} --no-defaults --user=root --datadir={data} "
            f"--socket={self.socket} --port={self.port} --bind-address={NS_SERVER_IP} "
            f"--pid-file={self.dir / 'mysqld.pid'} --log-error={self.dir / 'error.log'} "
            "--max-connect-errors=3 --innodb-buffer-pool-size=16M --skip-log-bin "
            "--performance-schema=OFF"
        )
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_port(self.port, host=NS_SERVER_IP)
        # An account for any host, so that the client is not refused with 1130 first.
        self.sql(f"CREATE USER 'app'@'%' IDENTIFIED BY '{APP_PASSWORD}'")
        return self


@pytest.fixture(scope="session")
def blocking_lab() -> Iterator[tuple[ClientNamespace, ResolvingMariaDB]]:
    require(os.geteuid() == 0, "needs root (network namespace, mount namespace)")
    require_binary("ip")
    require_binary("unshare")
    require_binary("mariadb-install-db")
    ns = ClientNamespace().start()
    server = ResolvingMariaDB()
    try:
        yield ns, server.start()
    finally:
        server.stop()
        ns.stop()
