"""What differs between a stored job and a proposed spec: `job run --dry-run` and the update check.

Bacalhau compares with go-cmp (`models.Job.CompareWith`), ignoring what the server owns (ID, State,
Version, Revision, CreateTime, ModifyTime), Meta keys under the reserved `bacalhau.org/` prefix, and
the case of resource quantities (`1GB` is `1gb`). The same projection decides here whether anything
changed; the difference is then shown as a unified diff of both specs as YAML, the shape of a job
file, so that `-` lines are the stored job and `+` lines the submitted one:

    --- stored job j-1234... (version 1)
    +++ submitted spec
    @@ -3,7 +3,7 @@
    -Count: 1
    +Count: 2

An empty string means no difference, as with go-cmp.
"""

from __future__ import annotations

import difflib
import hashlib
from typing import Any

import yaml

from bacalhau.models import constants as c
from bacalhau.models.job import Job

SERVER_MANAGED_FIELDS = ("ID", "State", "Version", "Revision", "CreateTime", "ModifyTime")
_RESOURCE_FIELDS = ("CPU", "Memory", "Disk", "GPU")
# Inline modules are base64 data: URLs of many kilobytes; a diff shows their start and a digest instead.
MAX_SHOWN_CHARS = 120


def spec_key(job: Job) -> dict[str, Any]:
    """What counts as "the same spec" for updates and diffs: equal keys mean nothing to change."""
    data = _projection(job)
    for task in data.get("Tasks") or []:
        resources = task.get("Resources") if isinstance(task, dict) else None
        if isinstance(resources, dict):
            for key in _RESOURCE_FIELDS:
                if isinstance(resources.get(key), str):
                    resources[key] = resources[key].lower()
    return data


def diff_jobs(stored: Job, proposed: Job) -> str:
    """A unified diff from `stored` to `proposed` over their specs, or "" when they are the same spec."""
    if spec_key(stored) == spec_key(proposed):
        return ""
    old, new = _projection(stored), _projection(proposed)
    _keep_resource_spelling(old, new)
    lines = difflib.unified_diff(
        _yaml_lines(old),
        _yaml_lines(new),
        fromfile=f"stored job {stored.id} (version {stored.version})",
        tofile="submitted spec",
        lineterm="",
    )
    return "\n".join(lines)


def _projection(job: Job) -> dict[str, Any]:
    data = job.to_wire()
    for key in SERVER_MANAGED_FIELDS:
        data.pop(key, None)
    data["Meta"] = {k: v for k, v in (data.get("Meta") or {}).items() if not k.startswith(c.META_PREFIX)}
    return data


def _keep_resource_spelling(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Show `1gb` as the stored `1GB` when only the case differs, so the diff has no line for it."""
    for old_task, new_task in zip(old.get("Tasks") or [], new.get("Tasks") or [], strict=False):
        old_res, new_res = old_task.get("Resources"), new_task.get("Resources")
        if not isinstance(old_res, dict) or not isinstance(new_res, dict):
            continue
        for key in _RESOURCE_FIELDS:
            before, after = old_res.get(key), new_res.get(key)
            if isinstance(before, str) and isinstance(after, str) and before.lower() == after.lower():
                new_res[key] = before


class _Dumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if len(value) > MAX_SHOWN_CHARS:
        digest = hashlib.sha256(value.encode()).hexdigest()[:12]
        value = f"{value[:60]}... ({len(value)} chars, sha256 {digest})"
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _yaml_lines(data: dict[str, Any]) -> list[str]:
    # Sorted keys: maps (Labels, Meta, Env) compare equal in any order, so their text must not differ.
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1000)
    return text.splitlines()
