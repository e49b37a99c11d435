"""TLS on the NATS link against the real nats-server: Orchestrator.TLS.ServerCert/ServerKey on the server,
Compute.TLS.CACert / RequireTLS on clients, and what each side says when the other is not trusted.

Certificates come from tests/tls_certs.py: a test CA, a server certificate it signs for 127.0.0.1 and
localhost, and an unrelated CA.
"""

from __future__ import annotations

import logging
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from nats_env import WAIT_S, ConnectionFactory, ServerFactory, exchange, wait_until

from bacalhau.config.loader import load_config
from bacalhau.models.errors import BacalhauError, ConfigurationError, ErrorCode
from bacalhau.transport.nats_connection import ConnectionStatus
from bacalhau.transport.nats_server import EmbeddedNatsServer
from bacalhau.transport.nats_settings import DEFAULT_TLS_TIMEOUT_S, NatsClientSettings, NatsServerSettings
from tls_certs import CertAuthority, CertPair, make_ca

TOKEN = "tls-cluster-secret"
# Long enough that a failure coming from the connect timeout (instead of the certificate) would show.
SLOW_CONNECT_S = 10
REFUSALS_LOGGER = "bacalhau.transport.nats_refusals"
# The refusals follower polls nats-server's log every second.
REFUSAL_WAIT_S = 5.0


@dataclass(frozen=True)
class Certs:
    ca: CertAuthority
    server: CertPair
    other_ca: CertAuthority


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    ca = make_ca(tmp_path / "certs" / "ca")
    return Certs(ca=ca, server=ca.issue(tmp_path / "certs" / "server"),
                 other_ca=make_ca(tmp_path / "certs" / "other", "unrelated CA"))


@pytest.fixture
async def tls_server(nats_servers: ServerFactory, certs: Certs) -> EmbeddedNatsServer:
    return await nats_servers(token=TOKEN, tls_cert=str(certs.server.cert_path), tls_key=str(certs.server.key_path))


async def test_trusted_client_with_the_token_connects_and_exchanges_messages(
    tls_server: EmbeddedNatsServer, nats_connections: ConnectionFactory, certs: Certs
) -> None:
    sender = nats_connections(tls_server.client_url, token=TOKEN, tls=True, tls_ca_file=str(certs.ca.cert_path))
    receiver = nats_connections(tls_server.client_url, token=TOKEN, tls=True, tls_ca_file=str(certs.ca.cert_path))

    sending = await sender.connect(timeout_s=WAIT_S)
    receiving = await receiver.connect(timeout_s=WAIT_S)
    sub = await receiving.subscribe("bacalhau.tls")
    await receiving.flush()

    assert (await exchange(sending, sub, b"over tls")).data == b"over tls"
    assert sender.status is ConnectionStatus.CONNECTED
    # What an operator sees in the server's monitoring: both links are TLS.
    async with httpx.AsyncClient() as http:
        connz = (await http.get(f"{tls_server.monitor_url}/connz")).json()
    assert len(connz["connections"]) == 2
    assert all(conn.get("tls_version", "").startswith("1.") for conn in connz["connections"]), connz


@pytest.mark.parametrize("trust", ["system", "other CA"])
async def test_untrusted_server_certificate_fails_at_once_saying_so(
    tls_server: EmbeddedNatsServer, nats_connections: ConnectionFactory, certs: Certs, trust: str
) -> None:
    ca_file = "" if trust == "system" else str(certs.other_ca.cert_path)
    connection = nats_connections(tls_server.client_url, token=TOKEN, tls=True, tls_ca_file=ca_file,
                                  connect_timeout_s=SLOW_CONNECT_S)

    started = time.monotonic()
    with pytest.raises(BacalhauError) as caught:
        await connection.connect(timeout_s=WAIT_S)
    elapsed = time.monotonic() - started

    # Not retried until a deadline, nor waiting for the connect timeout: final at the first attempt.
    assert elapsed < SLOW_CONNECT_S / 2, f"took {elapsed:.1f}s"
    assert "cannot trust the TLS certificate of the NATS server" in caught.value.message
    assert "certificate verify failed" in caught.value.message
    assert "Compute.TLS.CACert" in caught.value.hint
    assert caught.value.code is ErrorCode.Unauthorized
    assert not caught.value.retryable
    assert connection.status is ConnectionStatus.CLOSED
    assert connection.failed_attempts == 0


