"""What the routes need, handed in by the composition root (no module-level singletons).

Every node serves the agent routes (`/api/v1/agent/*`), a compute-only node too; only an orchestrator
node has an `orchestrator`, and only then are the `/api/v1/orchestrator/*` routes mounted (app.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.requests import HTTPConnection

from bacalhau.auth.authorizer import AllowAll, Authorizer
from bacalhau.auth.challenge import ClientKeyChallenge
from bacalhau.config.types import DEFAULT_LOG_STREAMS_PER_JOB
from bacalhau.models.errors import BacalhauError, ErrorCode
from bacalhau.models.node import BuildVersionInfo, NodeInfo
from bacalhau.orchestrator.audit import AuditLog
from bacalhau.orchestrator.log_streams import LogStreamGate
from bacalhau.orchestrator.service import Orchestrator

T = TypeVar("T")


def _no_debug_info() -> dict[str, Any]:
    return {}


async def resolved(value: T | Awaitable[T]) -> T:
    """What a context callable gave: its value, awaited if it is awaitable (a hybrid node asks its
    compute child: compute_process.py)."""
    if inspect.isawaitable(value):
        return await value
    return value


@dataclass(frozen=True)
class ApiContext:
    """The node behind the API: its version, NodeInfo, redacted config and, on orchestrators, the orchestrator.

    `debug_info` returns `/api/v1/agent/debug` sections ({component: info}) of the node's parts other
    than the orchestrator (e.g. its compute node's running executions).
    """

    version: BuildVersionInfo
    node_info: Callable[[], NodeInfo | Awaitable[NodeInfo]]
    config: Callable[[], dict[str, Any]]
    orchestrator: Orchestrator | None = None
    debug_info: Callable[[], dict[str, Any] | Awaitable[dict[str, Any]]] = field(default=_no_debug_info)
    # Orchestrator.LogStream.MaxStreamsPerJob: log streams one job may have open at once.
    max_log_streams_per_job: int = DEFAULT_LOG_STREAMS_PER_JOB
    # API.Auth: who may make which request (bacalhau/auth); AllowAll without users, as in Bacalhau.
    authorizer: Authorizer = field(default_factory=AllowAll)
    # API.Auth.Oauth2 as `GET /api/v1/agent/authconfig` serves it.
    auth_config: dict[str, Any] = field(default_factory=dict)
    # API.CORS.AllowedOrigins and API.AllowedHosts (empty: no page origin may call; any Host header).
    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    # Who did what through the API (orchestrator nodes only).
    audit: AuditLog | None = None
    # Bacalhau's ClientKey challenge login, offered by a node without users (None: not offered).
    challenge: ClientKeyChallenge | None = None
    # API.RateLimit: requests per second and burst per client address (rate 0: none); loopback too?
    rate_limit: tuple[float, int, bool] = (0.0, 1, False)


def context_of(request: HTTPConnection) -> ApiContext:
    """The ApiContext of the app serving `request`."""
    ctx: ApiContext = request.app.state.bacalhau
    return ctx


def orchestrator_of(request: HTTPConnection) -> Orchestrator:
    """The orchestrator behind the orchestrator routes (they are mounted only with one)."""
    found = context_of(request).orchestrator
    if found is None:
        # Unreachable through create_app, which mounts these routes only when there is an orchestrator.
        raise BacalhauError("this node runs no orchestrator", code=ErrorCode.InternalError, component="APIServer")
    return found


# The FastAPI dependencies are coroutines on purpose: FastAPI runs a plain `def` dependency in its thread
# pool, a thread hop (and GIL hand-over) per request for what is an attribute lookup.
async def context(request: HTTPConnection) -> ApiContext:
    """The ApiContext of the app serving `request` (a FastAPI dependency)."""
    return context_of(request)


async def orchestrator(request: HTTPConnection) -> Orchestrator:
    """The orchestrator behind the orchestrator routes (a FastAPI dependency)."""
    return orchestrator_of(request)



def log_streams(request: HTTPConnection) -> LogStreamGate:
    """The per-job cap on open log streams of the app serving `request` (set up by create_app)."""
    gate: LogStreamGate = request.app.state.log_streams
    return gate
