"""Fixtures for the official Bacalhau Python clients (`bacalhau-sdk` 1.4.2, `bacalhau-apiclient` 1.4.1).

The clients live in their own venv, `.venv-clients` (scripts/setup creates it; they pin old dependencies,
so they never go into `.venv`). Each test runs a real script from tests/clients/scripts with that venv's
Python, in a subprocess, against a real `bacalhau serve`, and asserts on the `key=value` facts it prints
(official_clients.py). A missing `.venv-clients` skips locally and FAILS under CI=true.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# official_clients.py sits next to this file, scenario_jobs.py in ../scenarios: make both importable
# whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scenarios"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from official_clients import CLIENTS_PYTHON, SCRIPT_TIMEOUT_S, ClientRunner, ScriptRun, run_client_script
from scenario_jobs import JobWatch

from serve_node import BacalhauNode, missing_prerequisite


@pytest.fixture(scope="session")
def clients_python() -> Path:
    """The Python of `.venv-clients`, where the official clients are installed."""
    if not CLIENTS_PYTHON.is_file():
        missing_prerequisite(
            f"{CLIENTS_PYTHON} not found: the official Bacalhau clients are not installed (run: bash scripts/setup)"
        )
    check = subprocess.run(
        [str(CLIENTS_PYTHON), "-c", "import bacalhau_sdk, bacalhau_apiclient"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    if check.returncode != 0:
        missing_prerequisite(f"the official clients do not import in .venv-clients (run: bash scripts/setup):\n{check.stderr}")
    return CLIENTS_PYTHON


@pytest.fixture
def run_client(clients_python: Path, node: BacalhauNode, tmp_path: Path) -> ClientRunner:
    """`run_client("script.py", *args)` -> ScriptRun, against this test's node; a crash fails the test."""
    client_dir = tmp_path / "client-bacalhau-dir"
    client_dir.mkdir()

    def run(script: str, *args: str, timeout: float = SCRIPT_TIMEOUT_S) -> ScriptRun:
        try:
            return run_client_script(
                clients_python, script, *args, api_port=node.api_port, bacalhau_dir=client_dir, timeout=timeout
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{node.log_excerpt(60)}") from None

    return run


@pytest.fixture
def watch(node: BacalhauNode) -> JobWatch:
    """Submits jobs to and reads them from this test's node over plain HTTP (to set the scene)."""
    return JobWatch(node.url, node.log_excerpt)