async def test_a_client_that_asks_for_no_tls_is_upgraded_and_checks_the_certificate(
    tls_server: EmbeddedNatsServer, nats_connections: ConnectionFactory
) -> None:
    # A compute node without Compute.TLS.*: the server says TLS is required, the client's system trust is used.
    connection = nats_connections(tls_server.client_url, token=TOKEN, connect_timeout_s=SLOW_CONNECT_S)

    with pytest.raises(BacalhauError) as caught:
        await connection.connect(timeout_s=WAIT_S)

    assert "cannot trust the TLS certificate" in caught.value.message


async def test_a_background_connect_surfaces_an_untrusted_certificate_to_waiters(
    tls_server: EmbeddedNatsServer, nats_connections: ConnectionFactory, certs: Certs
) -> None:
    connection = nats_connections(tls_server.client_url, token=TOKEN, tls=True,
                                  tls_ca_file=str(certs.other_ca.cert_path))

    connection.start()

    with pytest.raises(BacalhauError, match="cannot trust the TLS certificate"):
        await connection.wait_for_status(ConnectionStatus.CONNECTED, timeout_s=WAIT_S)


async def test_trusted_certificate_but_wrong_token_is_unauthorized(
    tls_server: EmbeddedNatsServer, nats_connections: ConnectionFactory, certs: Certs
) -> None:
    connection = nats_connections(tls_server.client_url, token="wrong", tls=True, tls_ca_file=str(certs.ca.cert_path))

    with pytest.raises(BacalhauError) as caught:
        await connection.connect(timeout_s=WAIT_S)

    assert caught.value.code is ErrorCode.Unauthorized
    assert "authorization violation" in caught.value.message
    assert "Compute.Auth.Token" in caught.value.hint
    assert TOKEN not in caught.value.message + caught.value.hint


async def test_a_certificate_for_another_name_is_refused_unless_it_is_the_nodes_own_server(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory, certs: Certs, tmp_path: Path
) -> None:
    # The orchestrator's certificate names its public name only; its own client reaches it over loopback.
    public_only = certs.ca.issue(tmp_path / "public", hosts=["orchestrator.example.test"])
    config = load_config(
        ["Orchestrator.Enabled=true", "Orchestrator.Host=127.0.0.1", "Orchestrator.Port=0",
         f"Orchestrator.Auth.Token={TOKEN}", f"Orchestrator.TLS.ServerCert={public_only.cert_path}",
         f"Orchestrator.TLS.ServerKey={public_only.key_path}"],
        env={}, data_dir=str(tmp_path / "orch"),
    )
    server = await nats_servers(**_server_fields(NatsServerSettings.from_config(config, node_id="orch")))
    own = NatsClientSettings.from_config(config, node_id="orch", servers=[server.client_url], own_server=True)
    assert (own.tls, own.tls_verify, own.tls_ca_file) == (True, False, "")

    stranger = nats_connections(server.client_url, token=TOKEN, tls=True, tls_ca_file=str(certs.ca.cert_path),
                                connect_timeout_s=SLOW_CONNECT_S)
    with pytest.raises(BacalhauError) as caught:
        await stranger.connect(timeout_s=WAIT_S)
    assert "cannot trust the TLS certificate" in caught.value.message
    assert "mismatch" in caught.value.message.lower()  # what was wrong: the name, not the CA

    connection = nats_connections(server.client_url, token=TOKEN, tls=own.tls, tls_verify=own.tls_verify,
                                  name="orch-own")
    client = await connection.connect(timeout_s=WAIT_S)
    sub = await client.subscribe("bacalhau.own")
    await client.flush()
    assert (await exchange(client, sub, b"loopback")).data == b"loopback"


def _server_fields(settings: NatsServerSettings) -> dict[str, object]:
    """The fields of `settings` the nats_servers fixture takes (it picks node_id, store_dir and host itself)."""
    return {"token": settings.token, "tls_cert": settings.tls_cert, "tls_key": settings.tls_key,
            "tls_timeout_s": settings.tls_timeout_s, "port": settings.port}


async def test_the_server_config_holds_the_tls_block_and_stays_private(
    tls_server: EmbeddedNatsServer, certs: Certs
) -> None:
    text = tls_server.config_path.read_text(encoding="utf-8")

    assert "tls {" in text
    assert f'cert_file: "{certs.server.cert_path}"' in text
    assert f'key_file: "{certs.server.key_path}"' in text
    assert f"timeout: {DEFAULT_TLS_TIMEOUT_S}" in text
    assert stat.S_IMODE(tls_server.config_path.stat().st_mode) == 0o600
    log = tls_server.log_path.read_text(encoding="utf-8")
    assert "TLS required for client connections" in log


# Compute.TLS.RequireTLS makes the client start TLS before NATS's INFO (nats.go TLSHandshakeFirst). The
# embedded nats-server is not configured for a handshake first (Bacalhau's is not either): it sends INFO in
# plain text first, so a RequireTLS node needs a TLS-terminating proxy (or a nats-server with
# `handshake_first`) in front of the orchestrator. Against the bare server it never connects.


async def test_require_tls_handshake_first_against_the_embedded_server_does_not_connect(
    tls_server: EmbeddedNatsServer, nats_connections: ConnectionFactory, certs: Certs
) -> None:
    connection = nats_connections(tls_server.client_url, token=TOKEN, tls=True, tls_ca_file=str(certs.ca.cert_path),
                                  tls_handshake_first=True, connect_timeout_s=2, reconnect_wait_s=0.2,
                                  first_connect_backoff_max_s=0.5)

    with pytest.raises(BacalhauError) as caught:
        await connection.connect(timeout_s=1.0)

    # The server answers the ClientHello with plain-text INFO: an SSL error, not an unreachable server,
    # so the node stops at once with a configuration error (not retried forever).
    assert caught.value.code is ErrorCode.ConfigurationError
    assert connection.status is ConnectionStatus.CLOSED


async def test_require_tls_against_a_server_that_speaks_first_fails_naming_require_tls(
    tls_server: EmbeddedNatsServer, nats_connections: ConnectionFactory, certs: Certs
) -> None:
    connection = nats_connections(tls_server.client_url, token=TOKEN, tls=True, tls_ca_file=str(certs.ca.cert_path),
                                  tls_handshake_first=True, connect_timeout_s=2, reconnect_wait_s=0.2,
                                  first_connect_backoff_max_s=0.5)

    with pytest.raises(BacalhauError) as caught:
        await connection.connect(timeout_s=1.0)

    assert "RequireTLS" in caught.value.message + (caught.value.hint or "")


async def test_the_orchestrator_log_says_why_clients_were_refused(
    tls_server: EmbeddedNatsServer, nats_connections: ConnectionFactory, certs: Certs,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=REFUSALS_LOGGER)
    wrong_token = nats_connections(tls_server.client_url, token="wrong", tls=True, tls_ca_file=str(certs.ca.cert_path))
    untrusting = nats_connections(tls_server.client_url, token=TOKEN, tls=True,
                                  tls_ca_file=str(certs.other_ca.cert_path))
    for connection in (wrong_token, untrusting):
        with pytest.raises(BacalhauError):
            await connection.connect(timeout_s=WAIT_S)

    def said(text: str) -> bool:
        return any(r.name == REFUSALS_LOGGER and text in r.getMessage() for r in caplog.records)

    await wait_until(lambda: said("wrong or missing token") and said("TLS handshake error"),
                     timeout_s=REFUSAL_WAIT_S, what="both refusals in the orchestrator's log")
    token_line = next(r.getMessage() for r in caplog.records if "wrong or missing token" in r.getMessage())
    assert "127.0.0.1:" in token_line and "Orchestrator.Auth.Token" in token_line
    assert TOKEN not in caplog.text
    tls_line = next(r.getMessage() for r in caplog.records if "TLS handshake error" in r.getMessage())
    assert "Compute.TLS.CACert" in tls_line
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == REFUSALS_LOGGER)


async def test_a_tls_client_refuses_a_server_without_tls(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory, certs: Certs
) -> None:
    plain = await nats_servers(token=TOKEN)
    connection = nats_connections(plain.client_url, token=TOKEN, tls=True, tls_ca_file=str(certs.ca.cert_path))

    with pytest.raises(BacalhauError):
        await connection.connect(timeout_s=WAIT_S)


