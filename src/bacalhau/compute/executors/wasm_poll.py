"""An interruptible `wasi_snapshot_preview1.poll_oneoff`: WASI sleeps that a stop cuts short.

wasmtime's own poll_oneoff sleeps inside Rust, and epoch interruption only fires in wasm code, so a
module blocked in `sleep(100000)` (nanosleep -> poll_oneoff with one clock subscription) would hold its
worker thread past a cancel or the execution timeout. This one shadows it in the Linker and sleeps on
the execution's `threading.Event` instead, which `stop` sets:

    guest nanosleep / poll ──> poll_oneoff(in, out, nsubscriptions, nevents_ptr) -> errno
      │ decode nsubscriptions x 48 bytes ── none ───────────────────────────────> EINVAL
      │                                  ── unknown tag, cputime clock, flags ──> EINVAL
      │                                  ── in/out/nevents outside memory ─────> EFAULT
      v
    an fd subscription? ── yes: ready at once (files and stdio always are in preview1) ──┐
      │ no: wait on `woken` until the earliest clock deadline                              │
      │── stop sets `woken` ──> EINTR, nevents 0; the epoch `stop` already incremented     │
      │                         traps the guest at its next loop back-edge or call         │
      v                                                                                    v
    one 32-byte event per ready subscription, in subscription order; *nevents = count; SUCCESS

Layouts (WASI preview1 witx, little-endian; checked against wasmtime's crates/wasi/witx/p1):

    subscription, 48 bytes                     event, 32 bytes
      0 userdata u64                             0 userdata u64
      8 tag u8 (0 clock, 1 fd_read, 2 fd_write)  8 error u16 (errno)
     16 clock id u32 | fd u32                   10 type u8
     24 clock timeout u64 (ns)                  16 fd_readwrite.nbytes u64
     32 clock precision u64 (ns)                24 fd_readwrite.flags u16 (bit 0 hangup)
     40 clock flags u16 (bit 0 ABSTIME)

Errnos follow wasmtime's implementation rather than a wish list: it answers EINVAL (not ENOTSUP) to an
unknown tag, an undefined flag bit and the cputime clocks. Where wasmtime traps (a pointer outside
memory) this answers EFAULT: raising from a Python host function goes through wasmtime-py's
process-wide LAST_EXCEPTION, which concurrent executions in other threads could pick up.
Not reproduced, because the descriptor table is wasmtime's and out of reach from here: EBADF for an
fd that is not open, and the hangup flag of a file read at its end.
"""

from __future__ import annotations

import enum
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import wasmtime

WASI_MODULE = "wasi_snapshot_preview1"
POLL_ONEOFF = "poll_oneoff"
SUBSCRIPTION_SIZE = 48
EVENT_SIZE = 32
# userdata, tag, (7 pad) clock id | fd @16, (4 pad) timeout @24, precision @32, flags @40
_SUBSCRIPTION = struct.Struct("<QB7xI4xQQH")
# userdata, error @8, type @10, (5 pad) nbytes @16, flags @24, (6 pad)
_EVENT = struct.Struct("<QHB5xQH6x")
_SIZE = struct.Struct("<I")
_ABSTIME = 0x1
_U32 = 0xFFFF_FFFF
# threading's waits reject timeouts above threading.TIMEOUT_MAX; a u64 timeout is 584 years.
_MAX_WAIT_S = 3600.0


class Errno(enum.IntEnum):
    """The WASI errnos this call returns (witx `errno` enum values)."""

    SUCCESS = 0
    FAULT = 21
    INTR = 27
    INVAL = 28


class EventType(enum.IntEnum):
    """Subscription tags and event types (witx `eventtype`)."""

    CLOCK = 0
    FD_READ = 1
    FD_WRITE = 2


class ClockId(enum.IntEnum):
    """The clocks a subscription may wait on; the cputime clocks (2, 3) are not, as in wasmtime."""

    REALTIME = 0
    MONOTONIC = 1


@dataclass(frozen=True, slots=True)
class ClockSubscription:
    """Wake when `clock` reaches `timeout_ns` (absolute) or after `timeout_ns` (relative)."""

    userdata: int
    clock: ClockId
    timeout_ns: int
    precision_ns: int
    absolute: bool


@dataclass(frozen=True, slots=True)
class FdSubscription:
    """Wake when `fd` can be read (FD_READ) or written (FD_WRITE)."""

    userdata: int
    type: EventType
    fd: int


