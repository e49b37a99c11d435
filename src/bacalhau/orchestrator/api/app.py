"""The FastAPI application serving Bacalhau's /api/v1 (OpenAPI document at /api/v1/openapi.json).

One factory for every node, as in Bacalhau (pkg/node/node.go): the agent routes are always mounted;
the orchestrator routes (jobs, nodes) only when the node runs an orchestrator, so that on a
compute-only node they answer Bacalhau's 404 error body like any unknown path.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from bacalhau.orchestrator.api import agent, audit, auth, job_summary, jobs, node_executions, nodes
from bacalhau.orchestrator.api.authz import AuthorizeRequests, CheckHost
from bacalhau.orchestrator.api.context import ApiContext
from bacalhau.orchestrator.api.errors import install_error_handlers
from bacalhau.orchestrator.api.methods import AllowedMethods
from bacalhau.orchestrator.api.openapi import install as describe_inputs
from bacalhau.orchestrator.api.rate_limit import RateLimit
from bacalhau.orchestrator.log_streams import LogStreamGate


def create_app(ctx: ApiContext) -> FastAPI:
    """The API of the node described by `ctx`: agent routes, plus orchestrator routes if `ctx.orchestrator`."""
    app = FastAPI(
        title="bacalhau-py",
        version=ctx.version.git_version,
        description="Bacalhau's REST API (/api/v1), served by bacalhau-py.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.bacalhau = ctx
    app.state.log_streams = LogStreamGate(max_per_job=ctx.max_log_streams_per_job)
    install_error_handlers(app)
    routers = (
        [jobs.router, job_summary.router, nodes.router, node_executions.router, audit.router]
        if ctx.orchestrator is not None else []
    )
    routers.append(agent.router)
    for router in routers:
        app.include_router(router)
    app.include_router(auth.router)
    app.state.allowed_methods = AllowedMethods.of([*app.router.routes, *(r for rt in routers for r in rt.routes)])
    describe_inputs(app)
    # A refused request never reaches routing (an unknown path is refused too, as in Bacalhau).
    app.add_middleware(AuthorizeRequests, authorizer=ctx.authorizer, audit=ctx.audit, allowed_origins=ctx.cors_origins)
    if ctx.cors_origins:
        # Outside the gate, as Bacalhau's: a browser's preflight carries no credentials.
        app.add_middleware(
            CORSMiddleware, allow_origins=list(ctx.cors_origins), allow_methods=["GET", "PUT", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-Id"], max_age=600,
        )
    if ctx.allowed_hosts:
        app.add_middleware(CheckHost, allowed=ctx.allowed_hosts)
    rate, burst, loopback = ctx.rate_limit
    if rate > 0:
        # Outermost: a flood is turned away before any other work (a password check costs ~50 ms).
        app.add_middleware(RateLimit, rate=rate, burst=burst, loopback=loopback)
    return app

