"""State enums for jobs, executions and evaluations, and how their wire values are read (no pydantic).

The pydantic wire annotations built on these live in models/state.py, which re-exports everything here;
this module exists so that code reading the server's JSON directly (the CLI's fast read paths) can name
states without importing pydantic.

Job states travel as names (`"Running"`), execution states as integers (`6`), exactly as Bacalhau's Go
server emits them (CONTRACT.md section 2.0). Both are accepted either way on input, but an unknown
execution state name is rejected rather than silently mapped.

Job lifecycle (batch/ops)::

    Pending --> Queued --> Running --> Completed
       |          |           |-----> Failed
       +----------+-----------+-----> Stopped   (user stop; Completed cannot be stopped)

Execution lifecycle (ComputeState)::

    New -> AskForBid -> BidAccepted -> Running -> Publishing -> Completed
                  \\-> BidRejected          \\-> Failed / Cancelled
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any


class JobStateType(enum.IntEnum):
    """Observed state of a job; terminal states never change again (except by rerun)."""

    Undefined = 0
    Pending = 1
    Queued = 2
    Running = 3
    Completed = 4
    Failed = 5
    Stopped = 6

    @property
    def is_terminal(self) -> bool:
        """Completed, Failed or Stopped: the job will not change again (except by rerun)."""
        return self in (JobStateType.Completed, JobStateType.Failed, JobStateType.Stopped)

    @property
    def is_rerunnable(self) -> bool:
        """Whether the job may be rerun: any state but Undefined, Pending and Queued."""
        return self not in (JobStateType.Undefined, JobStateType.Pending, JobStateType.Queued)


class ExecutionStateType(enum.IntEnum):
    """Observed state of an execution on its compute node."""

    Undefined = 0
    New = 1
    AskForBid = 2
    AskForBidAccepted = 3
    AskForBidRejected = 4
    BidAccepted = 5
    Running = 6
    Publishing = 7
    BidRejected = 8
    Completed = 9
    Failed = 10
    Cancelled = 11

    @property
    def is_terminal(self) -> bool:
        """Whether the execution has ended: a rejected bid, Completed, Failed or Cancelled."""
        return self in _EXEC_TERMINAL

    @property
    def is_executing(self) -> bool:
        """Whether the execution is under way on its node: BidAccepted, Running or Publishing."""
        return self in (ExecutionStateType.BidAccepted, ExecutionStateType.Running, ExecutionStateType.Publishing)

    @property
    def is_discarded(self) -> bool:
        """Discarded executions are ignored for logs and results."""
        return self in (
            ExecutionStateType.AskForBidRejected,
            ExecutionStateType.BidRejected,
            ExecutionStateType.Cancelled,
            ExecutionStateType.Failed,
        )


_EXEC_TERMINAL = frozenset(
    {
        ExecutionStateType.AskForBidRejected,
        ExecutionStateType.BidRejected,
        ExecutionStateType.Completed,
        ExecutionStateType.Failed,
        ExecutionStateType.Cancelled,
    }
)


class ExecutionDesiredStateType(enum.IntEnum):
    """What the orchestrator wants an execution to do."""

    Pending = 0
    Running = 1
    Stopped = 2

    @property
    def is_terminal(self) -> bool:
        """Whether the orchestrator wants the execution stopped."""
        return self is ExecutionDesiredStateType.Stopped


class EvaluationStatus(enum.StrEnum):
    """Where an evaluation is in its processing (lower-case names on the wire)."""

    Blocked = "blocked"
    Pending = "pending"
    Complete = "complete"
    Failed = "failed"
    Canceled = "canceled"


class EvaluationTrigger(enum.StrEnum):
    """What caused an evaluation (kebab-case names on the wire, e.g. `job-register`)."""

    JobRegister = "job-register"
    JobCancel = "job-cancel"
    JobRerun = "job-rerun"
    JobUpdate = "job-update"
    JobQueue = "job-queue"
    JobTimeout = "job-timeout"
    ExecFailure = "exec-failure"
    ExecUpdate = "exec-update"
    ExecTimeout = "exec-timeout"
    ExecLimit = "exec-limit"
    NodeJoin = "node-join"
    NodeLeave = "node-leave"


class JobHistoryType(enum.IntEnum):
    """Whether a history event is about the job itself or about one of its executions."""

    Undefined = 0
    JobLevel = 1
    ExecutionLevel = 2


def enum_parser(enum_cls: type[enum.IntEnum], unknown_default: enum.IntEnum | None) -> Callable[[Any], Any]:
    """A reader of `enum_cls` wire values: a member, its number, or its name in any case; anything else is
    `unknown_default`, or a ValueError naming the valid members when there is none."""
    by_name = {m.name.lower(): m for m in enum_cls}

    def parse(value: Any) -> Any:
        """The member `value` stands for, read as enum_parser describes."""
        if isinstance(value, enum_cls):
            return value
        if isinstance(value, bool):
            raise ValueError(f"invalid {enum_cls.__name__}: {value!r}")
        if isinstance(value, int):
            try:
                return enum_cls(value)
            except ValueError:
                if unknown_default is not None:
                    return unknown_default
                raise ValueError(f"unknown {enum_cls.__name__} {value}") from None
        if isinstance(value, str):
            stripped = value.strip()
            if stripped.lstrip("-").isdigit():
                return parse(int(stripped))
            member = by_name.get(stripped.lower())
            if member is not None:
                return member
            if unknown_default is not None:
                return unknown_default
            valid = ", ".join(m.name for m in enum_cls)
            raise ValueError(f"unknown {enum_cls.__name__} {value!r}; valid: {valid}")
        if value is None and unknown_default is not None:
            return unknown_default
        raise ValueError(f"invalid {enum_cls.__name__}: {value!r}")

    return parse
