"""Executors for the compute tests, importable by name (conftest modules cannot be imported reliably).

`ScriptedExecutor` is an Executor whose tasks do what their `Engine.Params` say (print, block until
released, fail, exit with a code), so queueing, cancellation, timeouts and log following can be driven
step by step; `ReattachingExecutor` adds tasks that outlive the node's process, as containers do, and
`ScratchWritingExecutor` tasks that write outside their mounts.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path

from bacalhau.compute.executors.base import RunOutcome, RunRequest
from bacalhau.models.errors import ErrorCode, ExecutionError, FieldError, ValidationFailed
from bacalhau.models.job import NetworkConfig, SpecConfig


class ScriptedExecutor:
    """An Executor driven by Engine.Params.

    Params: `Stdout`/`Stderr` (written at start), `Block` (wait for `release()` or cancel), `After`
    (stdout written once released), `Error` (raise ExecutionError with this message), `ExitCode`,
    `IgnoreTimeout` (a misbehaving engine: only the runner's backstop stops it), `Invalid` (fails validate).
    """

    def __init__(self) -> None:
        self.requests: dict[str, RunRequest] = {}
        self.started: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._release: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.cancelled: set[str] = set()
        self.active = 0
        self.max_active = 0

    def is_installed(self) -> bool:
        return True

    def validate(self, engine: SpecConfig, *, network: NetworkConfig | None = None) -> None:
        if engine.param("Invalid"):
            raise ValidationFailed([FieldError("Engine.Params.Invalid", "rejected by the scripted engine")])

    async def run(self, request: RunRequest) -> RunOutcome:
        params = request.engine
        self.requests[request.execution_id] = request
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.started[request.execution_id].set()
        try:
            _append(request.stdout_path, params.param("Stdout", ""))
            _append(request.stderr_path, params.param("Stderr", ""))
            if params.param("Block"):
                release = self._release[request.execution_id]
                limit = None if params.param("IgnoreTimeout") else request.timeout_s
                try:
                    async with asyncio.timeout(limit):
                        await release.wait()
                except TimeoutError:
                    raise ExecutionError("scripted task timed out", code=ErrorCode.TimeOut) from None
                if request.execution_id in self.cancelled:
                    raise ExecutionError("scripted task cancelled")
                _append(request.stdout_path, params.param("After", ""))
            if params.param("Error"):
                raise ExecutionError(str(params.param("Error")), hint="scripted hint")
            return RunOutcome(exit_code=int(params.param("ExitCode", 0)))
        finally:
            self.active -= 1

    async def cancel(self, execution_id: str) -> None:
        self.cancelled.add(execution_id)
        self._release[execution_id].set()

    def release(self, execution_id: str) -> None:
        """Let a blocked task finish."""
        self._release[execution_id].set()


class ReattachingExecutor(ScriptedExecutor):
    """A ScriptedExecutor whose tasks outlive the node's process, as containers do (executors/base.py
    Reattachable). `survivors` holds what an earlier process left: execution ID -> how its task ended
    (an `Event` for one still running: it ends with exit code 0 when set). Anything else is gone."""

    def __init__(self) -> None:
        super().__init__()
        self.survivors: dict[str, RunOutcome | asyncio.Event] = {}
        self.reattached: list[str] = []
        self.kept: list[str] = []

    async def reattach(self, request: RunRequest) -> RunOutcome | None:
        self.reattached.append(request.execution_id)
        survivor = self.survivors.pop(request.execution_id, None)
        if isinstance(survivor, asyncio.Event):
            await survivor.wait()
            survivor = RunOutcome(exit_code=0)
        if survivor is not None:
            request.stdout_path.write_text("output of the earlier process\n")
        return survivor

    async def remove_leftovers(self, *, keep: Collection[str] = ()) -> int:
        self.kept = sorted(keep)
        return 0


class ScratchWritingExecutor(ScriptedExecutor):
    """A ScriptedExecutor whose tasks also write outside their mounts, as containers do (executors/base.py
    MeasuresScratch): `scratch[execution_id]` is what the engine would report."""

    def __init__(self) -> None:
        super().__init__()
        self.scratch: dict[str, int] = {}

    async def scratch_bytes(self, execution_id: str) -> int:
        return self.scratch.get(execution_id, 0)


def _append(path: Path, text: str) -> None:
    if text:
        with path.open("a", encoding="utf-8") as f:
            f.write(text)
