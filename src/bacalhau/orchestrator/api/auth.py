"""/api/v1/auth and /api/v1/agent/authconfig: how a client learns to authenticate (open routes).

`GET /api/v1/auth` lists Bacalhau's older interactive methods (challenge, ask). bacalhau-py implements
none of them: clients authenticate with `API.Auth.Users` credentials in the Authorization header, and
an empty list is what a Go CLI reads as "log in with username/password or an API key" (it is also what
Bacalhau answers whenever users are configured). `authconfig` describes SSO (API.Auth.Oauth2, empty
here: not supported yet).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from bacalhau.models.errors import NotFoundError
from bacalhau.orchestrator.api.context import ApiContext, context
from bacalhau.orchestrator.api.openapi import errors

router = APIRouter(tags=["auth"])

AUTH_CONFIG_VERSION = "1.0.0"


@router.get("/api/v1/auth")
async def methods() -> JSONResponse:
    return JSONResponse({"NextToken": "", "Methods": {}})


@router.get("/api/v1/auth/{method}", responses=errors(404))
@router.post("/api/v1/auth/{method}", responses=errors(404))
async def method(method: str) -> JSONResponse:
    raise NotFoundError(
        f"authentication method {method!r} not found",
        hint="authenticate with BACALHAU_API_KEY, or BACALHAU_API_USERNAME and BACALHAU_API_PASSWORD",
    )


@router.get("/api/v1/agent/authconfig")
async def authconfig(ctx: ApiContext = Depends(context)) -> JSONResponse:
    return JSONResponse({"Version": AUTH_CONFIG_VERSION, "Config": ctx.auth_config})
