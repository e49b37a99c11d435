"""An orchestrator-only `bacalhau serve` for the interop tests, with its embedded NATS server on a known port."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from go_compute_peer import GoStyleCompute

from serve_node import BacalhauNode

DISCONNECT_TIMEOUT_S = 3.0
PEER_HEARTBEAT_INTERVAL_S = 0.5
START_ATTEMPTS = 3
PeerFactory = Callable[..., GoStyleCompute]


class OrchestratorNode(BacalhauNode):
    """`bacalhau serve --orchestrator` (no compute) with its embedded NATS server on a known port."""

    def __init__(self, *, nats_port: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nats_port = nats_port

    @property
    def nats_url(self) -> str:
        """Where compute nodes connect."""
        return f"nats://127.0.0.1:{self.nats_port}"

    @property
    def command(self) -> list[str]:
        """Orchestrator only: every compute node in these tests is a Go-style peer."""
        cmd = [str(self.binary), "serve", "--orchestrator"]
        for setting in [
            "API.Host=127.0.0.1",
            f"API.Port={self.api_port}",
            "Orchestrator.Host=127.0.0.1",
            f"Orchestrator.Port={self.nats_port}",
            f"Orchestrator.NodeManager.DisconnectTimeout={DISCONNECT_TIMEOUT_S:g}s",
            *self.extra_config,
        ]:
            cmd += ["-c", setting]
        return cmd + self.extra_args
