"""wasm_poll's decoding, encoding and waiting, against memory built byte by byte from the WASI preview1 layout.

The fixtures write each field at its spec offset by hand (not with the module's struct formats), so a
wrong format string in the module fails here. Sleeping through real wasmtime is in test_wasm_poll_sleep.py.
"""

from __future__ import annotations

import threading
import time

import pytest

from bacalhau.compute.executors.wasm_poll import (
    ClockId,
    ClockSubscription,
    Errno,
    Event,
    EventType,
    FdSubscription,
    PollError,
    SleepControl,
    deadlines_ns,
    decode_subscriptions,
    encode_events,
    poll,
    ready_events,
    sleep_until,
    write_size,
)

SECOND_NS = 1_000_000_000
GARBAGE = 0xEE  # padding and unused union bytes hold whatever the guest left there


def put(raw: bytearray, offset: int, value: int, size: int) -> None:
    raw[offset : offset + size] = value.to_bytes(size, "little")


def clock_sub(
    userdata: int, *, clock: int = ClockId.MONOTONIC, timeout_ns: int, precision_ns: int = 0, flags: int = 0
) -> bytes:
    raw = bytearray([GARBAGE]) * 48
    put(raw, 0, userdata, 8)
    put(raw, 8, EventType.CLOCK, 1)
    put(raw, 16, clock, 4)
    put(raw, 24, timeout_ns, 8)
    put(raw, 32, precision_ns, 8)
    put(raw, 40, flags, 2)
    return bytes(raw)


def fd_sub(userdata: int, tag: int, fd: int) -> bytes:
    raw = bytearray([GARBAGE]) * 48
    put(raw, 0, userdata, 8)
    put(raw, 8, tag, 1)
    put(raw, 16, fd, 4)
    return bytes(raw)


def memory_with(subscriptions: bytes, *, at: int = 64, size: int = 1024) -> bytearray:
    memory = bytearray(size)
    memory[at : at + len(subscriptions)] = subscriptions
    return memory


def field(memory: bytearray, offset: int, size: int) -> int:
    return int.from_bytes(memory[offset : offset + size], "little")


def control(*, woken: threading.Event | None = None, origin_ns: int = 0) -> SleepControl:
    return SleepControl(woken=woken or threading.Event(), monotonic_origin_ns=origin_ns)


# -- decoding --------------------------------------------------------------------------------------------
def test_decodes_a_relative_clock_subscription() -> None:
    memory = memory_with(clock_sub(0x1122334455667788, timeout_ns=5 * SECOND_NS, precision_ns=1000), at=96)
    assert decode_subscriptions(memory, 96, 1) == [
        ClockSubscription(0x1122334455667788, ClockId.MONOTONIC, 5 * SECOND_NS, 1000, absolute=False)
    ]


def test_decodes_an_absolute_realtime_clock_subscription() -> None:
    timeout = 1_700_000_000 * SECOND_NS
    memory = memory_with(clock_sub(7, clock=ClockId.REALTIME, timeout_ns=timeout, flags=1))
    assert decode_subscriptions(memory, 64, 1) == [ClockSubscription(7, ClockId.REALTIME, timeout, 0, absolute=True)]


def test_decodes_fd_subscriptions_ignoring_the_rest_of_the_union() -> None:
    memory = memory_with(
        fd_sub(1, EventType.FD_READ, 0) + fd_sub(2, EventType.FD_WRITE, 1) + clock_sub(3, timeout_ns=0)
    )
    assert decode_subscriptions(memory, 64, 3) == [
        FdSubscription(1, EventType.FD_READ, 0),
        FdSubscription(2, EventType.FD_WRITE, 1),
        ClockSubscription(3, ClockId.MONOTONIC, 0, 0, absolute=False),
    ]


@pytest.mark.parametrize(
    "subscription",
    [
        pytest.param(fd_sub(1, 3, 0), id="unknown-tag"),
        pytest.param(clock_sub(1, clock=2, timeout_ns=0), id="process-cputime-clock"),
        pytest.param(clock_sub(1, clock=9, timeout_ns=0), id="undefined-clock"),
        pytest.param(clock_sub(1, timeout_ns=0, flags=0b10), id="undefined-flag-bit"),
    ],
)
def test_a_subscription_wasmtime_rejects_is_einval(subscription: bytes) -> None:
    # The bad one comes second: the whole call fails, as in wasmtime, not just that subscription.
    memory = memory_with(clock_sub(0, timeout_ns=0) + subscription)
    with pytest.raises(PollError) as caught:
        decode_subscriptions(memory, 64, 2)
    assert caught.value.errno is Errno.INVAL


