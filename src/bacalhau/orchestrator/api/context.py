"""What the routes need, handed in by the composition root (no module-level singletons)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from bacalhau.models.node import BuildVersionInfo, NodeInfo
from bacalhau.orchestrator.service import Orchestrator


@dataclass(frozen=True)
class ApiContext:
    orchestrator: Orchestrator
    version: BuildVersionInfo
    node_info: Callable[[], NodeInfo]
    config: Callable[[], dict[str, Any]]


def context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.bacalhau
    return ctx
