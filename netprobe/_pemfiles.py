"""The TLS files of the options (``ca_file``, ``client_cert``, ``client_key``), checked before
any I/O: an unusable file is bad input (``InvalidOption``), never a TLS verdict.

Before, ``--client-cert`` without ``--client-key`` (the certificate file holding no key)
connected and failed at L7 with OpenSSL's ``[SSL] PEM lib``: the server was blamed for a
mistake on the command line. Each file is loaded the way the TLS rung will load it
(``SSLContext.load_cert_chain`` / ``load_verify_locations``), and what is wrong is named:
not readable, no PEM certificate, no private key, an encrypted key (OpenSSL would prompt for
its passphrase on the terminal), a key that does not belong to the certificate.

Checks are cached per file (path, size and modification time): a service that builds its
options on every check pays for the parsing once.
"""

from __future__ import annotations

import functools
import os
import ssl

__all__ = ["TlsFileError", "check_ca_file", "check_client_pair", "no_passphrase"]

_CERT_MARK = b"-----BEGIN CERTIFICATE-----"
_KEY_MARKS = (b"PRIVATE KEY-----",)  # PRIVATE KEY, RSA/EC PRIVATE KEY, ENCRYPTED PRIVATE KEY
_ENCRYPTED_MARKS = (b"ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")


class TlsFileError(ValueError):
    """``option``'s file cannot be used: ``text`` says why, naming the file."""

    def __init__(self, option: str, text: str) -> None:
        super().__init__(f"option {option!r}: {text}")
        self.option = option


def no_passphrase() -> bytes:
    """``load_cert_chain``'s password callback: without one OpenSSL prompts on the terminal
    for an encrypted key (a hung service); with this one loading it fails instead."""
    raise ValueError("the private key is encrypted")


def _stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns)


def _read(option: str, path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(4 * 1024 * 1024)
    except OSError as exc:
        raise TlsFileError(option, f"{path!r} is not readable ({exc.strerror or exc})") from None


def check_ca_file(path: str) -> None:
    """Raise TlsFileError (a one-line reason) unless ``path`` holds a PEM certificate that
    OpenSSL loads as a trust store."""
    try:
        stamp = _stamp(path)
    except OSError:
        raise TlsFileError("ca_file", f"{path!r} is not a readable file") from None
    _check_ca(path, stamp)


@functools.lru_cache(maxsize=32)
def _check_ca(path: str, _stamp: tuple[int, int]) -> None:
    if _CERT_MARK not in _read("ca_file", path):
        raise TlsFileError("ca_file", f"{path!r} holds no PEM certificate")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        raise TlsFileError("ca_file", f"{path!r} could not be loaded: {_reason(exc)}") from None


def check_client_pair(cert: str, key: str | None) -> None:
    """Raise TlsFileError (a one-line reason) unless ``cert`` (with ``key``, or holding its key
    itself) is a certificate and the private key that belongs to it."""
    try:
        stamps = (_stamp(cert), _stamp(key) if key is not None else None)
    except OSError as exc:
        which = "client_cert" if exc.filename == cert else "client_key"
        raise TlsFileError(which, f"{exc.filename!r} is not a readable file") from None
    _check_pair(cert, key, stamps)


@functools.lru_cache(maxsize=32)
def _check_pair(cert: str, key: str | None, _stamps: object) -> None:
    cert_pem = _read("client_cert", cert)
    if _CERT_MARK not in cert_pem:
        raise TlsFileError("client_cert", f"{cert!r} holds no PEM certificate")
    key_pem = cert_pem if key is None else _read("client_key", key)
    if not any(mark in key_pem for mark in _KEY_MARKS):
        if key is None:
            raise TlsFileError(
                "client_cert",
                f"{cert!r} holds no private key: pass its key with client_key= "
                "(CLI --client-key), or put the key in the same PEM file",
            )
        raise TlsFileError("client_key", f"{key!r} holds no PEM private key")
    if any(mark in key_pem for mark in _ENCRYPTED_MARKS):
        option, path = ("client_key", key) if key is not None else ("client_cert", cert)
        raise TlsFileError(
            option,
            f"the private key in {path!r} is encrypted; netprobe cannot ask for its "
            "passphrase (decrypt it, or pass an ssl_context with the key loaded)",
        )
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, key, no_passphrase)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            option, path = ("client_key", key) if key is not None else ("client_cert", cert)
            raise TlsFileError(
                option,
                f"the private key in {path!r} does not belong to the certificate in {cert!r}",
            ) from None
        raise TlsFileError("client_cert", f"{cert!r} could not be loaded: {_reason(exc)}") from None
    except ValueError:
        raise TlsFileError("client_cert", f"{cert!r}: the private key could not be read") from None


def _reason(exc: ssl.SSLError) -> str:
    return str(exc.reason or exc.strerror or exc).replace("_", " ").lower()
