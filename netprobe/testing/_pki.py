"""A throwaway PKI for tests: a CA, an intermediate and every kind of bad certificate.

Built with ``cryptography`` (a required dependency of netprobe), so it works from a plain
install. ECDSA P-256 keys: generating one takes well under a millisecond, where RSA-2048
takes tens.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertBook"]

_DAY = dt.timedelta(days=1)
_Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class _Issuer:
    name: x509.Name
    key: _Key
    cert: x509.Certificate


def _new_key() -> _Key:
    return ec.generate_private_key(ec.SECP256R1())


def _name(organization: str, unit: str) -> x509.Name:
    # A random suffix, as trustme does: two books in one process never issue under the same
    # name, so OpenSSL (which looks issuers up by name) cannot mistake one CA for the other.
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"{unit} #{secrets.token_hex(6)}"),
        ]
    )


def _general_name(identity: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(identity))
    except ValueError:
        return x509.DNSName(identity)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: _Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ca(organization: str, parent: _Issuer | None, now: dt.datetime) -> _Issuer:
    key = _new_key()
    name = _name(organization, "Testing CA" if parent is None else "Testing intermediate")
    issuer_name, signer = (name, key) if parent is None else (parent.name, parent.key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _DAY)
        .not_valid_after(now + 3650 * _DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if parent is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()),
            critical=False,
        )
    cert = builder.sign(signer, hashes.SHA256())
    return _Issuer(name, key, cert)


def _leaf(
    issuer: _Issuer | None,
    identities: tuple[str, ...],
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    unit: str = "Testing cert",
) -> tuple[x509.Certificate, _Key]:
    """A server-and-client certificate; ``issuer=None`` makes it self-signed."""
    key = _new_key()
    name = _name("netprobe.testing", unit)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name if issuer is None else issuer.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([_general_name(i) for i in identities]), critical=False
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if issuer is not None:
        # A self-signed leaf carries no keyUsage: OpenSSL counts a certificate as
        # self-signed only if it may sign certificates (no keyUsage, or keyCertSign), and
        # then reports X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT (18), as for a real one.
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    signer = key if issuer is None else issuer.key
    return builder.sign(signer, hashes.SHA256()), key


class CertBook:
    """A test PKI made on the spot, and the server certificate of every common TLS fault.

    A trusted CA (its PEM in `ca_file`: pass it to the client under test), an
    intermediate CA, an untrusted "other" CA and a client certificate for mutual TLS.
    `server_context` returns a server-side `ssl.SSLContext` presenting one
    certificate of `KINDS`:

    | kind | the server presents |
    |---|---|
    | `valid` | a certificate issued by the CA for `names`, valid for a year |
    | `expired` | one that expired 2 days ago |
    | `not_yet_valid` | one that becomes valid in 3 days |
    | `unknown_ca` | one issued by a CA the client does not trust |
    | `self_signed` | a self-signed certificate for `names` |
    | `wrong_host` | one for `other.example.com` only |
    | `expiring_soon` | one that expires in 5 days |
    | `no_ip_san` | one for the host names of `names`, none of its IP addresses |
    | `incomplete_chain` | one issued by the intermediate CA, sent without it |
    | `full_chain` | one issued by the intermediate CA, sent with it (verifies) |

    Everything lives in a temporary directory, removed by `close` (or the ``with``
    block). Only ``cryptography`` is needed: it works from a plain install.

    Example:
        ```python
        from netprobe.testing import CertBook, L7Server

        with CertBook() as book, L7Server("tls", ssl_context=book.server_context("expired")) as srv:
            report = await netprobe.diagnose(f"https://localhost:{srv.port}/", ca_file=book.ca_file)
            assert report.fault.code == "tls.cert_expired"
        ```

    Args:
        names: the host names and IP addresses the good certificates are issued for.
    """

    KINDS: ClassVar[tuple[str, ...]] = (
        "valid",
        "expired",
        "not_yet_valid",
        "unknown_ca",
        "self_signed",
        "wrong_host",
        "expiring_soon",
        "no_ip_san",
        "incomplete_chain",
        "full_chain",
    )

    def __init__(self, names: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")) -> None:
        if not names:
            raise ValueError("CertBook needs at least one name to issue certificates for")
        #: The host names and addresses the good certificates are issued for.
        self.names = tuple(names)
        # Naive UTC, truncated to the second: X.509 times carry no fraction.
        self._now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self._ca = _ca("netprobe test CA", None, self._now)
        self._other_ca = _ca("some other CA", None, self._now)
        self._intermediate = _ca("netprobe test CA", self._ca, self._now)
        self._dir = tempfile.TemporaryDirectory(prefix="netprobe-pki-")
        #: The temporary directory holding every file of the book.
        self.path = Path(self._dir.name)
        #: PEM file of the trusted CA: the client's ``ca_file``.
        self.ca_file = str(self.path / "ca.pem")
        Path(self.ca_file).write_bytes(_pem(self._ca.cert))
        cert, key = _leaf(
            self._ca,
            ("client.netprobe.test",),
            not_before=self._now - _DAY,
            not_after=self._now + 365 * _DAY,
            unit="Testing client",
        )
        #: PEM file of a client certificate issued by the trusted CA (for mutual TLS).
        self.client_cert_file = str(self.path / "client.pem")
        #: PEM file of that client certificate's private key.
        self.client_key_file = str(self.path / "client.key")
        Path(self.client_cert_file).write_bytes(_pem(cert))
        Path(self.client_key_file).write_bytes(_key_pem(key))
        self._cache: dict[str, tuple[bytes, bytes]] = {}

    @property
    def ca_pem(self) -> bytes:
        """The trusted CA certificate, PEM."""
        return _pem(self._ca.cert)

    def leaf(self, kind: str = "valid") -> tuple[bytes, bytes]:
        """The PEM certificate chain (leaf first) a server presents, and its PEM key.

        Raises:
            ValueError: ``kind`` is not one of `KINDS`.
        """
        if kind not in self._cache:
            self._cache[kind] = self._make(kind)
        return self._cache[kind]

    def cert_files(self, kind: str = "valid") -> tuple[str, str]:
        """Write `leaf` to two files (for a server configured by path); their paths."""
        chain, key = self.leaf(kind)
        cert_path, key_path = self.path / f"{kind}.pem", self.path / f"{kind}.key"
        cert_path.write_bytes(chain)
        key_path.write_bytes(key)
        return str(cert_path), str(key_path)

    def server_context(
        self,
        kind: str = "valid",
        *,
        minimum_version: ssl.TLSVersion | None = None,
        require_client_cert: bool = False,
    ) -> ssl.SSLContext:
        """A server-side TLS context presenting the ``kind`` certificate (ALPN http/1.1).

        Args:
            kind: one of `KINDS`.
            minimum_version: refuse clients below this TLS version.
            require_client_cert: demand a client certificate issued by the CA (mutual TLS;
                `client_cert_file` is one).
        """
        cert_path, key_path = self.cert_files(kind)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_path, key_path)
        ctx.set_alpn_protocols(["http/1.1"])
        if minimum_version is not None:
            ctx.minimum_version = minimum_version
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=self.ca_pem.decode())
        return ctx

    def _make(self, kind: str) -> tuple[bytes, bytes]:
        now, names = self._now, self.names
        issuer: _Issuer | None = self._ca
        idents = names
        not_before, not_after = now - _DAY, now + 365 * _DAY
        extra: list[x509.Certificate] = []
        if kind == "expired":
            not_before, not_after = now - 400 * _DAY, now - 2 * _DAY
        elif kind == "not_yet_valid":
            not_before, not_after = now + 3 * _DAY, now + 400 * _DAY
        elif kind == "expiring_soon":
            not_before, not_after = now - 80 * _DAY, now + 5 * _DAY
        elif kind == "unknown_ca":
            issuer = self._other_ca
        elif kind == "self_signed":
            issuer = None
        elif kind == "wrong_host":
            idents = ("other.example.com", "www.other.example.com")
        elif kind == "no_ip_san":
            idents = tuple(n for n in names if not _is_ip(n)) or ("localhost",)
        elif kind == "incomplete_chain":
            issuer = self._intermediate
        elif kind == "full_chain":
            issuer = self._intermediate
            extra = [self._intermediate.cert]
        elif kind != "valid":
            raise ValueError(f"unknown certificate kind {kind!r}: one of {', '.join(self.KINDS)}")
        cert, key = _leaf(issuer, idents, not_before=not_before, not_after=not_after)
        return b"".join(_pem(c) for c in [cert, *extra]), _key_pem(key)

    def close(self) -> None:
        """Remove the temporary directory and every file in it."""
        self._dir.cleanup()

    def __enter__(self) -> CertBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
