"""The certificate the API serves, from `API.TLS` (Bacalhau v1.9's rules, pkg/node/utils.go):

    AutoCert              refused: ACME needs a public DNS name and port 443 (never honoured silently)
    CertFile + KeyFile    served as given, after checking that they load and belong together
    one without the other Bacalhau's "invalid config: TLS cert specified without corresponding private key"
    SelfSigned            a certificate made once and kept in <DataDir>/api-tls/ (remade when near expiry
                          or when it no longer names the API host), so clients can pin it with CAFile
    none of them          plain HTTP

A setting that cannot be honoured stops the node with the reason: never a fall back to plain HTTP.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from bacalhau.config.api import TLSConfig
from bacalhau.models.errors import ConfigurationError
from bacalhau.tls.pair import check_pair

SELF_SIGNED_DIR = "api-tls"
CERT_NAME, KEY_NAME = "cert.pem", "key.pem"
VALID_DAYS = 365
RENEW_BEFORE_DAYS = 30


@dataclass(frozen=True)
class ServerTLS:
    """The certificate and key files the API serves; `self_signed` when this node made them."""

    cert_file: str
    key_file: str
    self_signed: bool = False


def api_server_tls(tls: TLSConfig, *, data_dir: Path, host: str) -> ServerTLS | None:
    """The certificate and key to serve, None for plain HTTP. ConfigurationError for one that cannot be."""
    if tls.auto_cert:
        raise ConfigurationError(
            f"API.TLS.AutoCert={tls.auto_cert!r} (ACME certificates) is not supported by bacalhau-py",
            hint="serve a certificate with API.TLS.CertFile and API.TLS.KeyFile, or API.TLS.SelfSigned=true",
        )
    if tls.cert_file and not tls.key_file:
        raise ConfigurationError("invalid config: TLS cert specified without corresponding private key",
                                 hint="set API.TLS.KeyFile too")
    if tls.key_file and not tls.cert_file:
        raise ConfigurationError("invalid config: private key specified without corresponding TLS certificate",
                                 hint="set API.TLS.CertFile too")
    if tls.cert_file:
        check_pair(tls.cert_file, tls.key_file, section="API.TLS", keys="API.TLS.CertFile and API.TLS.KeyFile")
        return ServerTLS(tls.cert_file, tls.key_file)
    if tls.self_signed:
        folder = data_dir / SELF_SIGNED_DIR
        cert, key = folder / CERT_NAME, folder / KEY_NAME
        if not _still_good(cert, key, host):
            _make_self_signed(folder, cert, key, host)
        return ServerTLS(str(cert), str(key), self_signed=True)
    return None


def _names(host: str) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) a self-signed certificate covers: loopback, this host, the API host."""
    import socket

    dns = ["localhost", socket.gethostname()]
    ips = ["127.0.0.1", "::1"]
    try:
        address = ipaddress.ip_address(host)
        if not address.is_unspecified:
            ips.append(str(address))
    except ValueError:
        if host:
            dns.append(host)
    return sorted(set(dns)), sorted(set(ips))


def _still_good(cert: Path, key: Path, host: str) -> bool:
    if not (cert.is_file() and key.is_file()):
        return False
    try:  # a crash between writing the key and the certificate leaves a pair that does not match
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError):
        return False
    from cryptography import x509

    try:
        loaded = x509.load_pem_x509_certificate(cert.read_bytes())
        san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, OSError, x509.ExtensionNotFound):
        return False
    if loaded.not_valid_after_utc - dt.timedelta(days=RENEW_BEFORE_DAYS) < dt.datetime.now(dt.UTC):
        return False
    dns, ips = _names(host)
    have_dns = set(san.get_values_for_type(x509.DNSName))
    have_ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return set(dns) <= have_dns and set(ips) <= have_ips


def _make_self_signed(folder: Path, cert: Path, key: Path, host: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    private = ec.generate_private_key(ec.SECP256R1())
    dns, ips = _names(host)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bacalhau-py node API")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
            ),
            critical=False,
        )
        # Its own CA: a client pins it with API.TLS.CAFile=<cert.pem>.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    key_bytes = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Each file written atomically, the key owner-only; a crash between the two leaves a mismatched pair,
    # which _still_good detects at the next start (and the pair is made again).
    for path, data, mode in ((key, key_bytes, 0o600), (cert, certificate.public_bytes(serialization.Encoding.PEM), 0o644)):
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
