"""TCP ports for a devstack: free ones handed out without repeats, and a check that fixed ones are free.

Like Bacalhau's `network.GetFreePort`, a port is free when the OS hands it out for `bind(0)`; the
nodes bind it a moment later, so another program could take it in between (rare; the node then fails
to start and the devstack says which and shows its log). Ports are bound on every interface because
the nodes listen on 0.0.0.0 by default.
"""

from __future__ import annotations

import socket
from types import TracebackType

ALL_INTERFACES = ""
MAX_PORT = 65535


class PortReservation:
    """Hands out free TCP ports, holding each open until `release()` so that no port is handed out twice."""

    def __init__(self, host: str = ALL_INTERFACES) -> None:
        self._host = host
        self._sockets: list[socket.socket] = []

    def take(self) -> int:
        """A port no other process (and no earlier `take()`) holds right now."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self._host, 0))
        self._sockets.append(sock)
        port: int = sock.getsockname()[1]
        return port

    def release(self) -> None:
        """Close every held socket, so that the nodes can bind the ports."""
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    def __enter__(self) -> PortReservation:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def port_in_use(port: int, host: str = ALL_INTERFACES) -> bool:
    """Whether binding `port` fails right now (someone listens on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as servers set it: a port left in TIME_WAIT by a stopped node is not "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def first_unavailable(ports: dict[int, str]) -> tuple[int, str] | None:
    """The first (port, what it is for) that is out of range or already taken; None when all are usable."""
    for port, purpose in ports.items():
        if not 0 < port <= MAX_PORT or port_in_use(port):
            return port, purpose
    return None
