"""Fixtures for the interop tests: a real orchestrator-only `bacalhau serve` and Go-style compute peers.

The orchestrator runs with a 3 s disconnect timeout so that a silent compute is noticed within seconds;
peers heartbeat every 0.5 s so that they stay connected while the test runs the real CLI.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# go_compute_peer.py sits next to this file; make it importable whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from go_compute_peer import GoStyleCompute
from orchestrator_node import (
    PEER_HEARTBEAT_INTERVAL_S,
    START_ATTEMPTS,
    OrchestratorNode,
    PeerFactory,
)

from serve_node import NodePool, NodeStartError, find_free_port


@pytest.fixture
def orchestrator(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrchestratorNode]:
    """A fresh orchestrator-only node for this test, stopped (SIGTERM, then SIGKILL) at teardown."""
    base = tmp_path_factory.mktemp("orchestrator")
    node = OrchestratorNode(
        binary=bacalhau_bin,
        data_dir=base / "bacalhau",
        log_path=base / "serve.log",
        api_port=find_free_port(),
        nats_port=find_free_port(),
    )
    NodePool.live.append(node)  # a failing test's report carries its log
    try:
        for attempt in range(START_ATTEMPTS):
            try:
                node.start()
                break
            except NodeStartError as exc:
                # The free ports were free when asked; another process may have taken one since.
                if attempt == START_ATTEMPTS - 1 or "in use" not in str(exc).lower():
                    raise
                node.api_port, node.nats_port = find_free_port(), find_free_port()
        yield node
    finally:
        try:
            node.stop()
        finally:
            NodePool.live.remove(node)


@pytest.fixture
def go_peer(orchestrator: OrchestratorNode) -> Iterator[PeerFactory]:
    """Factory: `go_peer("node-id", labels={...})` -> a started (not yet connected) GoStyleCompute."""
    peers: list[GoStyleCompute] = []

    def make(node_id: str, **kwargs: Any) -> GoStyleCompute:
        kwargs.setdefault("heartbeat_interval_s", PEER_HEARTBEAT_INTERVAL_S)
        peer = GoStyleCompute(node_id, orchestrator.nats_url, **kwargs).start()
        peers.append(peer)
        return peer

    try:
        yield make
    finally:
        for peer in peers:
            peer.close()
