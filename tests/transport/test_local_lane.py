"""OutboxLane: one persistent outbox stream delivered in order, at least once, to a handler in this process.

The outbox is a real SQLite file and every stored message a real NCL frame (the ones a hybrid node's
link stores), so a replay goes through NCL's decoder as it does after a restart. A delivery is recorded
with the path it took: "live" (the caller's own call, queued at `append`) or "replay" (the stored frame,
decoded and handed to `replay`), since the lane promises which path a message takes and when.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from nats_env import wait_until

from bacalhau.transport import local_lane
from bacalhau.transport import messages as m
from bacalhau.transport.local_lane import ACK_INTERVAL_S, Call, OutboxLane
from bacalhau.transport.ncl import data, dispatch
from bacalhau.transport.ncl.registry import Message, type_name
from bacalhau.transport.outbox import Outbox

MAX = 1024 * 1024
STREAM = "orchestrator"
NODE = "n-lane"
WAIT_S = 5.0

LaneFactory = Callable[..., OutboxLane]


class Recorder:
    """Records what a lane hands over, in order, with the path it took, and makes failing or gated calls."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, str]] = []  # ("live" | "replay", execution ID)
        self.attempts: list[str] = []  # every call of a live message, failed ones included
        self.replayed: list[Message] = []

    def ids(self) -> list[str]:
        return [execution_id for _, execution_id in self.delivered]

    def call(self, execution_id: str, *, failures: int = 0, gate: asyncio.Event | None = None) -> Call:
        """A live call that raises `failures` times, then (once `gate` is set, if given) records its delivery."""
        left = [failures]

        async def deliver() -> None:
            self.attempts.append(execution_id)
            if left[0] > 0:
                left[0] -= 1
                raise RuntimeError(f"{execution_id} refused")
            if gate is not None:
                await gate.wait()
            self.delivered.append(("live", execution_id))

        return deliver

    async def replay(self, message: Message) -> None:
        payload = message.payload
        assert isinstance(payload, data.RunResult), f"unexpected payload {payload!r}"
        self.replayed.append(message)
        self.delivered.append(("replay", payload.execution_id))


def append_result(lane: OutboxLane, execution_id: str, call: Call) -> int:
    """Append a RunResult as the local link does: its real NCL frame, and the call that delivers it live."""
    payload = dispatch.report_payload(m.RunResult(execution_id=execution_id, job_id="j-1"), "batch")
    return lane.append(type_name(payload), dispatch.report_frame(payload, node_id=NODE, max_bytes=MAX), call)


@pytest.fixture
async def lanes(outbox: Outbox) -> AsyncIterator[LaneFactory]:
    """`lanes(recorder, box=..., replay=...)` builds a lane on STREAM (on `outbox` unless told), handing
    replays to the recorder unless told; every lane is stopped at the end, before `outbox` closes."""
    made: list[OutboxLane] = []

    def make(recorder: Recorder, *, box: Outbox | None = None,
             replay: Callable[[Message], Awaitable[None]] | None = None) -> OutboxLane:
        lane = OutboxLane(outbox=box or outbox, stream=STREAM, replay=replay or recorder.replay,
                          max_message_bytes=MAX, name=f"test-{len(made)}")
        made.append(lane)
        return lane

    try:
        yield make
    finally:
        for lane in made:
            await lane.stop()


async def started(lane: OutboxLane) -> OutboxLane:
    """Start the lane and wait until it delivers live (its backlog, if any, is done)."""
    lane.start()
    await asyncio.wait_for(lane.idle.wait(), WAIT_S)
    return lane


