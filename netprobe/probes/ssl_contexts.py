"""Every SSL context netprobe uses, built in one place from the options.

* :func:`client_context`: the TLS rung's (``https://``, ``tls://``, ``rediss://``) and
  PostgreSQL's in-protocol TLS, which checks what the DSN's ``sslmode`` checks (libpq's
  rules: ``prefer``/``require`` encrypt without verifying, ``verify-ca`` checks the chain
  but not the name, ``verify-full`` both);
* :func:`asyncpg_ssl` and :func:`redis_connection`: the same verification for the drivers
  of the authenticated logins (before, the Redis login ignored ``client_cert``,
  ``client_key`` and ``ssl_context``);
* :func:`unused_context`: what httpcore asks for but never uses (the TLS rung has already
  encrypted the stream it is given).

A caller's ``ssl_context`` option always wins. The contexts built here trust the system store
(``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured, as OpenSSL's default verify paths do), or
``ca_file`` instead, and are cached per configuration and per file modification time (a
renewed CA bundle or client certificate is picked up).
"""

from __future__ import annotations

import functools
import os
import ssl
import warnings
from typing import Any

from .._pemfiles import no_passphrase
from ..options import Options
from ..protocols.postgres import SslPolicy

__all__ = ["asyncpg_ssl", "client_context", "fact_context", "redis_connection", "unused_context"]


def client_context(
    options: Options, *, alpn: tuple[str, ...] = (), sslmode: SslPolicy | None = None
) -> ssl.SSLContext:
    """The client context for ``options`` (and, inside PostgreSQL's protocol, ``sslmode``).

    Raises OSError / ssl.SSLError when a file cannot be loaded (the TLS rung reports it).
    """
    if options.ssl_context is not None:
        return options.ssl_context
    verify, check_hostname = options.verify, options.verify
    if sslmode is not None:
        verify = verify and sslmode.verify
        check_hostname = verify and sslmode.check_hostname
    files = (options.ca_file, options.client_cert, options.client_key)
    return _build(
        verify,
        check_hostname,
        files,
        tuple(_mtime(f) for f in files),
        (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")),
        alpn,
    )


def asyncpg_ssl(options: Options, sslmode: SslPolicy) -> ssl.SSLContext | str:
    """asyncpg's ``ssl=``: the same verification as the greeting's in-protocol TLS. Without
    verification, the sslmode itself (asyncpg then behaves as libpq does for it)."""
    if options.ssl_context is not None:
        return options.ssl_context
    if not sslmode.verify:
        return sslmode.sslmode
    return client_context(options, sslmode=sslmode)


def redis_connection(options: Options) -> type[Any]:
    """The redis-py connection class for a ``rediss://`` login: its own TLS connection, with
    the context :func:`client_context` builds (redis-py takes no context as an argument; its
    connection's ``ssl_context.context`` is the public slot it uses when set)."""
    from redis.asyncio.connection import SSLConnection

    context = client_context(options)

    class _Connection(SSLConnection):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.ssl_context.context = context

    return _Connection


def fact_context(
    version: ssl.TLSVersion | None = None, *, every_suite: bool = False, alpn: tuple[str, ...] = ()
) -> ssl.SSLContext:
    """A context that verifies nothing, for a follow-up handshake that learns one fact after a
    failure (probes/tls_followup.py): pinned to ``version`` when given, else TLS 1.0-1.3.

    ``@SECLEVEL=0`` lets this OpenSSL 3 still offer TLS 1.0 / 1.1 and SHA-1 suites (its
    default security level refuses them), so that an old server's range can be learnt;
    ``every_suite`` offers every suite this OpenSSL has (``ALL``), to learn which one a server
    that shares none with the diagnosis's context would pick. Never used to trust anything.
    """
    return _fact(version, every_suite, alpn)


@functools.lru_cache(maxsize=16)
def _fact(
    version: ssl.TLSVersion | None, every_suite: bool, alpn: tuple[str, ...]
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers(("ALL" if every_suite else "DEFAULT") + ":@SECLEVEL=0")
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0 / 1.1: speaking them here is the point (learning that a
        # server speaks nothing newer), never to trust it.
        warnings.simplefilter("ignore", DeprecationWarning)
        if version is not None:
            ctx.minimum_version = ctx.maximum_version = version
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def unused_context() -> ssl.SSLContext:
    """A context for APIs that require one but will not use it (httpcore, whose start_tls
    is a no-op on the stream the TLS rung encrypted): built once, never loading a store."""
    return _unused()


@functools.lru_cache(maxsize=1)
def _unused() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _mtime(path: str | None) -> int | None:
    if path is None:
        return None
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


@functools.lru_cache(maxsize=32)
def _build(
    verify: bool,
    check_hostname: bool,
    files: tuple[str | None, str | None, str | None],
    _mtimes: tuple[int | None, ...],
    _environment: tuple[str | None, str | None],
    alpn: tuple[str, ...],
) -> ssl.SSLContext:
    """A new context (cached by all its inputs: the files' mtimes and the trust store's
    environment variables are part of the key, so a change builds a new one)."""
    ca_file, client_cert, client_key = files
    if verify:
        ctx = ssl.create_default_context(cafile=ca_file)
        ctx.check_hostname = check_hostname
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        # Never a passphrase prompt on the terminal (options.py refuses encrypted keys).
        ctx.load_cert_chain(client_cert, client_key, no_passphrase)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx
