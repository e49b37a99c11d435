"""NatsConnection against real nats-server processes: auth, late servers, restarts, big messages."""

from __future__ import annotations

import random
from pathlib import Path

import httpx
import pytest
from nats import errors as nats_errors
from nats_env import FAST_CLIENT, WAIT_S, ConnectionFactory, ServerFactory, exchange, wait_until

from bacalhau.config.loader import load_config
from bacalhau.models.errors import BacalhauError, ConfigurationError, ErrorCode
from bacalhau.transport.nats_connection import ConnectionStatus
from bacalhau.transport.nats_errors import translate
from bacalhau.transport.nats_settings import NatsClientSettings
from serve_node import find_free_port

TOKEN = "cluster-secret"



@pytest.mark.parametrize("token", ["wrong-secret", ""], ids=["wrong token", "missing token"])
async def test_refused_token_fails_at_once_with_unauthorized(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory, token: str
) -> None:
    server = await nats_servers(token=TOKEN)
    connection = nats_connections(server.client_url, token=token)

    with pytest.raises(BacalhauError) as caught:
        await connection.connect(timeout_s=WAIT_S)

    assert caught.value.code is ErrorCode.Unauthorized
    assert "Compute.Auth.Token" in caught.value.hint
    assert not caught.value.retryable
    assert connection.status is ConnectionStatus.CLOSED


async def test_right_token_connects_with_the_node_name(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    server = await nats_servers(token=TOKEN)
    connection = nats_connections(server.client_url, token=TOKEN, name="compute-7")

    await connection.connect(timeout_s=WAIT_S)

    assert connection.status is ConnectionStatus.CONNECTED
    # What an operator sees in the server's monitoring: the connection carries the node ID.
    async with httpx.AsyncClient() as http:
        connz = (await http.get(f"{server.monitor_url}/connz")).json()
    assert [conn.get("name") for conn in connz["connections"]] == ["compute-7"]


async def test_background_connect_surfaces_a_refused_token_to_waiters(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    server = await nats_servers(token=TOKEN)
    connection = nats_connections(server.client_url, token="wrong-secret")

    connection.start()

    with pytest.raises(BacalhauError) as caught:
        await connection.wait_for_status(ConnectionStatus.CONNECTED, timeout_s=WAIT_S)
    assert caught.value.code is ErrorCode.Unauthorized


async def test_client_started_before_the_server_connects_once_it_starts(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    port = find_free_port()
    connection = nats_connections(f"nats://127.0.0.1:{port}", token=TOKEN, **FAST_CLIENT)

    connection.start()
    await wait_until(lambda: connection.failed_attempts >= 2, what="the client to try the absent server twice")
    assert connection.status is ConnectionStatus.CONNECTING

    server = await nats_servers(port=port, token=TOKEN)
    await connection.wait_for_status(ConnectionStatus.CONNECTED, timeout_s=WAIT_S)

    other = await nats_connections(server.client_url, token=TOKEN).connect(timeout_s=WAIT_S)
    sub = await other.subscribe("bacalhau.late")
    await other.flush()
    assert (await exchange(connection.client, sub, b"made it")).data == b"made it"


async def test_client_reconnects_after_the_server_restarts_on_the_same_port(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    server = await nats_servers(token=TOKEN)
    connection = nats_connections(server.client_url, token=TOKEN, **FAST_CLIENT)
    seen: list[ConnectionStatus] = []
    connection.add_status_listener(seen.append)
    client = await connection.connect(timeout_s=WAIT_S)
    sub = await client.subscribe("bacalhau.restart")
    await client.flush()

    await server.stop()
    await connection.wait_for_status(ConnectionStatus.RECONNECTING, timeout_s=WAIT_S)
    # More failed attempts than the first connect allows (2 per server): the client never gives up.
    await wait_until(lambda: connection.failed_attempts >= 4, what="four failed reconnect attempts")
    restarted = await nats_servers(port=server.port, token=TOKEN, store_dir=server.store_dir)
    await connection.wait_for_status(ConnectionStatus.CONNECTED, timeout_s=WAIT_S)

    # The subscription was re-sent: a message published through the new server arrives.
    other = await nats_connections(restarted.client_url, token=TOKEN).connect(timeout_s=WAIT_S)
    await other.publish("bacalhau.restart", b"after restart")
    assert (await sub.next_msg(timeout=WAIT_S)).data == b"after restart"
    assert seen == [
        ConnectionStatus.CONNECTING, ConnectionStatus.CONNECTED,
        ConnectionStatus.RECONNECTING, ConnectionStatus.CONNECTED,
    ]
    await connection.close()
    assert seen[-1] is ConnectionStatus.CLOSED


async def test_three_megabyte_message_is_delivered(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    server = await nats_servers()
    client = await nats_connections(server.client_url).connect(timeout_s=WAIT_S)
    payload = random.Random(7).randbytes(3 * 1024 * 1024)
    sub = await client.subscribe("bacalhau.big")
    await client.flush()

    await client.publish("bacalhau.big", payload)

    assert (await sub.next_msg(timeout=WAIT_S)).data == payload


async def test_message_above_max_payload_is_refused_with_a_hint(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    server = await nats_servers(max_payload_bytes=1024 * 1024)
    client = await nats_connections(server.client_url).connect(timeout_s=WAIT_S)

    with pytest.raises(nats_errors.MaxPayloadError) as caught:
        await client.publish("bacalhau.big", b"x" * (2 * 1024 * 1024))

    error = translate(caught.value, action="publish to bacalhau.big")
    assert error.code is ErrorCode.BadRequest
    assert "Orchestrator.NATS.MaxPayload" in error.hint


async def test_unreachable_server_gives_up_at_the_deadline_naming_the_address(
    nats_connections: ConnectionFactory,
) -> None:
    port = find_free_port()
    connection = nats_connections(f"nats://token@127.0.0.1:{port}", **FAST_CLIENT)

    with pytest.raises(BacalhauError) as caught:
        await connection.connect(timeout_s=0.5)

    assert caught.value.code is ErrorCode.NetworkFailure
    assert caught.value.retryable
    assert f"nats://127.0.0.1:{port}" in caught.value.message
    assert "token@" not in caught.value.message
    assert "Compute.Orchestrators" in caught.value.hint
    assert connection.failed_attempts >= 2


def test_settings_from_config_pick_the_token_by_role(tmp_path: Path) -> None:
    env = {"BACALHAU_ORCHESTRATOR_AUTH_TOKEN": "orch-secret", "BACALHAU_COMPUTE_AUTH_TOKEN": "compute-secret"}
    compute_only = load_config(["Compute.Enabled", "Compute.Orchestrators=nats://o1:4222,nats://o2:4222"], env=env,
                               data_dir=str(tmp_path))
    hybrid = load_config(["Compute.Enabled", "Orchestrator.Enabled"], env=env, data_dir=str(tmp_path))
    joining = load_config(["Orchestrator.Enabled", "Orchestrator.NATS.Servers=nats://existing:4222"], env=env,
                          data_dir=str(tmp_path))

    compute_settings = NatsClientSettings.from_config(compute_only, node_id="c1")
    hybrid_settings = NatsClientSettings.from_config(hybrid, node_id="h1", servers=["nats://127.0.0.1:4999"])
    joining_settings = NatsClientSettings.from_config(joining, node_id="o1")

    assert (compute_settings.token, compute_settings.servers) == ("compute-secret", ("nats://o1:4222", "nats://o2:4222"))
    assert (hybrid_settings.token, hybrid_settings.servers) == ("orch-secret", ("nats://127.0.0.1:4999",))
    assert joining_settings.servers == ("nats://existing:4222",)
    assert "secret" not in repr(compute_settings)


def test_client_tls_settings_follow_bacalhau(tmp_path: Path) -> None:
    # A compute node: RequireTLS means TLS before NATS's first message; CACert must exist.
    required = load_config(["Compute.Enabled", "Compute.TLS.RequireTLS=true"], env={}, data_dir=str(tmp_path))
    settings = NatsClientSettings.from_config(required, node_id="c1")
    assert settings.tls and settings.tls_handshake_first and settings.tls_verify
    assert settings.ssl_context() is not None

    missing = load_config(["Compute.Enabled", f"Compute.TLS.CACert={tmp_path / 'nope.pem'}"], env={}, data_dir=str(tmp_path))
    with pytest.raises(ConfigurationError) as caught:
        NatsClientSettings.from_config(missing, node_id="c1")
    assert "Compute.TLS.CACert" in caught.value.message

    # Nothing set: no TLS of our own (nats-py still upgrades if a server demands it).
    plain = NatsClientSettings.from_config(load_config(["Compute.Enabled"], env={}, data_dir=str(tmp_path)), node_id="c1")
    assert not plain.tls and plain.ssl_context() is None
