"""Rendering for every verb: tables (plain, csv), JSON and YAML, plus the small formatters tables use.

Tables are drawn by hand rather than with rich: read verbs like `bacalhau job list` must start fast,
and Bacalhau's tables are plain aligned columns anyway. Styling (a bold header) only applies on a
terminal and never with `--no-style`. JSON/YAML print the raw API objects with their wire names.

Untrusted text (job names, labels, node names, messages, job output) never reaches the terminal raw:
`terminal_safe` writes its control characters out visibly (`\\x1b]0;pwned\\x07`), and it is applied
here, where text is rendered, so that every verb gets it: table and csv cells (`render_rows`), the
lines verbs print (`echo`), descriptions (which build on both). JSON and YAML stay exact and are safe
as they are: JSON escapes C0 itself and C1/DEL are escaped here as `\\u00XX` (the same string to any
parser); YAML double-quotes and escapes any string holding a control character. Our own styling (a
bold header) is added after cells are escaped. `job logs` follows its own rule (see cli/job/logs.py).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import click

from bacalhau.models.printable import escape_controls

if TYPE_CHECKING:
    # Only for typing: importing the models (pydantic) here would slow every command's start.
    from bacalhau.models.wire import WireModel

T = TypeVar("T")
# A column reads its row: one for any job (a protocol) serves a table of job models too.
R = TypeVar("R", contravariant=True)
W = TypeVar("W", bound="WireModel")
TABLE, CSV, JSON, YAML = "table", "csv", "json", "yaml"
LIST_FORMATS = (TABLE, CSV, JSON, YAML)
OBJECT_FORMATS = (JSON, YAML)
MAX_CELL_WIDTH = 40
SHORT_ID_CHARS = 8
_JSON_RAW_CONTROLS = re.compile(r"[\x7f-\x9f]")


@dataclass(frozen=True)
class OutputOptions:
    """The output flags of a read verb."""

    format: str = TABLE
    pretty: bool = False
    wide: bool = False
    no_style: bool = False
    hide_header: bool = False


@dataclass(frozen=True)
class Column(Generic[R]):
    """A table column: its header and how to get the cell text from a row object."""

    header: str
    value: Callable[[R], str]
    # IDs are shortened and long text truncated unless --wide.
    is_id: bool = False
    truncate: bool = True


def render_rows(columns: Sequence[Column[T]], items: Sequence[T], opts: OutputOptions) -> str:
    """Render objects as a table (or csv) with the given columns."""
    rows = []
    for item in items:
        row = []
        for col in columns:
            text = terminal_safe(col.value(item).replace("\n", " "), keep="")
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
    import csv  # here, like json and yaml below: most commands print neither
    import io

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
    import json

    text = json.dumps(data, indent=2 if opts.pretty else None, ensure_ascii=False)
    # json escapes C0 but passes DEL and C1 through with ensure_ascii=False; outside strings JSON has
    # none of them, so escaping every occurrence keeps the document (and each string) exactly the same.
    return _JSON_RAW_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


def to_yaml(data: Any) -> str:
    """Block-style YAML keeping key order, as Bacalhau prints specs."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        # The emitter double-quotes (and escapes) strings with controls by itself, except NEL (U+0085),
        # which it counts as a line break and would write raw in a block or single-quoted scalar.
        style = '"' if "\x85" in value else "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _str)
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


def emit(text: str) -> None:
    """Write output a renderer made (already safe: see the module docstring) to stdout as is."""
    click.echo(text, nl=False)


def terminal_safe(text: str, *, keep: str = "\n\t") -> str:
    """Untrusted text as it may be shown on a terminal: control characters but `keep` written out
    visibly (`\\x1b`, `\\x07`, `\\x9b`), printable text of any script unchanged."""
    return escape_controls(text, keep=keep)


def log_text(text: str, *, err: bool, raw: bool) -> str:
    """A job's own output, for stdout (or stderr with `err`): as it is when `raw` or when that stream is
    not a terminal (a pipe or file gets the job's exact bytes), else with controls escaped.

    Bacalhau prints job output raw everywhere; on a terminal that lets any job retitle it or rewrite
    the screen, so ours escapes there and `job logs --raw` restores Bacalhau's behaviour.
    """
    stream = sys.stderr if err else sys.stdout
    if raw or not stream.isatty():
        return text
    return terminal_safe(text)


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """`click.echo` for a line that may hold someone else's text (a name, a server message)."""
    click.echo(terminal_safe(text), err=err, nl=nl)


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
    """Print a list verb's result: the bare items in json/yaml (as Bacalhau's CLI does), else rows
    (see emit_rows)."""
    if opts.format not in (TABLE, CSV):
        emit(render_object([item.to_wire() for item in items], opts))
        return
    emit_rows(columns, items, opts, next_token=next_token, more=more)


def emit_rows(
    columns: Sequence[Column[T]], items: Sequence[T], opts: OutputOptions, *, next_token: str = "", more: str = ""
) -> None:
    """Print a list verb's rows (table or csv), followed on a table by how to fetch the next page (`more`
    is the command, without --next-token)."""
    emit(render_rows(columns, items, opts))
    if next_token and more and opts.format == TABLE:
        click.echo(f"\nTo fetch more records use:\n\t{more} --next-token {next_token}")
