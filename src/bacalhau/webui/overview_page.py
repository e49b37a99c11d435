"""The cluster at a glance (ours): nodes by connection and membership, jobs by state, and jobs completed
per minute over the last hour as a small bar chart (SVG drawn on the server: no chart library).

    GET /overview          the page;   GET /overview/panel   its content (polled every 5 s)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bacalhau.webui.backend import api
from bacalhau.webui.render import page

CHART_W, CHART_H = 600, 120
_MAX_NODES = 1000


async def _context(request: Request) -> dict[str, Any]:
    async with api(request) as client:
        summary = await client.jobs_summary(minutes=60)
        nodes = (await client.list_nodes(limit=_MAX_NODES)).nodes
    connection = Counter(n.connection_state.status.value for n in nodes)
    membership = Counter(n.membership.value for n in nodes)
    minutes = summary.get("CompletedPerMinute") or []
    peak = max((m["Count"] for m in minutes), default=0) or 1
    width = CHART_W / max(len(minutes), 1)
    bars = [
        {"x": round(i * width, 1), "w": round(max(width - 1, 1), 1), "h": round(CHART_H * m["Count"] / peak, 1),
         "count": m["Count"], "minute": m["Minute"]}
        for i, m in enumerate(minutes)
    ]
    return {"summary": summary, "connection": dict(connection), "membership": dict(membership),
            "node_total": len(nodes), "bars": bars, "chart_w": CHART_W, "chart_h": CHART_H, "peak": peak,
            "completed_hour": sum(m["Count"] for m in minutes)}


async def overview(request: Request) -> HTMLResponse:
    """The overview page."""
    return page(request, "overview.html", **await _context(request))


async def panel(request: Request) -> HTMLResponse:
    """The overview's content (polled)."""
    return page(request, "overview_panel.html", **await _context(request))


routes = [Route("/overview", overview), Route("/overview/panel", panel)]
