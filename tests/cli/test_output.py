"""Rendering: aligned tables, csv, json (compact or pretty), yaml, short IDs and times."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import yaml

from bacalhau.cli.errors import CliError
from bacalhau.cli.output import (
    Column,
    OutputOptions,
    format_time,
    log_text,
    parse_rfc3339,
    render_object,
    render_rows,
    render_table,
    short_id,
)

ROWS = [{"id": "j-12345678-aaaa-bbbb-cccc-dddddddddddd", "note": "x" * 60}]
COLUMNS: list[Column[dict[str, str]]] = [Column("ID", lambda r: r["id"], is_id=True), Column("Note", lambda r: r["note"])]


def test_tables_upper_case_headers_and_align_columns() -> None:
    text = render_table(["Id", "State"], [["a", "Running"], ["bbb", "Failed"]], OutputOptions())
    assert text.splitlines() == [" ID   STATE", " a    Running", " bbb  Failed"]


def test_hide_header() -> None:
    assert render_table(["Id"], [["a"]], OutputOptions(hide_header=True)) == " a\n"


def test_tables_shorten_ids_and_truncate_unless_wide() -> None:
    narrow = render_rows(COLUMNS, ROWS, OutputOptions())
    assert "j-12345678 " in narrow and "aaaa" not in narrow and "…" in narrow
    wide = render_rows(COLUMNS, ROWS, OutputOptions(wide=True))
    assert ROWS[0]["id"] in wide and "x" * 60 in wide


def test_csv_output_keeps_full_values() -> None:
    text = render_rows(COLUMNS, ROWS, OutputOptions(format="csv"))
    assert text.splitlines()[0] == "ID,NOTE"
    assert ROWS[0]["id"] in text


def test_json_is_compact_unless_pretty() -> None:
    data = {"Job": {"ID": "j-1"}}
    assert render_object(data, OutputOptions(format="json")) == '{"Job": {"ID": "j-1"}}\n'
    assert json.loads(render_object(data, OutputOptions(format="json", pretty=True))) == data
    assert "\n  " in render_object(data, OutputOptions(format="json", pretty=True))


def test_yaml_keeps_key_order_and_round_trips() -> None:
    data = {"Type": "batch", "Name": "a\nb", "Count": 1}
    text = render_object(data, OutputOptions(format="yaml"))
    assert text.splitlines()[0] == "Type: batch"
    assert yaml.safe_load(text) == data


def test_short_ids_keep_the_prefix() -> None:
    assert short_id("j-12345678-aaaa") == "j-12345678"
    assert short_id("abc") == "abc"


def test_rfc3339_nano_timestamps_parse() -> None:
    moment = parse_rfc3339("2024-05-01T10:20:30.123456789Z")
    assert moment is not None and moment.microsecond == 123456
    assert parse_rfc3339("") is None and parse_rfc3339("garbage") is None


def test_times_show_the_date_unless_today() -> None:
    old = datetime(2020, 1, 2, 3, 4, 5).astimezone()
    assert format_time(old) == "2020-01-02 03:04:05"
    now = datetime.now().astimezone()
    assert format_time(now) == now.strftime("%H:%M:%S")
    assert format_time(now, wide=True) == now.strftime("%Y-%m-%d %H:%M:%S")


# -- untrusted text ---------------------------------------------------------------------------------------
OSC_TITLE = "\x1b]0;pwned\x07"


def test_table_cells_show_control_characters_escaped_and_stay_aligned() -> None:
    cols: list[Column[dict[str, str]]] = [Column("Name", lambda r: r["name"]), Column("State", lambda r: r["state"])]
    text = render_rows(cols, [{"name": f"a{OSC_TITLE}", "state": "Running"}, {"name": "b", "state": "x"}],
                       OutputOptions(wide=True))
    assert "\x1b" not in text and "\x07" not in text
    lines = text.splitlines()
    assert lines[1] == " a\\x1b]0;pwned\\x07  Running"
    assert lines[2].index("x") == lines[1].index("Running")


def test_csv_cells_are_escaped_too() -> None:
    text = render_rows(COLUMNS, [{"id": "j-1", "note": f"n{OSC_TITLE}"}], OutputOptions(format="csv"))
    assert "\x1b" not in text and "n\\x1b]0;pwned\\x07" in text


@pytest.mark.parametrize("value", [f"x{OSC_TITLE}", "c1\x9b2J", "del\x7f", "nel\x85end", "multi\nline\x1b[2J"])
@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_json_and_yaml_are_exact_yet_hold_no_raw_control_character(value: str, fmt: str) -> None:
    opts = OutputOptions(format=fmt, pretty=True)
    text = render_object({"Name": value, "Labels": {"k": value}}, opts)
    assert not any(ch in text for ch in ("\x1b", "\x07", "\x9b", "\x7f", "\x85")), repr(text)
    parsed = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    assert parsed == {"Name": value, "Labels": {"k": value}}


def test_log_text_is_raw_off_a_terminal_and_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout.isatty", lambda: False, raising=False)
    assert log_text(f"out{OSC_TITLE}\n", err=False, raw=False) == f"out{OSC_TITLE}\n"


def test_errors_show_server_messages_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    CliError(f"job failed: {OSC_TITLE}", hint=f"see {OSC_TITLE}").show()
    err = capsys.readouterr().err
    assert "\x1b" not in err and "job failed: \\x1b]0;pwned\\x07" in err
