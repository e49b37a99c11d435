"""Joining a cluster: the token decides who gets in, and a node name NATS cannot carry is refused.

Real processes: an orchestrator with `Orchestrator.Auth.Token` (its embedded nats-server holds the
token) and compute-only nodes presenting `Compute.Auth.Token`.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serve_node import BacalhauNode, NodePool, _clean_env, find_free_port

pytestmark = pytest.mark.scenario

TOKEN = "s3cret-token"


class OrchestratorOnly(BacalhauNode):
    """`bacalhau serve --orchestrator` with its NATS server on a known loopback port."""

    def __init__(self, *, nats_port: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.nats_port = nats_port

    @property
    def command(self) -> list[str]:
        cmd = [str(self.binary), "serve", "--orchestrator"]
        for setting in ["API.Host=127.0.0.1", f"API.Port={self.api_port}", "Orchestrator.Host=127.0.0.1",
                        f"Orchestrator.Port={self.nats_port}", *self.extra_config]:
            cmd += ["-c", setting]
        return cmd


@pytest.fixture
def orchestrator(bacalhau_bin: Path, tmp_path: Path) -> Iterator[OrchestratorOnly]:
    node = OrchestratorOnly(
        nats_port=find_free_port(), binary=bacalhau_bin, data_dir=tmp_path / "orch", log_path=tmp_path / "orch.log",
        api_port=find_free_port(), extra_config=[f"Orchestrator.Auth.Token={TOKEN}"],
    )
    NodePool.live.append(node)
    try:
        yield node.start()
    finally:
        node.stop()
        NodePool.live.remove(node)


def compute_command(bacalhau_bin: Path, name: str, nats_port: int, token: str) -> list[str]:
    # A compute-only node serves its own API too: on a free loopback port, not 1234 (parallel tests).
    return [
        str(bacalhau_bin), "serve", "--compute", "--name", name,
        "-c", "API.Host=127.0.0.1", "-c", f"API.Port={find_free_port()}",
        "-c", f"Compute.Orchestrators=nats://127.0.0.1:{nats_port}", "-c", f"Compute.Auth.Token={token}",
        "-c", "Publishers.Types.Local.Port=0", "-c", "Compute.Heartbeat.Interval=1s",
    ]


def test_a_compute_node_with_the_wrong_token_stops_and_says_which_key(
    orchestrator: OrchestratorOnly, bacalhau_bin: Path, tmp_path: Path
) -> None:
    result = subprocess.run(
        compute_command(bacalhau_bin, "intruder", orchestrator.nats_port, "wrong"),
        env=_clean_env({"BACALHAU_DIR": str(tmp_path / "intruder")}),
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1, result
    assert "authorization violation" in result.stderr
    assert "Compute.Auth.Token" in result.stderr
    assert TOKEN not in result.stderr + result.stdout  # the secret is never printed
    with httpx.Client() as http:
        nodes = http.get(f"{orchestrator.url}/api/v1/orchestrator/nodes").json()["Nodes"]
    assert all(n["Info"]["NodeID"] != "intruder" for n in nodes)


def test_a_compute_node_with_the_token_joins(orchestrator: OrchestratorOnly, bacalhau_bin: Path, tmp_path: Path) -> None:
    log = (tmp_path / "member.log").open("w")
    proc = subprocess.Popen(
        compute_command(bacalhau_bin, "member", orchestrator.nats_port, TOKEN),
        env=_clean_env({"BACALHAU_DIR": str(tmp_path / "member")}), stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        listed = orchestrator.ok("node", "list", "--output", "json", "--filter-status", "CONNECTED")
        deadline = time.monotonic() + 30
        while "member" not in listed.stdout and time.monotonic() < deadline:
            time.sleep(0.2)
            listed = orchestrator.ok("node", "list", "--output", "json", "--filter-status", "CONNECTED")
        assert '"member"' in listed.stdout, (tmp_path / "member.log").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_a_node_name_nats_cannot_carry_is_refused(bacalhau_bin: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(bacalhau_bin), "serve", "--compute", "--name", "rack.1", "-c", "Compute.Orchestrators=nats://127.0.0.1:1",
         "-c", "API.Host=127.0.0.1", "-c", f"API.Port={find_free_port()}"],
        env=_clean_env({"BACALHAU_DIR": str(tmp_path / "bad")}),
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1, result
    assert "invalid node ID 'rack.1'" in result.stderr and "'.'" in result.stderr
