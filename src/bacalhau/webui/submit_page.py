"""Submit a job from a Bacalhau job file (YAML or JSON), pasted or picked from disk (ours: Bacalhau's UI
has a TODO there). The API validates it as for `bacalhau job run`: a spec it refuses is not stored,
and its field-path errors (`Tasks[0].Engine.Params.Image: ...`) are listed under the editor, each
on its own line, with the hint.

    GET  /submit      the editor
    POST /submit      submit; on success the browser goes to the new job's page
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bacalhau.models.errors import BacalhauError
from bacalhau.models.job_file import read_job
from bacalhau.webui.backend import api
from bacalhau.webui.forms import read_form
from bacalhau.webui.render import page

MAX_SPEC_BYTES = 1024 * 1024
# Values once YAML aliases are expanded: a 1 MiB file of short scalars holds about this many.
MAX_SPEC_NODES = 200_000
# The encoded form is larger than the spec it carries (percent-encoding): the spec's own limit is the one told.
_MAX_FORM_BYTES = 3 * MAX_SPEC_BYTES


async def submit_form(request: Request) -> HTMLResponse:
    """The job file editor."""
    return page(request, "submit.html")


def _problems(message: str) -> list[dict[str, str]]:
    """The message, one problem per line, each split into its field path and its words."""
    found = []
    for line in message.splitlines():
        text = line.strip()
        if not text:
            continue
        path, sep, words = text.partition(": ")
        found.append({"field": path, "message": words} if sep and " " not in path else {"field": "", "message": text})
    return found


async def submit(request: Request) -> HTMLResponse:
    """Submit the pasted spec; on a refusal (here or by the API), the editor's error list.

    The file is read as the CLI reads it (models/job_file.py: YAML or JSON, bounded when its aliases
    are expanded, top-level keys, field types), so a mistake is told in the same words, and the
    node's event loop never serialises an alias bomb."""
    try:
        form = await read_form(request, limit=_MAX_FORM_BYTES,
                               too_big=f"the job file is over {MAX_SPEC_BYTES // 1024} KiB")
        job = read_job(form.get("spec", "").encode(), "the job file", limit=MAX_SPEC_BYTES, max_nodes=MAX_SPEC_NODES)
        async with api(request) as client:
            done = await client.put_job(job)
    except BacalhauError as exc:
        # 200: htmx swaps only successful answers, and this one is the form's own message.
        return page(request, "submit_errors.html", problems=_problems(exc.message), hint=exc.hint)
    return HTMLResponse("", headers={"HX-Redirect": f"/jobs/{quote(done.job_id, safe='')}"})


routes = [Route("/submit", submit_form), Route("/submit", submit, methods=["POST"])]
