"""`bacalhau help COMMAND...` and `bacalhau completion SHELL`, as cobra's built-in verbs behave."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.shell_completion import BashComplete, ZshComplete
from click.testing import CliRunner

from bacalhau.cli.command import NO_DESCRIPTIONS_ENV
from bacalhau.cli.main import cli


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), prog_name="bacalhau")
    return result.exit_code, result.stdout


@pytest.mark.parametrize("path", [(), ("job",), ("job", "list"), ("config", "set"), ("completion", "bash")])
def test_help_prints_what_dash_dash_help_prints(path: tuple[str, ...]) -> None:
    assert _run("help", *path) == _run(*path, "--help")


def test_help_ignores_words_past_the_deepest_command_like_cobra() -> None:
    assert _run("help", "job", "nosuch") == _run("job", "--help")


def test_help_of_an_unknown_topic_prints_the_root_usage_and_exits_0() -> None:
    code, out = _run("help", "nosuch", "x")
    assert code == 0
    assert out.startswith("Unknown help topic [`nosuch` `x`]\nUsage: bacalhau [OPTIONS] COMMAND [ARGS]...")
    assert "Commands:" in out and "Bacalhau: compute over data" not in out  # usage, not the description


def test_root_help_lists_help_and_completion() -> None:
    _, out = _run("--help")
    assert "  help " in out and "  completion " in out


def test_completion_without_a_shell_prints_its_help_and_exits_0() -> None:
    code, out = _run("completion")
    assert code == 0
    assert out.startswith("Usage: bacalhau completion")
    for shell in ("bash", "zsh", "fish", "powershell"):
        assert f"  {shell} " in out


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "_BACALHAU_COMPLETE=bash_complete"),
        ("zsh", "_BACALHAU_COMPLETE=zsh_complete bacalhau"),
        ("fish", "_BACALHAU_COMPLETE=fish_complete"),
        ("powershell", "'powershell_complete'"),
    ],
)
def test_completion_scripts_call_the_bacalhau_executable(shell: str, marker: str) -> None:
    code, out = _run("completion", shell)
    assert code == 0 and marker in out and NO_DESCRIPTIONS_ENV not in out


@pytest.mark.parametrize("shell", ["zsh", "fish", "powershell"])
def test_no_descriptions_scripts_ask_for_bare_names(shell: str) -> None:
    code, out = _run("completion", shell, "--no-descriptions")
    assert code == 0 and NO_DESCRIPTIONS_ENV in out


def test_unknown_shell_is_a_usage_error() -> None:
    assert _run("completion", "tcsh")[0] == 2


def _completions(args: list[str], incomplete: str) -> list[str]:
    completer = BashComplete(cli, {}, "bacalhau", "_BACALHAU_COMPLETE")
    return [item.value for item in completer.get_completions(args, incomplete)]


@pytest.mark.parametrize(
    ("args", "incomplete", "expected"),
    [
        ([], "jo", ["job"]),
        ([], "h", ["help"]),
        (["job"], "l", ["list", "logs"]),
        (["help"], "jo", ["job"]),
        (["help", "job"], "de", ["describe"]),
        (["node", "list", "--show"], "labels,ca", ["labels,capacity"]),
        (["completion"], "", ["bash", "fish", "powershell", "zsh"]),
    ],
)
def test_the_completion_protocol_answers(args: list[str], incomplete: str, expected: list[str]) -> None:
    assert _completions(args, incomplete) == expected


def test_no_descriptions_drops_the_help_texts(monkeypatch: pytest.MonkeyPatch) -> None:
    completer = ZshComplete(cli, {}, "bacalhau", "_BACALHAU_COMPLETE")
    described = completer.get_completions([], "jo")
    assert described[0].help
    monkeypatch.setenv(NO_DESCRIPTIONS_ENV, "1")
    assert [(item.value, item.help) for item in completer.get_completions([], "jo")] == [("job", None)]


def test_completing_a_verb_name_imports_no_verb() -> None:
    code = (
        "import os, sys\n"
        "os.environ.update(_BACALHAU_COMPLETE='bash_complete', COMP_WORDS='bacalhau ', COMP_CWORD='1')\n"
        "from bacalhau.cli.main import cli\n"
        "try:\n    cli(prog_name='bacalhau')\nexcept SystemExit:\n    pass\n"
        "print('LOADED=' + ','.join(sorted(m for m in sys.modules if m.startswith('bacalhau.cli.') and "
        "m.count('.') == 2 and m.split('.')[2] in ('job', 'node', 'serve', 'wasm', 'docker'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "plain,job" in out
    assert out.strip().splitlines()[-1] == "LOADED=", out
