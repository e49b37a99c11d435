"""State enums for jobs, executions and evaluations, with their wire encodings (pydantic annotations).

The enums, their lifecycles and the parser of their wire values live in models/state_types.py (no
pydantic) and are re-exported here. Job states travel as names (`"Running"`), execution states as
integers (`6`), exactly as Bacalhau's Go server emits them (CONTRACT.md section 2.0).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

from bacalhau.models.state_types import (
    EvaluationStatus,
    EvaluationTrigger,
    ExecutionDesiredStateType,
    ExecutionStateType,
    JobHistoryType,
    JobStateType,
    enum_parser,
)

# The enums are defined (without pydantic) in state_types and re-exported here, where they always lived.
__all__ = [
    "DesiredStateWire",
    "EvaluationStatus",
    "EvaluationTrigger",
    "ExecutionDesiredStateType",
    "ExecutionStateType",
    "ExecutionStateWire",
    "JobHistoryType",
    "JobHistoryTypeWire",
    "JobStateType",
    "JobStateWire",
]

# Job states: names on the wire; an unknown name means Undefined (as Go's UnmarshalText does).
JobStateWire = Annotated[
    JobStateType,
    BeforeValidator(enum_parser(JobStateType, JobStateType.Undefined)),
    PlainSerializer(lambda v: v.name, return_type=str),
]
# Execution states: integers on the wire; unknown values rejected.
ExecutionStateWire = Annotated[
    ExecutionStateType,
    BeforeValidator(enum_parser(ExecutionStateType, None)),
    PlainSerializer(int, return_type=int),
]
DesiredStateWire = Annotated[
    ExecutionDesiredStateType,
    BeforeValidator(enum_parser(ExecutionDesiredStateType, None)),
    PlainSerializer(int, return_type=int),
]
JobHistoryTypeWire = Annotated[
    JobHistoryType,
    BeforeValidator(enum_parser(JobHistoryType, JobHistoryType.Undefined)),
    PlainSerializer(lambda v: v.name, return_type=str),
]
