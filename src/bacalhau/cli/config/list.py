"""`bacalhau config list`: every config key with its effective value."""

from __future__ import annotations

import json
from typing import Any

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import output_options, pop_output
from bacalhau.cli.output import CSV, TABLE, emit, render_csv, render_object, render_table


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


@click.command("list", cls=BacalhauCommand)
@output_options()
@pass_cli
def list_config(cli: CliContext, /, **kwargs: Any) -> None:
    """List every config key and its value (defaults < config file < env < -c)."""
    from bacalhau.config.loader import leaf_paths

    opts = pop_output(kwargs)
    tree = cli.config().to_wire()
    if opts.format not in (TABLE, CSV):
        emit(render_object(tree, opts))
        return
    rows = [[key, _text(value)] for key, value in sorted(leaf_paths(tree).items(), key=lambda kv: kv[0].lower())]
    headers = ["Key", "Value"]
    emit(render_csv(headers, rows, hide_header=opts.hide_header) if opts.format == CSV
         else render_table(headers, rows, opts))
