"""Database rules: what a greeting, an error packet, an SQLSTATE or a Redis reply means.

Pure: a :class:`DatabaseResult` in, at most one fault out. Tables, not branches, wherever
the server gives a code: MySQL error numbers, PostgreSQL SQLSTATEs, Redis error prefixes.
"""

from __future__ import annotations

from ..describe import database_error, database_evidence, server_name
from ..report import Evidence, Fault
from ..steps import DatabaseResult
from ._observations import Observations, fault
from .proxy import DEAD_BACKEND, DEAD_BACKEND_HINT

__all__ = ["cut_conversation", "database_fault", "db_error_code"]

#: MySQL / MariaDB error numbers (include/mysqld_error.h) -> (fault code, what it means).
MYSQL_ERRORS: dict[int, tuple[str, str]] = {
    1040: ("db.too_many_connections", "max_connections reached"),
    1203: ("db.too_many_connections", "the user's max_user_connections reached"),
    1226: ("db.too_many_connections", "a per-user resource limit reached"),
    1129: ("db.host_blocked", "too many connection errors from this host: max_connect_errors"),
    1130: ("db.access_denied", "no account may connect from this host"),
    1044: ("db.access_denied", "the user may not use this database"),
    1045: ("db.auth_failed", "wrong user name or password"),
    1698: ("db.auth_failed", "the authentication plugin rejected the user"),
    1251: ("db.auth_failed", "the client does not support the server's auth plugin"),
    3159: ("db.access_denied", "the server requires TLS (require_secure_transport)"),
    1053: ("db.not_ready", "the server is shutting down"),
    1927: ("db.not_ready", "the connection was killed (server shutting down)"),
}

#: PostgreSQL SQLSTATEs (errcodes.txt) -> (fault code, what it means).
PG_STATES: dict[str, tuple[str, str]] = {
    "53300": ("db.too_many_connections", "max_connections reached"),
    "57P03": ("db.not_ready", "starting up, shutting down, or in recovery"),
    "57P01": ("db.not_ready", "terminated by an administrator (shutdown)"),
    "57P02": ("db.not_ready", "crash shutdown"),
    "28P01": ("db.auth_failed", "wrong password"),
    "28000": ("db.access_denied", "pg_hba.conf has no entry allowing this connection"),
    "3D000": ("db.access_denied", "the database does not exist"),
    "42501": ("db.access_denied", "the role lacks the CONNECT privilege on the database"),
    "08P01": ("db.protocol_mismatch", "the server saw a protocol violation"),
}

#: PgBouncer's own errors (SQLSTATE 08P01; the beginning of the message) -> (fault code, what
#: it means). PgBouncer speaks PostgreSQL's protocol in its server's place: these are its words
#: about itself or about its server, never PostgreSQL's (protocols/postgres.py: pooler_of).
PGBOUNCER_ERRORS: tuple[tuple[str, tuple[str, str]], ...] = (
    (
        "no more connections allowed",
        ("db.too_many_connections", "PgBouncer's max_client_conn reached"),
    ),
    (
        "pgbouncer cannot connect to server",
        ("db.upstream_unavailable", "PgBouncer cannot connect to its PostgreSQL server"),
    ),
    (
        "query_wait_timeout",
        ("db.upstream_unavailable", "PgBouncer got no server connection within query_wait_timeout"),
    ),
    (
        "client_login_timeout",
        (
            "db.upstream_unavailable",
            "PgBouncer could not log in to its server within client_login_timeout",
        ),
    ),
    (
        "server login has been failing",
        ("db.upstream_unavailable", "PgBouncer's logins to its PostgreSQL server keep failing"),
    ),
    ("server conn crashed", ("db.upstream_unavailable", "PgBouncer's server connection broke")),
    ("no such database", ("db.access_denied", "PgBouncer's [databases] has no such entry")),
    ("no such user", ("db.auth_failed", "PgBouncer does not know the user")),
    ("password authentication failed", ("db.auth_failed", "wrong password (PgBouncer's check)")),
    ("SASL authentication failed", ("db.auth_failed", "wrong password (PgBouncer's SCRAM check)")),
    (
        '"trust" authentication failed',
        ("db.auth_failed", "the user is not in PgBouncer's auth_file"),
    ),
    ("login rejected", ("db.access_denied", "PgBouncer refused the login")),
    (
        "database does not allow connections",
        ("db.access_denied", "the PgBouncer database is paused or disabled"),
    ),
)

#: Redis error prefixes -> (fault code, what it means).
REDIS_ERRORS: dict[str, tuple[str, str]] = {
    "LOADING": ("db.not_ready", "the dataset is still being loaded into memory"),
    "BUSY": ("db.not_ready", "a script or function is running too long"),
    "MASTERDOWN": ("db.not_ready", "the replica lost its master and serves no stale data"),
    "TRYAGAIN": ("db.not_ready", "a cluster slot is being migrated"),
    "CLUSTERDOWN": ("db.not_ready", "the cluster is down"),
    "WRONGPASS": ("db.auth_failed", "wrong user name or password"),
    "NOAUTH": ("db.auth_failed", "a password is required and none was sent"),
    "NOPERM": ("db.access_denied", "the ACL user may not run the validation command"),
    "DENIED": ("db.access_denied", "protected mode refuses clients from other hosts"),
}

