"""Fixtures for the end-to-end scenarios: a JobWatch bound to the node under test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# scenario_jobs.py sits next to this file; make it importable whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scenario_jobs import JobWatch

from serve_node import BacalhauNode


@pytest.fixture
def watch(node: BacalhauNode) -> JobWatch:
    """Reads and waits on the jobs of the test's own node; failures carry its server log."""
    return JobWatch(node.url, node.log_excerpt)


@pytest.fixture(scope="module")
def shared_watch(shared_node: BacalhauNode) -> JobWatch:
    """Reads and waits on the jobs of the module's shared node."""
    return JobWatch(shared_node.url, shared_node.log_excerpt)
