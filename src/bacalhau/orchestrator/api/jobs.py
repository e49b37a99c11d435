"""/api/v1/orchestrator/jobs routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request, WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect

from bacalhau.models import constants as c
from bacalhau.models.api import (
    DiffJobRequest,
    DiffJobResponse,
    GetJobResponse,
    ListExecutionsResponse,
    ListHistoryResponse,
    ListJobsResponse,
    ListResultsResponse,
    PutJobRequest,
    PutJobResponse,
    RerunJobRequest,
    RerunJobResponse,
    StopJobRequest,
    StopJobResponse,
)
from bacalhau.models.errors import BacalhauError, BadRequestError
from bacalhau.models.execution import ExecutionLog
from bacalhau.models.selector import parse_selector
from bacalhau.orchestrator.api.body import json_body, parse_model
from bacalhau.orchestrator.api.context import log_streams, orchestrator, orchestrator_of
from bacalhau.orchestrator.api.errors import dumps, error_frame
from bacalhau.orchestrator.api.job_summary import STATE_FILTER, TYPE_FILTER, state_filter, type_filter
from bacalhau.orchestrator.api.openapi import (
    ALL_JOB_VERSIONS,
    JOB_VERSION,
    LABELS,
    LIMIT,
    MAX_INT64,
    NAMESPACE,
    NEXT_TOKEN,
    REVERSE,
    errors,
    inputs,
    integer,
    one_of,
    order_by,
    query,
)
from bacalhau.orchestrator.api.params import namespace, next_token, page, query_bool, query_int, query_str
from bacalhau.orchestrator.api.secrets import for_caller, may_reveal_env
from bacalhau.orchestrator.history_waiters import MAX_GATHER_MS, MAX_WAIT_MS
from bacalhau.orchestrator.jobstore.base import ExecutionQuery, HistoryQuery, JobQuery
from bacalhau.orchestrator.service import Orchestrator

log = logging.getLogger(__name__)
# Latest `since` a history query takes: later ones overflow int64 nanoseconds, as in Go.
SINCE_MAX_S = (2**63 - 1) // 1_000_000_000
router = APIRouter(prefix="/api/v1/orchestrator", tags=["orchestrator"])


def _ok(request: Request, model: Any) -> JSONResponse:
    """The answer, with job Env values masked for a caller who may not see them (secrets.py)."""
    return JSONResponse(for_caller(request, model.to_wire()))


# Sort keys of jobs and executions (Bacalhau's names, then our older aliases).
JOB_ORDERS = ("created_at", "modified_at", "create_time", "modify_time")


def _check_order(order_by: str) -> None:
    if order_by not in JOB_ORDERS:
        raise BadRequestError(f"invalid order_by {order_by!r}; valid: created_at, modified_at")


@router.put(
    "/jobs",
    responses={200: {"model": PutJobResponse}, **errors(400, 409, 413, 415)},
    openapi_extra=inputs(body=PutJobRequest, body_required=True),
)
@router.post(
    "/jobs",
    responses={200: {"model": PutJobResponse}, **errors(400, 409, 413, 415)},
    openapi_extra=inputs(body=PutJobRequest, body_required=True),
    description="Same as PUT /jobs (older clients POST).",
)
async def put_job(request: Request, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    """Submit a job (or a new version of a job with the same Name)."""
    body = parse_model(PutJobRequest, await json_body(request), "request")
    if body.job is None:
        raise BadRequestError("missing Job in request body", hint='send {"Job": {...}}')
    client_meta = {
        key: value
        for key, header in (
            (c.META_CLIENT_INSTALLATION_ID, "x-bacalhau-installationid"),
            (c.META_CLIENT_INSTANCE_ID, "x-bacalhau-instanceid"),
        )
        if (value := request.headers.get(header, ""))
    }
    return _ok(request, await orch.endpoint.submit(
        body.job, force=body.force, client_meta=client_meta, reveal_env=may_reveal_env(request), owned=True
    ))


@router.put(
    "/jobs/diff",
    responses={200: {"model": DiffJobResponse}, **errors(400, 404, 413, 415)},
    openapi_extra=inputs(body=DiffJobRequest, body_required=True),
)
async def diff_job(request: Request, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    """Diff a job spec against the stored job of the same Name (`bacalhau job run --dry-run`)."""
    body = parse_model(DiffJobRequest, await json_body(request), "request")
    if body.job is None:
        raise BadRequestError("missing Job in request body", hint='send {"Job": {...}}')
    return _ok(request, await orch.endpoint.diff(body.job, mask_env=not may_reveal_env(request)))


@router.get(
    "/jobs",
    responses={200: {"model": ListJobsResponse}, **errors(400)},
    openapi_extra=inputs(
        NAMESPACE, LIMIT, NEXT_TOKEN, order_by(*JOB_ORDERS), REVERSE, LABELS,
        STATE_FILTER,
        TYPE_FILTER,
    ),
)
async def list_jobs(request: Request, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    p = page(request, default_order="created_at")
    _check_order(p.order_by)
    order = "modified_at" if p.order_by in ("modified_at", "modify_time") else "created_at"
    labels: list[tuple[str, str, tuple[str, ...]]] = []
    for raw in request.query_params.getlist("labels"):
        try:
            labels.extend((r.key, r.operator, tuple(r.values)) for r in parse_selector(raw))
        except ValueError as exc:
            raise BadRequestError(str(exc)) from None
    query = JobQuery(
        namespace=namespace(request),
        limit=p.limit,
        offset=p.offset,
        order_by=order,
        reverse=p.reverse,
        labels=tuple(labels),
        states=state_filter(request),
        job_type=type_filter(request),
    )
    jobs, more = await orch.store.list_jobs(query)
    return _ok(request, ListJobsResponse(Items=jobs, NextToken=next_token(p, more)))


@router.get(
    "/jobs/{job_id}",
    responses={200: {"model": GetJobResponse}, **errors(400, 404)},
    openapi_extra=inputs(
        NAMESPACE,
        query("include", "also return `history` and/or `executions` (comma-separated)"),
        JOB_VERSION,
        query(
            "wait_ms",
            "ours: wait up to this many ms (longer waits are cut to 10000; a job in a terminal state answers at once) for a history event with a SeqNum"
            " above `after_seq`, then answer",
            integer("milliseconds"),
        ),
        query(
            "after_seq",
            "ours: with `wait_ms`, the highest history SeqNum the caller has seen; History then holds only the"
            " events after it",
            integer("SeqNum"),
        ),
        query(
            "gather_ms",
            f"ours: with `wait_ms`, once there is news, gather the job's later events for up to this many ms"
            f" (at most {MAX_GATHER_MS}) and answer with them all; a job that ends is answered at once",
            integer("milliseconds"),
        ),
    ),
)
async def get_job(job_id: str, request: Request, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    include = {part.strip().lower() for part in query_str(request, "include").split(",") if part.strip()}
    # Ours: wait_ms/after_seq hold the answer until the job has an event past after_seq (what the CLI
    # waits on instead of polling). A Go server ignores both and answers at once, as this does without them.
    wait_ms = min(query_int(request, "wait_ms"), MAX_WAIT_MS)
    after_seq = query_int(request, "after_seq")
    gather_ms = min(query_int(request, "gather_ms"), MAX_GATHER_MS)
    ns = namespace(request)
    if wait_ms:
        response = await _describe_after(orch, job_id, ns, include, after_seq, wait_ms / 1000, gather_ms / 1000)
    else:
        response = await orch.endpoint.describe(job_id, namespace=ns, include=include)
    version = query_int(request, "job_version")
    if version and version != response.job.version:
        response.job = await orch.store.get_job(response.job.id, version)
    data = for_caller(request, response.to_wire())
    for key in ("History", "Executions"):
        if data.get(key) is None:
            data.pop(key, None)
    return JSONResponse(data)


def _newest_seq(response: GetJobResponse) -> int:
    items = response.history.items if response.history is not None else []
    return max((item.seq_num for item in items), default=0)


async def _describe_after(
    orch: Orchestrator, job_id: str, ns: str, include: set[str], after_seq: int, wait_s: float, gather_s: float
) -> GetJobResponse:
    """describe(), once the job has an event with SeqNum > after_seq or `wait_s` has passed; at once for a
    job in a terminal state (nothing more is coming unless someone reruns it).

    With `gather_s`, news is held up to that long for the events that follow it, and answered at once
    when the job ends: a watcher of a short job gets one answer, at its end, instead of one per step,
    and its questions and answers do not share the event loop with the steps they report on.

    A waiting client asks again after every answer, so the wait reads only the job's state and newest
    SeqNum (two indexed columns) until it answers, and describes the job once, at the end.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    seen = {*include, "history"}  # the history tells whether there is news, asked for or not

    response: GetJobResponse | None = None
    progress = await orch.store.job_progress(job_id)
    if progress is None:  # not an exact ID: a prefix or a name, resolved by describe (or NotFound)
        # Only the events after after_seq are read (and sent): the caller has the others.
        response = await orch.endpoint.describe(job_id, namespace=ns, include=seen, history_after=after_seq)
        job_id = response.job.id
        progress = (response.job.state.state_type, _newest_seq(response))
    if not progress[0].is_terminal and (progress[1] <= after_seq or gather_s > 0):
        response = None
        gathered_until: float | None = None  # set at the first news
        # Registered, and cleared, before each read: a commit between a read and the wait still wakes it.
        with orch.history_waiters.watching(job_id) as watch:
            while True:
                watch.changed.clear()
                progress = await orch.store.job_progress(job_id)
                if progress is None or progress[0].is_terminal:
                    break
                if progress[1] > after_seq:
                    if gathered_until is None:
                        gathered_until = min(deadline, loop.time() + gather_s)
                    until = gathered_until
                    watch.ends_only = True  # news is in: from here only the job's end answers early
                else:
                    until = deadline
                remaining = until - loop.time()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        await watch.changed.wait()
                except TimeoutError:
                    break
    if response is None:
        response = await orch.endpoint.describe(job_id, namespace=ns, include=seen, history_after=after_seq)
    if "history" not in include:
        response.history = None
    return response


