"""Flag values parsed the way Bacalhau's Go flags (spf13/pflag) parse them.

pflag has three list-like flag types, and Bacalhau picks one per flag:

  StringSlice     `--show labels,features --show capacity` -> [labels, features, capacity]: each
                  occurrence is one CSV record, so a comma inside an item needs CSV quotes
                  (`--entrypoint '"a,b",c'` -> ["a,b", "c"]) and a stray quote is an error. Used by:
                  node list --show, -l/--labels, docker run --entrypoint, wasm run -I/--import-modules.
  StringArray     one occurrence = one item, commas kept. Used by --domain; plain `multiple=True`.
  StringToString  `-e A=1,B=2` -> {A: 1, B: 2}, but `-e A=x,y` (a single `=`) -> {A: "x,y"}.
                  Used by -e/--env and -V/--template-vars.

Everything else that repeats (-i, -o, -c) is a custom pflag Value whose Set takes the whole token,
so those stay plain `multiple=True` options: splitting them on commas would break their own syntax.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    _SliceType = click.ParamType[list[str], Any]
else:  # click < 8.2 has no generic ParamType at runtime
    _SliceType = click.ParamType


class CsvError(ValueError):
    """A token that Go's encoding/csv refuses (a stray quote), with Go's message."""


def read_csv_record(text: str) -> list[str]:
    """The first CSV record of `text`, with Go encoding/csv's default rules (as pflag's readAsCSV).

    Fields are split on `,`; a field starting with `"` is quoted (`""` is a literal quote and commas
    inside are kept); a quote anywhere else is an error; spaces are kept. An empty string is no field.
    """
    if text == "":
        return []
    fields: list[str] = []
    pos, end = 0, len(text)
    while True:
        if pos < end and text[pos] == '"':
            parts: list[str] = []
            scan = pos + 1
            while True:
                close = text.find('"', scan)
                if close < 0:
                    raise CsvError(f'parse error on line 1, column {end + 1}: extraneous or missing " in quoted-field')
                parts.append(text[scan:close])
                if text.startswith('"', close + 1):
                    parts.append('"')
                    scan = close + 2
                    continue
                pos = close + 1
                if pos < end and text[pos] not in ",\n":
                    raise CsvError(f'parse error on line 1, column {pos + 1}: extraneous or missing " in quoted-field')
                break
            fields.append("".join(parts))
        else:
            stop = min((i for i in (text.find(",", pos), text.find("\n", pos)) if i >= 0), default=end)
            field = text[pos:stop]
            if '"' in field:
                column = pos + field.index('"') + 1
                raise CsvError(f'parse error on line 1, column {column}: bare " in non-quoted field')
            fields.append(field.removesuffix("\r"))
            pos = stop
        if pos >= end or text[pos] == "\n":
            return fields
        pos += 1  # the comma


class StringSlice(_SliceType):
    """pflag's StringSlice: every occurrence is a CSV list; with `choices`, each item must be one.

    Use with `multiple=True` and `callback=flatten`, so `--show a,b --show c` gives (a, b, c).
    Choices match case-insensitively and come back in their canonical spelling.
    """

    name = "strings"

    def __init__(self, choices: Sequence[str] = ()) -> None:
        self.choices = tuple(choices)

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        return "[" + "|".join(self.choices) + "],..." if self.choices else "A,B,..."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[str]:
        if isinstance(value, list | tuple):
            return [str(v) for v in value]
        try:
            items = read_csv_record(str(value))
        except CsvError as exc:
            self.fail(f"invalid argument {str(value)!r}: {exc}", param, ctx)
        if not self.choices:
            return items
        canonical = {choice.lower(): choice for choice in self.choices}
        bad = [item for item in items if item.lower() not in canonical]
        if bad:
            self.fail(f"{', '.join(map(repr, bad))}: each item must be one of {', '.join(self.choices)}", param, ctx)
        return [canonical[item.lower()] for item in items]

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        # Complete the item after the last comma, keeping what was typed before it.
        from click.shell_completion import CompletionItem

        done, _, last = incomplete.rpartition(",")
        prefix = done + "," if done else ""
        return [CompletionItem(prefix + choice) for choice in self.choices if choice.lower().startswith(last.lower())]


class StringToString(_SliceType):
    """pflag's StringToString: `K=V` or a CSV list `K1=V1,K2=V2`; returns the `K=V` items.

    A token with a single `=` is one pair whatever its commas hold (`A=x,y` is A -> "x,y"), with
    surrounding double quotes trimmed, exactly as pflag does. Use with `multiple=True, callback=flatten`.
    """

    name = "key=value"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str | None:
        return "KEY=VALUE,..."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[str]:
        if isinstance(value, list | tuple):
            return [str(v) for v in value]
        text = str(value)
        equals = text.count("=")
        if equals == 0:
            self.fail(f"{text} must be formatted as key=value", param, ctx)
        if equals == 1:
            items = [text.strip('"')]
        else:
            try:
                items = read_csv_record(text)
            except CsvError as exc:
                self.fail(f"invalid argument {text!r}: {exc}", param, ctx)
        for item in items:
            if "=" not in item:
                self.fail(f"{item} must be formatted as key=value", param, ctx)
        return items


def flatten(ctx: click.Context, param: click.Parameter, value: Any) -> tuple[str, ...]:
    """Click callback joining the per-occurrence lists of a `multiple=True` slice option."""
    return tuple(item for chunk in value or () for item in chunk)
