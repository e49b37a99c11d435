"""A hybrid node's compute side in a child process of its own, supervised by the node.

One Python process runs on one core (the GIL). A hybrid node (`serve --orchestrator --compute`) that
keeps its compute in process shares that core between its scheduling and its compute's bookkeeping
(the jobs themselves, in wasmtime or containers, use every core either way); under a load of trivial
jobs it stays at one core. With `Compute.SeparateProcess=true` (ours; off by default: see
config/types.py for the measured trade-off) the node runs its compute side as a child: a compute node
with the node's own name and data directory, joined to the node's orchestrator over NCL exactly as any
other compute node (the node's own NATS server, on loopback). The user still starts, stops, signals and
reads one node.

    parent (ComputeProcess)                           child (`python -m bacalhau.compute_child`)
    spawn ─ stdin: hello {config, node, servers} ──>  read hello, start the compute ─ NCL handshake ─┐
          <─ control fd: {"event": "started"} ─────  or {"event": "error", message, hint}, exit 1   │
    node's API: ask node_info / debug ───────────>  answered from the running compute node          │
    SIGHUP: {"op": "labels"} ────────────────────>  relabel (the orchestrator re-evaluates)         │
    stop: {"op": "drain"}, a second signal          announce the drain, let running work finish     │
          {"op": "stop_now"}; waited for, then      (Compute.ShutdownGracePeriod), hand back the rest│
          SIGKILL after the grace period + margin   and exit 0                                      ┘

The child dies with the node: Linux SIGKILLs it when the parent dies, even by SIGKILL (PR_SET_PDEATHSIG),
and it stops at once if its stdin closes. A kill -9 of the node therefore takes both halves down, as it
did in one process, and the restart reconciles over the handshake; a lingering child would hold the
compute's files while the next one starts. The child runs in its own session: Ctrl+C in the terminal
reaches the node, which stops the child in order (drain first). Its stdout and stderr are the node's.

If the child exits on its own after it started (a crash, the OOM killer), or hangs (the watchdog asks
it every 10 s and kills it after three questions in a row go unanswered for 5 s, or when it has not
started 5 minutes after its hello), the node logs it and starts another one after a backoff (1-2 s,
doubling up to 30-60 s, jittered; reset after a minute up): the new child fails what the dead one was
running, as any restarted compute node does, and the orchestrator retries it. If the first child fails
to start (or is killed for hanging before it started), the node stops with the child's error, as the
in-process compute would.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from bacalhau.models.errors import BacalhauError, ErrorCode
from bacalhau.transport.backoff import Backoff
from bacalhau.transport.parent_death import die_with_parent

if TYPE_CHECKING:
    from bacalhau.config.types import BacalhauConfig

log = logging.getLogger(__name__)

COMPONENT = "ComputeProcess"
# The child finds its end of the control pipe (child -> parent) in this variable.
CONTROL_FD_ENV = "BACALHAU_PY_COMPUTE_CONTROL_FD"
# A line on either pipe is one JSON object; a debug answer lists every running execution.
MAX_LINE_BYTES = 16 * 1024 * 1024
_ASK_TIMEOUT_S = 5.0
# After the drain's grace period, how long the child has to hand its work back and exit.
_STOP_MARGIN_S = 15.0
_KILL_WAIT_S = 5.0
# A child that ran this long before it died counts as healthy: the next restart is quick again.
_HEALTHY_AFTER_S = 60.0
# The watchdog: a started child is asked every _WATCH_INTERVAL_S whether it still answers; after
# _WATCH_MISSES questions in a row unanswered within _WATCH_TIMEOUT_S (about 45 s), it is killed and
# replaced. Long enough for a loaded child to answer late, short enough that a hung one does not keep
# the node's work waiting for minutes.
_WATCH_INTERVAL_S = 10.0
_WATCH_TIMEOUT_S = 5.0
_WATCH_MISSES = 3
# A child has this long from its hello to say it started (its compute opens its stores, takes back what
# it ran, handshakes with the node's own orchestrator: seconds), else it is killed: hung before it could
# answer anything. A first child killed so stops the node with that reason, a later one is replaced.
_START_DEADLINE_S = 300.0


def separate_compute_wanted(config: BacalhauConfig, *, orchestrator: bool, compute: bool) -> bool:
    """Whether `serve` with these flags runs a hybrid node with its compute in a child process (as Node
    decides: the flags, else the config's Enabled keys; then Compute.SeparateProcess)."""
    return ((orchestrator or config.orchestrator.enabled) and (compute or config.compute.enabled)
            and config.compute.separate_process)


class ComputeProcess:
    """Starts the node's compute child, restarts it if it dies, talks to it, stops it (module docstring)."""

    def __init__(
        self,
        *,
        # -P: the node's own modules, never a same-named file in the directory `serve` was started from.
        command: Sequence[str] = (sys.executable, "-P", "-m", "bacalhau.compute_child"),
        restart_backoff: Backoff | None = None,
        stop_margin_s: float = _STOP_MARGIN_S,
        clock: Callable[[], float] = time.monotonic,
        watch: tuple[float, float, int] = (_WATCH_INTERVAL_S, _WATCH_TIMEOUT_S, _WATCH_MISSES),
        start_deadline_s: float = _START_DEADLINE_S,
    ) -> None:
        """`command` runs the child (tests give a scripted one); `stop_margin_s` is how long it has to
        exit once told to, past the drain's grace period; `watch` is the watchdog's (interval, timeout,
        misses); `start_deadline_s`, how long a child has from its hello to say it started."""
        self._command = list(command)
        self._backoff = restart_backoff or Backoff(base_s=2.0, max_s=60.0)
        self._stop_margin_s = stop_margin_s
        self._watch_interval_s, self._watch_timeout_s, self._watch_misses = watch
        self._start_deadline_s = start_deadline_s
        self._hello_sent = asyncio.Event()  # the current child has had its hello
        self._clock = clock
        # Builds the hello anew for each child: one started after a SIGHUP gets the new labels.
        self._hello: Callable[[], dict[str, Any]] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._control_fd: int | None = None  # the node's end of the current child's control pipe
        self._greeted: subprocess.Popen[bytes] | None = None  # the child that has had its hello
        self._supervisor: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._stopping = False
        self._ever_started = False
        self._spawned_once = asyncio.Event()
        # Set once the current child reported its compute started; cleared when it exits.
        self.started = asyncio.Event()
        # Set when the first child failed to start: the node stops with `fatal_error`.
        self.failed = asyncio.Event()
        self.fatal_error: BacalhauError | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The current child's process ID (None between two children)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def spawn(self) -> None:
        """Start a child now, outside the event loop too: `serve` calls it before it imports the node, so
        that the child's imports (most of its start) overlap the node's. `start` spawns one otherwise.
        Raises OSError when the interpreter cannot be started."""
        read_fd, write_fd = os.pipe()
        try:
            self._proc = subprocess.Popen(
                self._command, stdin=subprocess.PIPE, env={**os.environ, CONTROL_FD_ENV: str(write_fd)},
                pass_fds=(write_fd,), start_new_session=True, preexec_fn=die_with_parent(signal.SIGKILL),
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self._control_fd = read_fd
        self._hello_sent.clear()
        log.info("compute process %d spawned for this node (Compute.SeparateProcess)", self._proc.pid)

    async def start(self) -> None:
        """Supervise the child (spawning one unless `spawn` did); returns once it is spawned. The child
        imports what it needs while the node starts its orchestrator, then waits for `introduce`."""
        self._supervisor = asyncio.create_task(self._supervise(), name="compute-process")
        await self._spawned_once.wait()

    def introduce(self, hello: Callable[[], dict[str, Any]]) -> None:
        """Give the child (and every later one) its first line, `hello()` (`compute_child.Hello`): it then
        starts the compute."""
        self._hello = hello
        self._greet()

    def _greet(self) -> None:
        proc = self._proc
        if self._hello is None or proc is None or proc is self._greeted:
            return
        if self._write(proc, self._hello()):
            self._greeted = proc
            self._hello_sent.set()

    @staticmethod
    def _write(proc: subprocess.Popen[bytes], message: dict[str, Any]) -> bool:
        """One line to the child's stdin; False when it is gone."""
        if proc.poll() is not None or proc.stdin is None:
            return False
        try:
            proc.stdin.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
            proc.stdin.flush()
        except (BrokenPipeError, ValueError):  # it exited meanwhile, or its stdin was closed
            return False
        return True

    async def wait_started(self) -> None:
        """Until the current child's compute runs; raises its error if the first one failed to start."""
        started = asyncio.ensure_future(self.started.wait())
        failed = asyncio.ensure_future(self.failed.wait())
        try:
            await asyncio.wait((started, failed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            started.cancel()
            failed.cancel()
        if self.fatal_error is not None:
            raise self.fatal_error

    def send(self, op: str, **fields: Any) -> bool:
        """Tell the child something (no answer); False when no child is there to hear it yet: none, or
        one that has not had its hello (which it would take this line for; the hello carries the state)."""
        proc = self._proc
        if proc is None or proc is not self._greeted:
            return False
        return self._write(proc, {"op": op, **fields})

    async def ask(self, what: str, timeout_s: float = _ASK_TIMEOUT_S) -> Any:
        """The child's answer to `what` ("node_info", "debug"); None when no child answers in time."""
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            if not self.send("ask", id=request_id, what=what):
                return None
            async with asyncio.timeout(timeout_s):
                return await future
        except TimeoutError:
            log.warning("the compute process did not answer %r within %gs", what, timeout_s)
            return None
        finally:
            self._pending.pop(request_id, None)

    async def drain(self, grace_s: float, abort: asyncio.Event) -> None:
        """Stop the child in order: it drains (up to `grace_s`, cut short when `abort` is set) and exits."""
        self._stopping = True
        proc = self._proc
        if proc is None or not self.send("drain"):
            return  # no child now, or one that never had its hello: stop() ends it
        aborted = asyncio.ensure_future(abort.wait())
        exited = asyncio.ensure_future(_exited(proc))
        try:
            done, _ = await asyncio.wait((aborted, exited), timeout=grace_s + self._stop_margin_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            if aborted in done and not exited.done():
                self.send("stop_now")
                await asyncio.wait((exited,), timeout=self._stop_margin_s)
        finally:
            aborted.cancel()
            exited.cancel()

    async def stop(self) -> None:
        """End the child (SIGTERM, then SIGKILL) and the supervision; what it still runs is its to hand
        back. Idempotent."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self.send("stop_now")
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(_exited(proc), self._stop_margin_s)
            except TimeoutError:
                log.warning("the compute process %d did not stop within %gs: killing it", proc.pid,
                            self._stop_margin_s)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.wait_for(_exited(proc), _KILL_WAIT_S)
        for task in (self._supervisor, self._reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if proc is not None:
            _close_stdin(proc)
        if self._control_fd is not None:  # spawned, never supervised
            os.close(self._control_fd)
            self._control_fd = None

    # --- supervision -------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        try:
            await self._keep_running()
        except Exception as exc:  # a bug here must not leave the node waiting for a child for ever
            log.exception("supervising the compute process failed")
            self.fatal_error = BacalhauError(f"supervising the compute process failed: {exc!r}", component=COMPONENT)
            self.failed.set()
        finally:
            self._spawned_once.set()

    async def _keep_running(self) -> None:
        while not self._stopping:
            error: list[BacalhauError] = []
            try:
                if self._proc is None:  # else `spawn` ran before the loop: that child, dead or alive
                    self.spawn()
            except OSError as exc:
                self._give_up_or_wait_error(BacalhauError(
                    f"cannot start the compute process: {exc}", code=ErrorCode.InternalError, component=COMPONENT))
                if self.failed.is_set():
                    return
                await asyncio.sleep(self._backoff.next_delay_s())
                continue
            proc, control_fd = self._proc, self._control_fd
            assert proc is not None and control_fd is not None
            self._control_fd = None
            reader = await pipe_lines(os.fdopen(control_fd, "rb", 0))
            self._reader = asyncio.create_task(self._read(reader, error), name="compute-process-control")
            self._greet()  # a restart: the node introduced the first child already
            self._spawned_once.set()
            began = self._clock()
            watchdog = asyncio.create_task(self._watch(proc), name="compute-process-watchdog")
            # The pipe ends when the child does (nothing else holds its end): then its exit status.
            try:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader
            finally:
                watchdog.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watchdog
            code = await _exited(proc)
            _close_stdin(proc)
            self.started.clear()
            for future in self._pending.values():
                if not future.done():
                    future.set_result(None)
            if self._stopping:
                return
            if not self._ever_started:
                self.fatal_error = error[0] if error else BacalhauError(
                    f"the compute process exited with {_exit_status(code)} before it started",
                    code=ErrorCode.InternalError, component=COMPONENT,
                    hint="its log lines above say why",
                )
                self.failed.set()
                return
            if self._clock() - began >= _HEALTHY_AFTER_S:
                self._backoff.reset()
            delay = self._backoff.next_delay_s()
            why = f": {error[0].message}" if error else ""
            log.error("the compute process %d exited with %s%s; starting another in %.1fs "
                      "(it fails what the dead one ran; the orchestrator places that again)",
                      proc.pid, _exit_status(code), why, delay)
            await asyncio.sleep(delay)
            self._proc = None
            self.restarts += 1

    async def _watch(self, proc: subprocess.Popen[bytes]) -> None:
        """Kill `proc` if it hangs (alive, but its event loop stuck): only an exit makes the supervisor
        replace a child, and a hung one would keep what it runs, and the node's compute, stuck for ever.
        Hung means: no "started" within the start deadline of its hello, or, once started, no answer to
        _WATCH_MISSES questions in a row (any answer counts). A stop in progress is never interrupted."""
        try:
            if await self._started_in_time(proc):
                await self._ask_until_silent(proc)
        except Exception:  # a bug here must not end the supervision, only the watching
            log.exception("watching the compute process %d failed", proc.pid)

    async def _started_in_time(self, proc: subprocess.Popen[bytes]) -> bool:
        await self._hello_sent.wait()
        try:
            async with asyncio.timeout(self._start_deadline_s):
                await self.started.wait()
            return True
        except TimeoutError:
            self._kill_hung(proc, f"has not started within {self._start_deadline_s:g}s of its hello")
            return False

    async def _ask_until_silent(self, proc: subprocess.Popen[bytes]) -> None:
        misses = 0
        while not self._stopping and proc.poll() is None:
            await asyncio.sleep(self._watch_interval_s)
            if self._stopping or proc is not self._proc:
                return
            if await self.ask("ping", timeout_s=self._watch_timeout_s) is not None:
                misses = 0
                continue
            misses += 1
            if misses >= self._watch_misses:
                self._kill_hung(proc, f"has not answered {misses} questions in a row "
                                      f"({self._watch_interval_s:g}s apart)")
                return

    def _kill_hung(self, proc: subprocess.Popen[bytes], why: str) -> None:
        """SIGKILL `proc`, which `why`; the supervisor then treats it as any child that died. Not during a stop."""
        if self._stopping or proc.poll() is not None:
            return
        log.error("the compute process %d %s: killing it", proc.pid, why)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()

    def _give_up_or_wait_error(self, error: BacalhauError) -> None:
        if not self._ever_started:
            self.fatal_error = error
            self.failed.set()
        else:
            log.error("%s", error.message)

    async def _read(self, reader: asyncio.StreamReader, error: list[BacalhauError]) -> None:
        """The child's lines: events and answers, until it closes its end (it exited)."""
        while True:
            try:
                line = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):  # a line past MAX_LINE_BYTES: not ours
                log.error("the compute process sent an oversized control line: ignored")
                continue
            if not line:
                return
            try:
                message = json.loads(line)
            except ValueError:
                log.error("the compute process sent a line that is not JSON: %.200r", line)
                continue
            if not isinstance(message, dict):
                continue
            event = message.get("event")
            if event == "started":
                self._ever_started = True
                self.started.set()
            elif event == "error":
                error[:] = [BacalhauError(str(message.get("message", "")), code=_error_code(message.get("code")),
                                          component=str(message.get("component") or COMPONENT),
                                          hint=str(message.get("hint") or ""))]
            elif "id" in message:
                future = self._pending.get(message["id"]) if isinstance(message["id"], int) else None
                if future is not None and not future.done():
                    future.set_result(message.get("answer"))


def _close_stdin(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        with contextlib.suppress(OSError):  # a line it never read: it has gone
            proc.stdin.close()


async def pipe_lines(pipe: BinaryIO, *, already_read: bytes = b"") -> asyncio.StreamReader:
    """The read end of a control pipe as an asyncio stream of lines up to MAX_LINE_BYTES, after
    `already_read` (what was read from it before); the stream owns `pipe` from now on."""
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    reader.feed_data(already_read)
    protocol = asyncio.StreamReaderProtocol(reader)
    await asyncio.get_running_loop().connect_read_pipe(lambda: protocol, pipe)
    return reader


async def _exited(proc: subprocess.Popen[bytes], poll_s: float = 0.02) -> int:
    """`proc`'s exit status once it has exited (polled: a Popen cannot be waited for on the event loop)."""
    while (code := proc.poll()) is None:  # noqa: ASYNC110 (no event to wait for)
        await asyncio.sleep(poll_s)
    return code


def _error_code(value: object) -> ErrorCode:
    try:
        return ErrorCode(str(value))
    except ValueError:
        return ErrorCode.InternalError


def _exit_status(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"code {code}"
