"""An HTTP/1.1 handler (keep-alive, as uvicorn) that records every request and answers through a callback,
for tests that check what a client sent and how it reads the answers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    target: str  # path and query string
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int]  # the client's address: one per connection


@dataclass
class Recording:
    """The requests a handler received, in order."""

    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


# The status and the JSON body bytes for a request.
Responder = Callable[[Seen], tuple[int, bytes]]


def recording_handler(recording: Recording, respond: Responder, *, close_after: bool = False
                      ) -> type[BaseHTTPRequestHandler]:
    """A handler class recording into `recording` and answering with `respond` (`close_after`: the server
    closes each connection after its answer)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(length) if length else b"",
                        self.client_address)
            with recording.lock:
                recording.requests.append(seen)
            status, data = respond(seen)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if close_after:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler
