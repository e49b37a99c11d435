"""A node set up for TLS never talks plain text to its orchestrator's address, also after a reconnect and
without a token to guard (what a review found: nats-py reconnected in the clear to a plain server that
took over the address). Real nats-server processes on a free loopback port."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bacalhau.models.errors import BacalhauError
from bacalhau.transport.nats_binary import locate_nats_server
from bacalhau.transport.nats_connection import ConnectionStatus, NatsConnection
from bacalhau.transport.nats_settings import NatsClientSettings
from serve_node import find_free_port
from tls_certs import self_signed

WAIT_S = 10.0



class Servers:
    """Starts nats-server on one port, with or without TLS; stops what it started."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.port = find_free_port()
        self.cert, self.key = cert, key
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *, tls: bool) -> subprocess.Popen[bytes]:
        args = [locate_nats_server(), "-a", "127.0.0.1", "-p", str(self.port)]
        if tls:
            args += ["--tls", "--tlscert", str(self.cert), "--tlskey", str(self.key)]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    pair = self_signed(tmp_path)
    made = Servers(pair.cert_path, pair.key_path)
    try:
        yield made
    finally:
        made.stop_all()


async def wait_listening(port: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if loop.time() > deadline:
                pytest.fail(f"nats-server never listened on {port}")
            await asyncio.sleep(0.05)


async def test_a_tls_client_without_a_token_never_reconnects_in_plain_text(servers: Servers, tmp_path: Path) -> None:
    tls_server = servers.start(tls=True)
    await wait_listening(servers.port)
    settings = NatsClientSettings(servers=(f"nats://127.0.0.1:{servers.port}",), name="c1", tls=True,
                                  tls_ca_file=str(servers.cert), reconnect_wait_s=0.2, reconnect_jitter_s=0.1)
    connection = NatsConnection(settings=settings)
    client = await connection.connect(timeout_s=WAIT_S)
    try:
        tls_server.terminate()
        tls_server.wait(5)
        servers.start(tls=False)  # an impostor on the same address, speaking plain text
        await wait_listening(servers.port)
        await asyncio.sleep(2.0)  # several reconnect attempts (0.2 s apart)
        assert not client.is_connected
        assert connection.status is ConnectionStatus.RECONNECTING
    finally:
        await connection.close()


async def test_a_tls_client_refuses_a_plain_server_at_first_connect(servers: Servers) -> None:
    servers.start(tls=False)
    await wait_listening(servers.port)
    settings = NatsClientSettings(servers=(f"nats://127.0.0.1:{servers.port}",), name="c1", tls=True,
                                  tls_ca_file=str(servers.cert))
    connection = NatsConnection(settings=settings)
    with pytest.raises(BacalhauError) as caught:
        await connection.connect(timeout_s=WAIT_S)
    assert "does not use TLS" in caught.value.message
