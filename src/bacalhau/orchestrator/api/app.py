"""The FastAPI application serving Bacalhau's /api/v1 (OpenAPI document at /api/v1/openapi.json)."""

from __future__ import annotations

from fastapi import FastAPI

from bacalhau.orchestrator.api import agent, jobs, nodes
from bacalhau.orchestrator.api.context import ApiContext
from bacalhau.orchestrator.api.errors import install_error_handlers


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="bacalhau-py",
        version=ctx.version.git_version,
        description="Bacalhau's REST API (/api/v1), served by bacalhau-py.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.bacalhau = ctx
    install_error_handlers(app)
    app.include_router(jobs.router)
    app.include_router(nodes.router)
    app.include_router(agent.router)
    return app
