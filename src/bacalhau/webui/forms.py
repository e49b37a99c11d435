"""Form bodies, read with a bound: the UI's forms (a job file, a login) are small, and a client that
sends more is told so before its body is held in memory whole."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request

from bacalhau.models.errors import BadRequestError


async def read_form(request: Request, *, limit: int, too_big: str = "") -> dict[str, str]:
    """The urlencoded fields of the request's body (the last value of each); BadRequestError (saying
    `too_big`, or the limit) past `limit` bytes, read no further than that."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_big(limit, too_big)
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise _too_big(limit, too_big)
    text = received.decode("utf-8", "replace")
    return {key: values[-1] for key, values in parse_qs(text, keep_blank_values=True).items()}


def _too_big(limit: int, message: str) -> BadRequestError:
    return BadRequestError(message or f"the form is over {limit // 1024} KiB",
                           hint="a job file this large belongs in the CLI (`bacalhau job run FILE`)")
