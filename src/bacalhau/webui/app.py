"""The web UI application: pages, fragments, static files, and how an API error reaches the user.

    /            -> /jobs
    /jobs ...    jobs_page, job_page      /nodes ...    nodes_page
    /submit      submit_page              /overview     overview_page
    /login       login_page               /static/...   htmx, its SSE extension, app.css, app.js

An error of the API (refused, not found, unreachable) is shown, never a 500 of our own: a page gets
an error page with the API's message and hint; a fragment's error goes to the page's message area
(#messages) and leaves the content as it was, so a table that polls keeps its last rows and polls on.
A 401 sends the browser to the login form, and back afterwards.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bacalhau.models.errors import BacalhauError, ErrorCode
from bacalhau.webui import job_page, jobs_page, login_page, nodes_page, overview_page, submit_page
from bacalhau.webui.backend import Backend
from bacalhau.webui.guard import RequestGuard
from bacalhau.webui.render import page
from bacalhau.webui.session import Sessions

log = logging.getLogger(__name__)


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _login_redirect(request: Request) -> Response:
    current = urlsplit(request.headers.get("hx-current-url", "")).path if _is_htmx(request) else request.url.path
    target = f"/login?next={quote(current or '/jobs')}"
    if _is_htmx(request):
        return HTMLResponse("", headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BacalhauError)
    if exc.code == ErrorCode.Unauthorized and request.url.path not in ("/login", "/logout"):
        return _login_redirect(request)
    status = exc.http_status if 400 <= exc.http_status < 600 else 502
    if _is_htmx(request):
        return _to_messages(request, exc)
    return page(request, "error.html", status_code=status, error=exc.message, hint=exc.hint)


def _to_messages(request: Request, exc: BacalhauError) -> Response:
    response = page(request, "message.html", error=exc.message, hint=exc.hint)
    response.headers["HX-Retarget"] = "#messages"
    response.headers["HX-Reswap"] = "innerHTML"
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return page(request, "error.html", status_code=exc.status_code, error=str(exc.detail), hint="")


async def _home(request: Request) -> Response:
    return RedirectResponse("/jobs", status_code=303)


def create_app(backend: Backend, *, allowed_hosts: tuple[str, ...] | None = None) -> Starlette:
    """The UI for the API at `backend`, answering to `allowed_hosts` (None: any Host; see guard.py)."""
    app = Starlette(
        routes=[
            Route("/", _home),
            *jobs_page.routes,
            *job_page.routes,
            *nodes_page.routes,
            *submit_page.routes,
            *overview_page.routes,
            *login_page.routes,
            Mount("/static", app=StaticFiles(packages=[("bacalhau.webui", "static")]), name="static"),
        ],
        exception_handlers={BacalhauError: _api_error, HTTPException: _http_error},
    )
    app.state.backend = backend
    app.state.sessions = Sessions()
    app.add_middleware(RequestGuard, allowed_hosts=allowed_hosts)
    return app
