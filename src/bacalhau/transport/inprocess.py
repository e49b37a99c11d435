"""The in-process link used by a hybrid node: direct calls, no serialisation.

Messages are still the typed models of `messages.py`, so swapping in NATS changes no caller.
"""

from __future__ import annotations

from bacalhau.transport.base import ComputeService


class InProcessDirectory:
    """A ComputeDirectory holding the compute services that live in this process."""

    def __init__(self) -> None:
        self._services: dict[str, ComputeService] = {}

    def register(self, node_id: str, service: ComputeService) -> None:
        self._services[node_id] = service

    def unregister(self, node_id: str) -> None:
        self._services.pop(node_id, None)

    def compute(self, node_id: str) -> ComputeService | None:
        return self._services.get(node_id)
