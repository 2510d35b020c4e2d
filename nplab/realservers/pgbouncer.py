"""PgBouncer (``pgbouncer CONF``, foreground) in front of a PostgreSQL, run as the ``postgres``
user when we are root (PgBouncer refuses to run as root).

    with PgBouncer(upstream=("127.0.0.1", pg.port), users={"app": APP_PASSWORD}) as bouncer:
        ... connect to 127.0.0.1:bouncer.port, database "appdb"

``upstream`` may name a port where nothing listens (the server down) or a silent one.
``databases`` maps the name clients ask for to the upstream database (default: appdb and
postgres, both to themselves).
"""

from __future__ import annotations

from nplab.realservers._base import RealServer, require_server_binary

__all__ = ["PgBouncer"]


class PgBouncer(RealServer):
    name = "pgbouncer"
    run_as = "postgres"

    def __init__(
        self,
        *,
        upstream: tuple[str, int],
        users: dict[str, str],
        databases: list[str] | None = None,
        max_client_conn: int = 20,
        default_pool_size: int = 5,
        settings: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        netns: str | None = None,
    ) -> None:
        super().__init__(host=host, port=port, netns=netns)
        self.upstream = upstream
        self.users = users
        self.databases = databases or ["appdb", "postgres"]
        self.max_client_conn = max_client_conn
        self.default_pool_size = default_pool_size
        self.settings = settings or {}

    def configure(self) -> None:
        d = self.dir
        uhost, uport = self.upstream
        # auth_file with plain-text passwords: PgBouncer then answers SCRAM itself and logs in
        # to the server with the same password (PgBouncer docs, "Authentication file format").
        (d / "userlist.txt").write_text(
            "".join(f'"{user}" "{pw}"\n' for user, pw in self.users.items())
        )
        (d / "userlist.txt").chmod(0o600)
        settings = {
            "listen_addr": self.host,
            "listen_port": str(self.port),
            "unix_socket_dir": "",
            "auth_type": "scram-sha-256",
            "auth_file": str(d / "userlist.txt"),
            "logfile": str(d / "pgbouncer.log"),
            "pidfile": str(d / "pgbouncer.pid"),
            "max_client_conn": str(self.max_client_conn),
            "default_pool_size": str(self.default_pool_size),
            "pool_mode": "session",
            "server_connect_timeout": "2",
            "server_login_retry": "1",
            "query_wait_timeout": "5",
            "ignore_startup_parameters": "extra_float_digits",
            **self.settings,
        }
        dbs = "".join(f"{db} = host={uhost} port={uport} dbname={db}\n" for db in self.databases)
        body = "".join(f"{k} = {v}\n" for k, v in settings.items())
        (d / "pgbouncer.ini").write_text(f"[databases]\n{dbs}\n[pgbouncer]\n{body}")

    def argv(self) -> list[str]:
        return [require_server_binary("pgbouncer"), str(self.dir / "pgbouncer.ini")]
