"""One execution, start to finish, on this node.

::

    prepare inputs ---------> results dir -------> env ---------> executor.run ----> exitCode
    (storage providers,       <DataDir>/compute/    Task.Env +     stdout/stderr      file
     under a private          results/<id>/ with    env:VAR +      written live;
     work dir)                one folder per        BACALHAU_*     timeout enforced
                              ResultPath                           (+ backstop)
                                                                        |
    cleanup staged inputs  <---- RunSucceeded / RunFailed <---- publish results dir
    (always, in finally)                                         (publisher)

Every problem with this execution (bad input, unknown plugin, executor error, timeout, even a bug in a
plugin) becomes a RunFailed carrying the error's code and hint; nothing escapes to harm the other
executions. Cancellation (asyncio.CancelledError) is the one exception: it stops the executor, cleans
up and propagates.

`resume` takes back an execution an earlier process of this node started (killed with kill -9)::

    results dir gone ─────────────────────────────────────────────> lost (None)
    exitCode written (it was publishing) ─────────────────────────> publish
    else executor.reattach ── task still there: wait / collect ───> exitCode -> publish
                           └─ task gone ──────────────────────────> lost (None)

Nothing is staged again and the results folder is kept: the task's result paths are bind mounts it
wrote into. A lost execution must run again; the caller says so in its history.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import functools
import logging
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from bacalhau.compute import disk_usage
from bacalhau.compute.blank_results import BlankResults
from bacalhau.compute.capacity import execution_resources
from bacalhau.compute.environment import task_environment
from bacalhau.compute.executors.base import (
    Executor,
    MeasuresScratch,
    MountedInput,
    MountedOutput,
    RunOutcome,
    RunRequest,
)
from bacalhau.compute.registry import PluginRegistry
from bacalhau.compute.storage.base import PreparedInput, StorageProvider, input_name
from bacalhau.compute.storage.workdir import remove_staged
from bacalhau.models import constants as c
from bacalhau.models.errors import (
    BacalhauError,
    ErrorCode,
    ExecutionError,
    PublishError,
    StorageError,
)
from bacalhau.models.execution import Execution, RunCommandResult
from bacalhau.models.job import InputSource, Job, ResultPath, SpecConfig, Task
from bacalhau.models.limits import TIMER_CEILING_S
from bacalhau.models.resources import format_bytes

logger = logging.getLogger(__name__)

TIMEOUT_HINT = "Increase the task timeout or allocate more resources"
_RESERVED_RESULT_NAMES = frozenset({c.RESULT_STDOUT, c.RESULT_STDERR, c.RESULT_EXIT_CODE})
# Jobs meant to run until stopped ignore task timeouts (Bacalhau applies them to batch and ops only).
_TIMED_JOB_TYPES = frozenset({c.JOB_TYPE_BATCH, c.JOB_TYPE_OPS})


@dataclass(frozen=True)
class RunSucceeded:
    """The task ran (whatever its exit code) and its results were published."""

    run_output: RunCommandResult
    published_result: SpecConfig
    # Facts the executor reported (module hash, image digest...), recorded on the execution.
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunFailed:
    """The execution failed. `details` carries ErrorCode, Hint, Retryable and FailsExecution."""

    message: str
    details: dict[str, str] = field(default_factory=dict)
    run_output: RunCommandResult | None = None


ExecutionOutcome = RunSucceeded | RunFailed
OutcomeT = TypeVar("OutcomeT", RunOutcome, RunOutcome | None)


def failure_details(error: BacalhauError) -> dict[str, str]:
    """The Details map of a ComputeError: the error's own facts (image, sizes), then Bacalhau's
    well-known keys (which win)."""
    return {
        **error.details,
        "ErrorCode": str(error.code),
        "Hint": error.hint,
        "Retryable": "true" if error.retryable else "false",
        "FailsExecution": "true",
    }


def effective_timeout_s(job: Job) -> float | None:
    """ExecutionTimeout, else TotalTimeout; None when neither is set or the job type ignores them."""
    if job.type not in _TIMED_JOB_TYPES:
        return None
    timeouts = job.task.timeouts
    seconds = timeouts.execution_timeout or timeouts.total_timeout
    if seconds <= 0:
        return None
    # Orchestrators validate timeouts (models/limits.py), but this node runs what any peer sends: a
    # longer one is no timeout at all, and would overflow thread and socket timers (OverflowError).
    return float(min(seconds, TIMER_CEILING_S))


def timeout_error(timeout_s: float) -> ExecutionError:
    """Bacalhau's message for an execution cut short by its timeout."""
    return ExecutionError(
        f"Execution timed out. Execution took longer than {timeout_s:g}s", code=ErrorCode.TimeOut, hint=TIMEOUT_HINT
    )


