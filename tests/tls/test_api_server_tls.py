"""api_server_tls: which certificate the API serves, from API.TLS (Bacalhau v1.9's rules), and the
self-signed certificate kept in <DataDir>/api-tls."""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import stat
from pathlib import Path

import pytest

from bacalhau.config.types import TLSConfig
from bacalhau.models.errors import ConfigurationError
from bacalhau.tls.api_server import RENEW_BEFORE_DAYS, VALID_DAYS, ServerTLS, api_server_tls
from tls_certs import load_cert, make_ca, san_names, self_signed


def kept_files(data_dir: Path) -> tuple[Path, Path]:
    return data_dir / "api-tls" / "cert.pem", data_dir / "api-tls" / "key.pem"


def test_no_tls_key_means_plain_http(tmp_path: Path) -> None:
    assert api_server_tls(TLSConfig(), data_dir=tmp_path, host="127.0.0.1") is None
    # Client-side keys say nothing about what the server serves.
    client_only = TLSConfig(use_tls=True, insecure=True, ca_file=str(tmp_path / "ca.pem"))
    assert api_server_tls(client_only, data_dir=tmp_path, host="127.0.0.1") is None
    assert not (tmp_path / "api-tls").exists()


def test_cert_file_without_key_file_is_refused_with_bacalhaus_message(tmp_path: Path) -> None:
    pair = make_ca(tmp_path / "ca").issue(tmp_path / "server")

    with pytest.raises(ConfigurationError) as caught:
        api_server_tls(TLSConfig(cert_file=str(pair.cert_path)), data_dir=tmp_path, host="127.0.0.1")

    assert caught.value.message == "invalid config: TLS cert specified without corresponding private key"
    assert "API.TLS.KeyFile" in caught.value.hint


def test_key_file_without_cert_file_is_refused_with_bacalhaus_message(tmp_path: Path) -> None:
    pair = make_ca(tmp_path / "ca").issue(tmp_path / "server")

    with pytest.raises(ConfigurationError) as caught:
        api_server_tls(TLSConfig(key_file=str(pair.key_path)), data_dir=tmp_path, host="127.0.0.1")

    assert caught.value.message == "invalid config: private key specified without corresponding TLS certificate"
    assert "API.TLS.CertFile" in caught.value.hint


def test_a_half_pair_is_refused_even_with_self_signed_set(tmp_path: Path) -> None:
    # Never a silent fall back to a generated certificate when the operator named one.
    pair = make_ca(tmp_path / "ca").issue(tmp_path / "server")
    tls = TLSConfig(cert_file=str(pair.cert_path), self_signed=True)

    with pytest.raises(ConfigurationError, match="without corresponding private key"):
        api_server_tls(tls, data_dir=tmp_path, host="127.0.0.1")
    assert not (tmp_path / "api-tls").exists()


@pytest.mark.parametrize("extra", [{}, {"self_signed": True}], ids=["alone", "with SelfSigned"])
def test_auto_cert_is_refused_naming_it(tmp_path: Path, extra: dict[str, bool]) -> None:
    tls = TLSConfig(auto_cert="node.example.com", **extra)

    with pytest.raises(ConfigurationError) as caught:
        api_server_tls(tls, data_dir=tmp_path, host="0.0.0.0")

    assert "API.TLS.AutoCert" in caught.value.message
    assert "node.example.com" in caught.value.message
    assert "API.TLS.CertFile" in caught.value.hint and "API.TLS.SelfSigned" in caught.value.hint
    assert not (tmp_path / "api-tls").exists()


def test_a_matching_pair_is_served_as_given(tmp_path: Path) -> None:
    pair = make_ca(tmp_path / "ca").issue(tmp_path / "server")

    served = api_server_tls(
        TLSConfig(cert_file=str(pair.cert_path), key_file=str(pair.key_path)), data_dir=tmp_path, host="127.0.0.1"
    )

    assert served == ServerTLS(str(pair.cert_path), str(pair.key_path), self_signed=False)
    assert not (tmp_path / "api-tls").exists()


