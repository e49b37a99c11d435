"""/api/v1/auth and /api/v1/agent/authconfig: how a client learns to authenticate (open routes).

`GET /api/v1/auth` lists Bacalhau's interactive methods. A node without API.Auth.Users offers Bacalhau's
default, the `ClientKey` challenge (auth/challenge.py), so that a stock Go CLI with no credentials logs
in as it does against Bacalhau. A node with users offers none (as Bacalhau's users mode): an empty list
is what a Go CLI reads as "log in with username/password or an API key". `authconfig` describes SSO
(API.Auth.Oauth2: the keys that are set).
"""

from __future__ import annotations

import asyncio
import base64
import binascii

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from bacalhau.auth.challenge import METHOD_NAME, ClientKeyChallenge
from bacalhau.models.errors import BadRequestError, NotFoundError
from bacalhau.orchestrator.api.body import json_body
from bacalhau.orchestrator.api.context import ApiContext, context
from bacalhau.orchestrator.api.openapi import errors

router = APIRouter(tags=["auth"])

AUTH_CONFIG_VERSION = "1.0.0"


def _method(ctx: ApiContext, name: str) -> ClientKeyChallenge:
    if ctx.challenge is None or name != METHOD_NAME:
        raise NotFoundError(
            f"authentication method {name!r} not found",
            hint="authenticate with BACALHAU_API_KEY, or BACALHAU_API_USERNAME and BACALHAU_API_PASSWORD",
        )
    return ctx.challenge


@router.get("/api/v1/auth")
async def methods(ctx: ApiContext = Depends(context)) -> JSONResponse:
    """The login methods this node offers (ClientKey without users, none with them)."""
    offered = {METHOD_NAME: ctx.challenge.requirement()} if ctx.challenge is not None else {}
    return JSONResponse({"NextToken": "", "Methods": offered})


@router.get("/api/v1/auth/{method}", responses=errors(404))
async def requirement(method: str, ctx: ApiContext = Depends(context)) -> JSONResponse:
    """What a method asks of the client (the phrase to sign)."""
    return JSONResponse(_method(ctx, method).requirement())


@router.post("/api/v1/auth/{method}", responses=errors(400, 404, 415))
async def authenticate(method: str, request: Request, ctx: ApiContext = Depends(context)) -> JSONResponse:
    """Check a method's answer: 200 with a token, or 401 with the reason."""
    challenge = _method(ctx, method)
    body = await json_body(request)
    raw = body.get("MethodData") or body.get("methodData") or ""
    try:
        data = base64.b64decode(str(raw), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequestError(f"invalid MethodData: {exc}", component="APIServer") from exc
    ok, result = await asyncio.to_thread(challenge.authenticate, data)
    if ok:
        return JSONResponse({"Authentication": {"success": True, "token": result}})
    return JSONResponse({"Authentication": {"success": False, "reason": result}}, status_code=401)


@router.get("/api/v1/agent/authconfig")
async def authconfig(ctx: ApiContext = Depends(context)) -> JSONResponse:
    """The node's SSO settings (the API.Auth.Oauth2 keys that are set)."""
    return JSONResponse({"Version": AUTH_CONFIG_VERSION, "Config": ctx.auth_config})
