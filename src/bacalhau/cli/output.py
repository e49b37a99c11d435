"""Rendering for every verb: tables (plain, csv), JSON and YAML, plus the small formatters tables use.

Tables are drawn by hand rather than with rich: read verbs like `bacalhau job list` must start fast,
and Bacalhau's tables are plain aligned columns anyway. Styling (a bold header) only applies on a
terminal and never with `--no-style`. JSON/YAML print the raw API objects with their wire names.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import click

if TYPE_CHECKING:
    # Only for typing: importing the models (pydantic) here would slow every command's start.
    from bacalhau.models.wire import WireModel

T = TypeVar("T")
W = TypeVar("W", bound="WireModel")
TABLE, CSV, JSON, YAML = "table", "csv", "json", "yaml"
LIST_FORMATS = (TABLE, CSV, JSON, YAML)
OBJECT_FORMATS = (JSON, YAML)
MAX_CELL_WIDTH = 40
SHORT_ID_CHARS = 8


@dataclass(frozen=True)
class OutputOptions:
    """The output flags of a read verb."""

    format: str = TABLE
    pretty: bool = False
    wide: bool = False
    no_style: bool = False
    hide_header: bool = False


@dataclass(frozen=True)
class Column(Generic[T]):
    """A table column: its header and how to get the cell text from a row object."""

    header: str
    value: Callable[[T], str]
    # IDs are shortened and long text truncated unless --wide.
    is_id: bool = False
    truncate: bool = True


def render_rows(columns: Sequence[Column[T]], items: Sequence[T], opts: OutputOptions) -> str:
    """Render objects as a table (or csv) with the given columns."""
    rows = []
    for item in items:
        row = []
        for col in columns:
            text = col.value(item).replace("\n", " ")
            if not opts.wide and opts.format == TABLE:
                if col.is_id:
                    text = short_id(text)
                elif col.truncate and len(text) > MAX_CELL_WIDTH:
                    text = text[: MAX_CELL_WIDTH - 1] + "…"
            row.append(text)
        rows.append(row)
    headers = [c.header for c in columns]
    if opts.format == CSV:
        return render_csv(headers, rows, hide_header=opts.hide_header)
    return render_table(headers, rows, opts)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], opts: OutputOptions) -> str:
    """Left-aligned columns separated by two spaces, headers upper-cased as Bacalhau prints them."""
    upper = [h.upper() for h in headers]
    lines = [] if opts.hide_header else [upper]
    lines.extend(list(r) for r in rows)
    widths = [max((len(line[i]) for line in lines), default=0) for i in range(len(headers))]
    out = []
    for index, line in enumerate(lines):
        text = " " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip()
        if index == 0 and not opts.hide_header and styled(opts):
            text = click.style(text, bold=True)
        out.append(text)
    return "\n".join(out) + ("\n" if out else "")


def render_csv(headers: Sequence[str], rows: Sequence[Sequence[str]], *, hide_header: bool = False) -> str:
    """Comma-separated values with a header row."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if not hide_header:
        writer.writerow([h.upper() for h in headers])
    writer.writerows(rows)
    return buf.getvalue()


def render_object(data: Any, opts: OutputOptions) -> str:
    """JSON (compact, or indented with --pretty) or YAML of a wire object."""
    if opts.format == YAML:
        return to_yaml(data)
    if opts.pretty:
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return json.dumps(data, ensure_ascii=False) + "\n"


def to_yaml(data: Any) -> str:
    """Block-style YAML keeping key order, as Bacalhau prints specs."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def emit(text: str) -> None:
    """Write rendered output to stdout as is."""
    click.echo(text, nl=False)


def styled(opts: OutputOptions) -> bool:
    """Style only on a terminal, and never with --no-style."""
    return not opts.no_style and sys.stdout.isatty()


def short_id(value: str) -> str:
    """`j-1234abcd` from `j-1234abcd-...`: the prefix plus 8 characters, as Bacalhau's tables show."""
    prefix, sep, rest = value.partition("-")
    if sep and len(prefix) == 1 and rest:
        return f"{prefix}-{rest[:SHORT_ID_CHARS]}"
    return value[:SHORT_ID_CHARS] if len(value) > SHORT_ID_CHARS + 2 else value


def ns_to_datetime(ns: int) -> datetime | None:
    """Unix nanoseconds to a local datetime (None for 0)."""
    if not ns:
        return None
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).astimezone()


def parse_rfc3339(text: str) -> datetime | None:
    """An RFC3339(Nano) timestamp as a local datetime, tolerating Go's nanosecond fractions."""
    if not text:
        return None
    value = text.strip().replace("Z", "+00:00")
    if "." in value:
        head, _, tail = value.partition(".")
        digits = "".join(ch for ch in tail if ch.isdigit())
        zone = tail[len(digits):]
        value = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone()


def format_time(moment: datetime | None, *, wide: bool = False) -> str:
    """`YYYY-MM-DD HH:MM:SS` (Go's time.DateTime); just the time for today unless --wide."""
    if moment is None:
        return ""
    if not wide and moment.date() == datetime.now().astimezone().date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def emit_list(
    columns: Sequence[Column[W]], items: Sequence[W], opts: OutputOptions, *, next_token: str = "", more: str = ""
) -> None:
    """Print a list verb's result: the bare items in json/yaml (as Bacalhau's CLI does), else rows,
    followed on a table by how to fetch the next page (`more` is the command, without --next-token)."""
    if opts.format not in (TABLE, CSV):
        emit(render_object([item.to_wire() for item in items], opts))
        return
    emit(render_rows(columns, items, opts))
    if next_token and more and opts.format == TABLE:
        click.echo(f"\nTo fetch more records use:\n\t{more} --next-token {next_token}")
