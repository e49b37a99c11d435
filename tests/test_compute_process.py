"""ComputeProcess, the supervisor of a hybrid node's compute child: real child processes, scripted
(tests/compute_process_child.py) to provoke what a real compute does rarely: a failed start, a crash,
silence, refusing to stop. The real child is covered end to end in
tests/scenarios/test_scenario_compute_process.py."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from bacalhau.compute_process import ComputeProcess
from bacalhau.models.errors import BacalhauError, ErrorCode
from bacalhau.transport.backoff import Backoff

CHILD = Path(__file__).with_name("compute_process_child.py")
HELLO = {"node_id": "n-test"}
ANSWER = {"node": "n-test", "labels": {}}


def process(mode: str, *extra: str, stop_margin_s: float = 5.0,
            watch: tuple[float, float, int] = (10.0, 5.0, 3), start_deadline_s: float = 300.0) -> ComputeProcess:
    return ComputeProcess(command=(sys.executable, str(CHILD), mode, *extra),
                          restart_backoff=Backoff(base_s=0.1, max_s=0.2), stop_margin_s=stop_margin_s, watch=watch,
                          start_deadline_s=start_deadline_s)


async def first_start_error(supervisor: ComputeProcess) -> BacalhauError:
    """The error the node stops with when `supervisor`'s first child does not start."""
    await supervisor.start()
    supervisor.introduce(lambda: HELLO)
    with pytest.raises(BacalhauError) as caught:
        async with asyncio.timeout(20):
            await supervisor.wait_started()
    return caught.value


async def started(supervisor: ComputeProcess) -> ComputeProcess:
    await supervisor.start()
    supervisor.introduce(lambda: HELLO)
    async with asyncio.timeout(20):
        await supervisor.wait_started()
    return supervisor


async def test_nothing_reaches_the_child_before_its_hello_and_then_it_starts_and_answers() -> None:
    supervisor = process("ok")
    try:
        await supervisor.start()
        # A SIGHUP during the node's start: the child would take the line for its hello and fail.
        assert not supervisor.send("labels", labels={"zone": "a"})
        assert await supervisor.ask("debug", timeout_s=0.5) is None
        supervisor.introduce(lambda: HELLO)
        async with asyncio.timeout(20):
            await supervisor.wait_started()
        assert await supervisor.ask("debug") == {"what": "debug", **ANSWER}
        assert await supervisor.ask("node_info") == {"what": "node_info", **ANSWER}
    finally:
        await supervisor.stop()


async def test_drain_tells_the_child_to_stop_and_waits_for_it() -> None:
    supervisor = await started(process("ok"))
    pid = supervisor.pid
    assert pid is not None
    began = time.monotonic()
    await supervisor.drain(10.0, abort=asyncio.Event())
    assert time.monotonic() - began < 5.0
    assert supervisor.pid is None
    await supervisor.stop()
    assert supervisor.restarts == 0  # a stop on purpose is not a crash


async def test_a_child_that_fails_to_start_fails_the_node_with_its_error() -> None:
    supervisor = process("fail")
    try:
        error = await first_start_error(supervisor)
        assert error.message == "cannot start: boom"
        assert error.hint == "fix the thing"
        assert error.code is ErrorCode.ConfigurationError
        assert supervisor.failed.is_set()
        assert supervisor.restarts == 0  # a first start that fails is not retried
    finally:
        await supervisor.stop()


async def test_a_child_that_dies_after_starting_is_replaced_with_the_hello_of_now(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hello = {**HELLO, "labels": {"zone": "a"}}
    supervisor = process("crash-once", str(tmp_path / "state"))
    await supervisor.start()
    supervisor.introduce(lambda: dict(hello))
    hello["labels"] = {"zone": "b"}  # a SIGHUP while the first child runs (or after it died)
    try:
        async with asyncio.timeout(20):
            while supervisor.restarts < 1:  # noqa: ASYNC110 (a counter, not an event)
                await asyncio.sleep(0.05)
            await supervisor.started.wait()
        # The new one got a hello, made when it started: with the labels of then.
        assert await supervisor.ask("debug") == {"what": "debug", "node": "n-test", "labels": {"zone": "b"}}
        assert not supervisor.failed.is_set()
        assert "exited with code 3" in caplog.text
    finally:
        await supervisor.stop()


async def test_a_question_nobody_answers_gets_none_in_time() -> None:
    supervisor = await started(process("silent"))
    try:
        began = time.monotonic()
        assert await supervisor.ask("debug", timeout_s=0.3) is None
        assert time.monotonic() - began < 2.0
    finally:
        await supervisor.stop()


async def test_stop_kills_a_child_that_will_not_stop() -> None:
    supervisor = await started(process("stubborn", stop_margin_s=0.5))
    pid = supervisor.pid
    began = time.monotonic()
    await supervisor.drain(0.0, abort=asyncio.Event())
    assert supervisor.pid == pid  # it ignored the drain
    await supervisor.stop()
    assert supervisor.pid is None
    assert time.monotonic() - began < 10.0


async def test_no_child_to_ask_means_no_answer() -> None:
    supervisor = process("ok")
    assert await supervisor.ask("debug") is None
    assert not supervisor.send("labels", labels={})
    await supervisor.stop()


async def test_a_child_that_hangs_after_starting_is_killed_by_the_watchdog_and_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Two questions unanswered for 1 s each: a loaded machine answers 20 ms questions late, not that late.
    supervisor = await started(process("hang-once", str(tmp_path / "state"), watch=(0.2, 1.0, 2)))
    hung = supervisor.pid
    try:
        async with asyncio.timeout(20):
            while supervisor.restarts < 1:  # noqa: ASYNC110 (a counter, not an event)
                await asyncio.sleep(0.05)
            await supervisor.started.wait()
        assert supervisor.pid not in (None, hung)
        assert await supervisor.ask("debug") == {"what": "debug", **ANSWER}  # the new one answers
        assert "has not answered 2 questions in a row" in caplog.text
        assert "exited with signal SIGKILL" in caplog.text
    finally:
        await supervisor.stop()


async def test_the_watchdog_leaves_a_child_that_answers_alone() -> None:
    supervisor = await started(process("ok", watch=(0.05, 1.0, 3)))
    pid = supervisor.pid
    try:
        await asyncio.sleep(1.0)  # about 20 questions, each answered
        assert supervisor.pid == pid
        assert supervisor.restarts == 0
    finally:
        await supervisor.stop()


async def test_the_watchdog_never_kills_a_child_that_is_draining() -> None:
    # A silent child answers nothing: were the watchdog still asking during the drain, it would kill it.
    supervisor = await started(process("stubborn", stop_margin_s=1.5, watch=(0.5, 0.1, 1)))
    try:
        pid = supervisor.pid
        await supervisor.drain(0.0, abort=asyncio.Event())  # ignored by the child: waits out the margin
        assert supervisor.pid == pid
        assert supervisor.restarts == 0
    finally:
        await supervisor.stop()


async def test_a_child_that_hangs_before_it_starts_is_killed_and_the_node_told_why(
    caplog: pytest.LogCaptureFixture
) -> None:
    supervisor = process("mute", start_deadline_s=0.5)
    try:
        error = await first_start_error(supervisor)
        assert "exited with signal SIGKILL before it started" in error.message
        assert "has not started within 0.5s of its hello: killing it" in caplog.text
    finally:
        await supervisor.stop()
