"""Logging in to a node whose API checks callers (API.Auth.Users or SSO tokens): an API key, or a
username and password, checked against the API before a session is made for them.

    GET  /login     the form;   POST /login   check, then a session cookie and back where the user was
    POST /logout    end the session
"""

from __future__ import annotations

import base64
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from bacalhau.models.errors import BacalhauError
from bacalhau.webui.backend import Backend, sessions
from bacalhau.webui.forms import read_form
from bacalhau.webui.render import page
from bacalhau.webui.session import COOKIE, IDLE_S

_MAX_FORM_BYTES = 64 * 1024


def _next(value: str) -> str:
    """Where to go after logging in: a path of this site only, never an open redirect. Browsers read
    `/\\evil.example` and `/<TAB>/evil.example` as `//evil.example`, so backslashes and control
    characters make it /jobs too; the rest is percent-encoded (a header carries it)."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/jobs"
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in value):
        return "/jobs"
    return quote(value, safe="/?=&%:@-._~!$'()*+,;")


async def login_form(request: Request) -> HTMLResponse:
    """The login form."""
    return page(request, "login.html", next=_next(request.query_params.get("next", "/jobs")), error="")


async def login(request: Request) -> Response:
    """Check the credentials with a request the API guards (the job list), then start a session."""
    try:
        form = await read_form(request, limit=_MAX_FORM_BYTES)
    except BacalhauError as exc:
        return page(request, "login_error.html", error=exc.message)
    key, username, password = form.get("api_key", "").strip(), form.get("username", "").strip(), form.get("password", "")
    target = _next(form.get("next", "/jobs"))
    if key and not (key.isascii() and key.isprintable()):
        return page(request, "login_error.html", error="an API key is printable ASCII")
    if key:
        authorization = f"Bearer {key}"
    elif username and password:
        authorization = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    else:
        return page(request, "login_error.html", error="give an API key, or a username and a password")
    backend: Backend = request.app.state.backend
    client = backend.client(authorization)
    try:
        await client.list_jobs(limit=1)
    except BacalhauError as exc:
        return page(request, "login_error.html", error=exc.message)
    finally:
        await client.aclose()
    sessions(request).end(request.cookies.get(COOKIE))  # a login replaces the browser's earlier session
    response = HTMLResponse("", headers={"HX-Redirect": target})
    response.set_cookie(COOKIE, sessions(request).create(authorization), max_age=int(IDLE_S), httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    return response


async def logout(request: Request) -> Response:
    """End the session."""
    sessions(request).end(request.cookies.get(COOKIE))
    response = HTMLResponse("", headers={"HX-Redirect": "/login"})
    response.delete_cookie(COOKIE, path="/")
    return response


routes = [Route("/login", login_form), Route("/login", login, methods=["POST"]),
          Route("/logout", logout, methods=["POST"])]