Subscription = ClockSubscription | FdSubscription


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the events array poll_oneoff fills in."""

    userdata: int
    type: EventType
    error: int = 0
    nbytes: int = 0
    flags: int = 0


class PollError(Exception):
    """poll_oneoff fails as a whole with `errno`; nothing is written to the events array."""

    def __init__(self, errno: Errno) -> None:
        super().__init__(errno.name)
        self.errno = errno


@dataclass(frozen=True)
class SleepControl:
    """What poll_oneoff needs from its execution.

    `woken` is set by the execution's stop and never cleared. `monotonic_origin_ns` is the host
    `time.monotonic_ns()` at which the guest's monotonic clock reads 0: wasmtime counts it from the
    creation of the WasiConfig, so take it right after that (a later reading only makes an ABSTIME
    monotonic sleep end microseconds late, never early).
    """

    woken: threading.Event
    monotonic_origin_ns: int


def decode_subscriptions(memory: bytes | bytearray | memoryview, in_ptr: int, count: int) -> list[Subscription]:
    """The `count` subscriptions at `in_ptr`; PollError(EINVAL) for none or a bad one, EFAULT outside memory."""
    if count == 0:
        raise PollError(Errno.INVAL)  # wasmtime: indefinite sleeping is not supported in preview1
    _check_bounds(memory, in_ptr, count * SUBSCRIPTION_SIZE)
    subscriptions: list[Subscription] = []
    for offset in range(in_ptr, in_ptr + count * SUBSCRIPTION_SIZE, SUBSCRIPTION_SIZE):
        userdata, tag, ident, timeout, precision, flags = _SUBSCRIPTION.unpack_from(memory, offset)
        if tag == EventType.CLOCK:
            if ident > ClockId.MONOTONIC or flags & ~_ABSTIME:
                raise PollError(Errno.INVAL)
            absolute = bool(flags & _ABSTIME)
            subscriptions.append(ClockSubscription(userdata, ClockId(ident), timeout, precision, absolute))
        elif tag in (EventType.FD_READ, EventType.FD_WRITE):
            subscriptions.append(FdSubscription(userdata, EventType(tag), ident))
        else:
            raise PollError(Errno.INVAL)
    return subscriptions


def encode_events(memory: bytearray | memoryview, out_ptr: int, events: Sequence[Event]) -> None:
    """Write `events` as the 32-byte records at `out_ptr`; PollError(EFAULT) outside memory."""
    _check_bounds(memory, out_ptr, len(events) * EVENT_SIZE)
    for index, event in enumerate(events):
        _EVENT.pack_into(
            memory, out_ptr + index * EVENT_SIZE, event.userdata, event.error, event.type, event.nbytes, event.flags
        )


def write_size(memory: bytearray | memoryview, ptr: int, value: int) -> None:
    """Store a u32 `size` result (nevents) at `ptr`; PollError(EFAULT) outside memory."""
    _check_bounds(memory, ptr, _SIZE.size)
    _SIZE.pack_into(memory, ptr, value)


def deadlines_ns(
    subscriptions: Sequence[Subscription], *, monotonic_ns: int, realtime_ns: int, monotonic_origin_ns: int
) -> list[int | None]:
    """Each clock subscription's deadline on the host's monotonic clock (None for fd subscriptions).

    Every clock is mapped onto the host monotonic clock, the one `threading.Event.wait` measures: a
    relative timeout from `monotonic_ns`, an absolute realtime one by its distance from `realtime_ns`
    (fixed now, as wasmtime does: a wall clock step during the sleep does not move it), an absolute
    monotonic one through the guest clock's origin.
    """
    deadlines: list[int | None] = []
    for sub in subscriptions:
        if not isinstance(sub, ClockSubscription):
            deadlines.append(None)
        elif not sub.absolute:
            deadlines.append(monotonic_ns + sub.timeout_ns)
        elif sub.clock is ClockId.REALTIME:
            deadlines.append(monotonic_ns + max(0, sub.timeout_ns - realtime_ns))
        else:
            deadlines.append(monotonic_origin_ns + sub.timeout_ns)
    return deadlines


def ready_events(subscriptions: Sequence[Subscription], deadlines: Sequence[int | None], now_ns: int) -> list[Event]:
    """The events for what is ready at `now_ns`: every fd subscription, and the clocks that are due.

    An fd event reports nbytes 1, as wasmtime does for files and stdio alike: "at least a byte can
    move", not a size (the file size and position are wasmtime's, out of reach from here).
    """
    events: list[Event] = []
    for sub, deadline in zip(subscriptions, deadlines, strict=True):
        if isinstance(sub, FdSubscription):
            events.append(Event(sub.userdata, sub.type, nbytes=1))
        elif deadline is not None and deadline <= now_ns:
            events.append(Event(sub.userdata, EventType.CLOCK))
    return events


def sleep_until(
    deadline_ns: int, woken: threading.Event, *, monotonic_ns: Callable[[], int] = time.monotonic_ns
) -> bool:
    """Wait for the host monotonic clock to reach `deadline_ns`; False as soon as `woken` is set.

    A `woken` set before the call returns False at once (a stop is never lost); a past deadline
    returns True without touching the Event, which keeps `sleep(0)`-style yields cheap.
    """
    remaining_ns = deadline_ns - monotonic_ns()
    while remaining_ns > 0:
        # Event.wait may return a hair early: loop until the clock agrees, so no clock event is early.
        if woken.wait(min(remaining_ns / 1e9, _MAX_WAIT_S)):
            return False
        remaining_ns = deadline_ns - monotonic_ns()
    return True


def poll(
    memory: bytearray | memoryview, in_ptr: int, out_ptr: int, count: int, nevents_ptr: int, sleep: SleepControl
) -> Errno:
    """poll_oneoff over guest `memory` (pointers as unsigned offsets); returns the errno for the guest."""
    try:
        subscriptions = decode_subscriptions(memory, in_ptr, count)
        # Checked before sleeping: a bad pointer is reported at once, not after the wait.
        _check_bounds(memory, out_ptr, count * EVENT_SIZE)
        _check_bounds(memory, nevents_ptr, _SIZE.size)
        now_ns = time.monotonic_ns()
        deadlines = deadlines_ns(
            subscriptions,
            monotonic_ns=now_ns,
            realtime_ns=time.time_ns() if _has_absolute_realtime(subscriptions) else 0,
            monotonic_origin_ns=sleep.monotonic_origin_ns,
        )
        clock_deadlines = [deadline for deadline in deadlines if deadline is not None]
        if len(clock_deadlines) == len(deadlines):  # clocks only: sleep until the first is due
            if not sleep_until(min(clock_deadlines), sleep.woken):
                write_size(memory, nevents_ptr, 0)
                return Errno.INTR
            now_ns = time.monotonic_ns()
        events = ready_events(subscriptions, deadlines, now_ns)
        encode_events(memory, out_ptr, events)
        write_size(memory, nevents_ptr, len(events))
    except PollError as exc:
        return exc.errno
    return Errno.SUCCESS


def define_poll_oneoff(linker: wasmtime.Linker, sleep: SleepControl | Callable[[], SleepControl]) -> None:
    """Shadow the poll_oneoff that `linker.define_wasi()` defined with the interruptible one.

    `sleep` is the execution's SleepControl, or a function returning the one of the execution running
    now (a linker kept between executions)."""
    current = sleep if callable(sleep) else (lambda: sleep)

    def poll_oneoff(caller: wasmtime.Caller, in_ptr: int, out_ptr: int, count: int, nevents_ptr: int) -> int:
        memory = _guest_memory(caller)
        if memory is None:
            return Errno.FAULT
        # wasmtime-py hands i32 parameters over signed; WASI pointers and sizes are unsigned.
        return poll(memory, in_ptr & _U32, out_ptr & _U32, count & _U32, nevents_ptr & _U32, current())

    i32 = wasmtime.ValType.i32()
    signature = wasmtime.FuncType([i32, i32, i32, i32], [i32])
    linker.allow_shadowing = True
    try:
        linker.define_func(WASI_MODULE, POLL_ONEOFF, signature, poll_oneoff, access_caller=True)
    finally:
        # Back to rejecting duplicates, so a mistaken second definition of an import module still fails.
        linker.allow_shadowing = False


def _guest_memory(caller: wasmtime.Caller) -> memoryview | None:
    """A zero-copy, writable view of the calling module's `memory` export, valid during this call only.

    The guest cannot grow (and so move) its memory while it waits in this host call.
    """
    memory = caller.get("memory")
    if not isinstance(memory, wasmtime.Memory):
        return None
    if memory.data_len(caller) == 0:
        return memoryview(bytearray())
    return memoryview(memory.get_buffer_ptr(caller)).cast("B")


def _has_absolute_realtime(subscriptions: Sequence[Subscription]) -> bool:
    return any(
        isinstance(sub, ClockSubscription) and sub.absolute and sub.clock is ClockId.REALTIME for sub in subscriptions
    )


def _check_bounds(memory: bytes | bytearray | memoryview, ptr: int, length: int) -> None:
    if ptr < 0 or ptr + length > len(memory):
        raise PollError(Errno.FAULT)
