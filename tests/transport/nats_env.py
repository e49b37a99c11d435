"""Helpers shared by the NATS transport tests (imported by name; conftest.py puts this directory on sys.path)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

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


async def exchange(sender: Client, sub: Subscription, payload: bytes, *, timeout_s: float = WAIT_S) -> Msg:
    """Publish `payload` on `sub`'s subject from `sender` until `sub` receives it; the caller flushed the
    subscribing side first.

    NATS core delivers at most once, and twice in CI a first message on loopback never arrived (1 test of
    3,400, not reproduced in 25 runs under CPU load): tests of a link's setup publish again, every second,
    rather than fail on that. A repeat is logged with the sender's counters, and the test fails if
    nothing arrives within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    attempts = 0
    while time.monotonic() < deadline:
        attempts += 1
        await sender.publish(sub.subject, payload)
        await sender.flush(timeout=int(timeout_s))
        try:
            msg = await sub.next_msg(timeout=1.0)
        except nats.errors.TimeoutError:
            continue
        if attempts > 1:
            logging.getLogger(__name__).warning("NATS message delivered at attempt %d: sender %s, receiver "
                                                "pending %d", attempts, sender.stats, sub.pending_msgs)
        return msg
    pytest.fail(f"no message delivered in {timeout_s:g}s ({attempts} attempts): sender {sender.stats}, "
                f"receiver pending {sub.pending_msgs}")
