"""Certificates for the real TLS servers: a root, intermediates, leaves, and the deployment
mistakes of issue 15 (leaf-only chain, misordered chain, intermediate about to expire,
expired leaf, another CA's client certificate), written as the PEM files servers read.

trustme cannot date an intermediate, so this builds certificates with ``cryptography``
directly (ECDSA P-256: fast to make, and every TLS version down to 1.0 can use it with
ECDHE-ECDSA cipher suites).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

__all__ = ["Authority", "Issued", "Pki", "TlsFiles"]

_NOW = datetime.datetime.now(datetime.UTC)
_DAY = datetime.timedelta(days=1)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "netprobe nplab"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return _pem(self.cert)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@dataclass(frozen=True)
class Authority(Issued):
    """A CA (root or intermediate) with the chain above it (nearest first, root excluded)."""

    parents: tuple[Issued, ...] = ()


@dataclass(frozen=True)
class TlsFiles:
    """The files a server is configured with: the chain it sends (leaf first, unless the case
    is a misordered chain), its key, the two in one file (HAProxy's ``crt``), and the CA file a
    client must trust."""

    chain: Path
    key: Path
    combined: Path
    ca: Path


class Pki:
    """A root CA and whatever the test needs below it, written into ``directory``."""

    def __init__(self, directory: Path, name: str = "netprobe nplab root") -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.root = self._ca(name, issuer=None)
        self.ca_file = self.dir / f"{_slug(name)}.pem"
        self.ca_file.write_bytes(self.root.cert_pem)

    def _ca(
        self,
        cn: str,
        issuer: Authority | None,
        *,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        signer_key = issuer.key if issuer else key
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(issuer.cert.subject if issuer else _name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or _NOW - _DAY)
            .not_valid_after(not_after or _NOW + 3650 * _DAY)
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
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
            )
        cert = builder.sign(signer_key, hashes.SHA256())
        parents: tuple[Issued, ...] = ()
        if issuer is not None and issuer is not getattr(self, "root", None):
            parents = (issuer, *issuer.parents)  # intermediates only: the root is never sent
        return Authority(cert=cert, key=key, parents=parents)

    def intermediate(
        self,
        cn: str,
        *,
        issuer: Authority | None = None,
        not_after: datetime.datetime | None = None,
    ) -> Authority:
        """An intermediate CA under ``issuer`` (the root by default)."""
        return self._ca(cn, issuer or self.root, not_after=not_after)

    def leaf(
        self,
        *names: str,
        issuer: Authority | None = None,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        client: bool = False,
        ca_issuers: str | None = None,
    ) -> Issued:
        """A server (or, with ``client``, a client) certificate for ``names`` (DNS names or
        IP addresses) under ``issuer`` (the root by default). ``ca_issuers``: a URL for its
        Authority Information Access (where the issuer's certificate is published, as every
        public CA's leaf says; nothing serves it here)."""
        issuer = issuer or self.root
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0] if names else "client"))
            .issuer_name(issuer.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or _NOW - _DAY)
            .not_valid_after(not_after or _NOW + 365 * _DAY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        if ca_issuers:
            builder = builder.add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.CA_ISSUERS,
                            x509.UniformResourceIdentifier(ca_issuers),
                        )
                    ]
                ),
                critical=False,
            )
        return Issued(cert=builder.sign(issuer.key, hashes.SHA256()), key=key)

    def write(self, label: str, leaf: Issued, chain: list[Issued] | None = None) -> TlsFiles:
        """Write ``leaf`` with ``chain`` (what the server sends after the leaf, in that order;
        None: the leaf's issuers up to, not including, the root) as ``label``'s files."""
        if chain is None:
            chain = []
        chain_pem = leaf.cert_pem + b"".join(c.cert_pem for c in chain)
        files = TlsFiles(
            chain=self.dir / f"{label}.chain.pem",
            key=self.dir / f"{label}.key.pem",
            combined=self.dir / f"{label}.pem",
            ca=self.ca_file,
        )
        files.chain.write_bytes(chain_pem)
        files.key.write_bytes(leaf.key_pem)
        files.key.chmod(0o600)
        files.combined.write_bytes(chain_pem + leaf.key_pem)
        files.combined.chmod(0o600)
        return files

    def server(
        self,
        label: str,
        *names: str,
        issuer: Authority | None = None,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> TlsFiles:
        """A server certificate with its full chain (leaf, then each intermediate up to the
        root, root excluded), written as ``label``'s files."""
        leaf = self.leaf(*names, issuer=issuer, not_before=not_before, not_after=not_after)
        chain: list[Issued] = []
        if issuer is not None and issuer is not self.root:
            chain = [issuer, *issuer.parents]
        return self.write(label, leaf, chain)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-")
