"""`bacalhau agent config`: the effective configuration of the node answering the API."""

from __future__ import annotations

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.context import CliContext, pass_cli
from bacalhau.cli.flags import output_options
from bacalhau.cli.output import OutputOptions, emit, render_object


@click.command("config", cls=BacalhauCommand)
@output_options(tabular=False)
@pass_cli
def config(cli: CliContext, /, output_format: str, pretty: bool) -> None:
    """Print the agent's configuration (secrets redacted by the server)."""
    with cli.client() as client:
        data = client.agent_config()
    emit(render_object(data, OutputOptions(format=output_format.lower(), pretty=pretty)))
