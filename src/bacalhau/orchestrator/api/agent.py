"""/api/v1/agent routes, served by every node: is it alive, what version, what node, what config."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, RedirectResponse

from bacalhau.models.api import AliveResponse
from bacalhau.models.node import BuildVersionInfo, NodeInfo
from bacalhau.orchestrator.api.context import ApiContext, context, resolved

router = APIRouter(tags=["agent"])


@router.get("/api/v1/agent/alive", responses={200: {"model": AliveResponse}})
async def alive() -> JSONResponse:
    return JSONResponse({"Status": "OK"})


@router.get("/api/v1/agent/version", responses={200: {"model": BuildVersionInfo}})
async def version(ctx: ApiContext = Depends(context)) -> JSONResponse:
    return JSONResponse(ctx.version.to_wire())


@router.get("/api/v1/agent/node", responses={200: {"model": NodeInfo}})
async def node(ctx: ApiContext = Depends(context)) -> JSONResponse:
    return JSONResponse((await resolved(ctx.node_info())).to_wire())


@router.get("/api/v1/agent/config")
async def config(ctx: ApiContext = Depends(context)) -> JSONResponse:
    return JSONResponse({"config": ctx.config()})


@router.get("/api/v1/agent/debug")
async def debug(ctx: ApiContext = Depends(context)) -> JSONResponse:
    """{component: info} of what the node is doing, as Bacalhau's DebugInfoProviders report it."""
    info: dict[str, Any] = {}
    o = ctx.orchestrator
    if o is not None:
        info["EvaluationBroker"] = {"Pending": o.broker.pending_count()}
        info["NodeManager"] = {"Nodes": len(o.nodes.list())}
    info.update(await resolved(ctx.debug_info()))
    return JSONResponse(info)


# Bacalhau's legacy paths answer 301 Moved Permanently (pkg/publicapi/server.go registerRedirects).
@router.get("/", include_in_schema=False)
@router.get("/version", include_in_schema=False)
async def to_version() -> RedirectResponse:
    return RedirectResponse("/api/v1/agent/version", status_code=301)


@router.get("/livez", include_in_schema=False)
async def to_alive() -> RedirectResponse:
    return RedirectResponse("/api/v1/agent/alive", status_code=301)
