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

from bacalhau.models import constants as c


def may_reveal_env(request: HTTPConnection) -> bool:
    """Whether the caller may see Env values (set by the authorization middleware; True without users)."""
    return bool(getattr(request.state, "reveal_env", True))


def masked(data: Any) -> Any:
    """`data` (a JSON-ready answer) with the values of every task's Env masked, in place; returns it.
    Walks dicts and lists only: linear in the answer's size, which paging bounds."""
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            tasks = node.get("Tasks")
            if isinstance(tasks, list):
                for task in tasks:
                    if not isinstance(task, dict):
                        continue
                    env = task.get("Env")
                    if isinstance(env, dict):
                        task["Env"] = c.masked_env({str(k): str(v) for k, v in env.items()})
                    engine = task.get("Engine")
                    params = engine.get("Params") if isinstance(engine, dict) else None
                    if isinstance(params, dict):
                        _mask_engine_env(params)
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))
    return data


def for_caller(request: HTTPConnection, data: Any) -> Any:
    """`data` as this caller may see it."""
    return data if may_reveal_env(request) else masked(data)


def _mask_engine_env(params: dict[str, Any]) -> None:
    """An engine's `EnvironmentVariables` (docker: `KEY=VALUE` strings; wasm: a map): values masked."""
    for name in list(params):
        if name.lower() != "environmentvariables":
            continue
        if isinstance(params[name], list):  # docker: KEY=VALUE strings
            params[name] = c.masked_assignments(params[name])
        elif isinstance(params[name], dict):  # wasm: a map
            params[name] = c.masked_env({str(k): str(v) for k, v in params[name].items()})
