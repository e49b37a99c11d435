"""The part of Go's text/template that job files use: `{{.NAME}}` placeholders, `missingkey=error`.

Bacalhau renders a job file as a Go template before decoding it (CONTRACT.md section 1.0). Values come
from `-V/--template-vars k=v` and from env vars whose names match `-E/--template-envs REGEX`. Trim
markers (`{{- .X -}}`) and comments (`{{/* ... */}}`) work as in Go; any other action is refused with a
pointer to `--no-template`, rather than half-implementing Go's template language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bacalhau.models.errors import BadRequestError

TEMPLATE_NAME = "job"
_FIELD_RE = re.compile(r"^\.([A-Za-z_][A-Za-z0-9_]*)$")
_HINT = "pass values with -V NAME=value (or -E REGEX for env vars), or use --no-template to send the file as is"


def render(text: str, values: Mapping[str, str]) -> str:
    """Fill every `{{.NAME}}`; raise BadRequestError for unknown names or unsupported actions."""
    out: list[str] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            out.append(text[pos:])
            return "".join(out)
        end = text.find("}}", start + 2)
        line, col = _position(text, start)
        if end < 0:
            raise BadRequestError(f"template: {TEMPLATE_NAME}:{line}: unclosed action", hint=_HINT)
        action = text[start + 2 : end]
        literal = text[pos:start]
        if action.startswith("-") and action[1:2].isspace():
            literal = literal.rstrip()
            action = action[1:]
        trim_after = action.endswith("-") and action[-2:-1].isspace()
        if trim_after:
            action = action[:-1]
        out.append(literal)
        out.append(_evaluate(action.strip(), values, line, col))
        pos = end + 2
        if trim_after:
            while pos < len(text) and text[pos].isspace():
                pos += 1


def _evaluate(action: str, values: Mapping[str, str], line: int, col: int) -> str:
    if action.startswith("/*") and action.endswith("*/"):
        return ""
    match = _FIELD_RE.match(action)
    if match is None:
        raise BadRequestError(
            f"template: {TEMPLATE_NAME}:{line}:{col}: unsupported action {{{{{action}}}}}; "
            "only {{.NAME}} placeholders are supported",
            hint=_HINT,
        )
    name = match.group(1)
    if name not in values:
        raise BadRequestError(
            f'template: {TEMPLATE_NAME}:{line}:{col}: executing "{TEMPLATE_NAME}" at <.{name}>: '
            f'map has no entry for key "{name}"',
            hint=_HINT,
        )
    return values[name]


def env_values(pattern: str, environ: Mapping[str, str]) -> dict[str, str]:
    """Env vars whose names match `pattern` (a regex; `*` alone means every variable)."""
    if not pattern:
        return {}
    regex = re.compile(".*" if pattern.strip() == "*" else pattern)
    return {name: value for name, value in environ.items() if regex.search(name)}


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col
