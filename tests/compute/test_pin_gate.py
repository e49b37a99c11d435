"""PinGate: a release of pins waits for the publishes in flight and lets no new one start meanwhile."""

from __future__ import annotations

import asyncio

from bacalhau.compute.publishers.pin_gate import PinGate

WAIT_S = 5.0


async def _turns(n: int = 5) -> None:
    """Let the other tasks run until they block (no wall-clock wait)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_release_waits_for_the_publishes_in_flight() -> None:
    gate = PinGate()
    finish_publish = asyncio.Event()
    order: list[str] = []

    async def publish() -> None:
        async with gate.publishing():
            order.append("publish started")
            await finish_publish.wait()
            order.append("publish done")

    async def release() -> None:
        async with gate.releasing():
            order.append("release")

    publishing = asyncio.create_task(publish())
    await _turns()
    releasing = asyncio.create_task(release())
    await _turns()
    assert order == ["publish started"]

    finish_publish.set()
    async with asyncio.timeout(WAIT_S):
        await asyncio.gather(publishing, releasing)
    assert order == ["publish started", "publish done", "release"]


async def test_no_publish_starts_while_a_release_holds_or_waits_for_the_gate() -> None:
    gate = PinGate()
    finish_first = asyncio.Event()
    finish_release = asyncio.Event()
    order: list[str] = []

    async def publish(name: str, until: asyncio.Event | None = None) -> None:
        async with gate.publishing():
            order.append(name)
            if until is not None:
                await until.wait()

    async def release() -> None:
        async with gate.releasing():
            order.append("release")
            await finish_release.wait()

    first = asyncio.create_task(publish("first", finish_first))
    await _turns()
    releasing = asyncio.create_task(release())
    await _turns()
    later = asyncio.create_task(publish("later"))  # arrives while the release waits: goes after it
    await _turns()
    assert order == ["first"] and gate.publishing_count == 1

    finish_first.set()
    await _turns()
    assert order == ["first", "release"]
    finish_release.set()
    async with asyncio.timeout(WAIT_S):
        await asyncio.gather(first, releasing, later)
    assert order == ["first", "release", "later"]


async def test_a_cancelled_publish_leaves_the_gate() -> None:
    gate = PinGate()
    entered = asyncio.Event()

    async def publish() -> None:
        async with gate.publishing():
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(publish())
    await entered.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert gate.publishing_count == 0
    async with asyncio.timeout(WAIT_S), gate.releasing():
        pass
