"""Who is using the UI: the API credentials a browser logged in with, kept on the server.

The browser holds only a random session ID in an HttpOnly, SameSite=Strict cookie; the credentials
(the `Authorization` header the UI sends to the API for it) stay in this process, so a script on some
page can never read them. Sessions end after IDLE_S without use, at logout, or when the node restarts;
at most MAX_SESSIONS are kept (the least recently used dropped first).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

COOKIE = "bacalhau_ui_session"
IDLE_S = 8 * 3600.0
MAX_SESSIONS = 10_000


class Sessions:
    """Session ID -> the Authorization header of the user behind it. Thread-safe."""

    def __init__(self, *, idle_s: float = IDLE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._idle_s = idle_s
        self._clock = clock
        self._lock = threading.Lock()
        self._by_id: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def create(self, authorization: str) -> str:
        """A new session for these credentials; returns its ID (the cookie's value)."""
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._by_id[session_id] = (authorization, self._clock())
            while len(self._by_id) > MAX_SESSIONS:
                self._by_id.popitem(last=False)
        return session_id

    def authorization(self, session_id: str | None) -> str:
        """The session's Authorization header ("" for none, unknown or expired); refreshes its use."""
        if not session_id:
            return ""
        now = self._clock()
        with self._lock:
            found = self._by_id.get(session_id)
            if found is None:
                return ""
            authorization, used = found
            if now - used > self._idle_s:
                del self._by_id[session_id]
                return ""
            self._by_id[session_id] = (authorization, now)
            self._by_id.move_to_end(session_id)
            return authorization

    def end(self, session_id: str | None) -> None:
        """Forget the session (logout). Idempotent."""
        if session_id:
            with self._lock:
                self._by_id.pop(session_id, None)
