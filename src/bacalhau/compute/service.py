"""The compute node: takes bids, queues executions, runs them as capacity frees, reports back.

::

    ask_for_bid --decide_bid--> rejected: store BidRejected, report BidResult(accepted=False, reason)
         |
         +--> accepted: store BidAccepted, report BidResult(accepted=True), append to the FIFO queue
                                     |
        capacity frees / new bid --> dispatch: start the queue's head while it fits what is available
                                     |
                 Running (progress) --> runner: inputs, run, publish (Publishing progress, with a publisher)
                                     |
                 Completed -> RunResult        Failed -> ComputeError      cancel -> Cancelled (silent)

Every execution runs in a task this node owns; `stop()` cancels and awaits them all. The store keeps
each execution's state across restarts; on `start()` what an earlier process left unfinished is taken
back rather than run again (recovery.py), and `drain()` stops the node gently (SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from bacalhau.compute.bidding import decide
from bacalhau.compute.capacity import CapacityTracker, execution_resources, machine_resources, scale
from bacalhau.compute.interruptions import (
    HANDED_BACK_MESSAGE,
    LOST_MESSAGE,
    RESTART_MESSAGE,
    STOP_MESSAGE,
    interruption,
    retryable_details,
)
from bacalhau.compute.logs import stream_log_files
from bacalhau.compute.nodeinfo import active_jobs, compute_node_info
from bacalhau.compute.queued import ExecutionQueue, QueuedExecution
from bacalhau.compute.recovery import retell_steps, sort_leftovers
from bacalhau.compute.registry import PluginRegistry
from bacalhau.compute.reports import HOLD_S as REPORT_HOLD_S
from bacalhau.compute.reports import ReportQueue
from bacalhau.compute.retention import ResultsRetention
from bacalhau.compute.runner import ExecutionOutcome, ExecutionRunner, RunFailed, RunSucceeded
from bacalhau.compute.store import ExecutionRecord, ExecutionStore
from bacalhau.config.types import BacalhauConfig
from bacalhau.models import constants as c
from bacalhau.models.errors import BacalhauError, ConfigurationError, ErrorCode, NotFoundError
from bacalhau.models.execution import Execution, ExecutionLog
from bacalhau.models.node import NodeInfo
from bacalhau.models.resources import Resources
from bacalhau.models.state import ExecutionDesiredStateType
from bacalhau.models.state import ExecutionStateType as State
from bacalhau.transport.base import OrchestratorService
from bacalhau.transport.messages import (
    AskForBid,
    BidAccepted,
    BidResult,
    CancelExecution,
    ComputeError,
    Handshake,
    LogStreamRequest,
    NodeInfoUpdate,
    RunResult,
)

logger = logging.getLogger(__name__)

_ACTIVE = (State.BidAccepted, State.Running, State.Publishing)
# Reports made while shutting down must not hold the shutdown hostage to a dead link.
_SHUTDOWN_REPORT_TIMEOUT_S = 2.0
INFO_MIN_INTERVAL_S = 0.05
_CANCEL_WAIT_S = 10.0


class NodeStatus(enum.Enum):
    """Lifecycle of the ComputeNode service."""

    CREATED = "created"
    RUNNING = "running"
    # Stopping on purpose: nothing new starts, running executions may finish (see drain).
    DRAINING = "draining"
    STOPPING = "stopping"
    STOPPED = "stopped"


# The states in which the node still serves the executions it holds (reports, cancels, reconciliation).
_SERVING = frozenset({NodeStatus.RUNNING, NodeStatus.DRAINING})


class ComputeNode:
    """A compute node behind the ComputeService protocol."""

    def __init__(
        self,
        *,
        node_id: str,
        config: BacalhauConfig,
        registry: PluginRegistry,
        orchestrator: OrchestratorService,
        clock: Callable[[], float] = time.monotonic,
        report_hold_s: float = REPORT_HOLD_S,
    ) -> None:
        """`report_hold_s`: how long a step waits for the final report to carry it (reports.py)."""
        self.node_id = node_id
        self.status = NodeStatus.CREATED
        self._config = config
        self._registry = registry
        self._orchestrator = orchestrator
        data_dir = Path(config.data_dir)
        self._store = ExecutionStore(path=data_dir / "compute" / "executions.db")
        self._retention = ResultsRetention.from_config(config, store=self._store, pins=registry.pinning_publishers())
        self._runner = ExecutionRunner(
            registry=registry, data_dir=data_dir, env_allow_list=config.compute.env.allow_list, clock=clock
        )
        try:
            total = scale(machine_resources(data_dir), config.compute.allocated_capacity)
        except ValueError as exc:
            raise ConfigurationError(str(exc), hint="fix Compute.AllocatedCapacity (e.g. 80% or 4 or 8Gb)") from exc
        self._capacity = CapacityTracker(total=total)
        self._queue = ExecutionQueue()
        # Bids a Go orchestrator has not accepted yet (AskForBid with DesiredState Pending).
        self._awaiting_approval: dict[str, QueuedExecution] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        # Set when an execution of this process ends; log followers wait on it.
        self._finished: dict[str, asyncio.Event] = {}
        # Running executions the orchestrator cancelled, with its reason: they must report nothing more.
        self._cancel_requested: dict[str, str] = {}
        self._info_changed = asyncio.Event()
        registry.holdings.on_change(self._info_changed.set)  # placement follows the data at once
        self._info_task: asyncio.Task[None] | None = None
        # In order, never waited for (reports.py).
        self._reports = ReportQueue(node_id=node_id, hold_s=report_hold_s)
        # Set by stop() after a drain: what it still has to stop is handed back (see drain).
        self._drained = False

    async def start(self) -> None:
        """Open the store, take back what a previous process left unfinished (see the module docstring),
        start plugins, then handshake."""
        if self.status is not NodeStatus.CREATED:
            return
        restarted = self._store.open()
        self._retention.start()
        try:
            resumed = await self._recover()
            # Start serving results before announcing the node: a node that cannot serve them must not take jobs.
            await self._registry.start()
            removed = await self._registry.remove_leftovers(keep=[record.execution_id for record in resumed])
            if removed:
                logger.info("removed %d task(s) left behind by an earlier run of node %s", removed, self.node_id)
            self.status = NodeStatus.RUNNING
            self._info_task = asyncio.create_task(self._info_loop(), name=f"compute-{self.node_id}-node-info")
            self._reports.start()
            for record in resumed:
                self._start_task(record.execution, execution_resources(record.execution), resume=True)
            self._dispatch()
            await self._orchestrator.handshake(
                Handshake(node_info=self.node_info(), active_execution_ids=[], restarted=restarted)
            )
        except BaseException:
            await self.stop()
            raise

    async def _recover(self) -> list[ExecutionRecord]:
        """Take back what an earlier process left (see recovery.py); return the records to resume."""
        leftovers = await sort_leftovers(self._store, self._runner)
        for record in leftovers.queued:
            execution = record.execution
            self._finished[execution.id] = asyncio.Event()
            queued = QueuedExecution.of(execution, execution_resources(execution))
            if execution.desired_state.state_type is ExecutionDesiredStateType.Pending:
                self._awaiting_approval[execution.id] = queued  # still waits for the orchestrator's yes
            else:
                self._queue.append(queued)
        if self._orchestrator.accepts_steps:
            await retell_steps(self._reports, self._orchestrator, leftovers)
        for record in leftovers.lost:
            if self._store.update_state(record.execution_id, State.Failed, expected=[record.state], message=RESTART_MESSAGE):
                await self._reports.send(self._interrupted(record.execution_id, record.job_id, RESTART_MESSAGE))
        if leftovers.resumable:
            logger.info("taking back %d execution(s) started by an earlier run of node %s",
                        len(leftovers.resumable), self.node_id)
        return leftovers.resumable

    async def stop(self) -> None:
        """Cancel queued and running executions (each reported as interrupted), stop plugins, close the store."""
        if self.status in (NodeStatus.STOPPING, NodeStatus.STOPPED):
            return
        self._drained = self.status is NodeStatus.DRAINING
        self.status = NodeStatus.STOPPING
        await self._retention.stop()
        for item in self._queue.take_all():
            await self._fail_on_stop(item.execution_id, item.job_id)
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._info_task is not None:
            self._info_task.cancel()
            await asyncio.gather(self._info_task, return_exceptions=True)
        await self._reports.stop()
        for execution_id in list(self._finished):
            self._mark_finished(execution_id)  # release log followers
        try:
            await self._registry.stop()
        finally:
            self._runner.close()  # its results-folder thread
            self._store.close()
            self.status = NodeStatus.STOPPED

    async def drain(self, grace_s: float, *, abort: asyncio.Event | None = None) -> tuple[int, int]:
        """Stop on purpose, gently: start nothing new, hand back what has not started, give running
        executions up to `grace_s` to finish (their results are reported as usual).

        Handed back = reported failed, retryable and marked DETAIL_HANDED_BACK, so the orchestrator
        places it again elsewhere (or here after a restart) without counting it against the job. What
        still runs when the grace ends (or `abort` is set: a second signal) is handed back by `stop`.
        Returns (finished within the grace, handed back so far).
        """
        if self.status is not NodeStatus.RUNNING:
            return 0, 0
        self.status = NodeStatus.DRAINING
        waiting = [*self._queue.take_all(), *self._awaiting_approval.values()]
        self._awaiting_approval = {}
        for item in waiting:
            await self._hand_back(item.execution_id, item.job_id)
        self._info_changed.set()
        running = list(self._running.values())
        if running and grace_s > 0:
            waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(asyncio.wait(running, timeout=grace_s))}
            if abort is not None:
                waits.add(asyncio.ensure_future(abort.wait()))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
        finished = sum(1 for task in running if task.done())
        return finished, len(waiting)

    async def _hand_back(self, execution_id: str, job_id: str) -> None:
        if not self._store.update_state(execution_id, State.Failed, expected=_ACTIVE, message=HANDED_BACK_MESSAGE):
            return
        self._mark_finished(execution_id)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_SHUTDOWN_REPORT_TIMEOUT_S):
                await self._reports.report(self._interrupted(execution_id, job_id, HANDED_BACK_MESSAGE, handed_back=True))

    def running_count(self) -> int:
        """Executions running now (started, not ended)."""
        return len(self._running)

    def active_execution_ids(self) -> list[str]:
        """Executions this node holds that have not ended (queued, running, publishing): for reconciliation."""
        if self.status not in _SERVING:
            return []
        return [record.execution_id for record in self._store.list_active()]

    def job_type(self, execution_id: str) -> str:
        """The job type of an execution this node holds ("" if unknown), for the reports that name it."""
        return (self._store.job_type(execution_id) or "") if self.status in _SERVING else ""

    def node_info(self) -> NodeInfo:
        """What this node advertises: plugins, capacity, queue and running counts, labels."""
        queued = self._queue.resources()
        return compute_node_info(
            node_id=self.node_id,
            labels=self._config.labels,
            engines=self._registry.executor_names(),
            publishers=self._registry.publisher_names(),
            storages=self._registry.storage_names(),
            max_capacity=self._capacity.total,
            available_capacity=self._capacity.available,
            queued_capacity=queued,
            running=len(self._running),
            enqueued=len(self._queue),
            data_holdings=self._registry.holdings.report(),
        )

    def relabel(self, labels: dict[str, str]) -> None:
        """New labels (a config reload): sent with the next node info; the orchestrator re-evaluates."""
        self._config = self._config.model_copy(update={"labels": dict(labels)})
        self._info_changed.set()

    def debug_info(self) -> dict[str, Any]:
        """`/api/v1/agent/debug` sections, named as Bacalhau's compute sensors: ActiveJobs, jobsCompleted."""
        if self.status is not NodeStatus.RUNNING:
            return {}
        running = [record for record in map(self._store.get, self._running) if record is not None]
        return {
            "ActiveJobs": active_jobs(running),
            "jobsCompleted": self._store.count(State.Completed),
            "Results": self._retention.kept().to_wire(),  # what Compute.Results.Retention keeps (ours)
            **self._registry.debug_sections(),  # InputCache (ours)
        }

    # --- ComputeService -------------------------------------------------------------------------------

    async def ask_for_bid(self, request: AskForBid) -> None:
        """Accept (queue) or reject the execution and report the BidResult. Idempotent per execution ID."""
        if self.status is NodeStatus.DRAINING:
            await self._refuse_while_draining(request.execution)
            return
        self._require_running()
        execution = request.execution
        if self._store.state_of(execution.id) is not None:
            return
        locality = self._config.job_admission_control.locality
        decision = await decide(execution, registry=self._registry, max_capacity=self._capacity.total, locality=locality)
        if not decision.accepted or decision.resources is None:
            self._store.create(execution, State.BidRejected, decision.reason)
            refusal = BidResult(execution_id=execution.id, job_id=execution.job_id, accepted=False, reason=decision.reason)
            await self._reports.report(self._orchestrator.on_bid_result(refusal))
            return
        if not self._store.create(execution, State.BidAccepted):
            return
        self._finished[execution.id] = asyncio.Event()
        # Report the bid before queueing, so the orchestrator never hears "Running" before "accepted".
        if execution.desired_state.state_type is ExecutionDesiredStateType.Pending:
            # A Go orchestrator waits for it to decide: never held.
            accepted = BidResult(execution_id=execution.id, job_id=execution.job_id, accepted=True)
            await self._reports.report(self._orchestrator.on_bid_result(accepted))
        else:
            await self._reports.step(self._orchestrator, execution.id, execution.job_id, State.BidAccepted)
        if self._draining():
            await self._hand_back(execution.id, execution.job_id)  # the drain began meanwhile
            return
        state = self._store.state_of(execution.id) if self.status is NodeStatus.RUNNING else None
        if state is not State.BidAccepted:
            return  # cancelled (or the node stopped) while the answer was on its way
        queued = QueuedExecution.of(execution, decision.resources)
        if execution.desired_state.state_type is ExecutionDesiredStateType.Pending:
            # A pending bid (a Go orchestrator asks, then accepts or rejects): hold it until BidAccepted.
            self._awaiting_approval[execution.id] = queued
            return
        self._queue.append(queued)
        self._dispatch(execution)

    async def accept_bid(self, request: BidAccepted) -> None:
        """The orchestrator accepted a pending bid: queue it. Idempotent; unknown or started IDs are ignored."""
        queued = self._awaiting_approval.pop(request.execution_id, None)
        if queued is None or self.status not in _SERVING:
            return
        if self.status is NodeStatus.DRAINING:
            await self._hand_back(request.execution_id, queued.job_id)
            return
        if self._store.state_of(request.execution_id) is not State.BidAccepted:
            return  # cancelled meanwhile
        self._queue.append(queued)
        self._dispatch()

    async def cancel_execution(self, request: CancelExecution) -> None:
        """Drop a queued execution or stop a running one; nothing is reported for it afterwards. Idempotent."""
        execution_id = request.execution_id
        record = self._store.get(execution_id) if self.status in _SERVING else None
        if record is None or record.state.is_terminal:
            return
        message = request.reason or "execution cancelled"
        self._awaiting_approval.pop(execution_id, None)
        self._reports.take_steps(execution_id)  # nothing more is reported of it, held steps neither
        task = self._running.get(execution_id)
        if task is None:
            self._queue.remove(execution_id)
            self._store.update_state(execution_id, State.Cancelled, expected=_ACTIVE, message=message)
            self._mark_finished(execution_id)
            self._dispatch()
            return
        self._cancel_requested[execution_id] = message
        task.cancel()
        # Wait (bounded) so capacity is free and the state is final when the orchestrator hears back.
        await asyncio.wait({task}, timeout=_CANCEL_WAIT_S)

    def stream_logs(self, request: LogStreamRequest) -> AsyncIterator[ExecutionLog]:
        """The execution's stdout (Type 1) and stderr (Type 2) lines. Raises NotFoundError at once if unknown."""
        record = self._store.get(request.execution_id)
        if record is None:
            raise NotFoundError(
                f"execution {request.execution_id} not found on compute node {self.node_id}", component="Compute"
            )
        finished = self._finished.get(request.execution_id)
        if finished is None:
            # Not run by this process: it ended before (or never ran here); either way nothing more will come.
            finished = asyncio.Event()
            finished.set()
        results = self._runner.results_dir(request.execution_id)
        return stream_log_files(
            stdout_path=results / c.RESULT_STDOUT,
            stderr_path=results / c.RESULT_STDERR,
            follow=request.follow,
            tail=request.tail,
            finished=finished,
        )

    # --- queue and executions -------------------------------------------------------------------------

    def _dispatch(self, offered: Execution | None = None) -> None:
        """Start queued executions in FIFO order while the head fits the available capacity.

        `offered`: the execution just queued, as it was offered; when it starts at once (an idle node)
        it is not read back from the store (parsing it with its job cost a trivial job 1-2 %)."""
        while (head := self._queue.head()) is not None and self.status is NodeStatus.RUNNING:
            if not self._capacity.try_allocate(head.execution_id, head.resources):
                break  # strict FIFO: a small later job does not overtake a big one waiting for room
            self._queue.popleft()
            if offered is not None and offered.id == head.execution_id:
                self._start_task(offered, head.resources)
                continue
            record = self._store.get(head.execution_id)
            if record is None:  # cannot happen while the store is open: queued means stored
                logger.error("queued execution %s is not in the store: dropped", head.execution_id)
                self._capacity.release(head.execution_id)
                continue
            self._start_task(record.execution, head.resources)
        self._info_changed.set()

    def _start_task(self, execution: Execution, resources: Resources, *, resume: bool = False) -> None:
        """Run (or, after a restart, resume) `execution` in a task of its own, holding `resources`."""
        execution_id = execution.id
        if resume:
            self._finished[execution_id] = asyncio.Event()
            if not self._capacity.try_allocate(execution_id, resources):
                # It runs already: taking it back is not a choice. Only a smaller capacity config gets here.
                logger.warning("execution %s taken back beyond the node's capacity", execution_id)
        work = self._resume(execution) if resume else self._execute(execution)
        task = asyncio.create_task(work, name=f"execution-{execution_id}")
        self._running[execution_id] = task
        task.add_done_callback(functools.partial(self._on_execution_done, execution_id))

    def _on_execution_done(self, execution_id: str, task: asyncio.Task[None]) -> None:
        self._running.pop(execution_id, None)
        reason = self._cancel_requested.pop(execution_id, None)
        if reason is not None and task.cancelled():
            # A task cancelled before its first step never ran `_execute`'s handler: record the cancel here.
            try:
                self._store.update_state(execution_id, State.Cancelled, expected=_ACTIVE, message=reason)
            except BacalhauError:
                logger.warning("could not record the cancel of %s", execution_id, exc_info=True)
        self._capacity.release(execution_id)
        self._mark_finished(execution_id)
        if not task.cancelled() and task.exception() is not None:
            logger.error("execution %s task failed", execution_id, exc_info=task.exception())
        self._dispatch()

    def _mark_finished(self, execution_id: str) -> None:
        event = self._finished.pop(execution_id, None)
        if event is not None:
            event.set()
        self._info_changed.set()

    async def _execute(self, execution: Execution) -> None:
        try:
            await self._execute_and_report(execution)
        finally:
            # After the report: the user should not wait for the staging area to be deleted.
            await self._runner.cleanup(execution.id)

    async def _resume(self, execution: Execution) -> None:
        try:
            try:
                outcome = await self._runner.resume(execution, on_publishing=lambda: self._publishing(execution))
            except asyncio.CancelledError:
                if await self._stopped(execution.id, execution.job_id):
                    raise
                return
            if outcome is None:
                logger.warning("execution %s: %s", execution.id, LOST_MESSAGE)
                outcome = RunFailed(LOST_MESSAGE, retryable_details())
            await self._conclude(execution, outcome)
        finally:
            await self._runner.cleanup(execution.id)

    async def _execute_and_report(self, execution: Execution) -> None:
        execution_id, job_id = execution.id, execution.job_id
        try:
            if not self._store.update_state(execution_id, State.Running, expected=[State.BidAccepted]):
                return
            await self._reports.step(self._orchestrator, execution_id, job_id, State.Running)
            outcome = await self._runner.run(
                execution, on_publishing=lambda: self._publishing(execution), cleanup=False
            )
        except asyncio.CancelledError:
            if await self._stopped(execution_id, job_id):
                raise
            return
        await self._conclude(execution, outcome)

    async def _stopped(self, execution_id: str, job_id: str) -> bool:
        """An execution's task was cancelled: record why. False when the orchestrator asked for it (it
        expects no further report, and the cancellation ends there); True when the node is stopping."""
        if execution_id in self._cancel_requested:
            message = self._cancel_requested[execution_id]
            self._store.update_state(execution_id, State.Cancelled, expected=_ACTIVE, message=message)
            return False
        await self._fail_on_stop(execution_id, job_id)
        return True

    async def _conclude(self, execution: Execution, outcome: ExecutionOutcome) -> None:
        """Record and report how a run ended (unless a cancel raced its end)."""
        execution_id, job_id = execution.id, execution.job_id
        if execution_id in self._cancel_requested:
            return  # a cancel raced the finish: it must not be reported as a success
        if isinstance(outcome, RunSucceeded):
            if self._store.update_state(
                execution_id, State.Completed, expected=[State.Running, State.Publishing],
                run_output=outcome.run_output, published_result=outcome.published_result,
            ):
                await self._reports.report(
                    self._orchestrator.on_run_result(
                        RunResult(
                            execution_id=execution_id,
                            job_id=job_id,
                            run_output=outcome.run_output,
                            published_result=outcome.published_result,
                            details=outcome.details,
                            steps=self._reports.take_steps(execution_id),
                        )
                    )
                )
        else:
            await self._fail(execution, outcome)

    async def _fail(self, execution: Execution, outcome: RunFailed) -> None:
        if self._store.update_state(
            execution.id,
            State.Failed,
            expected=[State.Running, State.Publishing],
            message=outcome.message,
            run_output=outcome.run_output,
        ):
            await self._reports.report(
                self._orchestrator.on_compute_error(
                    ComputeError(
                        execution_id=execution.id,
                        job_id=execution.job_id,
                        message=outcome.message,
                        run_output=outcome.run_output,
                        details=outcome.details,
                        steps=self._reports.take_steps(execution.id),
                    )
                )
            )

    async def _publishing(self, execution: Execution) -> None:
        self._store.update_state(execution.id, State.Publishing, expected=[State.Running])
        await self._reports.step(self._orchestrator, execution.id, execution.job_id, State.Publishing)

    async def _fail_on_stop(self, execution_id: str, job_id: str) -> None:
        if self._drained:
            # Stopped on purpose at the end of a drain: handed back, not the job's failure.
            await self._hand_back(execution_id, job_id)
            return
        if not self._store.update_state(execution_id, State.Failed, expected=_ACTIVE, message=STOP_MESSAGE):
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_SHUTDOWN_REPORT_TIMEOUT_S):
                await self._reports.report(self._interrupted(execution_id, job_id, STOP_MESSAGE))

    async def _refuse_while_draining(self, execution: Execution) -> None:
        """An offer that reached a draining node: recorded and handed straight back (idempotent)."""
        if self._store.get(execution.id) is not None:
            return
        if self._store.create(execution, State.BidAccepted):
            await self._hand_back(execution.id, execution.job_id)

    def _interrupted(
        self, execution_id: str, job_id: str, message: str, *, handed_back: bool = False
    ) -> Awaitable[None]:
        error = interruption(execution_id, job_id, message, handed_back=handed_back)
        error.steps = self._reports.take_steps(execution_id)
        return self._orchestrator.on_compute_error(error)

    async def _info_loop(self) -> None:
        """Send node info when the queue or running set changed: the first change at once, then at
        most one send per INFO_MIN_INTERVAL_S, the changes in between coalesced into it."""
        while True:
            await self._info_changed.wait()
            self._info_changed.clear()
            await self._reports.send(self._orchestrator.update_node_info(NodeInfoUpdate(node_info=self.node_info())))
            # Every job starts and ends: without a pause, two full node infos per job (plugins, capacity,
            # holdings, over the transport), more work than a short job itself.
            await asyncio.sleep(INFO_MIN_INTERVAL_S)

    def _draining(self) -> bool:
        # A method, not an inline check: the status changes across awaits, which type narrowing ignores.
        return self.status is NodeStatus.DRAINING

    def _require_running(self) -> None:
        if self.status is not NodeStatus.RUNNING:
            raise BacalhauError(
                f"compute node {self.node_id} is not running ({self.status.value})",
                code=ErrorCode.ServiceUnavailable,
                component="Compute",
            )

