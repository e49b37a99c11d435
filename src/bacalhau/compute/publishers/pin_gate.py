"""PinGate: publishes share it, a release of pins takes it alone.

Why: "no execution still kept published this CID" and "unpin it" must hold together. A publish that
has added and pinned the same content (same CID: content addressing) but has not returned yet is known
to nobody, so a release waits for the publishes in flight to end and lets no new one start meanwhile::

    publishing():  wait while a release holds or waits for the gate -> count += 1 ... count -= 1
    releasing():   one release at a time -> close the gate -> wait for count == 0 ... reopen

Writer-preferring, so that a busy node's stream of publishes cannot starve retention. Built on Events
rather than a Condition: leaving the gate takes no lock, so a cancelled publish cannot fail to leave.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class PinGate:
    """A readers-writer gate for the asyncio loop it is used on (see the module docstring)."""

    def __init__(self) -> None:
        self._publishing = 0
        self._idle = asyncio.Event()  # set while no publish is in flight
        self._idle.set()
        self._open = asyncio.Event()  # cleared while a release holds or waits for the gate
        self._open.set()
        self._releases = asyncio.Lock()

    @property
    def publishing_count(self) -> int:
        """Publishes in flight now."""
        return self._publishing

    @contextlib.asynccontextmanager
    async def publishing(self) -> AsyncIterator[None]:
        """Held for one publish; waits while a release is in progress or waiting."""
        while not self._open.is_set():
            await self._open.wait()
        # No await between the check and the count: a release that closes the gate after this sees it.
        self._publishing += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._publishing -= 1
            if self._publishing == 0:
                self._idle.set()

    @contextlib.asynccontextmanager
    async def releasing(self) -> AsyncIterator[None]:
        """Held alone: no publish is in flight while it is held, and none starts."""
        async with self._releases:
            self._open.clear()
            try:
                await self._idle.wait()
                yield
            finally:
                self._open.set()
