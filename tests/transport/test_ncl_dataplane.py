"""The NCL data plane over a real nats-server: ordered, acknowledged, replayed, deduplicated.

A sender publishes an outbox stream; a receiver on another connection handles each message once, in
order, and acks only after its handler returned. Failures (a refusing handler, a receiver that is not
there, a restart of both ends) end with every message handled exactly once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from nats_env import ConnectionFactory, ServerFactory, wait_until

from bacalhau.models.errors import BacalhauError
from bacalhau.transport.backoff import Backoff
from bacalhau.transport.ncl import data
from bacalhau.transport.ncl.metadata import data_plane_metadata
from bacalhau.transport.ncl.receiver import OrderedReceiver, publish_reply
from bacalhau.transport.ncl.registry import Message, encode_message
from bacalhau.transport.ncl.sender import ACK_PERSIST_S, OrderedSender
from bacalhau.transport.outbox import Outbox

SUBJECT = "bacalhau.global.compute.n-1.out.msgs"
MAX = 16 * 1024 * 1024


def outbox_at(path: Path) -> Outbox:
    box = Outbox(path=path)
    box.open()
    return box


def enqueue(outbox: Outbox, execution_id: str) -> int:
    payload = data.BidResult(ExecutionID=execution_id, JobID="j-1", JobType="batch", Accepted=True)
    return outbox.append(
        "n-1", "BidResult", lambda seq: encode_message(payload, source="n-1", metadata=data_plane_metadata(seq))
    )


class Recorder:
    """A receiver-side handler that records what it handled and can be told to refuse."""

    def __init__(self) -> None:
        self.handled: list[str] = []
        self.refuse_next = 0

    async def __call__(self, stream: str, message: Message) -> None:
        if self.refuse_next:
            self.refuse_next -= 1
            raise BacalhauError("store busy, try again")
        assert isinstance(message.payload, data.BidResult)
        self.handled.append(message.payload.execution_id)


async def subscribe_receiver(nc: Any, receiver: OrderedReceiver) -> Any:
    async def on_msg(msg: Any) -> None:
        await receiver.receive("n-1", msg.data, msg.reply, lambda subject, body: publish_reply(nc, subject, body))

    return await nc.subscribe(SUBJECT, cb=on_msg)


async def test_messages_arrive_once_in_order_and_leave_the_outbox(
    tmp_path: Path, nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    server = await nats_servers()
    sender_nc = await nats_connections(server.client_url).connect()
    receiver_nc = await nats_connections(server.client_url).connect()
    outbox, inbox_state = outbox_at(tmp_path / "send.db"), outbox_at(tmp_path / "recv.db")
    recorder = Recorder()
    await subscribe_receiver(receiver_nc, OrderedReceiver(outbox=inbox_state, handler=recorder, max_message_bytes=MAX))
    sender = OrderedSender(nc=sender_nc, outbox=outbox, stream="n-1", subject=SUBJECT, window=8)
    await sender.start()
    for i in range(50):
        enqueue(outbox, f"e-{i}")
        sender.notify()
    await wait_until(lambda: outbox.pending_count("n-1") == 0, what="all 50 acknowledged")
    assert recorder.handled == [f"e-{i}" for i in range(50)]
    assert inbox_state.checkpoint("n-1") == 50
    await sender.stop()


async def test_a_refused_message_is_resent_until_handled_and_order_holds(
    tmp_path: Path, nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    server = await nats_servers()
    nc = await nats_connections(server.client_url).connect()
    outbox, inbox_state = outbox_at(tmp_path / "send.db"), outbox_at(tmp_path / "recv.db")
    recorder = Recorder()
    recorder.refuse_next = 2
    receiver = OrderedReceiver(outbox=inbox_state, handler=recorder, max_message_bytes=MAX)
    await subscribe_receiver(nc, receiver)
    sender = OrderedSender(nc=nc, outbox=outbox, stream="n-1", subject=SUBJECT, backoff=Backoff(base_s=0.01, max_s=0.05))
    await sender.start()
    for i in range(5):
        enqueue(outbox, f"e-{i}")
    sender.notify()
    await wait_until(lambda: outbox.pending_count("n-1") == 0, what="all acknowledged after refusals")
    assert recorder.handled == [f"e-{i}" for i in range(5)]
    assert sender.rewinds >= 2
    assert recorder.refuse_next == 0  # the handler refused twice ...
    assert receiver.refused >= 2  # ... and later messages waited for the refused one
    await sender.stop()


async def test_messages_wait_in_the_outbox_while_nobody_listens(
    tmp_path: Path, nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    server = await nats_servers()
    nc = await nats_connections(server.client_url).connect()
    outbox, inbox_state = outbox_at(tmp_path / "send.db"), outbox_at(tmp_path / "recv.db")
    sender = OrderedSender(nc=nc, outbox=outbox, stream="n-1", subject=SUBJECT, backoff=Backoff(base_s=0.02, max_s=0.1))
    await sender.start()
    for i in range(3):
        enqueue(outbox, f"e-{i}")
    sender.notify()
    await wait_until(lambda: sender.rewinds >= 2, what="no responders noticed")
    assert outbox.pending_count("n-1") == 3  # nothing lost while the peer is away
    recorder = Recorder()
    await subscribe_receiver(nc, OrderedReceiver(outbox=inbox_state, handler=recorder, max_message_bytes=MAX))
    await wait_until(lambda: outbox.pending_count("n-1") == 0, what="delivered once the peer listens")
    assert recorder.handled == ["e-0", "e-1", "e-2"]
    await sender.stop()


async def test_a_replay_after_restart_is_recognised_and_not_handled_twice(
    tmp_path: Path, nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    server = await nats_servers()
    nc = await nats_connections(server.client_url).connect()
    outbox, inbox_state = outbox_at(tmp_path / "send.db"), outbox_at(tmp_path / "recv.db")
    recorder = Recorder()
    await subscribe_receiver(nc, OrderedReceiver(outbox=inbox_state, handler=recorder, max_message_bytes=MAX))
    for i in range(4):
        enqueue(outbox, f"e-{i}")
    # The receiver handled everything but its acks were lost: the sender's outbox still holds it all.
    inbox_state.set_checkpoint("n-1", 0)
    sender = OrderedSender(nc=nc, outbox=outbox, stream="n-1", subject=SUBJECT)
    await sender.start()
    sender.notify()
    await wait_until(lambda: outbox.pending_count("n-1") == 0, what="first delivery")
    # Simulate lost acks: put the same frames back (as a sender restarted from an old checkpoint would).
    await sender.stop()
    for i in range(4):
        enqueue(outbox, f"e-{i}")  # seq 5..8: new messages, handled
    replay = OrderedSender(nc=nc, outbox=outbox, stream="n-1", subject=SUBJECT)
    await replay.start(peer_processed=inbox_state.checkpoint("n-1"))
    await wait_until(lambda: outbox.pending_count("n-1") == 0, what="second delivery")
    assert len(recorder.handled) == 8
    # Now resend frames the receiver already has (seq 1..8 again) straight onto the subject.
    receiver_seen = list(recorder.handled)
    for seq in range(1, 9):
        payload = data.BidResult(ExecutionID=f"dup-{seq}", JobID="j-1", Accepted=True)
        headers, body = encode_message(payload, source="n-1", metadata=data_plane_metadata(seq))
        reply = await nc.request(SUBJECT, body, headers=headers, timeout=5)
        assert reply.data == b"{}"  # acknowledged ...
    assert recorder.handled == receiver_seen  # ... but not handled again
    await replay.stop()


async def test_a_malformed_frame_is_nacked_and_the_receiver_keeps_working(
    tmp_path: Path, nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    server = await nats_servers()
    nc = await nats_connections(server.client_url).connect()
    inbox_state = outbox_at(tmp_path / "recv.db")
    recorder = Recorder()
    await subscribe_receiver(nc, OrderedReceiver(outbox=inbox_state, handler=recorder, max_message_bytes=MAX))
    bad = await nc.request(SUBJECT, b"\x01\x00\x00\x00\x00{not json", timeout=5)
    text = bad.data.decode().lower()
    assert '"error"' in text and ("crc" in text or "checksum" in text), text
    headers, body = encode_message(
        data.BidResult(ExecutionID="e-ok", JobID="j-1", Accepted=True), source="n-1", metadata=data_plane_metadata(1)
    )
    good = await nc.request(SUBJECT, body, headers=headers, timeout=5)
    assert good.data == b"{}"
    await asyncio.sleep(0)
    assert recorder.handled == ["e-ok"]


async def test_a_message_refused_before_handling_keeps_later_ones_waiting(tmp_path: Path) -> None:
    # As when the orchestrator's queue for a node is full: seq 2 is refused unread, seq 3 must wait.
    inbox_state = outbox_at(tmp_path / "recv.db")
    recorder = Recorder()
    receiver = OrderedReceiver(outbox=inbox_state, handler=recorder, max_message_bytes=MAX)
    answers: list[bytes] = []

    async def publish(subject: str, body: bytes) -> None:
        answers.append(body)

    def frame(seq: int) -> bytes:
        payload = data.BidResult(ExecutionID=f"e-{seq}", JobID="j-1", Accepted=True)
        return encode_message(payload, source="n-1", metadata=data_plane_metadata(seq))[1]

    await receiver.receive("n-1", frame(1), "r", publish)
    receiver.refuse_from("n-1", 2)
    await receiver.receive("n-1", frame(3), "r", publish)
    assert recorder.handled == ["e-1"] and b"waiting for message 2" in answers[-1]
    await receiver.receive("n-1", frame(2), "r", publish)
    await receiver.receive("n-1", frame(3), "r", publish)
    assert recorder.handled == ["e-1", "e-2", "e-3"]


async def linked_pair(
    tmp_path: Path, nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> tuple[Any, Outbox, Recorder]:
    """A connection, the sending outbox, and the recorder behind a receiver subscribed on it."""
    server = await nats_servers()
    nc = await nats_connections(server.client_url).connect()
    outbox, inbox_state = outbox_at(tmp_path / "send.db"), outbox_at(tmp_path / "recv.db")
    recorder = Recorder()
    await subscribe_receiver(nc, OrderedReceiver(outbox=inbox_state, handler=recorder, max_message_bytes=MAX))
    return nc, outbox, recorder


async def test_acks_are_forgotten_in_batches_and_a_crash_before_that_handles_nothing_twice(
    tmp_path: Path, nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    nc, outbox, recorder = await linked_pair(tmp_path, nats_servers, nats_connections)
    deletes: list[str] = []
    outbox._conn.set_trace_callback(lambda sql: deletes.append(sql) if sql.startswith("DELETE") else None)
    sender = OrderedSender(nc=nc, outbox=outbox, stream="n-1", subject=SUBJECT, window=4)
    await sender.start()
    for i in range(20):
        enqueue(outbox, f"e-{i}")
        sender.notify()
    await wait_until(lambda: sender.acked == 20, what="all 20 acknowledged")
    assert recorder.handled == [f"e-{i}" for i in range(20)]
    await wait_until(lambda: outbox.pending_count("n-1") == 0, timeout_s=ACK_PERSIST_S + 5, what="forgotten")
    assert 1 <= len(deletes) <= 3, f"{len(deletes)} outbox DELETEs for 20 acknowledged messages"

    # Acknowledged, but the process dies before the outbox forgets them (no stop()).
    for i in range(20, 25):
        enqueue(outbox, f"e-{i}")
        sender.notify()
    await wait_until(lambda: sender.acked == 25, what="5 more acknowledged")
    assert outbox.pending_count("n-1") == 5  # still stored: ACK_PERSIST_S has not passed
    sender._task.cancel()  # the crash: nothing persists the acks (a restart reads the outbox anew)
    sender._persist_handle.cancel()
    restarted = OrderedSender(nc=nc, outbox=outbox, stream="n-1", subject=SUBJECT)
    await restarted.start()  # without the peer's checkpoint: it re-sends e-20..e-24
    await wait_until(lambda: outbox.pending_count("n-1") == 0, timeout_s=ACK_PERSIST_S + 5, what="re-sent, acked")
    assert recorder.handled == [f"e-{i}" for i in range(25)]  # the receiver took them as duplicates
    await restarted.stop()
    await sender.stop()


async def test_stop_forgets_what_was_acknowledged_at_once(
    tmp_path: Path, nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    nc, outbox, recorder = await linked_pair(tmp_path, nats_servers, nats_connections)
    sender = OrderedSender(nc=nc, outbox=outbox, stream="n-1", subject=SUBJECT)
    await sender.start()
    for i in range(3):
        enqueue(outbox, f"e-{i}")
    sender.notify()
    await wait_until(lambda: sender.acked == 3, what="acknowledged")
    await sender.stop()
    assert recorder.handled == ["e-0", "e-1", "e-2"]
    assert outbox.pending_count("n-1") == 0 and outbox.acked_seq("n-1") == 3


async def test_a_dropped_stream_keeps_its_next_messages_when_the_old_sender_stops(
    tmp_path: Path, nats_servers: ServerFactory, nats_connections: ConnectionFactory
) -> None:
    nc, outbox, _ = await linked_pair(tmp_path, nats_servers, nats_connections)
    sender = OrderedSender(nc=nc, outbox=outbox, stream="n-1", subject=SUBJECT)
    await sender.start()
    for i in range(5):
        enqueue(outbox, f"e-{i}")
    sender.notify()
    await wait_until(lambda: sender.acked == 5, what="acknowledged")
    # The node is deleted (orchestrator_link.forget): its stream goes, and a comeback numbers from 1.
    outbox.drop_stream("n-1")
    assert [enqueue(outbox, f"new-{i}") for i in range(2)] == [1, 2]
    await sender.stop()  # a stop after the drop: its five acks must not delete the new 1 and 2
    assert outbox.pending_count("n-1") == 2
