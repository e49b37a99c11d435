"""Secrets in job specs, masked: a task's `Env` values and an engine's `EnvironmentVariables`.

One rule for every place that hides them (the API's answers to callers without reveal:env, the diffs
they read): every value reads `********` except `env:NAME` forwards, which name a variable the compute
node supplies and hold no secret.
"""

from __future__ import annotations

from typing import Any

from bacalhau.models.constants import ENV_FORWARD_PREFIX, REDACTED_MASK


def masked_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with every value masked except forwards (`env:NAME`)."""
    return {k: v if v.startswith(ENV_FORWARD_PREFIX) else REDACTED_MASK for k, v in env.items()}


def masked_assignments(items: list[object]) -> list[object]:
    """`KEY=VALUE` strings (a docker engine's EnvironmentVariables) with their values masked as masked_env."""
    out: list[object] = []
    for item in items:
        key, sep, value = str(item).partition("=")
        out.append(f"{key}={masked_env({key: value})[key]}" if sep else item)
    return out


def masked(data: Any) -> Any:
    """`data` (a JSON-ready answer, or a job's wire form) with every task's secrets masked, in place;
    returns it. Walks dicts and lists only: linear in its size, which paging bounds."""
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            tasks = node.get("Tasks")
            if isinstance(tasks, list):
                for task in tasks:
                    if isinstance(task, dict):
                        _mask_task(task)
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))
    return data


def _mask_task(task: dict[str, Any]) -> None:
    env = task.get("Env")
    if isinstance(env, dict):
        task["Env"] = masked_env({str(k): str(v) for k, v in env.items()})
    engine = task.get("Engine")
    params = engine.get("Params") if isinstance(engine, dict) else None
    if not isinstance(params, dict):
        return
    for name, value in list(params.items()):
        if name.lower() != "environmentvariables":
            continue
        if isinstance(value, list):  # docker: KEY=VALUE strings
            params[name] = masked_assignments(value)
        elif isinstance(value, dict):  # wasm: a map
            params[name] = masked_env({str(k): str(v) for k, v in value.items()})
