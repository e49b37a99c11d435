"""Kubernetes-style label selector strings (`env=prod,tier!=db,zone in (a,b),gpu`), as Bacalhau parses them."""

from __future__ import annotations

import re

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