async def test_live_appends_are_delivered_in_order_through_their_own_call(lanes: LaneFactory) -> None:
    """A running lane hands each message over as the object it is (its call), one at a time, in order."""
    recorder = Recorder()
    lane = await started(lanes(recorder))
    seqs = [append_result(lane, f"e-{i}", recorder.call(f"e-{i}")) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    await wait_until(lambda: len(recorder.delivered) == 5, timeout_s=WAIT_S, what="five live deliveries")
    assert recorder.delivered == [("live", f"e-{i}") for i in range(5)]
    await asyncio.wait_for(lane.idle.wait(), WAIT_S)
    assert lane.retries == 0


async def test_messages_stored_while_stopped_are_replayed_as_decoded_frames_at_start(
    lanes: LaneFactory, outbox: Outbox
) -> None:
    """A stopped lane only stores: its calls are never made, the stored frames are what gets delivered
    (as after a restart, when the calls are long gone), decoded by NCL, before anything new."""
    recorder = Recorder()
    lane = lanes(recorder)
    seqs = [append_result(lane, f"e-{i}", recorder.call(f"e-{i}")) for i in range(3)]
    assert not lane.running
    assert recorder.attempts == [] and outbox.pending_count(STREAM) == 3
    await started(lane)
    assert recorder.delivered == [("replay", "e-0"), ("replay", "e-1"), ("replay", "e-2")]
    assert recorder.attempts == []
    assert [msg.seq_num for msg in recorder.replayed] == seqs
    assert {(msg.type, msg.source) for msg in recorder.replayed} == {("RunResult", NODE)}
    # Once the backlog is delivered, new messages go live.
    append_result(lane, "e-3", recorder.call("e-3"))
    await wait_until(lambda: len(recorder.delivered) == 4, timeout_s=WAIT_S, what="the live message")
    assert recorder.delivered[-1] == ("live", "e-3")


async def test_a_backlog_longer_than_one_read_is_replayed_whole_and_in_order(lanes: LaneFactory) -> None:
    """The backlog is read from the outbox in pages: none may be lost or reordered between two pages."""
    recorder = Recorder()
    lane = lanes(recorder)
    for i in range(250):
        append_result(lane, f"e-{i}", recorder.call(f"e-{i}"))
    await started(lane)
    assert recorder.delivered == [("replay", f"e-{i}") for i in range(250)]


async def test_delivered_messages_are_acknowledged_in_the_outbox_within_the_ack_interval(
    lanes: LaneFactory, outbox: Outbox
) -> None:
    """The lane acknowledges lazily but on its own: a long-running lane must not keep its whole history."""
    recorder = Recorder()
    lane = await started(lanes(recorder))
    for i in range(3):
        append_result(lane, f"e-{i}", recorder.call(f"e-{i}"))
    await wait_until(lambda: len(recorder.delivered) == 3, timeout_s=WAIT_S, what="three deliveries")
    await wait_until(lambda: outbox.acked_seq(STREAM) == 3, timeout_s=ACK_INTERVAL_S + WAIT_S,
                     what="the acknowledgement of what was delivered")
    assert lane.running
    assert outbox.pending_count(STREAM) == 0


async def test_stop_acknowledges_what_was_delivered_at_once(
    lanes: LaneFactory, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acknowledgements are batched (not one write per message), and `stop` writes the last batch, so a
    clean stop replays nothing at the next start."""
    monkeypatch.setattr(local_lane, "ACK_INTERVAL_S", 3600.0)
    recorder = Recorder()
    lane = await started(lanes(recorder))
    for i in range(3):
        append_result(lane, f"e-{i}", recorder.call(f"e-{i}"))
    await wait_until(lambda: len(recorder.delivered) == 3, timeout_s=WAIT_S, what="three deliveries")
    assert outbox.acked_seq(STREAM) == 0  # not yet: the interval has not passed
    await lane.stop()
    assert outbox.acked_seq(STREAM) == 3
    assert outbox.pending_count(STREAM) == 0
    # Restarted, the lane has nothing to replay.
    await started(lane)
    assert recorder.delivered == [("live", f"e-{i}") for i in range(3)]


async def test_a_refused_message_is_retried_and_what_follows_it_waits(lanes: LaneFactory) -> None:
    """Order is kept across a refusal, as NCL's receiver keeps it: nothing behind a refused message is
    handed over before that message is taken."""
    recorder = Recorder()
    lane = await started(lanes(recorder))
    append_result(lane, "e-0", recorder.call("e-0"))
    append_result(lane, "e-1", recorder.call("e-1", failures=2))
    append_result(lane, "e-2", recorder.call("e-2"))
    await wait_until(lambda: len(recorder.delivered) == 3, timeout_s=WAIT_S, what="three deliveries")
    assert recorder.attempts == ["e-0", "e-1", "e-1", "e-1", "e-2"]
    assert recorder.ids() == ["e-0", "e-1", "e-2"]
    assert lane.retries == 2


async def test_a_replayed_message_that_is_refused_is_retried_too(lanes: LaneFactory) -> None:
    """The replay path keeps the same promise as the live one: a refusal is retried, not skipped."""
    recorder = Recorder()
    refusals = [1]

    async def replay(message: Message) -> None:
        if refusals[0] > 0:
            refusals[0] -= 1
            raise RuntimeError("not ready")
        await recorder.replay(message)

    lane = lanes(recorder, replay=replay)
    append_result(lane, "e-0", recorder.call("e-0"))
    append_result(lane, "e-1", recorder.call("e-1"))
    await started(lane)
    assert recorder.delivered == [("replay", "e-0"), ("replay", "e-1")]
    assert lane.retries == 1


async def test_a_message_still_refused_at_stop_is_kept_and_replayed_at_the_next_start(
    lanes: LaneFactory, outbox: Outbox
) -> None:
    """Stopping gives up on a refused message for now, not for good: it and those behind it stay stored."""
    recorder = Recorder()
    lane = await started(lanes(recorder))
    append_result(lane, "e-0", recorder.call("e-0"))
    append_result(lane, "e-1", recorder.call("e-1", failures=1_000))
    append_result(lane, "e-2", recorder.call("e-2"))
    await wait_until(lambda: lane.retries >= 1, timeout_s=WAIT_S, what="a retry of e-1")
    await lane.stop()
    assert recorder.ids() == ["e-0"]
    assert outbox.acked_seq(STREAM) == 1
    assert outbox.pending_count(STREAM) == 2
    await started(lane)
    assert recorder.delivered == [("live", "e-0"), ("replay", "e-1"), ("replay", "e-2")]


async def test_what_was_delivered_but_not_acknowledged_is_delivered_again_after_a_crash(
    lanes: LaneFactory, outbox: Outbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At least once: a process killed between a delivery and its acknowledgement delivers it again.

    The crash is a second Outbox and lane over the same file while the first lane, never stopped, has
    written nothing since its last acknowledgement (its lazy one is made to wait an hour).
    """
    monkeypatch.setattr(local_lane, "ACK_INTERVAL_S", 3600.0)
    before = Recorder()
    lane = await started(lanes(before))
    append_result(lane, "e-0", before.call("e-0"))
    append_result(lane, "e-1", before.call("e-1"))
    await wait_until(lambda: len(before.delivered) == 2, timeout_s=WAIT_S, what="two deliveries")
    lane.acknowledge()
    append_result(lane, "e-2", before.call("e-2"))
    append_result(lane, "e-3", before.call("e-3"))
    await wait_until(lambda: len(before.delivered) == 4, timeout_s=WAIT_S, what="four deliveries")

    reopened = Outbox(path=tmp_path / "outbox.db")
    reopened.open()
    after = Recorder()
    restarted = lanes(after, box=reopened)
    try:
        await started(restarted)
        assert after.delivered == [("replay", "e-2"), ("replay", "e-3")]
    finally:
        await restarted.stop()
        reopened.close()


async def test_an_append_during_the_backlog_replay_is_delivered_once_after_it(lanes: LaneFactory) -> None:
    """While the backlog is read, appends are not queued (the outbox has them); when the lane turns
    live it must neither lose such a message nor deliver it twice, and it comes after the backlog."""
    recorder = Recorder()

    async def replay_and_append(message: Message) -> None:
        # A handler that appends to its own stream while the backlog is read.
        await recorder.replay(message)
        if recorder.ids() == ["e-0"]:
            append_result(lane, "e-new", recorder.call("e-new"))

    lane = lanes(recorder, replay=replay_and_append)
    for i in range(3):
        append_result(lane, f"e-{i}", recorder.call(f"e-{i}"))
    await started(lane)  # idle: the backlog, and whatever it caused, is delivered
    assert recorder.ids() == ["e-0", "e-1", "e-2", "e-new"]
    append_result(lane, "e-last", recorder.call("e-last"))
    await wait_until(lambda: len(recorder.delivered) == 5, timeout_s=WAIT_S, what="the next live message")
    await asyncio.wait_for(lane.idle.wait(), WAIT_S)
    assert recorder.ids() == ["e-0", "e-1", "e-2", "e-new", "e-last"]


async def test_an_unreadable_stored_frame_is_skipped_and_what_follows_is_delivered(
    lanes: LaneFactory, outbox: Outbox
) -> None:
    """A frame NCL cannot decode would block the stream for good if retried: it is skipped (and
    acknowledged with the rest), and the messages after it still arrive."""
    recorder = Recorder()
    lane = lanes(recorder)
    outbox.append(STREAM, "RunResult", b"garbage")
    append_result(lane, "e-1", recorder.call("e-1"))
    await started(lane)
    assert recorder.delivered == [("replay", "e-1")]
    assert lane.retries == 0
    await lane.stop()
    assert outbox.acked_seq(STREAM) == 2


async def test_stop_with_a_flush_waits_for_the_queued_deliveries(lanes: LaneFactory, outbox: Outbox) -> None:
    """`stop(flush_s=...)` lets what is queued be delivered first (a node's last reports at shutdown)."""
    recorder = Recorder()
    gate = asyncio.Event()
    lane = await started(lanes(recorder))
    append_result(lane, "e-0", recorder.call("e-0", gate=gate))
    append_result(lane, "e-1", recorder.call("e-1"))
    append_result(lane, "e-2", recorder.call("e-2"))
    await wait_until(lambda: recorder.attempts == ["e-0"], timeout_s=WAIT_S, what="e-0 being delivered")
    stopping = asyncio.create_task(lane.stop(flush_s=WAIT_S))
    for _ in range(5):  # the stop runs up to its wait for the queue
        await asyncio.sleep(0)
    assert not stopping.done()  # e-0 is still in its handler: stop waits
    assert recorder.ids() == []
    gate.set()
    await asyncio.wait_for(stopping, WAIT_S)
    assert recorder.ids() == ["e-0", "e-1", "e-2"]
    assert outbox.acked_seq(STREAM) == 3


async def test_a_flush_is_bounded_and_what_it_could_not_deliver_stays_stored(
    lanes: LaneFactory, outbox: Outbox
) -> None:
    """A handler that never returns cannot hold a stop forever: after `flush_s` the lane stops, and the
    undelivered messages are replayed at the next start."""
    recorder = Recorder()
    stuck = asyncio.Event()  # never set
    lane = await started(lanes(recorder))
    append_result(lane, "e-0", recorder.call("e-0", gate=stuck))
    append_result(lane, "e-1", recorder.call("e-1"))
    await wait_until(lambda: recorder.attempts == ["e-0"], timeout_s=WAIT_S, what="e-0 being delivered")
    await asyncio.wait_for(lane.stop(flush_s=0.2), WAIT_S)
    assert recorder.delivered == []
    assert outbox.acked_seq(STREAM) == 0 and outbox.pending_count(STREAM) == 2
    await started(lane)
    assert recorder.delivered == [("replay", "e-0"), ("replay", "e-1")]


async def test_a_lane_started_again_while_a_stop_finishes_delivers_new_messages(lanes: LaneFactory) -> None:
    """LocalLink stops its work lane in a background task (`node_left`) and starts it from its own task (a
    handshake), with nothing ordering the two: whichever way they overlap, the lane must end up delivering."""
    recorder = Recorder()
    lane = await started(lanes(recorder))
    stopping = asyncio.create_task(lane.stop())
    # One turn of the loop, no more: the stop takes its first step and waits for the cancelled task.
    await asyncio.sleep(0)
    assert not lane.running and not stopping.done()
    lane.start()
    await asyncio.wait_for(stopping, WAIT_S)
    assert lane.running
    append_result(lane, "e-0", recorder.call("e-0"))
    await wait_until(lambda: len(recorder.delivered) == 1, timeout_s=2.0, what="delivery after the restart")
