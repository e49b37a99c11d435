"""Test certificates made with `cryptography`: a CA, server certificates it signs, unrelated CAs.

    ca = make_ca(tmp_path / "ca")                       # ca.cert_path: what a client trusts
    server = ca.issue(tmp_path / "server")              # server.cert_path / key_path: for 127.0.0.1, localhost
    other = make_ca(tmp_path / "other", "Other CA")     # a CA the server's certificate does not chain to

Keys are EC P-256 (fast to make); every file is PEM, keys unencrypted and mode 0600. Nothing here
touches the network or the system's trust store.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("127.0.0.1", "localhost")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def san_for(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    """A SubjectAlternativeName with an IP entry for each address in `hosts` and a DNS entry for each name."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


@dataclass(frozen=True)
class CertPair:
    """A certificate and its key on disk."""

    cert_path: Path
    key_path: Path
    cert: x509.Certificate


@dataclass(frozen=True)
class CertAuthority:
    """A test CA: its certificate file is what clients trust; `issue()` signs server certificates."""

    cert_path: Path
    key_path: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def issue(
        self,
        directory: Path,
        *,
        hosts: Sequence[str] = DEFAULT_HOSTS,
        common_name: str = "test server",
        valid_days: float = 30,
    ) -> CertPair:
        """A server certificate for `hosts`, signed by this CA, written to directory/{cert,key}.pem."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=valid_days))
            .add_extension(san_for(hosts), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        return CertPair(
            cert_path=_write(directory / "cert.pem", cert.public_bytes(serialization.Encoding.PEM)),
            key_path=_write(directory / "key.pem", _key_pem(key), 0o600),
            cert=cert,
        )


def make_ca(directory: Path, name: str = "bacalhau-py test CA") -> CertAuthority:
    """A new self-signed CA written to directory/{ca.pem,ca-key.pem}."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=60))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertAuthority(
        cert_path=_write(directory / "ca.pem", cert.public_bytes(serialization.Encoding.PEM)),
        key_path=_write(directory / "ca-key.pem", _key_pem(key), 0o600),
        cert=cert,
        key=key,
    )


def self_signed(directory: Path, *, hosts: Sequence[str] = DEFAULT_HOSTS, valid_days: float = 30) -> CertPair:
    """A self-signed certificate (its own CA) for `hosts`, with `valid_days` left: e.g. one near expiry.
    No `hosts`: no SubjectAlternativeName extension at all."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self-signed test")])
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if hosts:
        builder = builder.add_extension(san_for(hosts), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return CertPair(
        cert_path=_write(directory / "cert.pem", cert.public_bytes(serialization.Encoding.PEM)),
        key_path=_write(directory / "key.pem", _key_pem(key), 0o600),
        cert=cert,
    )


def load_cert(path: Path) -> x509.Certificate:
    """The certificate in PEM file `path`."""
    return x509.load_pem_x509_certificate(path.read_bytes())


def san_names(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    """(DNS names, IP addresses as strings) of a certificate's SubjectAlternativeName."""
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
