"""`bacalhau serve`: run a node (orchestrator, compute, or both) in the foreground."""

from __future__ import annotations

import asyncio
import sys

import click

from bacalhau.cli.context import CliContext, pass_cli


@click.command("serve", help="Start a bacalhau node (orchestrator and/or compute) in the foreground.")
@click.option("--orchestrator", is_flag=True, default=False, help="Run the orchestrator (requester).")
@click.option("--compute", is_flag=True, default=False, help="Run a compute node.")
@click.option("--name", default=None, help="Node name (persisted in the data dir); default n-<uuid>.")
@click.option("-c", "--config", "config_args", multiple=True, help="Config file or Key.Path=value (repeatable).")
@pass_cli
def serve(cli: CliContext, /, orchestrator: bool, compute: bool, name: str | None, config_args: tuple[str, ...]) -> None:
    # Imported here so that only `serve` pays for the orchestrator and compute stacks.
    from bacalhau.cli.log_output import configure_logging
    from bacalhau.compute_process import ComputeProcess, separate_compute_wanted
    from bacalhau.config.loader import load_config
    from bacalhau.models.errors import BacalhauError

    try:
        config = load_config((*cli.config_args, *config_args), data_dir=cli.data_dir)
        # `--log-level` / LOG_LEVEL (Bacalhau's deprecated spelling of Logging.Level) beats the config.
        configure_logging(level=cli.log_level or config.logging.level, mode=config.logging.mode)
        child = None
        if separate_compute_wanted(config, orchestrator=orchestrator, compute=compute):
            # A hybrid node's compute child, started before the node's own imports: its imports (most
            # of its start) then overlap them (compute_process.py).
            child = ComputeProcess()
            child.spawn()
        from bacalhau.node import Node

        sources = (*cli.config_args, *config_args)
        node = Node(
            config=config, orchestrator=orchestrator, compute=compute, name=name,
            reload_config=lambda: load_config(sources, data_dir=cli.data_dir), compute_process=child,
        )
        asyncio.run(node.run())
    except BacalhauError as exc:
        click.echo(f"\nError: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"Hint:  {exc.hint}", err=True)
        sys.exit(1)
