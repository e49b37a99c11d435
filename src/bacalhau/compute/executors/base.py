"""The Executor protocol: how the compute runner hands one execution to an engine.

The runner prepares inputs and the results folder, then calls `run`; the executor writes the task's
stdout/stderr to the given files while it runs (so `job logs -f` can follow them) and returns how the
task exited. An executor never publishes and never talks to the orchestrator.

An executor whose tasks outlive the node's process (containers) may also be `Reattachable`: after a
crash (kill -9) the restarted node takes its executions back instead of running them again::

    node start ── remove_leftovers(keep=executions it holds) ── reattach(request) per held execution
                                                                   │ task still running: wait for it
                                                                   │ task exited meanwhile: collect it
                                                                   │ task gone: None (the result is lost)
                                                                   v
                                                           RunOutcome, as `run` returns it

An executor that runs tasks inside the node's process (wasm) cannot: its tasks died with the process.

An executor that gives a task a filesystem of its own besides the mounted folders (a container's
writable layer) `MeasuresScratch`, so that the task's disk limit counts what it writes there too.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from bacalhau.models.job import NetworkConfig, SpecConfig
from bacalhau.models.resources import Resources


@dataclass(frozen=True)
class MountedInput:
    """A staged input: the host path holding the data, where it appears in the task, and its access."""

    host_path: Path
    target: str
    read_only: bool = True
    # The InputSource's Alias, if any: the wasm executor accepts it as an EntryModule/ImportModules name.
    alias: str = ""
    # Staged by the node into a folder of its own, deleted after the run or shared read-only between
    # runs (not a user's local path): an executor may then expose that folder itself.
    private: bool = False


@dataclass(frozen=True)
class MountedOutput:
    """A result path: a writable host folder that appears at `target` inside the task."""

    name: str
    host_path: Path
    target: str


@dataclass(frozen=True)
class RunRequest:
    """What an executor is asked to run: the execution's task, its mounts and where its output goes."""

    execution_id: str
    job_id: str
    job_type: str
    engine: SpecConfig
    # Final environment: the task's Env (env:VAR references already resolved) plus BACALHAU_* system vars.
    env: dict[str, str]
    inputs: list[MountedInput]
    outputs: list[MountedOutput]
    resources: Resources
    network: NetworkConfig
    stdout_path: Path
    stderr_path: Path
    # Seconds; None means no limit. The runner enforces it too, as a backstop.
    timeout_s: float | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunOutcome:
    """How the task ended. A non-zero exit code is an outcome, not an error (Bacalhau semantics)."""

    exit_code: int
    # Extra facts worth recording on the execution (e.g. the image digest, module hash).
    details: dict[str, str] = field(default_factory=dict)


class Executor(Protocol):
    """One execution engine. Implementations translate their library's errors into ExecutionError."""

    def is_installed(self) -> bool:
        """True when the engine can run tasks on this node (library present, daemon reachable)."""
        ...

    def validate(self, engine: SpecConfig, *, network: NetworkConfig | None = None) -> None:
        """Raise ValidationFailed (with field paths under `Engine.Params`) if the params are unusable,
        or an error saying why this node will not give the task the network it asks for."""
        ...

    async def run(self, request: RunRequest) -> RunOutcome:
        """Run the task to completion and return its outcome.

        Raises ExecutionError with a clear message when the task cannot run or is cut short
        (invalid module, missing entrypoint, trap, out of memory, timeout, cancellation).
        Not idempotent: each call runs the task again.
        """
        ...

    async def cancel(self, execution_id: str) -> None:
        """Stop a running execution promptly; its `run` then raises ExecutionError. Idempotent."""
        ...


@runtime_checkable
class Reattachable(Protocol):
    """An executor whose tasks survive the node's process, so that a restarted node can take them back."""

    async def reattach(self, request: RunRequest) -> RunOutcome | None:
        """The task of `request.execution_id` may still exist from an earlier process of this node:
        wait for it to end and return how it ended, as `run` would (its stdout/stderr files rewritten in
        full, its timeout counted from when the task started, `cancel` stopping it).

        Returns None when nothing of the task is left (it never started, or it was removed): its result
        is lost. Raises ExecutionError as `run` does. Not idempotent: the task is removed once collected.
        """
        ...

    async def remove_leftovers(self, *, keep: Collection[str] = ()) -> int:
        """Remove the tasks earlier processes of this node left behind, except those of the execution
        IDs in `keep` (the node is about to re-attach them) and those running now; return how many.
        Raises ExecutionError when the engine cannot be asked. Idempotent."""
        ...


@runtime_checkable
class MeasuresScratch(Protocol):
    """An executor whose tasks can write outside their mounted folders (a container's writable layer)."""

    async def scratch_bytes(self, execution_id: str) -> int:
        """Bytes the task of `execution_id` wrote outside its mounts so far; 0 when it has no task (yet).
        Never raises for an engine hiccup: the disk limit is checked again at the next measure."""
        ...
