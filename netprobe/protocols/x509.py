"""Certificate facts from DER bytes: pure, no I/O (the `cryptography` package parses X.509)."""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from ..steps import CertificateInfo

__all__ = ["describe_certificate", "describe_chain", "describe_pem"]


def describe_certificate(der: bytes, now: datetime | None = None) -> CertificateInfo:
    """Subject, issuer, SANs, validity, serial and fingerprint of one DER certificate."""
    with warnings.catch_warnings():
        # A serial number that is not positive (old certificates have them) is described,
        # not warned about on the diagnosis's stderr (or raised under -W error).
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        info = _parse(der)
    now = now or datetime.now(UTC)
    days_left = round((info.not_after - now).total_seconds() / 86400.0, 2)
    return info.model_copy(update={"days_left": days_left})


@functools.lru_cache(maxsize=256)
def _parse(der: bytes) -> CertificateInfo:
    # Cached: a service checked every few seconds presents the same chain each time, and
    # parsing costs about a tenth of a millisecond per certificate.
    cert = x509.load_der_x509_certificate(der)
    dns_names: list[str] = []
    ips: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        pass
    else:
        dns_names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        ips = [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    ca_issuers: list[str] = []
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        pass
    else:
        # RFC 5280 §4.2.2.1: where the issuer's certificate can be fetched (browsers do).
        ca_issuers = [
            str(d.access_location.value)
            for d in aia
            if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
            and isinstance(d.access_location, x509.UniformResourceIdentifier)
        ]
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = cns[0].value if cns else None
    not_after = cert.not_valid_after_utc
    digest = hashlib.sha256(der).hexdigest().upper()
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        common_name=cn if isinstance(cn, str) else None,
        issuer=cert.issuer.rfc4514_string(),
        dns_names=dns_names,
        ip_addresses=ips,
        not_before=cert.not_valid_before_utc,
        not_after=not_after,
        days_left=0.0,
        serial=f"{cert.serial_number:X}",
        sha256=":".join(digest[i : i + 2] for i in range(0, len(digest), 2)),
        self_signed=cert.subject == cert.issuer,
        is_ca=is_ca,
        ca_issuers=ca_issuers,
    )


def describe_chain(ders: Sequence[bytes], now: datetime | None = None) -> list[CertificateInfo]:
    """Every certificate of a presented chain, leaf first; unparsable ones are skipped."""
    out: list[CertificateInfo] = []
    for der in ders:
        try:
            out.append(describe_certificate(der, now))
        except _MALFORMED:
            continue
    return out


#: What cryptography raises for a malformed certificate: not all of it is a ValueError
#: (a version field of 3 raises InvalidVersion, a repeated extension DuplicateExtension, a
#: name attribute of type BIT STRING under another OID TypeError).
_MALFORMED = (
    ValueError,
    TypeError,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


def describe_pem(pem: bytes, now: datetime | None = None) -> CertificateInfo | None:
    """The first certificate of a PEM file (a client certificate), or None when there is none."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except _MALFORMED:
        return None
    from cryptography.hazmat.primitives.serialization import Encoding

    return describe_certificate(cert.public_bytes(Encoding.DER), now)
