"""What an earlier process of this node (killed, kill -9) left unfinished, sorted when the node starts.

Taken back rather than run again, before the node handshakes with the orchestrator (which then keeps
every execution the node lists as held)::

    BidAccepted (queued, never started) ──> queued again (a pending bid waits for its acceptance again)
    Running / Publishing ── runner.can_resume? (exitCode written, or the executor re-attaches: docker)
        yes ──> a task like any run: resume = collect the task's outcome, publish, report RunResult;
                the task gone meanwhile ──> Failed, LOST_MESSAGE (retryable: it runs again elsewhere)
        no  ──> Failed, RESTART_MESSAGE, reported at once (wasm runs in this process: it died with it)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bacalhau.compute.reports import ReportQueue
from bacalhau.compute.runner import ExecutionRunner
from bacalhau.compute.store import ExecutionRecord, ExecutionStore
from bacalhau.models.state import ExecutionDesiredStateType
from bacalhau.models.state import ExecutionStateType as State
from bacalhau.transport.base import OrchestratorService


@dataclass
class Leftovers:
    """The store's active executions at start, by what becomes of them."""

    queued: list[ExecutionRecord] = field(default_factory=list)
    resumable: list[ExecutionRecord] = field(default_factory=list)
    lost: list[ExecutionRecord] = field(default_factory=list)


async def sort_leftovers(store: ExecutionStore, runner: ExecutionRunner) -> Leftovers:
    """Sort the active executions an earlier process left (see the module docstring)."""
    found = Leftovers()
    for record in store.list_active():
        if record.state is State.BidAccepted:
            found.queued.append(record)
        elif await asyncio.to_thread(runner.can_resume, record.execution):
            found.resumable.append(record)
        else:
            found.lost.append(record)
    return found


async def retell_steps(reports: ReportQueue, orchestrator: OrchestratorService, leftovers: Leftovers) -> None:
    """Report again the steps of what is taken back: the earlier process may have died holding them
    (reports.py). A repeat is no step forward, so the orchestrator records each once. Only for an
    orchestrator that takes steps (the caller checks): nothing is held for one that does not, and a Go
    one may refuse a repeated bid. Times are the store's: when the bid was taken, when the state last
    changed."""
    for record in leftovers.queued:
        if record.execution.desired_state.state_type is not ExecutionDesiredStateType.Pending:
            await reports.step(orchestrator, record.execution_id, record.job_id, State.BidAccepted,
                               time_ns=record.create_time_ns)
    for record in leftovers.resumable:
        await reports.step(orchestrator, record.execution_id, record.job_id, State.BidAccepted,
                           time_ns=record.create_time_ns)
        await reports.step(orchestrator, record.execution_id, record.job_id, record.state,
                           time_ns=record.update_time_ns)
