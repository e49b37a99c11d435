"""Our transport messages (`transport/messages.py`) to NCL payloads and back.

The orchestrator and the compute node speak in `transport.messages`; NCL carries the same facts in
Bacalhau's shapes. What has no NCL field travels where Go looks for it anyway: a reason or error text
is `Events[0].Message`, executor facts and error codes are `Events[0].Details` (Go's own
`EventFromError` puts `ErrorCode`, `Hint`, `Retryable` there). So nothing is lost between two Python
nodes, and a Go peer reads what it expects.
"""

from __future__ import annotations

import logging
import time

from bacalhau.models.clock import rfc3339_nano
from bacalhau.models.execution import ExecutionState, RunCommandResult
from bacalhau.models.history import TOPIC_EXECUTION, TOPIC_SCHEDULING
from bacalhau.models.state import ExecutionStateType
from bacalhau.transport import messages as m
from bacalhau.transport.ncl import data
from bacalhau.transport.ncl.event import Event

log = logging.getLogger(__name__)


def _event(message: str, topic: str, details: dict[str, str] | None = None) -> Event:
    return Event(Message=message, Topic=topic, Timestamp=rfc3339_nano(time.time_ns()), Details=dict(details or {}))


def _first(events: list[Event]) -> Event | None:
    return events[0] if events else None


# --- orchestrator -> compute ------------------------------------------------------------------------


def ask_for_bid_to_ncl(message: m.AskForBid) -> data.AskForBidRequest:
    """Our offers are pre-approved: DesiredState Running, which a Go compute starts at once ("direct bid").

    The execution goes out as a Go scheduler sends a new one: ComputeState New and Revision at most 1.
    Ours is stored as AskForBid (the offer is recorded before it is sent), which a Go compute refuses
    as "not a new execution" (`pkg/compute/store/utils.go` ValidateNewExecution) and never bids on.
    """
    execution = message.execution.model_copy(
        update={
            "compute_state": ExecutionState(StateType=ExecutionStateType.New),
            "revision": min(message.execution.revision, 1),
        }
    )
    return data.AskForBidRequest(
        events=[_event(f"Requested execution on {execution.node_id}", TOPIC_SCHEDULING)],
        execution=execution,
    )


def ask_for_bid_from_ncl(payload: data.AskForBidRequest) -> m.AskForBid:
    """An offer as the compute service takes it."""
    return m.AskForBid(execution=payload.execution)


def cancel_to_ncl(message: m.CancelExecution) -> data.CancelExecutionRequest:
    """The stop reason rides in Events[0].Message."""
    return data.CancelExecutionRequest(
        ExecutionID=message.execution_id, Events=[_event(message.reason or "execution cancelled", TOPIC_SCHEDULING)]
    )


def cancel_from_ncl(payload: data.CancelExecutionRequest | data.BidRejectedRequest) -> m.CancelExecution:
    """CancelExecution, and BidRejected from a Go orchestrator (drop the execution), as a cancel."""
    first = _first(payload.events)
    reason = first.message if first is not None and first.message else "execution cancelled by the orchestrator"
    return m.CancelExecution(execution_id=payload.execution_id, reason=reason)


# --- compute -> orchestrator ------------------------------------------------------------------------


def bid_result_to_ncl(message: m.BidResult, job_type: str = "") -> data.BidResult:
    """Accepted or not; a rejection's reason is Events[0].Message."""
    text = message.reason or ("bid accepted" if message.accepted else "bid rejected")
    return data.BidResult(
        ExecutionID=message.execution_id,
        JobID=message.job_id,
        JobType=job_type,
        Events=[_event(text, TOPIC_SCHEDULING)],
        Accepted=message.accepted,
    )


def bid_result_from_ncl(payload: data.BidResult) -> m.BidResult:
    """A BidResult as the orchestrator records it."""
    reason = "" if payload.accepted else payload.message
    return m.BidResult(
        execution_id=payload.execution_id, job_id=payload.job_id, accepted=payload.accepted, reason=reason
    )


def progress_to_ncl(message: m.ExecutionProgress, job_type: str = "") -> data.ExecutionProgress:
    """Extension message: only for an orchestrator that announced `progress`."""
    return data.ExecutionProgress(
        ExecutionID=message.execution_id,
        JobID=message.job_id,
        JobType=job_type,
        Events=[_event(message.message or message.state.name, TOPIC_EXECUTION)],
        State=int(message.state),
    )


def progress_from_ncl(payload: data.ExecutionProgress) -> m.ExecutionProgress:
    """A progress report as the orchestrator records it; an unknown state number is refused by the model."""
    return m.ExecutionProgress(
        execution_id=payload.execution_id,
        job_id=payload.job_id,
        state=ExecutionStateType(payload.state),
        message=payload.message,
    )


def run_result_to_ncl(message: m.RunResult, job_type: str = "") -> data.RunResult:
    """Executor facts (image digest, module hash) ride in Events[0].Details."""
    return data.RunResult(
        ExecutionID=message.execution_id,
        JobID=message.job_id,
        JobType=job_type,
        Events=[_event("Completed successfully", TOPIC_EXECUTION, message.details)],
        PublishResult=message.published_result,
        RunCommandResult=message.run_output,
        Steps=_steps_to_ncl(message.steps),
    )


def run_result_from_ncl(payload: data.RunResult) -> m.RunResult:
    """A RunResult as the orchestrator records it."""
    first = _first(payload.events)
    return m.RunResult(
        execution_id=payload.execution_id,
        job_id=payload.job_id,
        run_output=payload.run_command_result or RunCommandResult(),
        published_result=payload.publish_result,
        details=dict(first.details) if first is not None else {},
        steps=_steps_from_ncl(payload.steps),
    )


def compute_error_to_ncl(message: m.ComputeError, job_type: str = "") -> data.ComputeError:
    """The error text is Events[0].Message, its code, hint and retryability Events[0].Details."""
    return data.ComputeError(
        ExecutionID=message.execution_id,
        JobID=message.job_id,
        JobType=job_type,
        Events=[_event(message.message or "execution failed", TOPIC_EXECUTION, message.details)],
        RunCommandResult=message.run_output,
        Steps=_steps_to_ncl(message.steps),
    )


def compute_error_from_ncl(payload: data.ComputeError) -> m.ComputeError:
    """A ComputeError as the orchestrator records it."""
    first = _first(payload.events)
    return m.ComputeError(
        execution_id=payload.execution_id,
        job_id=payload.job_id,
        message=payload.message or "execution failed",
        run_output=payload.run_command_result,
        details=dict(first.details) if first is not None else {},
        steps=_steps_from_ncl(payload.steps),
    )


def _steps_to_ncl(steps: list[m.ExecutionStep]) -> list[data.Step] | None:
    return [data.Step(State=int(s.state), Message=s.message, Time=s.time_ns) for s in steps] or None


def _steps_from_ncl(steps: list[data.Step] | None) -> list[m.ExecutionStep]:
    """The steps a final report carries. A state this side does not know (a newer peer's) is logged and
    left out, unlike a progress report's, which is refused: refusing the final report would hold up
    every later message of the node for the sake of a history event."""
    known = {int(state) for state in ExecutionStateType}
    out = []
    for s in steps or []:
        if s.state not in known:
            log.warning("a reported step with unknown state %d (%r) was left out", s.state, s.message)
            continue
        out.append(m.ExecutionStep(state=ExecutionStateType(s.state), message=s.message, time_ns=s.time_ns))
    return out