def test_a_certificate_with_another_pairs_key_is_refused_naming_both_files(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    first, second = ca.issue(tmp_path / "first"), ca.issue(tmp_path / "second")

    with pytest.raises(ConfigurationError) as caught:
        api_server_tls(
            TLSConfig(cert_file=str(first.cert_path), key_file=str(second.key_path)), data_dir=tmp_path, host="127.0.0.1"
        )

    assert str(first.cert_path) in caught.value.message
    assert str(second.key_path) in caught.value.message
    assert "key" in caught.value.hint


@pytest.mark.parametrize("broken", ["cert", "key"])
def test_a_missing_or_unreadable_file_is_refused_naming_it(tmp_path: Path, broken: str) -> None:
    pair = make_ca(tmp_path / "ca").issue(tmp_path / "server")
    missing = tmp_path / "nowhere.pem"
    cert, key = (missing, pair.key_path) if broken == "cert" else (pair.cert_path, missing)

    with pytest.raises(ConfigurationError) as caught:
        api_server_tls(TLSConfig(cert_file=str(cert), key_file=str(key)), data_dir=tmp_path, host="127.0.0.1")

    assert str(missing) in caught.value.message


def test_self_signed_is_made_with_a_private_key_and_loopback_names(tmp_path: Path) -> None:
    served = api_server_tls(TLSConfig(self_signed=True), data_dir=tmp_path, host="127.0.0.1")

    cert_path, key_path = kept_files(tmp_path)
    assert served == ServerTLS(str(cert_path), str(key_path), self_signed=True)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert not list((tmp_path / "api-tls").glob("*.tmp"))
    cert = load_cert(cert_path)
    dns, ips = san_names(cert)
    assert {"localhost", socket.gethostname()} <= dns
    assert {"127.0.0.1", "::1"} <= ips
    # Valid now and for about VALID_DAYS.
    now = dt.datetime.now(dt.UTC)
    assert cert.not_valid_before_utc <= now
    assert cert.not_valid_after_utc > now + dt.timedelta(days=VALID_DAYS - 1)
    # The pair loads and belongs together; the certificate verifies itself (clients pin it as their CA).
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_path, key_path)
    ssl.create_default_context(cafile=str(cert_path))


def test_self_signed_names_the_api_host_address_and_name(tmp_path: Path) -> None:
    api_server_tls(TLSConfig(self_signed=True), data_dir=tmp_path / "ip", host="10.1.2.3")
    api_server_tls(TLSConfig(self_signed=True), data_dir=tmp_path / "dns", host="node-7.example.test")
    api_server_tls(TLSConfig(self_signed=True), data_dir=tmp_path / "any", host="0.0.0.0")

    ip_dns, ip_ips = san_names(load_cert(kept_files(tmp_path / "ip")[0]))
    assert {"10.1.2.3", "127.0.0.1"} <= ip_ips and "localhost" in ip_dns
    dns_dns, dns_ips = san_names(load_cert(kept_files(tmp_path / "dns")[0]))
    assert {"node-7.example.test", "localhost"} <= dns_dns and "127.0.0.1" in dns_ips
    # A wildcard listen address is no name a client can use: not in the certificate.
    assert "0.0.0.0" not in san_names(load_cert(kept_files(tmp_path / "any")[0]))[1]


def test_self_signed_is_kept_across_calls(tmp_path: Path) -> None:
    api_server_tls(TLSConfig(self_signed=True), data_dir=tmp_path, host="10.1.2.3")
    cert_path, key_path = kept_files(tmp_path)
    before = cert_path.read_bytes(), key_path.read_bytes()

    again = api_server_tls(TLSConfig(self_signed=True), data_dir=tmp_path, host="10.1.2.3")
    # A host the certificate already covers (loopback) keeps it too.
    loopback = api_server_tls(TLSConfig(self_signed=True), data_dir=tmp_path, host="127.0.0.1")

    assert again == loopback == ServerTLS(str(cert_path), str(key_path), self_signed=True)
    assert (cert_path.read_bytes(), key_path.read_bytes()) == before


