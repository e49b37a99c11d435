"""Helpers shared by the NATS transport tests (imported by name; conftest.py puts this directory on sys.path)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from bacalhau.transport.nats_connection import NatsConnection
from bacalhau.transport.nats_server import EmbeddedNatsServer

WAIT_S = 15.0
ServerFactory = Callable[..., Coroutine[Any, Any, EmbeddedNatsServer]]
ConnectionFactory = Callable[..., NatsConnection]
# Short waits so that reconnect tests take a fraction of a second, not Bacalhau's 2 s per attempt.
FAST_CLIENT: dict[str, Any] = {"reconnect_wait_s": 0.05, "reconnect_jitter_s": 0.05, "first_connect_backoff_max_s": 0.2}


async def wait_until(predicate: Callable[[], bool], *, timeout_s: float = WAIT_S, what: str = "condition") -> None:
    """Poll `predicate` until it holds; fail the test with `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g}s waiting for {what}")
        await asyncio.sleep(0.01)
