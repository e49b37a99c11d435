"""nats_refusals: nats-server's log lines about refused clients, turned into the orchestrator's own log lines.

The lines below are nats-server 2.x's own (seen in tests/transport/test_nats_tls.py's server logs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import pytest
from nats_env import wait_until

from bacalhau.transport.nats_refusals import RefusalReader, explain, follow

PREFIX = "[9042] 2026/12/06 23:19:07.117469 "
WRONG_TOKEN = '[ERR] 127.0.0.1:49948 - cid:7 - authentication error - Token "[REDACTED]"'
MISSING_TOKEN = "[ERR] 127.0.0.1:36016 - cid:5 - authentication error"
TLS_EOF = "[ERR] 127.0.0.1:49942 - cid:6 - TLS handshake error: EOF"
TLS_BAD_CERT = "[ERR] 10.0.0.7:51240 - cid:13 - TLS handshake error: remote error: tls: bad certificate"
INFO_LINES = [
    "[INF] Starting nats-server",
    "[INF] Listening for client connections on 127.0.0.1:4222",
    "[INF] TLS required for client connections",
    "[INF] Server is ready",
    "[WRN] Maximum payloads over 8.00 MB are generally discouraged and could lead to poor performance",
    "",
]


# -- explain ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("line", [WRONG_TOKEN, MISSING_TOKEN, PREFIX + WRONG_TOKEN, PREFIX + MISSING_TOKEN + "\n"])
def test_an_authentication_error_is_a_wrong_or_missing_token(line: str) -> None:
    sentence = explain(line)

    assert sentence is not None
    address = line.split("[ERR] ", 1)[1].split(" ", 1)[0]
    assert f"NATS refused a connection from {address}: wrong or missing token" in sentence
    assert "Compute.Auth.Token" in sentence and "Orchestrator.Auth.Token" in sentence
    assert "REDACTED" not in sentence


@pytest.mark.parametrize("line", [TLS_EOF, PREFIX + TLS_EOF, TLS_BAD_CERT, PREFIX + TLS_BAD_CERT + "\r\n"])
def test_a_tls_handshake_error_asks_whether_the_client_trusts_us(line: str) -> None:
    sentence = explain(line)

    assert sentence is not None
    detail = line.split(" - ", 2)[2].strip()
    address = line.split("[ERR] ", 1)[1].split(" ", 1)[0]
    assert sentence.startswith(f"NATS refused a connection from {address}: {detail}")
    assert "Compute.TLS.CACert" in sentence


def test_an_ipv6_client_address_is_kept_whole() -> None:
    sentence = explain("[ERR] [::1]:50000 - cid:9 - TLS handshake error: EOF")

    assert sentence is not None and "from [::1]:50000:" in sentence


@pytest.mark.parametrize("line", INFO_LINES + [PREFIX + line for line in INFO_LINES if line] + [
    "[ERR] Error listening on port: 127.0.0.1:4222, \"address already in use\"",
    "[ERR] 127.0.0.1:49948 - cid:7 - Maximum Payload Violation",
    "[INF] 127.0.0.1:49948 - cid:7 - authentication error",  # not an error line
])
def test_other_lines_are_not_refusals(line: str) -> None:
    assert explain(line) is None


# -- RefusalReader ---------------------------------------------------------------------------------------
class Clock:
    """An injectable monotonic clock."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def append(path: Path, *lines: str, newline: bool = True) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + ("\n" if newline else ""))


def test_only_lines_written_after_the_reader_starts_are_read(tmp_path: Path) -> None:
    log = tmp_path / "nats-server.log"
    append(log, PREFIX + WRONG_TOKEN, PREFIX + TLS_EOF)  # before: an earlier run's refusals
    reader = RefusalReader(log, clock=Clock())

    assert reader.read() == []
    append(log, PREFIX + INFO_LINES[0], PREFIX + TLS_BAD_CERT)
    assert reader.read() == [explain(TLS_BAD_CERT)]
    assert reader.read() == []
    append(log, PREFIX + MISSING_TOKEN)
    assert reader.read() == [explain(MISSING_TOKEN)]


def test_a_log_that_does_not_exist_yet_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "nats-server.log"
    reader = RefusalReader(log, clock=Clock())

    assert reader.read() == []
    append(log, PREFIX + WRONG_TOKEN)
    assert reader.read() == [explain(WRONG_TOKEN)]
    log.unlink()
    assert reader.read() == []  # gone: nothing, no error


def test_a_partial_last_line_waits_for_its_end(tmp_path: Path) -> None:
    log = tmp_path / "nats-server.log"
    log.touch()
    reader = RefusalReader(log, clock=Clock())
    line = PREFIX + TLS_EOF
    cut = line.index("TLS handshake") + 5

    append(log, PREFIX + WRONG_TOKEN, line[:cut], newline=False)
    assert reader.read() == [explain(WRONG_TOKEN)]
    append(log, line[cut:])
    assert reader.read() == [explain(TLS_EOF)]