def test_a_self_signed_certificate_near_expiry_is_remade(tmp_path: Path) -> None:
    cert_path, key_path = kept_files(tmp_path)
    old = self_signed(cert_path.parent, hosts=["127.0.0.1", "::1", "localhost", socket.gethostname()],
                      valid_days=RENEW_BEFORE_DAYS - 1)
    old_bytes = cert_path.read_bytes()

    api_server_tls(TLSConfig(self_signed=True), data_dir=tmp_path, host="127.0.0.1")

    new = load_cert(cert_path)
    assert cert_path.read_bytes() != old_bytes
    assert new.serial_number != old.cert.serial_number
    assert new.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=VALID_DAYS - 1)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_path, key_path)


def test_a_self_signed_certificate_with_time_left_is_kept(tmp_path: Path) -> None:
    cert_path, _ = kept_files(tmp_path)
    self_signed(cert_path.parent, hosts=["127.0.0.1", "::1", "localhost", socket.gethostname()],
                valid_days=RENEW_BEFORE_DAYS + 5)
    before = cert_path.read_bytes()

    api_server_tls(TLSConfig(self_signed=True), data_dir=tmp_path, host="127.0.0.1")

    assert cert_path.read_bytes() == before


def test_a_self_signed_certificate_missing_the_new_api_host_is_remade(tmp_path: Path) -> None:
    api_server_tls(TLSConfig(self_signed=True), data_dir=tmp_path, host="127.0.0.1")
    cert_path, key_path = kept_files(tmp_path)
    before = cert_path.read_bytes(), key_path.read_bytes()
    assert "10.9.8.7" not in san_names(load_cert(cert_path))[1]

    api_server_tls(TLSConfig(self_signed=True), data_dir=tmp_path, host="10.9.8.7")

    assert (cert_path.read_bytes(), key_path.read_bytes()) != before
    assert {"10.9.8.7", "127.0.0.1"} <= san_names(load_cert(cert_path))[1]
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_path, key_path)


@pytest.mark.parametrize("damage", ["garbage cert", "no SAN", "cert only"])
def test_a_damaged_self_signed_certificate_is_remade(tmp_path: Path, damage: str) -> None:
    api_server_tls(TLSConfig(self_signed=True), data_dir=tmp_path, host="127.0.0.1")
    cert_path, key_path = kept_files(tmp_path)
    if damage == "garbage cert":
        cert_path.write_text("not a certificate\n")
    elif damage == "no SAN":
        self_signed(cert_path.parent, hosts=())  # replaces the pair: a certificate naming nothing
    else:
        key_path.unlink()

    api_server_tls(TLSConfig(self_signed=True), data_dir=tmp_path, host="127.0.0.1")

    assert {"127.0.0.1", "localhost"} <= set.union(*san_names(load_cert(cert_path)))
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_path, key_path)


def test_a_crash_while_remaking_never_leaves_a_mismatched_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api_server_tls(TLSConfig(self_signed=True), data_dir=tmp_path, host="127.0.0.1")
    cert_path = kept_files(tmp_path)[0]
    real_replace = os.replace

    def crash_before_the_certificate(src: object, dst: object) -> None:
        if Path(str(dst)) == cert_path:
            raise OSError("simulated crash")
        real_replace(src, dst)  # type: ignore[arg-type]

    # The API host changed: the certificate is remade, and the process dies half way.
    monkeypatch.setattr(os, "replace", crash_before_the_certificate)
    with pytest.raises(OSError, match="simulated crash"):
        api_server_tls(TLSConfig(self_signed=True), data_dir=tmp_path, host="10.9.8.7")
    monkeypatch.setattr(os, "replace", real_replace)

    # Next start, back on loopback (which the old certificate names): the pair served must load.
    served = api_server_tls(TLSConfig(self_signed=True), data_dir=tmp_path, host="127.0.0.1")
    assert served is not None
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(served.cert_file, served.key_file)
