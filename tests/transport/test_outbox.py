"""The persistent outbox: ordered per stream, replayable after the last acknowledgement, kill -9 safe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bacalhau.transport.outbox import Outbox


def test_sequence_numbers_are_contiguous_per_stream(outbox: Outbox) -> None:
    assert [outbox.append("n-1", "BidResult", b"a") for _ in range(3)] == [1, 2, 3]
    assert outbox.append("n-2", "BidResult", b"b") == 1
    assert outbox.last_seq("n-1") == 3
    assert outbox.last_seq("unknown") == 0


def test_after_replays_unacknowledged_messages_in_order(outbox: Outbox) -> None:
    for body in (b"one", b"two", b"three"):
        outbox.append("n-1", "RunResult", body)
    outbox.acknowledge("n-1", 1)
    replay = outbox.after("n-1", outbox.acked_seq("n-1"))
    assert [(e.seq, e.body) for e in replay] == [(2, b"two"), (3, b"three")]
    assert outbox.pending_count("n-1") == 2


def test_acknowledgements_never_move_backwards(outbox: Outbox) -> None:
    for _ in range(4):
        outbox.append("n-1", "RunResult", b"x")
    outbox.acknowledge("n-1", 3)
    outbox.acknowledge("n-1", 1)  # a stale ack, e.g. replayed
    assert outbox.acked_seq("n-1") == 3
    assert [e.seq for e in outbox.after("n-1", 0)] == [4]


def test_numbering_continues_after_everything_was_acknowledged(outbox: Outbox) -> None:
    outbox.append("n-1", "RunResult", b"x")
    outbox.acknowledge("n-1", 1)
    assert outbox.append("n-1", "RunResult", b"y") == 2


def test_numbering_comes_back_from_the_file_after_a_reopen(tmp_path: Path) -> None:
    """The numbering lives in memory between appends (one INSERT each): a new process must find it
    again, from the stored messages or, when all were acknowledged and deleted, from the stream row."""
    first = Outbox(path=tmp_path / "outbox.db")
    first.open()
    for _ in range(3):
        first.append("pending", "RunResult", b"x")
    for _ in range(2):
        first.append("acked", "RunResult", b"x")
    first.acknowledge("acked", 2)
    first.close()
    again = Outbox(path=tmp_path / "outbox.db")
    again.open()
    try:
        assert again.last_seq("pending") == 3 and again.last_seq("acked") == 2
        assert again.append("pending", "RunResult", b"y") == 4
        assert again.append("acked", "RunResult", b"y") == 3
        assert again.acked_seq("acked") == 2
    finally:
        again.close()


def test_an_acknowledgement_beyond_what_was_sent_stops_at_the_last_message(outbox: Outbox) -> None:
    for _ in range(2):
        outbox.append("n-1", "RunResult", b"x")
    outbox.acknowledge("n-1", 9)  # a peer that counts further than we ever sent
    assert outbox.acked_seq("n-1") == 2
    assert outbox.append("n-1", "RunResult", b"y") == 3


def test_checkpoints_move_forward_only_unless_reset(outbox: Outbox) -> None:
    outbox.set_checkpoint("orchestrator", 5)
    outbox.set_checkpoint("orchestrator", 3)
    assert outbox.checkpoint("orchestrator") == 5
    outbox.reset_checkpoint("orchestrator", 2)
    assert outbox.checkpoint("orchestrator") == 2


def test_drop_stream_forgets_messages_numbering_and_checkpoint(outbox: Outbox) -> None:
    outbox.append("n-1", "AskForBid", b"x")
    outbox.set_checkpoint("n-1", 7)
    outbox.drop_stream("n-1")
    assert outbox.after("n-1", 0) == []
    assert outbox.checkpoint("n-1") == 0
    assert outbox.append("n-1", "AskForBid", b"y") == 1


def test_messages_survive_a_kill_9_of_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    src = Path(__file__).resolve().parents[2] / "src"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(src)!r})
        from pathlib import Path
        from bacalhau.transport.outbox import Outbox
        box = Outbox(path=Path({str(path)!r}))
        box.open()
        for i in range(50):
            box.append("orchestrator", "RunResult", b"result-%d" % i)
        box.acknowledge("orchestrator", 10)
        box.set_checkpoint("orchestrator", 42)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    box = Outbox(path=path)
    box.open()
    try:
        replay = box.after("orchestrator", box.acked_seq("orchestrator"), limit=1000)
        assert [e.seq for e in replay] == list(range(11, 51))
        assert replay[0].body == b"result-10"
        assert box.checkpoint("orchestrator") == 42
        assert box.append("orchestrator", "RunResult", b"next") == 51
    finally:
        box.close()
    assert os.path.exists(path)


def test_a_frame_can_carry_its_own_sequence_number(outbox: Outbox) -> None:
    outbox.append("n-1", "BidResult", b"first")
    seq = outbox.append("n-1", "RunResult", lambda n: ({"Bacalhau-SeqNum": str(n)}, b"seq=%d" % n))
    assert seq == 2
    entry = outbox.after("n-1", 1)[0]
    assert (entry.headers, entry.body) == ({"Bacalhau-SeqNum": "2"}, b"seq=2")


def test_a_failing_frame_builder_stores_nothing(outbox: Outbox) -> None:
    def broken(seq: int) -> tuple[dict[str, str], bytes]:
        raise ValueError("cannot encode")

    with pytest.raises(ValueError):
        outbox.append("n-1", "RunResult", broken)
    assert outbox.last_seq("n-1") == 0
    assert outbox.append("n-1", "RunResult", b"ok") == 1