def test_zero_subscriptions_is_einval() -> None:
    with pytest.raises(PollError) as caught:
        decode_subscriptions(bytearray(64), 0, 0)
    assert caught.value.errno is Errno.INVAL


def test_subscriptions_reaching_past_the_end_of_memory_fault() -> None:
    memory = memory_with(clock_sub(1, timeout_ns=0) * 2, at=0, size=96)
    assert len(decode_subscriptions(memory, 0, 2)) == 2  # an exact fit is fine
    for in_ptr, count in [(1, 2), (0, 3), (96, 1), (0, 0xFFFF_FFFF)]:
        with pytest.raises(PollError) as caught:
            decode_subscriptions(memory, in_ptr, count)
        assert caught.value.errno is Errno.FAULT


# -- encoding --------------------------------------------------------------------------------------------
def test_events_are_32_byte_records_at_the_spec_offsets() -> None:
    memory = bytearray([GARBAGE]) * 128
    events = [Event(0xAABBCCDD11223344, EventType.CLOCK), Event(9, EventType.FD_WRITE, error=8, nbytes=1, flags=1)]
    encode_events(memory, 16, events)
    assert field(memory, 16, 8) == 0xAABBCCDD11223344
    assert (field(memory, 24, 2), field(memory, 26, 1)) == (0, EventType.CLOCK)
    assert (field(memory, 32, 8), field(memory, 40, 2)) == (0, 0)
    second = 16 + 32
    assert field(memory, second, 8) == 9
    assert (field(memory, second + 8, 2), field(memory, second + 10, 1)) == (8, EventType.FD_WRITE)
    assert (field(memory, second + 16, 8), field(memory, second + 24, 2)) == (1, 1)
    assert memory[:16] == bytes([GARBAGE]) * 16 and memory[80:] == bytes([GARBAGE]) * 48


def test_events_past_the_end_of_memory_fault_and_write_nothing() -> None:
    memory = bytearray(63)
    with pytest.raises(PollError) as caught:
        encode_events(memory, 0, [Event(1, EventType.CLOCK), Event(2, EventType.CLOCK)])
    assert caught.value.errno is Errno.FAULT
    assert memory == bytearray(63)
    with pytest.raises(PollError):
        write_size(memory, 60, 1)


# -- deadlines and readiness -----------------------------------------------------------------------------
def test_every_clock_becomes_a_deadline_on_the_host_monotonic_clock() -> None:
    subs: list[ClockSubscription | FdSubscription] = [
        ClockSubscription(1, ClockId.MONOTONIC, 50, 0, absolute=False),
        ClockSubscription(2, ClockId.REALTIME, 70, 0, absolute=False),
        ClockSubscription(3, ClockId.REALTIME, 5_000 + 30, 0, absolute=True),
        ClockSubscription(4, ClockId.REALTIME, 4_000, 0, absolute=True),  # already past: due now
        ClockSubscription(5, ClockId.MONOTONIC, 400, 0, absolute=True),  # guest time 400 = host 300 + 400
        FdSubscription(6, EventType.FD_READ, 0),
    ]
    deadlines = deadlines_ns(subs, monotonic_ns=1_000, realtime_ns=5_000, monotonic_origin_ns=300)
    assert deadlines == [1_050, 1_070, 1_030, 1_000, 700, None]


def test_fd_subscriptions_are_ready_at_once_and_clocks_only_when_due() -> None:
    subs: list[ClockSubscription | FdSubscription] = [
        ClockSubscription(1, ClockId.MONOTONIC, 0, 0, absolute=False),
        FdSubscription(2, EventType.FD_WRITE, 1),
        ClockSubscription(3, ClockId.MONOTONIC, 0, 0, absolute=False),
    ]
    assert ready_events(subs, [100, None, 101], now_ns=100) == [
        Event(1, EventType.CLOCK),
        Event(2, EventType.FD_WRITE, nbytes=1),
    ]