def test_a_truncated_log_is_read_again_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "nats-server.log"
    log.touch()
    reader = RefusalReader(log, clock=Clock())
    append(log, *(PREFIX + INFO_LINES[1] for _ in range(20)), PREFIX + WRONG_TOKEN)
    assert reader.read() == [explain(WRONG_TOKEN)]

    log.write_text(PREFIX + TLS_EOF + "\n", encoding="utf-8")  # shorter than what was read

    assert reader.read() == [explain(TLS_EOF)]


def test_an_unfinished_line_does_not_survive_truncation(tmp_path: Path) -> None:
    log = tmp_path / "nats-server.log"
    log.touch()
    reader = RefusalReader(log, clock=Clock())
    append(log, *(PREFIX + INFO_LINES[1] for _ in range(5)), PREFIX + MISSING_TOKEN, newline=False)
    assert reader.read() == []

    log.write_text(PREFIX + "[INF] Server is ready\n", encoding="utf-8")

    assert reader.read() == []


def test_the_same_refusal_is_said_once_per_quiet_period(tmp_path: Path) -> None:
    log = tmp_path / "nats-server.log"
    log.touch()
    clock = Clock()
    reader = RefusalReader(log, quiet_s=60.0, clock=clock)

    append(log, PREFIX + WRONG_TOKEN, PREFIX + WRONG_TOKEN)
    assert reader.read() == [explain(WRONG_TOKEN)]
    clock.now += 30
    append(log, PREFIX + WRONG_TOKEN)
    assert reader.read() == []
    # Another reason, or another client, is said at once.
    append(log, PREFIX + TLS_EOF, PREFIX + WRONG_TOKEN.replace("127.0.0.1:49948", "10.0.0.9:40000"))
    assert reader.read() == [explain(TLS_EOF), explain(WRONG_TOKEN.replace("127.0.0.1:49948", "10.0.0.9:40000"))]
    clock.now += 31  # 61 s after the first one
    append(log, PREFIX + WRONG_TOKEN)
    assert reader.read() == [explain(WRONG_TOKEN)]


def test_a_node_retrying_from_new_ports_is_said_once_per_quiet_period(tmp_path: Path) -> None:
    log = tmp_path / "nats-server.log"
    log.touch()
    reader = RefusalReader(log, quiet_s=60.0, clock=Clock())

    append(log, *(f"{PREFIX}[ERR] 10.0.0.7:{port} - cid:{port} - TLS handshake error: EOF" for port in range(51000, 51010)))

    assert len(reader.read()) == 1


def test_at_most_max_bytes_are_read_per_call(tmp_path: Path) -> None:
    log = tmp_path / "nats-server.log"
    log.touch()
    reader = RefusalReader(log, max_bytes=200, quiet_s=0.0, clock=Clock())
    lines = [f"{PREFIX}[ERR] 10.0.0.{n}:5000 - cid:{n} - authentication error" for n in range(1, 11)]
    append(log, *lines)
    size = log.stat().st_size
    assert size > 4 * 200

    said: list[str] = []
    reads = 0
    while len(said) < len(lines):
        batch = reader.read()
        reads += 1
        assert len(batch) <= 3  # 200 new bytes finish at most 3 of these ~85-byte lines
        said += batch
        assert reads <= size // 200 + 2, f"still reading after {reads} calls: {said}"

    assert said == [explain(line) for line in lines]
    assert reader.read() == []


def test_a_huge_line_without_an_end_does_not_stop_later_refusals(tmp_path: Path) -> None:
    log = tmp_path / "nats-server.log"
    log.touch()
    reader = RefusalReader(log, max_bytes=64 * 1024, clock=Clock())
    append(log, "x" * 300_000, newline=False)
    for _ in range(6):
        assert reader.read() == []
    assert len(reader._partial) <= 4096  # the unfinished line is bounded, not accumulated

    append(log, "", PREFIX + WRONG_TOKEN)

    assert reader.read() == [explain(WRONG_TOKEN)]


# -- follow ----------------------------------------------------------------------------------------------
async def test_follow_logs_each_new_refusal_as_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bacalhau.transport.nats_refusals")
    log = tmp_path / "nats-server.log"
    append(log, PREFIX + WRONG_TOKEN)  # before following: not reported
    task = asyncio.create_task(follow(log, poll_s=0.05))
    try:
        await asyncio.sleep(0.2)  # the reader has started (its first poll is after poll_s)
        append(log, PREFIX + INFO_LINES[3], PREFIX + TLS_EOF)
        await wait_until(lambda: any("TLS handshake error" in r.getMessage() for r in caplog.records),
                         timeout_s=5.0, what="the refusal in the log")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    said = [r for r in caplog.records if r.name == "bacalhau.transport.nats_refusals"]
    assert [r.getMessage() for r in said] == [explain(TLS_EOF)]
    assert said[0].levelno == logging.WARNING