@router.delete(
    "/jobs/{job_id}",
    responses={200: {"model": StopJobResponse}, **errors(400, 404, 409, 413, 415)},
    openapi_extra=inputs(
        NAMESPACE, query("reason", "why the job is stopped (also accepted in the body)"), body=StopJobRequest
    ),
)
async def stop_job(job_id: str, request: Request, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    body = await json_body(request)
    reason = query_str(request, "reason") or str(body.get("reason") or body.get("Reason") or "")
    return _ok(request, await orch.endpoint.stop(job_id, reason, namespace=namespace(request)))


@router.put(
    "/jobs/{job_id}/rerun",
    responses={200: {"model": RerunJobResponse}, **errors(400, 404, 409, 413, 415)},
    openapi_extra=inputs(NAMESPACE, body=RerunJobRequest),
)
async def rerun_job(job_id: str, request: Request, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    body = parse_model(RerunJobRequest, await json_body(request), "request")
    if not 0 <= body.job_version <= MAX_INT64:
        # Versions are stored as SQLite (64-bit signed) integers: a wider one would reach the store and
        # overflow there (a 500 the API fuzz found with JobVersion 18446744073709551615).
        raise BadRequestError(
            f"invalid JobVersion {body.job_version}: must be from 0 (the current version) to {MAX_INT64}",
            component="APIServer",
        )
    response = await orch.endpoint.rerun(
        job_id, version=body.job_version, reason=body.reason, namespace=namespace(request)
    )
    return _ok(request, response)


@router.get(
    "/jobs/{job_id}/history",
    responses={200: {"model": ListHistoryResponse}, **errors(400, 404)},
    openapi_extra=inputs(
        NAMESPACE,
        LIMIT,
        NEXT_TOKEN,
        REVERSE,
        JOB_VERSION,
        ALL_JOB_VERSIONS,
        query("since", "only events at or after this time (unix seconds)", integer("unix seconds", SINCE_MAX_S)),
        query("event_type", "which events (default all; case-insensitive)", one_of("all", "job", "execution")),
        query("execution_id", "only the events of this execution"),
        query("node_id", "only the events of executions on this node"),
    ),
)
async def job_history(job_id: str, request: Request, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    job = await orch.endpoint.resolve(job_id, namespace(request))
    event_type = (query_str(request, "event_type") or "all").lower()
    if event_type not in ("all", "job", "execution"):
        raise BadRequestError(f"invalid event_type {event_type!r}; valid: all, job, execution")
    p = page(request, default_order="seq")
    query = HistoryQuery(
        job_version=query_int(request, "job_version"),
        all_versions=query_bool(request, "all_job_versions"),
        since_unix_s=query_int(request, "since", maximum=SINCE_MAX_S),
        event_type=event_type,
        execution_id=query_str(request, "execution_id"),
        node_id=query_str(request, "node_id"),
        reverse=p.reverse,
        limit=p.limit + 1 if p.limit else 0,
        offset=p.offset,
    )
    items = await orch.store.list_history(job.id, query)
    more = bool(p.limit) and len(items) > p.limit
    return _ok(request, ListHistoryResponse(Items=items[: p.limit] if p.limit else items, NextToken=next_token(p, more)))


@router.get(
    "/jobs/{job_id}/executions",
    responses={200: {"model": ListExecutionsResponse}, **errors(400, 404)},
    openapi_extra=inputs(
        NAMESPACE,
        LIMIT,
        NEXT_TOKEN,
        order_by(*JOB_ORDERS),
        REVERSE,
        JOB_VERSION,
        ALL_JOB_VERSIONS,
    ),
)
async def job_executions(job_id: str, request: Request, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    job = await orch.endpoint.resolve(job_id, namespace(request))
    p = page(request, default_order="created_at")
    _check_order(p.order_by)
    version = query_int(request, "job_version")
    # As in Bacalhau: the current version's executions unless a version or all versions are asked for.
    query = ExecutionQuery(
        job_version=version or job.version,
        all_versions=query_bool(request, "all_job_versions"),
        order_by="modified_at" if p.order_by in ("modified_at", "modify_time") else "created_at",
        reverse=p.reverse,
        limit=p.limit + 1 if p.limit else 0,
        offset=p.offset,
    )
    items = await orch.store.list_executions(job.id, query)
    more = bool(p.limit) and len(items) > p.limit
    return _ok(request, ListExecutionsResponse(Items=items[: p.limit] if p.limit else items, NextToken=next_token(p, more)))


@router.get(
    "/jobs/{job_id}/versions",
    responses={200: {"model": ListJobsResponse}, **errors(404)},
    openapi_extra=inputs(NAMESPACE),
)
async def job_versions(job_id: str, request: Request, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    job = await orch.endpoint.resolve(job_id, namespace(request))
    return _ok(request, ListJobsResponse(Items=await orch.store.list_job_versions(job.id), NextToken=""))


@router.get(
    "/jobs/{job_id}/results",
    responses={200: {"model": ListResultsResponse}, **errors(400, 404)},
    openapi_extra=inputs(NAMESPACE),
)
async def job_results(job_id: str, request: Request, orch: Orchestrator = Depends(orchestrator)) -> JSONResponse:
    items = await orch.endpoint.results(job_id, namespace=namespace(request))
    return _ok(request, ListResultsResponse(Items=items, NextToken=""))


@router.get("/jobs/{job_id}/logs", include_in_schema=False)
async def job_logs_without_websocket(job_id: str) -> JSONResponse:
    raise BadRequestError(
        f"logs of job {job_id} are streamed over a websocket; this request did not ask to upgrade",
        hint="connect with a websocket client (ws://.../api/v1/orchestrator/jobs/<id>/logs), or use `bacalhau job logs`",
    )


@router.websocket("/jobs/{job_id}/logs")
async def job_logs(websocket: WebSocket, job_id: str) -> None:
    """Stream log items as `{"value": {"Type": 1|2, "Line": ...}}` frames, then close with 1000.

    One frame is sent at a time, at the client's pace: while the client does not read, nothing more is
    asked of the compute node. A client that goes away cancels the stream at once, even one following
    a job that prints nothing. Past the per-job cap, the client gets an error frame (429).
    """
    orch = orchestrator_of(websocket)
    gate = log_streams(websocket)
    await websocket.accept()
    params = websocket.query_params
    follow = params.get("follow", "").lower() in ("1", "t", "true", "yes")
    tail = params.get("tail", "").lower() in ("1", "t", "true", "yes")
    try:
        job = await orch.endpoint.resolve(job_id, params.get("namespace", ""))
        with gate.hold(job.id):
            items = await orch.endpoint.stream_logs(
                job, execution_id=params.get("execution_id", ""), follow=follow, tail=tail
            )
            await _send_until_disconnect(websocket, items)
    except BacalhauError as exc:
        try:
            await websocket.send_text(dumps(error_frame(exc)))
        except WebSocketDisconnect:
            return
    except WebSocketDisconnect:
        return
    await websocket.close(code=1000)


async def _send_until_disconnect(websocket: WebSocket, items: AsyncIterator[ExecutionLog]) -> None:
    """Send every item as a frame; WebSocketDisconnect as soon as the client goes away."""

    async def send_all() -> None:
        try:
            async for item in items:
                await websocket.send_text(dumps({"value": item.to_wire()}))
        finally:
            aclose = getattr(items, "aclose", None)  # tells the compute node to stop, now
            if aclose is not None:
                await aclose()

    async def wait_disconnect() -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # Bacalhau's clients send nothing; anything sent is ignored

    sender = asyncio.create_task(send_all())
    listener = asyncio.create_task(wait_disconnect())
    try:
        await asyncio.wait({sender, listener}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, listener):
            task.cancel()
        await asyncio.gather(sender, listener, return_exceptions=True)
    if sender.cancelled():  # the listener saw the client leave first
        raise WebSocketDisconnect(code=1006)
    failure = sender.exception()
    if failure is not None:
        raise failure
