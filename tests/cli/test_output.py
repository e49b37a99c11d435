"""Rendering: aligned tables, csv, json (compact or pretty), yaml, short IDs and times."""

from __future__ import annotations

import json
from datetime import datetime

import yaml

from bacalhau.cli.output import (
    Column,
    OutputOptions,
    format_time,
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
