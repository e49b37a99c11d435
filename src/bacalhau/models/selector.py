"""Kubernetes label selectors: parsing strings (`env=prod,tier!=db,zone in (a,b),gpu`) and matching labels.

Matching follows k8s `labels.Selector`: `!=` and `notin` also match when the key is absent;
`gt`/`lt` need the label to be an integer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from bacalhau.models.errors import BadRequestError
from bacalhau.models.job import LabelSelectorRequirement

_SET_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$", re.IGNORECASE)
_CMP_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=|>|<)\s*([A-Za-z0-9_./-]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)([A-Za-z0-9_./-]+)\s*$")


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return parts


def parse_selector(text: str) -> list[LabelSelectorRequirement]:
    """Parse a selector string; raise ValueError naming the part that cannot be read."""
    out: list[LabelSelectorRequirement] = []
    for part in _split_top_level(text):
        if not part.strip():
            continue
        m = _SET_RE.match(part)
        if m:
            values = [v.strip() for v in m.group(3).split(",") if v.strip()]
            out.append(LabelSelectorRequirement(Key=m.group(1), Operator=m.group(2).lower(), Values=values))
            continue
        m = _CMP_RE.match(part)
        if m:
            op = {">": "gt", "<": "lt"}.get(m.group(2), m.group(2))
            out.append(LabelSelectorRequirement(Key=m.group(1), Operator=op, Values=[m.group(3)]))
            continue
        m = _EXISTS_RE.match(part)
        if m:
            out.append(LabelSelectorRequirement(Key=m.group(2), Operator="!" if m.group(1) else "exists", Values=[]))
            continue
        raise ValueError(f"invalid label selector {part.strip()!r}: expected key=value, key!=value, key in (a,b) or key")
    return out


Requirement = tuple[str, str, tuple[str, ...]]

OPERATORS = ("=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt")


def validate(requirements: Iterable[Requirement]) -> None:
    """BadRequestError for an unknown operator, so a typo is reported instead of matching nothing."""
    for _, op, _ in requirements:
        if op.lower() not in OPERATORS:
            raise _unknown_operator(op)


def matches(labels: Mapping[str, str], requirements: Iterable[Requirement]) -> bool:
    """True if `labels` satisfies every requirement (they are ANDed)."""
    return all(_matches_one(labels, key, op, values) for key, op, values in requirements)


def _unknown_operator(op: str) -> BadRequestError:
    return BadRequestError(
        f"unknown label selector operator {op!r}",
                hint=f"use one of: {', '.join(OPERATORS)}",
    )


def _matches_one(labels: Mapping[str, str], key: str, op: str, values: tuple[str, ...]) -> bool:
    present = key in labels
    value = labels.get(key, "")
    match op.lower():
        case "=" | "==" | "in":
            return present and value in values
        case "!=" | "notin":
            return not present or value not in values
        case "exists":
            return present
        case "!":
            return not present
        case "gt" | "lt":
            if not present or len(values) != 1:
                return False
            try:
                actual, bound = int(value), int(values[0])
            except ValueError:
                return False
            return actual > bound if op.lower() == "gt" else actual < bound
        case _:
            raise _unknown_operator(op)


def matches_requirement(labels: Mapping[str, str], req: LabelSelectorRequirement) -> bool:
    """True if `labels` satisfies one parsed requirement (a job constraint against node labels)."""
    return _matches_one(labels, req.key, req.operator, tuple(req.values))
