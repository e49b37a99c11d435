"""Submit a job from a Bacalhau job file (YAML or JSON), pasted or picked from disk (ours: Bacalhau's UI
has a TODO there). The API validates it as for `bacalhau job run`: a spec it refuses is not stored,
and its field-path errors (`Tasks[0].Engine.Params.Image: ...`) are listed under the editor, each
on its own line, with the hint.

    GET  /submit      the editor
    POST /submit      submit; on success the browser goes to the new job's page
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import yaml
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bacalhau.models.errors import BacalhauError
from bacalhau.webui.backend import api
from bacalhau.webui.render import page

MAX_SPEC_BYTES = 1024 * 1024


async def submit_form(request: Request) -> HTMLResponse:
    """The job file editor."""
    return page(request, "submit.html")


def _problems(message: str) -> list[dict[str, str]]:
    """The API's message, one problem per line, each split into its field path and its words."""
    found = []
    for line in message.splitlines():
        text = line.strip()
        if not text:
            continue
        path, sep, words = text.partition(": ")
        found.append({"field": path, "message": words} if sep and " " not in path else {"field": "", "message": text})
    return found


def _parse(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise BacalhauError(f"the job file is neither YAML nor JSON: {exc}", hint="check its indentation and quotes") from exc
    if not isinstance(data, dict):
        raise BacalhauError("a job file holds one job: a mapping with Type, Tasks and so on",
                            hint="see `bacalhau job run --help` or README: A job file")
    return data


async def submit(request: Request) -> HTMLResponse:
    """Submit the pasted spec; on a refusal, the editor's error list."""
    body = await request.body()
    if len(body) > MAX_SPEC_BYTES:
        return page(request, "submit_errors.html", status_code=413,
                    problems=[{"field": "", "message": f"the job file is over {MAX_SPEC_BYTES // 1024} KiB"}], hint="")
    text = parse_qs(body.decode("utf-8", "replace")).get("spec", [""])[-1]
    try:
        spec = _parse(text)
        async with api(request) as client:
            done = await client.put_job(spec)
    except BacalhauError as exc:
        return page(request, "submit_errors.html", status_code=200, problems=_problems(exc.message), hint=exc.hint)
    return HTMLResponse("", headers={"HX-Redirect": f"/jobs/{done.job_id}"})


routes = [Route("/submit", submit_form), Route("/submit", submit, methods=["POST"])]
