"""Job Env values (and a docker engine's EnvironmentVariables) in API answers: shown only to callers who
may see them.

A job's `Env` often carries secrets (tokens, passwords). With API.Auth.Users, a caller whose capabilities
do not grant `reveal:env` (auth/capabilities.py) reads every value as `********` wherever a job appears
(a job, a list of jobs, a job's versions, an execution's embedded job); a value forwarded from the
compute node (`env:NAME`) is not a secret and is shown. Without users every caller sees everything, as
in Bacalhau (such a node listens on loopback unless told otherwise).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from bacalhau.models.secrets import masked


def may_reveal_env(request: HTTPConnection) -> bool:
    """Whether the caller may see Env values (set by the authorization middleware; True without users)."""
    return bool(getattr(request.state, "reveal_env", True))


def for_caller(request: HTTPConnection, data: Any) -> Any:
    """`data` as this caller may see it."""
    return data if may_reveal_env(request) else masked(data)
