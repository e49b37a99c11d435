"""The `bacalhau` root command: global flags, lazily loaded verbs, and Bacalhau-style error output.

Only click is imported here. Each verb's module is imported when the verb runs, and `serve` (which
pulls in the whole node) only when it is invoked, so `bacalhau job list` starts fast.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from bacalhau import __version__
from bacalhau.cli.command import BacalhauGroup
from bacalhau.cli.context import CliContext
from bacalhau.cli.errors import CliError

VERBS = {
    "agent": ("bacalhau.cli.agent:agent", "Commands to query the agent (node) answering the API."),
    "audit": ("bacalhau.cli.audit:audit", "Who did what through the API (ours)."),
    "auth": ("bacalhau.cli.auth:auth", "Commands related to authentication."),
    "completion": ("bacalhau.cli.completion:completion", "Generate the autocompletion script for the specified shell."),
    "config": ("bacalhau.cli.config:config", "Interact with the Bacalhau configuration."),
    "devstack": ("bacalhau.cli.devstack:devstack", "Start a cluster of bacalhau nodes for testing and development"),
    "docker": ("bacalhau.cli.docker:docker", "Run docker jobs."),
    "help": ("bacalhau.cli.help:help_command", "Help about any command."),
    "job": ("bacalhau.cli.job:job", "Commands to submit, query and update jobs."),
    "node": ("bacalhau.cli.node:node", "Commands to query and manage nodes."),
    "profile": ("bacalhau.cli.profile:profile", "Manage CLI connection profiles for Bacalhau clusters."),
    "serve": ("bacalhau.cli.serve:serve", "Start a Bacalhau node (orchestrator and/or compute)."),
    "version": ("bacalhau.cli.version:version", "Print the client and server versions."),
    "wasm": ("bacalhau.cli.wasm:wasm", "Run WebAssembly jobs."),
}


GLOBAL_OPTIONS = ("--api-host", "--api-port", "--data-dir", "--config", "-c", "--log-level", "--profile")


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global flags given after the verb (`bacalhau job list --api-port 1`) in front of it.

    Bacalhau's global flags are cobra "persistent" flags, accepted anywhere; click only accepts a
    group's options before its subcommand. Everything after `--` is left alone.
    """
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        token = args[index]
        if token == "--":
            rest.extend(args[index:])
            break
        name = token.split("=", 1)[0]
        if name in GLOBAL_OPTIONS and "=" in token:
            front.append(token)
        elif token in GLOBAL_OPTIONS and index + 1 < len(args):
            front.extend(args[index : index + 2])
            index += 1
        else:
            rest.append(token)
        index += 1
    return front + rest


class RootGroup(BacalhauGroup):
    """Turns every BacalhauError into Bacalhau's `Error:`/`Hint:` output with exit code 1."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            # The error classes are imported only when something failed: not on every command's path.
            from bacalhau.models.errors import BacalhauError

            if isinstance(exc, BacalhauError):
                raise CliError.from_exception(exc) from exc
            # e.g. a malformed BACALHAU_API_PORT; anything else is a bug and keeps its traceback.
            if isinstance(exc, ValueError) and "BACALHAU_" in str(exc):
                raise CliError(str(exc)) from exc
            raise


@click.group(
    cls=RootGroup,
    lazy=VERBS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
@click.version_option(__version__, "--version", prog_name="bacalhau", message="%(prog)s %(version)s")
@click.option("--api-host", envvar="BACALHAU_API_HOST", default=None,
              help="Host of the API server (or a full http(s):// URL). [env: BACALHAU_API_HOST; default 0.0.0.0]")
@click.option("--api-port", envvar="BACALHAU_API_PORT", type=click.IntRange(1, 65535), default=None,
              help="Port of the API server. [env: BACALHAU_API_PORT; default 1234]")
@click.option("--data-dir", envvar="BACALHAU_DIR", default=None,
              help="Data directory. [env: BACALHAU_DIR; default ~/.bacalhau]")
@click.option("-c", "--config", "config_args", multiple=True,
              help="Config file path, Key.Path=value, or Key.Path (=true). Repeatable.")
@click.option("--log-level", envvar="LOG_LEVEL", default=None,
              type=click.Choice(["trace", "debug", "info", "warn", "warning", "error", "fatal"], case_sensitive=False),
              help="Log level (deprecated in Bacalhau: use -c Logging.Level=<level>). [default: Logging.Level, info]")
@click.option("--profile", default=None,
              help="Use a specific profile for this command. [env: BACALHAU_PROFILE; default: the selected profile]")
@click.pass_context
def cli(ctx: click.Context, api_host: str | None, api_port: int | None, data_dir: str | None,
        config_args: tuple[str, ...], log_level: str | None, profile: str | None) -> None:
    """Bacalhau: compute over data. Submit jobs, inspect them and fetch their results."""
    if data_dir:
        # Verbs and `serve` read the data dir from the environment, as Bacalhau's own code does.
        os.environ["BACALHAU_DIR"] = data_dir
    ctx.obj = CliContext(
        api_host=api_host, api_port=api_port, data_dir=data_dir, config_args=config_args, log_level=log_level,
        profile=profile,
    )


def main() -> None:
    """Console-script entry point."""
    # httpx imports its own command-line tool (rich, pygments) when imported, ~100 ms we never use.
    # A None entry makes that import fail, and httpx then falls back to a stub (its documented
    # behaviour without the [cli] extra). Only the `bacalhau` process does this, not library users.
    if "httpx" not in sys.modules:
        sys.modules["httpx._main"] = None  # type: ignore[assignment]
    cli(prog_name="bacalhau")
