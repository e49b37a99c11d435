"""Running the client scripts (tests/clients/scripts) with `.venv-clients/bin/python`, and reading the
`key=value` facts they print."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIENTS_PYTHON = ROOT / ".venv-clients" / "bin" / "python"
SCRIPTS = Path(__file__).resolve().parent / "scripts"
SCRIPT_TIMEOUT_S = 180.0


@dataclass
class ScriptRun:
    """What a client script printed: every `key=value` line (in order) and the whole output."""

    command: str
    returncode: int
    stdout: str
    stderr: str
    pairs: list[tuple[str, str]]

    @property
    def facts(self) -> dict[str, str]:
        """The last value printed for each key."""
        return dict(self.pairs)

    def all(self, key: str) -> list[str]:
        """Every value printed for `key`, in order."""
        return [value for k, value in self.pairs if k == key]

    def describe(self) -> str:
        return (
            f"`{self.command}` exited {self.returncode}\n----- stdout -----\n{self.stdout}\n"
            f"----- stderr -----\n{self.stderr}"
        )


ClientRunner = Callable[..., ScriptRun]


def run_client_script(
    python: Path, script: str, *args: str, api_port: int, bacalhau_dir: Path, timeout: float = SCRIPT_TIMEOUT_S
) -> ScriptRun:
    """Run scripts/<script> with the clients' Python, configured the way their users configure it
    (BACALHAU_API_HOST, BACALHAU_API_PORT, BACALHAU_DIR); a non-zero exit or a traceback fails."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACALHAU_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(
        {
            "BACALHAU_API_HOST": "127.0.0.1",
            "BACALHAU_API_PORT": str(api_port),
            "BACALHAU_DIR": str(bacalhau_dir),
            "PYTHONUNBUFFERED": "1",
        }
    )
    cmd = [str(python), str(SCRIPTS / script), *args]
    shown = " ".join([".venv-clients/bin/python", f"tests/clients/scripts/{script}", *args])[:500]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"`{shown}` did not finish within {timeout}s\nstdout: {exc.stdout!r}\nstderr: {exc.stderr!r}") from exc
    pairs = []
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key and " " not in key:
            pairs.append((key, value))
    run = ScriptRun(shown, proc.returncode, proc.stdout, proc.stderr, pairs)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr + proc.stdout, run.describe()
    return run
