"""The TLS files of the options are checked before any I/O (issue 11): ``--client-cert``
without ``--client-key`` when the certificate file holds no key, a key of another
certificate, a file that is not PEM, an encrypted key: one ``InvalidOption`` line (exit 2 on
the command line), never a TLS verdict. A PEM file holding the certificate and its key is
valid on its own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import netprobe
from netprobe.options import make_options
from netprobe.testing import CertBook, L7Server


@pytest.fixture(scope="module")
def book() -> Iterator[CertBook]:
    with CertBook() as made:
        yield made


@pytest.fixture(scope="module")
def files(book: CertBook, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("tlsfiles")
    cert = Path(book.client_cert_file).read_bytes()
    key = Path(book.client_key_file).read_bytes()
    other_key = ec.generate_private_key(ec.SECP256R1())
    encrypted = other_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    plain_other = other_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    out: dict[str, str | Path] = {
        "cert": book.client_cert_file,
        "key": book.client_key_file,
        "both": tmp / "both.pem",
        "other_key": tmp / "other.key",
        "encrypted_key": tmp / "encrypted.key",
        "junk": tmp / "junk.pem",
        "empty": tmp / "empty.pem",
    }
    Path(out["both"]).write_bytes(cert + key)
    Path(out["other_key"]).write_bytes(plain_other)
    Path(out["encrypted_key"]).write_bytes(encrypted)
    Path(out["junk"]).write_text("not a certificate\n")
    Path(out["empty"]).write_text("")
    return {k: str(v) for k, v in out.items()}


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ({"client_cert": "cert"}, "holds no private key: pass its key with client_key="),
        ({"client_cert": "cert", "client_key": "other_key"}, "does not belong to the certificate"),
        ({"client_cert": "cert", "client_key": "junk"}, "holds no PEM private key"),
        ({"client_cert": "cert", "client_key": "encrypted_key"}, "is encrypted"),
        ({"client_cert": "junk", "client_key": "key"}, "holds no PEM certificate"),
        ({"client_cert": "key"}, "holds no PEM certificate"),
        ({"client_cert": "empty"}, "holds no PEM certificate"),
        ({"ca_file": "junk"}, "holds no PEM certificate"),
        ({"ca_file": "key"}, "holds no PEM certificate"),
        ({"client_cert": "/nonexistent/c.pem"}, "is not a readable file"),
        ({"client_key": "key"}, "needs client_cert"),
    ],
)
def test_unusable_tls_files_are_bad_input(
    files: dict[str, str], given: dict[str, str], fragment: str
) -> None:
    kwargs: dict[str, Any] = {option: files.get(name, name) for option, name in given.items()}
    with pytest.raises(netprobe.InvalidOption) as info:
        make_options(**kwargs)
    message = str(info.value)
    assert fragment in message, message
    assert "\n" not in message
    option = "client_key" if "client_key needs" in fragment else None
    assert message.startswith(f"option '{option or ''}") or option is None, message


def test_usable_tls_files_pass(files: dict[str, str], book: CertBook) -> None:
    make_options(client_cert=files["both"])  # certificate and key in one PEM file
    make_options(client_cert=files["cert"], client_key=files["key"])
    make_options(ca_file=book.ca_file, client_cert=files["both"], client_key=files["key"])


def test_the_cli_refuses_a_certificate_without_its_key_before_any_io(
    files: dict[str, str], book: CertBook
) -> None:
    with L7Server("tls", ssl_context=book.server_context(require_client_cert=True)) as server:
        out = subprocess.run(
            [sys.executable, "-m", "netprobe", "diagnose", f"https://localhost:{server.port}/",
             "--no-icmp", "--ca-file", book.ca_file, "--client-cert", files["cert"]],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert server.accepted == 0  # refused before the first packet
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "holds no private key" in lines[0] and "--client-key" in lines[0]