_HINTS: dict[str, tuple[str, ...]] = {
    "db.too_many_connections": (
        "Count the connections per client (MySQL: SHOW PROCESSLIST; PostgreSQL: "
        "pg_stat_activity; Redis: CLIENT LIST) and look for a leaking pool.",
        "Raise the server's limit only after the sum of every client's pool size is known.",
    ),
    "db.host_blocked": (
        "Unblock with FLUSH HOSTS (or mariadb-admin flush-hosts), then find what opened "
        "connections without finishing the handshake (health checks, port scanners).",
        "Health checks must complete the handshake: netprobe's own probe does.",
    ),
    "db.access_denied": (
        "Check the account's host part (MySQL user@host) or pg_hba.conf for this client "
        "address, user and database.",
    ),
    "db.auth_failed": ("Check the credentials the application is configured with.",),
    "db.not_ready": (
        "Wait and retry: the server is starting, stopping, recovering or loading; check its log.",
    ),
    "db.greeting_timeout": (
        "The TCP connection works but the server is stuck or overloaded: check its CPU, "
        "disk and thread pool; a proxy in front may be waiting for its backend.",
    ),
    "db.protocol_mismatch": (
        "Check that the port belongs to this database (and not to another service or a "
        "TLS terminator).",
    ),
    "db.server_error": ("Look the error code up in the server's documentation and log.",),
    "db.upstream_unavailable": (
        "The pooler is up; its database server is not reachable from it: check the "
        "server's state and the pooler's [databases] host/port (and its log: 'closing "
        "because: connect failed').",
        "Clients of the pooler all wait or fail the same way until its server is back.",
    ),
}


#: Who answered a client-first opening (probes/db_sniff.py) -> the scheme that probes it.
_SCHEME_OF_ANSWER = (
    ("PostgreSQL", "postgresql"),
    ("Redis", "redis"),
    ("a TLS server", "https"),
    ("an HTTPS server", "https"),
    ("an HTTP server", "http"),
)

_SILENT_PEERS_HINT = (
    "A MySQL server speaks first; PostgreSQL, Redis and HTTP servers wait for the client and "
    "send no greeting either: check that this port is MySQL's."
)


def db_error_code(r: DatabaseResult) -> tuple[str, str] | None:
    """The fault code and meaning of a server error, or None when it is not a fault.

    Errors that answer the *probe user* (no credentials given) prove the server is up: the
    probe reports them as ``ready``, so they never reach this table as ``server_error``.
    """
    if r.outcome != "server_error":
        return None
    if r.error_code is None:
        # Real servers always send a code (MySQL number, SQLSTATE, Redis prefix); an error
        # without one (a PostgreSQL FATAL lacking its C field) is still not a healthy answer.
        return ("db.server_error", "an error without a code")
    if r.protocol == "mysql":
        code = int(r.error_code) if r.error_code.isdigit() else -1
        return MYSQL_ERRORS.get(code, ("db.server_error", "an error the probe does not know"))
    if r.protocol == "postgresql" and r.server == "pgbouncer":
        message = r.error_message or ""
        for start, mapped in PGBOUNCER_ERRORS:
            if message.startswith(start):
                return mapped
        return ("db.server_error", "a PgBouncer error the probe does not know")
    if r.protocol == "postgresql":
        state = r.sqlstate or r.error_code
        if state == "28000" and r.error_fields.get("routine") != "ClientAuthentication":
            # 28000 outside the pg_hba check: role does not exist / may not log in.
            if r.login_attempted:
                return ("db.auth_failed", "the role does not exist or may not log in")
            return None
        if state in PG_STATES:
            return PG_STATES[state]
        if state.startswith("57P"):
            return ("db.not_ready", "the server cannot accept connections now")
        return ("db.server_error", "an error the probe does not know")
    prefix = r.error_code
    if prefix == "ERR" and "max number of clients" in (r.error_message or ""):
        return ("db.too_many_connections", "maxclients reached")
    if prefix == "NOAUTH" and not r.login_attempted:
        return None
    return REDIS_ERRORS.get(prefix, ("db.server_error", "an error the probe does not know"))


