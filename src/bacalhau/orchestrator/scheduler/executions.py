"""What the schedulers ask of a job's executions: active or not, an attempt or not, whose fault, when.

    active       not terminal and still wanted (desired state not Stopped)
    attempt      Failed, unless a stopping node handed it back (it never ran, or was stopped on
                 purpose): restarting or draining a node must not use up a job's retries
    retryable    its failure was the node's (ComputeState.Details Retryable=true, set by the node that
                 saw the error, or by the orchestrator for a lost node)
    failed on    an attempt the node reported itself; one the orchestrator declared lost (NodeLost)
    node         does not keep a retry away from that node once it is back
"""

from __future__ import annotations

from collections.abc import Iterable

from bacalhau.models import constants as c
from bacalhau.models.execution import Execution
from bacalhau.models.state import ExecutionDesiredStateType, ExecutionStateType
from bacalhau.orchestrator.events import short_id

NODE_LOST_MESSAGE = "Execution stop requested because node has disappeared"
# A long-running execution (service replica, daemon) that ran this long since its last end counts as
# healthy again: its next exit is retried after the first backoff step, not where a crash loop left it.
BACKOFF_RESET_NS = 10 * 60 * 1_000_000_000
REFUSED = (ExecutionStateType.BidRejected, ExecutionStateType.AskForBidRejected)


def is_active(e: Execution) -> bool:
    """Not terminal and still wanted: it holds its partition (or its node, for ops and daemon)."""
    return not e.compute_state.state_type.is_terminal and e.desired_state.state_type is not ExecutionDesiredStateType.Stopped


def is_completed(e: Execution) -> bool:
    """Ended with a result (whatever its exit code)."""
    return e.compute_state.state_type is ExecutionStateType.Completed


def is_retryable(e: Execution) -> bool:
    """Its failure was the node's fault, not the job's."""
    return e.compute_state.details.get("Retryable", "").lower() == "true"


def counts_as_attempt(e: Execution) -> bool:
    """A failure that uses up one of the partition's attempts (a hand-back does not)."""
    return e.compute_state.state_type is ExecutionStateType.Failed and e.compute_state.details.get(c.DETAIL_HANDED_BACK) != "true"


def failed_on_node(e: Execution) -> bool:
    """A failed attempt the node itself reported (not one the orchestrator declared lost): a retry of
    its partition avoids that node."""
    return counts_as_attempt(e) and e.compute_state.details.get(c.DETAIL_NODE_LOST) != "true"


def ended(e: Execution) -> bool:
    """Ran (or was meant to) and is over: completed, failed or cancelled. A refused bid never ran."""
    state = e.compute_state.state_type
    return state.is_terminal and state not in REFUSED


def last_of(executions: Iterable[Execution]) -> Execution | None:
    """The most recently created of `executions`."""
    return max(executions, key=lambda e: (e.create_time, e.id), default=None)


def ended_at(e: Execution) -> int:
    """When an ended execution ended (its last change), in Unix ns."""
    return e.modify_time or e.create_time


def describe_end(e: Execution) -> str:
    """'e-1234 failed on n-5678: <message>', for the history of the execution that replaces it."""
    state = e.compute_state.state_type
    verb = {
        ExecutionStateType.Failed: "failed",
        ExecutionStateType.Completed: "exited",
        ExecutionStateType.Cancelled: "was stopped",
    }.get(state, state.name.lower())
    text = f"{short_id(e.id)} {verb} on {short_id(e.node_id)}"
    message = e.compute_state.message.strip()
    return f"{text}: {message}" if message else text


def recent_ends(tried: Iterable[Execution], now_ns: int) -> int:
    """A long-running execution's crash loop: its ends within BACKOFF_RESET_NS, hand-backs (a stopping
    or drained node's doing) not counted."""
    return sum(
        1 for e in tried
        if e.compute_state.details.get(c.DETAIL_HANDED_BACK) != "true" and now_ns - ended_at(e) < BACKOFF_RESET_NS
    )


def refusals(executions: Iterable[Execution]) -> dict[str, str]:
    """Node ID -> why it refused this job version: its latest refusal, whatever order they come in."""
    refused = sorted((e for e in executions if e.compute_state.state_type in REFUSED), key=lambda e: (e.create_time, e.id))
    return {e.node_id: e.compute_state.message for e in refused}
