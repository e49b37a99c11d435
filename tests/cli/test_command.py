"""The root command: Go-style boolean flags, lazy verbs, fast start-up, error rendering."""

from __future__ import annotations

import socket
import subprocess
import sys

import click
from click.testing import CliRunner

from bacalhau.cli.command import rewrite_bool_flags
from bacalhau.cli.main import cli


def _params() -> list[click.Parameter]:
    return [
        click.Option(["--wait/--no-wait"], default=True),
        click.Option(["--dry-run"], is_flag=True),
        click.Option(["--name"]),
    ]


def test_go_style_boolean_flags_are_rewritten() -> None:
    args = ["--wait=false", "--dry-run=true", "--name=x", "--wait=TRUE", "--dry-run=false", "--", "--wait=false"]
    assert rewrite_bool_flags(_params(), args) == ["--no-wait", "--dry-run", "--name=x", "--wait", "--", "--wait=false"]


def test_invalid_boolean_values_are_usage_errors() -> None:
    try:
        rewrite_bool_flags(_params(), ["--wait=maybe"])
    except click.BadParameter as exc:
        assert "maybe" in str(exc)
    else:
        raise AssertionError("expected BadParameter")


def test_help_lists_every_verb() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for verb in ("agent", "config", "docker", "job", "node", "serve", "version", "wasm"):
        assert f"  {verb} " in result.output


def test_job_help_lists_its_verbs() -> None:
    result = CliRunner().invoke(cli, ["job", "--help"])
    for verb in ("describe", "executions", "get", "history", "list", "logs", "rerun", "run", "stop", "validate"):
        assert f"  {verb} " in result.output


def test_startup_does_not_import_the_node_or_heavy_libraries() -> None:
    code = (
        "import sys; from bacalhau.cli.main import cli\n"
        "try:\n    cli(['job', '--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('bacalhau.node', 'bacalhau.orchestrator', 'bacalhau.compute', 'bacalhau.transport',"
        " 'rich', 'yaml', 'websockets', 'httpx', 'pydantic') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "HEAVY=", out


def test_errors_print_a_blank_line_error_and_hint_and_exit_1() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(cli, ["--api-port", str(port), "job", "list"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"\nError: failed to connect to the Bacalhau API at http://127.0.0.1:{port}")
    assert "\nHint:  " in result.stderr and "--api-host/--api-port" in result.stderr


def test_usage_errors_exit_2() -> None:
    result = CliRunner().invoke(cli, ["job", "describe"])
    assert result.exit_code == 2


def test_global_flags_are_accepted_after_the_verb() -> None:
    from bacalhau.cli.main import hoist_global_options

    args = ["job", "list", "--api-port", "5", "--limit=3", "-c", "API.Host=x", "--api-host=h", "--", "--api-port", "9"]
    assert hoist_global_options(args) == [
        "--api-port", "5", "-c", "API.Host=x", "--api-host=h", "job", "list", "--limit=3", "--", "--api-port", "9",
    ]


def test_global_flags_after_the_verb_take_effect() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(cli, ["job", "list", "--api-port", str(port)])
    assert f"127.0.0.1:{port}" in result.stderr