def test_sleep_until_a_past_deadline_returns_without_waiting() -> None:
    class NeverWait(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            raise AssertionError("waited for a deadline that had passed")

    assert sleep_until(100, NeverWait(), monotonic_ns=lambda: 100)


def test_sleep_until_never_reports_a_deadline_early() -> None:
    # Event.wait may return a little before its timeout: the clock, not the wait, decides.
    readings = iter([0, 10, 20, 30])
    waits: list[float] = []

    class EarlyWait(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            assert timeout is not None
            waits.append(timeout)
            return False

    assert sleep_until(30, EarlyWait(), monotonic_ns=lambda: next(readings))
    assert waits == [30e-9, 20e-9, 10e-9]


def test_a_stop_before_the_sleep_is_not_lost() -> None:
    woken = threading.Event()
    woken.set()
    assert not sleep_until(time.monotonic_ns() + 1000 * SECOND_NS, woken)


def test_a_stop_during_the_sleep_wakes_it() -> None:
    class ObservedEvent(threading.Event):
        def __init__(self) -> None:
            super().__init__()
            self.waiting = threading.Event()

        def wait(self, timeout: float | None = None) -> bool:
            self.waiting.set()
            return super().wait(timeout)

    woken = ObservedEvent()
    memory = memory_with(clock_sub(1, timeout_ns=1000 * SECOND_NS))
    result: list[Errno] = []
    sleeper = threading.Thread(target=lambda: result.append(poll(memory, 64, 512, 1, 1000, control(woken=woken))))
    sleeper.start()
    try:
        assert woken.waiting.wait(10), "poll never started waiting"
        woken.set()
    finally:
        sleeper.join(10)
    assert result == [Errno.INTR]
    assert field(memory, 1000, 4) == 0


# -- the whole call over a memory buffer -------------------------------------------------------------------
def test_a_due_clock_writes_its_event_and_the_count() -> None:
    memory = memory_with(clock_sub(42, timeout_ns=0))
    put(memory, 1000, 0xFFFF_FFFF, 4)
    assert poll(memory, 64, 512, 1, 1000, control()) is Errno.SUCCESS
    assert field(memory, 1000, 4) == 1
    assert (field(memory, 512, 8), field(memory, 520, 2), field(memory, 522, 1)) == (42, 0, EventType.CLOCK)


def test_the_earliest_of_several_clocks_ends_the_wait_and_only_due_ones_are_reported() -> None:
    memory = memory_with(clock_sub(1, timeout_ns=1000 * SECOND_NS) + clock_sub(2, timeout_ns=1_000_000))
    assert poll(memory, 64, 512, 2, 1000, control()) is Errno.SUCCESS
    assert field(memory, 1000, 4) == 1
    assert field(memory, 512, 8) == 2


def test_an_fd_subscription_answers_at_once_even_beside_a_long_clock() -> None:
    memory = memory_with(clock_sub(1, timeout_ns=1000 * SECOND_NS) + fd_sub(2, EventType.FD_WRITE, 1))
    assert poll(memory, 64, 512, 2, 1000, control()) is Errno.SUCCESS
    assert field(memory, 1000, 4) == 1
    assert (field(memory, 512, 8), field(memory, 522, 1), field(memory, 528, 8)) == (2, EventType.FD_WRITE, 1)


@pytest.mark.parametrize(("out_ptr", "nevents_ptr"), [(1000, 0), (0, 1022)], ids=["events", "nevents"])
def test_a_bad_result_pointer_faults_before_sleeping(out_ptr: int, nevents_ptr: int) -> None:
    # A 1000 s sleep: reaching it would hang the test, so the fault must come first.
    memory = memory_with(clock_sub(1, timeout_ns=1000 * SECOND_NS), at=200)
    assert poll(memory, 200, out_ptr, 1, nevents_ptr, control()) is Errno.FAULT


def test_errors_leave_nevents_untouched() -> None:
    memory = memory_with(fd_sub(1, 7, 0))
    put(memory, 1000, 0x5A5A5A5A, 4)
    assert poll(memory, 64, 512, 1, 1000, control()) is Errno.INVAL
    assert poll(memory, 64, 512, 0, 1000, control()) is Errno.INVAL
    assert field(memory, 1000, 4) == 0x5A5A5A5A
