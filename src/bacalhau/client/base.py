"""How the sync client sends a request: the `Sender` protocol and the `Reply` it returns. Typing only.

Two implementations: plain_http.PlainHttpSender (HTTP/1.1 over a plain socket, for http:// URLs, so that
a CLI command talking to a local node imports neither httpx, ~60 ms, nor http.client, ~25 ms) and
httpx_sender.HttpxSender (everything else: https, a CA file, a caller's own httpx transport).
sync.Client picks one; both hand back the status and the body bytes, and errors are decoded once, there.
Imported under TYPE_CHECKING only: nothing here is needed at run time.
"""

from __future__ import annotations

from typing import Any, Protocol

from bacalhau.client.routes import Params

# An HTTP answer of any status, (status, body bytes): the client decides what it means. A plain tuple,
# as the CLI's fast commands should not pay for creating a class per answer type.
Reply = tuple[int, bytes]


class Sender(Protocol):
    """Sends one request to the API and returns the server's answer."""

    def send(self, method: str, path: str, params: Params, body: Any) -> Reply:
        """Send `method path?params` with `body` (JSON-encoded when not None) and return the answer,
        whatever its status. Raises BacalhauError (NetworkFailure, TimeOut) when no answer came. Not
        idempotent as such: each call sends the request once and never retries it."""
        ...

    def close(self) -> None:
        """Release connections; idempotent."""
        ...