class ExecutionRunner:
    """Runs executions with the node's plugins. Stateless between runs; safe to run many at once."""

    def __init__(
        self,
        *,
        registry: PluginRegistry,
        data_dir: Path,
        env_allow_list: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
        backstop_grace_s: float = 1.0,
    ) -> None:
        self._registry = registry
        self._compute_dir = Path(data_dir) / "compute"
        self._env_allow_list = list(env_allow_list)
        self._clock = clock
        self._backstop_grace_s = backstop_grace_s
        self._staged: dict[str, list[tuple[StorageProvider, PreparedInput]]] = {}
        self._blanks = BlankResults(self._compute_dir / "results-spare")

    def close(self) -> None:
        """Stop making results folders ahead (blank_results.py)."""
        self._blanks.close()

    def results_dir(self, execution_id: str) -> Path:
        """Where an execution's stdout, stderr, exitCode and result folders are written."""
        return self._compute_dir / "results" / execution_id

    def work_dir(self, execution_id: str) -> Path:
        """Private staging area for the execution's inputs (a numbered folder each); deleted when the run ends."""
        return self._compute_dir / "executions" / execution_id

    async def run(
        self,
        execution: Execution,
        *,
        on_publishing: Callable[[], Awaitable[None]] | None = None,
        cleanup: bool = True,
    ) -> ExecutionOutcome:
        """Run `execution` to the end and say how it went. Only cancellation propagates.

        With cleanup=False the staged inputs stay until `cleanup(execution_id)` is called, so a caller
        can report the outcome first: deleting the staging area is not something the user waits for.
        `on_publishing` is awaited before the results are published, when the task names a publisher.
        """
        prepared: list[tuple[StorageProvider, PreparedInput]] = []
        try:
            return await self._run(execution, prepared, on_publishing)
        except BacalhauError as exc:
            return RunFailed(exc.message, failure_details(exc), self._partial_output(execution.id, exc.message))
        except Exception as exc:  # a plugin bug must fail this execution only, never the node
            logger.exception("execution %s failed unexpectedly", execution.id)
            # The node's fault (a crashed plugin, a full disk), not the job's: another node may do better.
            error = ExecutionError(f"internal error while running the execution: {exc}", retryable=True)
            return RunFailed(error.message, failure_details(error), self._partial_output(execution.id, error.message))
        finally:
            if cleanup:
                await self._cleanup(execution.id, prepared)
            else:
                self._staged[execution.id] = prepared

    async def cleanup(self, execution_id: str) -> None:
        """Delete what a run with cleanup=False staged. Idempotent."""
        await self._cleanup(execution_id, self._staged.pop(execution_id, []))

    async def resume(
        self, execution: Execution, *, on_publishing: Callable[[], Awaitable[None]] | None = None
    ) -> ExecutionOutcome | None:
        """Take back `execution`, which an earlier process of this node started (see the module
        docstring), and say how it went; None when its result is lost. Only cancellation propagates.
        What it staged stays until `cleanup(execution_id)`.
        """
        self._staged[execution.id] = []  # nothing staged by this process; `cleanup` removes the work dir
        try:
            return await self._resume(execution, on_publishing)
        except BacalhauError as exc:
            return RunFailed(exc.message, failure_details(exc), self._partial_output(execution.id, exc.message))
        except Exception as exc:  # a plugin bug must fail this execution only, never the node
            logger.exception("execution %s failed unexpectedly", execution.id)
            # The node's fault (a crashed plugin, a full disk), not the job's: another node may do better.
            error = ExecutionError(f"internal error while running the execution: {exc}", retryable=True)
            return RunFailed(error.message, failure_details(error), self._partial_output(execution.id, error.message))

    def can_resume(self, execution: Execution) -> bool:
        """Whether `resume` may find something to collect: the task's exit code was written (it was
        publishing), or its executor can re-attach to tasks that outlive the node's process."""
        job = execution.job
        if job is None or not job.tasks:
            return False
        if written_exit_code(self.results_dir(execution.id)) is not None:
            return True
        return self._registry.reattachable(job.task.engine.type) is not None

    async def _resume(
        self, execution: Execution, on_publishing: Callable[[], Awaitable[None]] | None
    ) -> RunSucceeded | None:
        job, task = _job_task(execution)
        results = self.results_dir(execution.id)
        if not results.is_dir():
            return None
        self._registry.publisher(task.publisher.type)  # an unknown type fails before any waiting
        request = self._request(execution, job, task, results, inputs=[])
        exit_code = written_exit_code(results)
        if exit_code is not None:  # killed while publishing: the run is over, publish it again
            outcome = RunOutcome(exit_code=exit_code)
        else:
            executor = self._registry.executor(task.engine.type)
            reattacher = self._registry.reattachable(task.engine.type)
            if reattacher is None:
                return None
            found = await self._execute(executor, request, request.timeout_s, start=reattacher.reattach)
            if found is None:
                return None
            outcome = found
            _write_exit_code(results, outcome.exit_code)
        return await self._publish(execution, task, request, outcome, on_publishing)

    async def _run(
        self,
        execution: Execution,
        prepared: list[tuple[StorageProvider, PreparedInput]],
        on_publishing: Callable[[], Awaitable[None]] | None,
    ) -> RunSucceeded:
        job, task = _job_task(execution)
        # Resolve every plugin before doing any work, so an unknown type fails fast and cheaply.
        executor = self._registry.executor(task.engine.type)
        self._registry.publisher(task.publisher.type)
        results = self._fresh_results_dir(execution.id)

        inputs = []
        for source in task.input_sources:
            storage = self._registry.storage(source.source.type)
            staged = await _stage(storage, source, index=len(prepared), work_dir=self.work_dir(execution.id))
            prepared.append((storage, staged))
            inputs.append(MountedInput(
                host_path=staged.host_path, target=source.target, read_only=staged.read_only,
                private=staged.owned or staged.shared
            ))
        request = self._request(execution, job, task, results, inputs=inputs)
        outcome = await self._execute(executor, request, request.timeout_s, start=executor.run)
        _write_exit_code(results, outcome.exit_code)
        return await self._publish(execution, task, request, outcome, on_publishing)

    def _request(
        self, execution: Execution, job: Job, task: Task, results: Path, *, inputs: list[MountedInput]
    ) -> RunRequest:
        """The executor's view of the execution, writing into `results` (its result-path folders made)."""
        return RunRequest(
            execution_id=execution.id,
            job_id=job.id or execution.job_id,
            job_type=job.type,
            engine=task.engine,
            env=task_environment(execution, job, task, allow_list=self._env_allow_list, host_env=os.environ),
            inputs=inputs,
            outputs=[_mount_output(results, rp) for rp in task.result_paths],
            resources=execution_resources(execution),
            network=task.network,
            stdout_path=results / c.RESULT_STDOUT,
            stderr_path=results / c.RESULT_STDERR,
            timeout_s=effective_timeout_s(job),
            labels=dict(job.labels),
        )

    async def _publish(
        self,
        execution: Execution,
        task: Task,
        request: RunRequest,
        outcome: RunOutcome,
        on_publishing: Callable[[], Awaitable[None]] | None,
    ) -> RunSucceeded:
        publisher = self._registry.publisher(task.publisher.type)
        results = request.stdout_path.parent
        # Publishing is a state of its own only for a task that names a publisher, as in Bacalhau's
        # executor: without one, a run goes from Running to Completed (one report and one write less).
        if on_publishing is not None and task.publisher.type.strip():
            await on_publishing()
        try:
            published = await publisher.publish(
                task.publisher, execution.id, request.job_id, results, node_id=execution.node_id
            )
        except BacalhauError:
            raise
        except Exception as exc:
            raise PublishError(f"publishing the results failed: {exc}", retryable=True) from exc
        return RunSucceeded(
            run_output=read_run_output(results, outcome.exit_code),
            published_result=published,
            details=dict(outcome.details),
        )

    async def _within_disk_limit(
        self, executor: Executor, request: RunRequest, start: Callable[[RunRequest], Awaitable[OutcomeT]]
    ) -> OutcomeT:
        """`start(request)`, stopped with a clear error once what the task wrote (its result paths, and
        a container's writable layer) outgrows Resources.Disk."""
        limit = int(request.resources.disk)
        scratch = None
        if isinstance(executor, MeasuresScratch):
            measures = executor
            scratch = functools.partial(measures.scratch_bytes, request.execution_id)
        if limit <= 0 or (not request.outputs and scratch is None):
            return await start(request)
        run = asyncio.ensure_future(start(request))
        paths = [o.host_path for o in request.outputs]
        watch = asyncio.ensure_future(disk_usage.first_excess(paths, limit, scratch=scratch))
        try:
            await asyncio.wait({run, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not run.done() and not watch.done():  # we were cancelled: stop both
                run.cancel()
                watch.cancel()
        if run.done():
            watch.cancel()
            return run.result()
        used = watch.result()
        await _cancel_quietly(executor, request.execution_id)
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await run
        raise ExecutionError(
            f"the task wrote {_where_written(used)}, over its disk limit of {format_bytes(limit)} "
            "(Resources.Disk): stopped",
            code=ErrorCode.ResourceExhausted,
            hint="raise the job's disk (--disk) or make the task write less",
            details={"ResultsBytes": str(used.results_bytes), "ScratchBytes": str(used.scratch_bytes)},
        )

    async def _execute(
        self,
        executor: Executor,
        request: RunRequest,
        timeout_s: float | None,
        *,
        start: Callable[[RunRequest], Awaitable[OutcomeT]],
    ) -> OutcomeT:
        """`start(request)` (`executor.run` or its re-attach) under the timeout backstop; errors translated."""
        started = self._clock()
        # The executor enforces the timeout itself; this deadline is a backstop for one that does not.
        backstop = None if timeout_s is None else timeout_s + self._backstop_grace_s
        deadline = asyncio.timeout(backstop)
        try:
            async with deadline:
                return await self._within_disk_limit(executor, request, start)
        except asyncio.CancelledError:
            await _cancel_quietly(executor, request.execution_id)
            raise
        except Exception as exc:
            if timeout_s is not None and (deadline.expired() or self._clock() - started >= timeout_s):
                if deadline.expired():
                    await _cancel_quietly(executor, request.execution_id)
                raise timeout_error(timeout_s) from exc
            if isinstance(exc, BacalhauError):
                raise
            raise ExecutionError(f"the {request.engine.type} executor failed: {exc}", retryable=True) from exc

    def _fresh_results_dir(self, execution_id: str) -> Path:
        results = self.results_dir(execution_id)
        if self._blanks.take(results):  # one made ahead, with empty stdout, stderr and exitCode
            return results
        try:
            results.mkdir(parents=True)
        except FileExistsError:
            # A leftover folder of an earlier attempt with this ID must not leak into these results.
            shutil.rmtree(results, ignore_errors=True)
            results.mkdir(parents=True)
        # stdout and stderr are created by the executor as the task starts (a log follower waits for
        # them to appear); _write_exit_code makes sure they are there at the end.
        return results

    def _partial_output(self, execution_id: str, error_msg: str) -> RunCommandResult:
        results = self.results_dir(execution_id)
        output = read_run_output(results, -1) if results.is_dir() else RunCommandResult(exit_code=-1)
        return output.model_copy(update={"error_msg": error_msg})

    async def _cleanup(self, execution_id: str, prepared: list[tuple[StorageProvider, PreparedInput]]) -> None:
        for storage, staged in reversed(prepared):
            try:
                await storage.cleanup(staged)
            except Exception:  # cleanup is best effort; a leftover file must not fail the run
                logger.warning("cleanup of input %s failed", input_name(staged.source), exc_info=True)
        # Usually empty by now (each storage removed what it staged): one call on the loop, no thread.
        await remove_staged(self.work_dir(execution_id))


async def _stage(storage: StorageProvider, source: InputSource, *, index: int, work_dir: Path) -> PreparedInput:
    """Validate then stage one input; any non-Bacalhau failure becomes a StorageError naming it."""
    try:
        storage.validate(source)
        return await storage.prepare(source, work_dir)
    except BacalhauError:
        raise
    except Exception as exc:
        raise StorageError(f"input {input_name(source)!r} (#{index}) could not be staged: {exc}") from exc


def _where_written(used: disk_usage.DiskUse) -> str:
    """'1.2 GB to its result paths and 300 MB inside its container', leaving out a part that is empty."""
    parts = []
    if used.results_bytes or not used.scratch_bytes:
        parts.append(f"{format_bytes(used.results_bytes)} to its result paths")
    if used.scratch_bytes:
        parts.append(f"{format_bytes(used.scratch_bytes)} inside its container (outside its mounts)")
    return " and ".join(parts)


async def _cancel_quietly(executor: Executor, execution_id: str) -> None:
    try:
        await executor.cancel(execution_id)
    except Exception:  # the task is being abandoned either way
        logger.warning("executor cancel of %s failed", execution_id, exc_info=True)


def _job_task(execution: Execution) -> tuple[Job, Task]:
    job = execution.job
    if job is None or not job.tasks:
        raise ExecutionError(f"execution {execution.id} carries no job task to run")
    return job, job.task


def written_exit_code(results: Path) -> int | None:
    """The exit code a finished run wrote into its results folder; None if there is none (yet)."""
    try:
        return int((results / c.RESULT_EXIT_CODE).read_text().strip())
    except (OSError, ValueError):
        return None


def _write_exit_code(results: Path, exit_code: int) -> None:
    # Every result has stdout and stderr, empty when the task wrote nothing (or its executor made none).
    # Opened without truncating: what the task wrote stays.
    for name in (c.RESULT_STDOUT, c.RESULT_STDERR):
        os.close(os.open(results / name, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))
    # A restarted node reads it to tell "ran" from "was running". One write of a few bytes: a process
    # killed between the create and the write leaves an empty file, which written_exit_code reads as
    # none (as anything that is not a number), so no temporary file and rename are needed for that.
    fd = os.open(results / c.RESULT_EXIT_CODE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        os.write(fd, str(exit_code).encode())
    finally:
        os.close(fd)


def _mount_output(results: Path, result_path: ResultPath) -> MountedOutput:
    name = result_path.name.strip()
    # The name becomes a folder beside stdout/stderr/exitCode: it must stay inside and not replace them.
    if not name or "/" in name or "\\" in name or name in (".", "..") or name in _RESERVED_RESULT_NAMES:
        raise ExecutionError(
            f"result path name {result_path.name!r} cannot be used as a folder name in the results",
            code=ErrorCode.ValidationError,
            hint="name result paths with a plain folder name other than stdout, stderr and exitCode",
        )
    host_path = results / name
    host_path.mkdir(exist_ok=True)
    return MountedOutput(name=name, host_path=host_path, target=result_path.path)


def read_run_output(results: Path, exit_code: int) -> RunCommandResult:
    """RunOutput for the results folder: the first 2 KB of stdout and stderr, with truncation flags."""
    stdout, stdout_cut = _head(results / c.RESULT_STDOUT)
    stderr, stderr_cut = _head(results / c.RESULT_STDERR)
    return RunCommandResult(
        stdout=stdout, stdout_truncated=stdout_cut, stderr=stderr, stderr_truncated=stderr_cut, exit_code=exit_code
    )


def _head(path: Path, limit: int = c.RUN_OUTPUT_MAX_BYTES) -> tuple[str, bool]:
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError:
        return "", False
    truncated = len(data) > limit
    # An incremental decoder drops a multi-byte character cut in half at the limit instead of mangling it.
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data[:limit], final=not truncated)
    return text, truncated
