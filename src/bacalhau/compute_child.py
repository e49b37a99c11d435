"""The compute side of a hybrid node, run as its child process (`python -m bacalhau.compute_child`).

Started only by compute_process.ComputeProcess, which explains the layout. This end reads the hello
line from stdin (the node's config, name and NATS servers), runs the compute as node.py builds it,
answers the parent's questions on the control fd, and stops when told to, or at once when stdin
closes (the parent is gone).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import traceback
import uuid
from typing import TYPE_CHECKING, Any, BinaryIO

from pydantic import BaseModel, ConfigDict

from bacalhau.compute_process import CONTROL_FD_ENV, MAX_LINE_BYTES, pipe_lines

if TYPE_CHECKING:
    from bacalhau.node import Node

log = logging.getLogger(__name__)


class Hello(BaseModel):
    """What the node tells its compute child first (one JSON line on the child's stdin)."""

    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any]  # BacalhauConfig.to_wire(), secrets included: the pipe is the node's own
    set_keys: list[str]  # which keys the user set (BacalhauConfig.is_set)
    node_id: str
    installation_id: str
    servers: list[str]  # the NATS servers to join: the node's embedded one, or Orchestrator.NATS.Servers
    own_server: bool  # whether that is the node's embedded server (its TLS, over loopback)
    log_level: int  # the parent's root logging level (--log-level beats Logging.Level)


class ParentLink:
    """The child's end of the control pipes: events and answers out, the parent's lines in."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._leftover = b""  # what came after the hello in the same read

    def read_hello(self) -> bytes:
        """The first line on stdin, read from the file descriptor itself: a buffered reader could take
        the parent's next lines with it, which `obey` (reading the descriptor) would then never see."""
        data = b""
        while b"\n" not in data:
            chunk = os.read(sys.stdin.fileno(), 65536)
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_LINE_BYTES:
                raise ValueError("the node's hello is too long")
        line, _, self._leftover = data.partition(b"\n")
        return line

    def tell(self, **message: Any) -> None:
        """One line to the parent; ignored when it is gone (the child is about to stop anyway)."""
        try:
            self._out.write(json.dumps(message, separators=(",", ":"), default=str).encode() + b"\n")
            self._out.flush()
        except (BrokenPipeError, OSError):
            pass

    def started(self) -> None:
        """The compute runs: the parent's wait for it ends."""
        self.tell(event="started")

    async def obey(self, node: Node) -> None:
        """Do what the parent says until it closes stdin, which means it is gone: then stop at once."""
        reader = await pipe_lines(os.fdopen(sys.stdin.fileno(), "rb", 0, closefd=False), already_read=self._leftover)
        while True:
            try:
                line = await reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                line = b""
            if not line:
                node.stop_now()
                return
            try:
                message = json.loads(line)
                op = message["op"]
            except (ValueError, KeyError, TypeError):
                log.error("ignoring a control line from the node that is not ours: %.200r", line)
                continue
            if op == "labels":
                node.relabel(dict(message.get("labels") or {}))
            elif op == "drain":
                node.start_drain()
            elif op == "stop_now":
                node.stop_now()
            elif op == "ask" and message.get("what") == "ping":  # the parent's watchdog: the loop still runs
                self.tell(id=message.get("id"), answer="pong")
            elif op == "ask":
                info, debug = node.compute_info()
                self.tell(id=message.get("id"), answer=info if message.get("what") == "node_info" else debug)


def main() -> None:
    """Read the hello, run the compute until told to stop; exit 1 (the error told to the parent) on failure."""
    control_fd = int(os.environ.pop(CONTROL_FD_ENV))
    # Only this process writes to the node: a process it starts (an executor's) must not hold the pipe
    # open after it exits, or the node would not see it end.
    os.set_inheritable(control_fd, False)
    out = os.fdopen(control_fd, "wb")  # buffered: a write interrupted part way is finished, not cut
    parent = ParentLink(out)
    try:
        # Imported before the hello comes, while the node starts its orchestrator: they take most of
        # the child's start (about 2 s on a slow machine).
        import bacalhau.compute.registry
        import bacalhau.compute.service  # noqa: F401
        from bacalhau.cli.log_output import configure_logging
        from bacalhau.config.types import BacalhauConfig
        from bacalhau.node import Node
        from bacalhau.node_identity import Identity

        hello = Hello.model_validate_json(parent.read_hello())

        config = BacalhauConfig.model_validate(hello.config)
        config.mark_set(hello.set_keys)
        configure_logging(level="info", mode=config.logging.mode)
        logging.getLogger().setLevel(hello.log_level)

        identity = Identity(node_id=hello.node_id, instance_id=str(uuid.uuid4()),
                            installation_id=hello.installation_id)
        node = Node(config=config, orchestrator=True, compute=True, identity=identity)
        asyncio.run(node.run_compute_child(servers=hello.servers, own_server=hello.own_server, parent=parent))
    except Exception as exc:  # told to the parent, which stops or restarts: a traceback helps only if unknown
        from bacalhau.models.errors import BacalhauError

        if isinstance(exc, BacalhauError):
            parent.tell(event="error", message=exc.message, hint=exc.hint, component=exc.component,
                        code=str(exc.code))
        else:
            traceback.print_exc()
            parent.tell(event="error", message=f"the compute process failed: {exc!r}")
        sys.exit(1)


if __name__ == "__main__":
    main()