def database_fault(obs: Observations) -> Fault | None:
    """The ``db.*`` fault (or ``l7.connection_closed``) of a database conversation, or None.
    A failed TLS handshake inside the protocol is TLS's verdict (classify/tls.py)."""
    app = obs.application
    if app is None or app.database is None:
        return None
    r = app.database
    where = obs.target.netloc
    name = server_name(r)
    if r.outcome in ("ready", "validated"):
        return None
    ev = database_evidence(r)
    if r.outcome == "timeout" and r.server == "pgbouncer" and r.phase in ("login", "validation"):
        # The driver's login waits the longer of the read and connect timeouts (db_login.py);
        # the greeting the read timeout. (The configured wait, not the measured one: stable.)
        o = obs.options
        waited = max(o.read_timeout, o.connect_timeout) if r.login_attempted else o.read_timeout
        return _fault(
            "db.upstream_unavailable",
            f"{where}: PgBouncer answers but held the {r.phase} for {waited:g} s without "
            "an answer: it is waiting for its PostgreSQL server, which does not answer it.",
            ev,
        )
    if r.outcome == "timeout" and r.answered_instead is not None:
        scheme = next(
            (s for start, s in _SCHEME_OF_ANSWER if r.answered_instead.startswith(start)), None
        )
        hints = _HINTS["db.protocol_mismatch"]
        if scheme is not None:
            hints = (*hints, f"If that is the service you meant, probe {scheme}://{where}.")
        return _fault(
            "db.protocol_mismatch",
            f"{where} does not speak {name}: it sent no greeting ({name} speaks first), and "
            f"a fresh connection's client-first opening was answered by {r.answered_instead}.",
            ev,
            hints,
        )
    if r.outcome == "timeout":
        what = {
            "greeting": "the greeting",
            "handshake": "the handshake response",
            "login": "the login",
            "validation": f"the validation query ({r.validation})",
            "hold": "a held connection's check",
        }[r.phase]
        hints = _HINTS["db.greeting_timeout"]
        if r.protocol == "mysql" and r.phase == "greeting":
            # MySQL speaks first; a service that waits for its client is silent just the same.
            hints = (*hints, _SILENT_PEERS_HINT)
        return _fault(
            "db.greeting_timeout",
            f"{where} accepted the TCP connection but {name} did not answer {what} within "
            f"{obs.options.read_timeout:g} s.",
            ev,
            hints,
        )
    if r.outcome == "mismatch":
        return _fault(
            "db.protocol_mismatch",
            f"{where} does not speak {name}: it sent {r.looks_like or 'unexpected bytes'}.",
            ev,
        )
    if r.outcome == "tls_failed":
        return None  # TLS's verdict (classify/tls.py)
    if r.outcome == "server_error":
        mapped = db_error_code(r)
        if mapped is None:
            return None
        code, meaning = mapped
        detail = database_error(r)
        who = f" for user {r.login_user!r}" if r.login_attempted and r.login_user else ""
        if code == "db.upstream_unavailable":
            return _fault(
                code,
                f"{where}: {name} answers, its server does not: {name} said "
                f'"{r.error_message}" ({meaning}).',
                ev,
            )
        return _fault(code, f"{where}: {name} answered {detail}{who} ({meaning}).", ev)
    if r.outcome == "unavailable":
        return None
    if _reset_like_tls_port(obs, r):
        return _fault(
            "db.protocol_mismatch",
            f"{where} reset the connection at the first plain-text {name} command without "
            "sending a byte, as a TLS-only port does (Redis's tls-port, or a TLS terminator "
            "in front): it most likely expects TLS.",
            ev,
            hints=(
                f"Use rediss://{where} (TLS), or the server's plain-text port.",
                "Redis logs 'Error accepting a client connection: ... wrong version number' "
                "for each such attempt.",
            ),
        )
    msg = r.error_message or r.outcome
    if r.outcome == "closed" and r.phase == "greeting" and r.first_bytes is None:
        # Nothing at all before the close: a TCP proxy with no live backend does this.
        return _fault(
            "l7.connection_closed",
            f"{where} accepted the connection but {name} closed it during the {r.phase} "
            f"without a byte: {msg} ({DEAD_BACKEND}).",
            ev,
            hints=(*_HINTS.get("l7.connection_closed", ()), DEAD_BACKEND_HINT),
        )
    return _fault(
        "l7.connection_closed",
        f"{where} accepted the connection but {name} closed it during the {r.phase}: {msg}.",
        ev,
    )


def _reset_like_tls_port(obs: Observations, r: DatabaseResult) -> bool:
    """Redis speaks only when spoken to; a TLS-only port (OpenSSL: wrong version number)
    resets the connection as soon as the first plain-text command arrives, without a byte.
    A reset before we sent anything is not an answer to our command."""
    return (
        r.protocol == "redis"
        and not obs.target.tls
        and r.outcome == "closed"
        and r.phase == "greeting"
        and r.error_errno == "ECONNRESET"
        and r.first_bytes is None
        and r.bytes_sent > 0
    )


def _fault(code: str, summary: str, ev: list[Evidence], hints: tuple[str, ...] = ()) -> Fault:
    return fault(code, summary, ev, hints or _HINTS.get(code, ()))


def cut_conversation(obs: Observations) -> Fault:
    """The total deadline ended the diagnosis during the database conversation
    (classify/deadline.py), before it recorded anything."""
    return fault(
        "l7.connection_closed",
        f"{obs.target.netloc} accepted the connection but the {obs.target.protocol} exchange "
        "failed: the total deadline was reached first.",
    )
