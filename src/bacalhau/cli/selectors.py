"""Kubernetes-style label selectors (`--constraints`) and `k=v` pairs (`-l`, `-e`, `-V`).

The selector grammar is the one Bacalhau takes from k8s `labels.Parse`:
`key=v`, `key==v`, `key!=v`, `key in (a,b)`, `key notin (a,b)`, `key`, `!key`, `key>1`, `key<1`,
separated by commas (commas inside parentheses belong to the value list). Requirements come back in
Bacalhau's wire shape (`{Key, Operator, Values}`), the form the job is sent in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import click

_SET_RE = re.compile(r"^(?P<key>[^\s!=<>(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)$")
_BINARY_RE = re.compile(r"^(?P<key>[^\s!=<>(),]+)\s*(?P<op>==|!=|=|>|<)\s*(?P<value>[^\s,()]*)$")
_KEY_RE = re.compile(r"^(?P<neg>!?)\s*(?P<key>[^\s!=<>(),]+)$")
_OPERATORS = {"=": "=", "==": "==", "!=": "!=", ">": "gt", "<": "lt"}


def split_requirements(selector: str) -> list[str]:
    """Split a selector on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def parse_selector(selector: str) -> list[dict[str, Any]]:
    """Parse a selector string into requirements; raise click.BadParameter naming the bad part."""
    out: list[dict[str, Any]] = []
    for part in split_requirements(selector):
        if m := _SET_RE.match(part):
            values = [v.strip() for v in m["values"].split(",") if v.strip()]
            if not values:
                raise click.BadParameter(f"{part!r}: {m['op']} needs at least one value", param_hint="'--constraints'")
            out.append({"Key": m["key"], "Operator": m["op"], "Values": values})
        elif m := _BINARY_RE.match(part):
            op = _OPERATORS[m["op"]]
            if op in ("gt", "lt") and not _is_int(m["value"]):
                raise click.BadParameter(f"{part!r}: {m['op']} needs an integer value", param_hint="'--constraints'")
            out.append({"Key": m["key"], "Operator": op, "Values": [m["value"]]})
        elif m := _KEY_RE.match(part):
            out.append({"Key": m["key"], "Operator": "!" if m["neg"] else "exists", "Values": []})
        else:
            raise click.BadParameter(
                f"cannot parse {part!r}; use key=value, key!=value, key in (a,b), key notin (a,b), key or !key",
                param_hint="'--constraints'",
            )
    return out


def parse_pairs(values: Iterable[str], *, flag: str, bare: bool = False) -> dict[str, str]:
    """`K=V` items into a dict; with `bare`, a lone `K` means an empty value (labels).

    Each item is one pair: the flag's type (cli/pflag.py) has already split comma lists where Bacalhau does.
    """
    out: dict[str, str] = {}
    for raw in values:
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep and not bare:
            raise click.BadParameter(f"{item!r} is not in the form KEY=VALUE", param_hint=f"'{flag}'")
        if not key.strip():
            raise click.BadParameter(f"{item!r} has an empty key", param_hint=f"'{flag}'")
        out[key.strip()] = value
    return out


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()
