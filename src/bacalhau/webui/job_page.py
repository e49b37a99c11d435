"""One job: a header that keeps itself current (state, message, timing, version, Stop and Rerun), and
tabs loaded on demand.

    GET  /jobs/{id}                     the page (header + Overview)
    GET  /jobs/{id}/header              the header (polled every 2 s)
    GET  /jobs/{id}/tab/{tab}           overview | history | executions | logs | inspect
    GET  /jobs/{id}/logs/stream         the job's output as server-sent events, while it writes it
    POST /jobs/{id}/stop | /rerun       then the header again (the browser asked to confirm first)

Overview has the "why not scheduled" panel for a job that waits or failed: its state message and the
scheduler's latest words in the history (Scheduling and Queueing events).
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from bacalhau.models.errors import BacalhauError, NotFoundError
from bacalhau.models.history import TOPIC_QUEUEING, TOPIC_SCHEDULING
from bacalhau.webui.backend import api
from bacalhau.webui.render import page

TABS = ("overview", "history", "executions", "logs", "inspect")
_WAITING = ("Pending", "Queued", "Failed")
_WHY_EVENTS = 10
STDOUT, STDERR = 1, 2


async def _job(request: Request) -> dict[str, Any]:
    async with api(request) as client:
        found = await client.get_job(request.path_params["job_id"])
    return found.job.to_wire()


async def job_page(request: Request) -> HTMLResponse:
    """The job's page."""
    job = await _job(request)
    return page(request, "job.html", job=job, tabs=TABS, tab="overview", **await _overview(request, job))


async def header(request: Request) -> HTMLResponse:
    """The job's header (polled)."""
    return page(request, "job_header.html", job=await _job(request))


async def _overview(request: Request, job: dict[str, Any]) -> dict[str, Any]:
    why: list[dict[str, Any]] = []
    if job["State"]["StateType"] in _WAITING:
        async with api(request) as client:
            history = await client.job_history(job["ID"], reverse=True, limit=200)
        why = [h.to_wire() for h in history.items if h.event.topic in (TOPIC_SCHEDULING, TOPIC_QUEUEING)][:_WHY_EVENTS]
    return {"why": why}


async def tab(request: Request) -> HTMLResponse:
    """One tab's content."""
    name = request.path_params["tab"]
    if name not in TABS:
        raise NotFoundError(f"no tab {name!r}", hint=f"tabs: {', '.join(TABS)}")
    job = await _job(request)
    context: dict[str, Any] = {"job": job, "tab": name}
    if name == "overview":
        context.update(await _overview(request, job))
    elif name == "history":
        async with api(request) as client:
            context["history"] = [h.to_wire() for h in (await client.job_history(job["ID"], limit=500)).items]
    elif name == "executions":
        async with api(request) as client:
            context["executions"] = [e.to_wire() for e in (await client.job_executions(job["ID"])).items]
    return page(request, f"tab_{name}.html", **context)


async def stop(request: Request) -> HTMLResponse:
    """Stop the job, then show its header."""
    async with api(request) as client:
        await client.stop_job(request.path_params["job_id"], reason="stopped from the web UI")
    return await header(request)


async def rerun(request: Request) -> HTMLResponse:
    """Run the job again (a new version), then show its header."""
    async with api(request) as client:
        await client.rerun_job(request.path_params["job_id"], reason="rerun from the web UI")
    return await header(request)


async def logs_stream(request: Request) -> Response:
    """The job's output as it is written: one `line` event per log line, then `end`."""
    job_id = request.path_params["job_id"]

    async def events() -> AsyncIterator[str]:
        """The SSE frames, until the API ends the log (the job ended) or the browser leaves."""
        try:
            # No timeout: a running job may be quiet for a long time; the browser closing the page ends it.
            async with api(request, timeout_s=None) as client:
                async for line in client.job_logs(job_id, follow=True):
                    kind = "stderr" if int(line.type) == STDERR else "stdout"
                    yield _event("line", kind, line.line.rstrip("\n"))
        except BacalhauError as exc:
            yield _event("line", "error", exc.message)
        yield _event("end", "end", "end of output")

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def _event(name: str, kind: str, text: str) -> str:
    """One server-sent event carrying `text` as an escaped line: one `data:` line, whatever CR or LF the
    text holds (a log line or an error must never start an event of its own)."""
    flat = html.escape(text.replace("\r", "").replace("\n", " "))
    return f"event: {name}\ndata: <div class=\"log {kind}\">{flat}</div>\n\n"


routes = [
    Route("/jobs/{job_id}", job_page),
    Route("/jobs/{job_id}/header", header),
    Route("/jobs/{job_id}/tab/{tab}", tab),
    Route("/jobs/{job_id}/logs/stream", logs_stream),
    Route("/jobs/{job_id}/stop", stop, methods=["POST"]),
    Route("/jobs/{job_id}/rerun", rerun, methods=["POST"]),
]