# -- settings from config ----------------------------------------------------------------------------------
@pytest.mark.parametrize("half", ["ServerCert", "ServerKey"])
def test_half_a_server_pair_is_refused(tmp_path: Path, certs: Certs, half: str) -> None:
    path = certs.server.cert_path if half == "ServerCert" else certs.server.key_path
    config = load_config([f"Orchestrator.TLS.{half}={path}"], env={}, data_dir=str(tmp_path / "data"))

    with pytest.raises(ConfigurationError) as caught:
        NatsServerSettings.from_config(config, node_id="orch")

    assert caught.value.message == "both ServerTLSCert and ServerTLSKey must be set together"
    assert "Orchestrator.TLS.ServerCert" in caught.value.hint and "Orchestrator.TLS.ServerKey" in caught.value.hint


def test_a_server_certificate_with_another_key_is_refused_naming_both_files(tmp_path: Path, certs: Certs) -> None:
    other = certs.ca.issue(tmp_path / "other-server")
    config = load_config(
        [f"Orchestrator.TLS.ServerCert={certs.server.cert_path}", f"Orchestrator.TLS.ServerKey={other.key_path}"],
        env={}, data_dir=str(tmp_path / "data"),
    )

    with pytest.raises(ConfigurationError) as caught:
        NatsServerSettings.from_config(config, node_id="orch")

    assert str(certs.server.cert_path) in caught.value.message and str(other.key_path) in caught.value.message
    assert "Orchestrator.TLS.ServerKey" in caught.value.hint


def test_a_negative_server_tls_timeout_is_refused(tmp_path: Path, certs: Certs) -> None:
    config = load_config(
        [f"Orchestrator.TLS.ServerCert={certs.server.cert_path}", f"Orchestrator.TLS.ServerKey={certs.server.key_path}",
         "Orchestrator.TLS.ServerTimeout=-1"],
        env={}, data_dir=str(tmp_path / "data"),
    )

    with pytest.raises(ConfigurationError, match="ServerTLSTimeout must be a positive number"):
        NatsServerSettings.from_config(config, node_id="orch")


def test_server_timeout_reaches_the_config_file(tmp_path: Path, certs: Certs) -> None:
    config = load_config(
        [f"Orchestrator.TLS.ServerCert={certs.server.cert_path}", f"Orchestrator.TLS.ServerKey={certs.server.key_path}",
         "Orchestrator.TLS.ServerTimeout=3"],
        env={}, data_dir=str(tmp_path / "data"),
    )

    settings = NatsServerSettings.from_config(config, node_id="orch")

    assert settings.tls_timeout_s == 3
    assert "  timeout: 3\n" in settings.render_conf(ports_file_dir=tmp_path)


def test_compute_client_settings_from_config(tmp_path: Path, certs: Certs) -> None:
    config = load_config(
        ["Compute.Enabled=true", "Compute.Orchestrators=nats://orchestrator.example.test:4222",
         f"Compute.Auth.Token={TOKEN}", f"Compute.TLS.CACert={certs.ca.cert_path}"],
        env={}, data_dir=str(tmp_path / "data"),
    )

    settings = NatsClientSettings.from_config(config, node_id="compute-1")

    assert (settings.tls, settings.tls_ca_file, settings.tls_verify, settings.tls_handshake_first) == (
        True, str(certs.ca.cert_path), True, False)
    context = settings.ssl_context()
    assert context is not None and context.check_hostname
    assert any("test CA" in str(c.get("subject")) for c in context.get_ca_certs())


def test_require_tls_alone_uses_the_system_trust_and_handshakes_first(tmp_path: Path) -> None:
    config = load_config(["Compute.Enabled=true", "Compute.TLS.RequireTLS=true"], env={}, data_dir=str(tmp_path))

    settings = NatsClientSettings.from_config(config, node_id="compute-1")

    assert (settings.tls, settings.tls_ca_file, settings.tls_handshake_first) == (True, "", True)


def test_a_missing_ca_file_is_refused_naming_the_key(tmp_path: Path) -> None:
    config = load_config(["Compute.Enabled=true", f"Compute.TLS.CACert={tmp_path / 'nope.pem'}"],
                         env={}, data_dir=str(tmp_path))

    with pytest.raises(ConfigurationError) as caught:
        NatsClientSettings.from_config(config, node_id="compute-1")

    assert "Compute.TLS.CACert" in caught.value.message and "nope.pem" in caught.value.message


def test_without_tls_settings_no_ssl_context_is_built(tmp_path: Path) -> None:
    config = load_config(["Compute.Enabled=true"], env={}, data_dir=str(tmp_path))

    settings = NatsClientSettings.from_config(config, node_id="compute-1")

    assert not settings.tls and settings.ssl_context() is None
