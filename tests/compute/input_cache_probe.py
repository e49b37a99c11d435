"""An InputCache that tells a test when stagings claim a key, so a test can wait for the moment the
second staging of a key is queued behind the first (an event, not a sleep)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from bacalhau.compute.storage.input_cache import CacheClaim, InputCache


class ObservedCache(InputCache):
    """`claims` counts calls to `claim`; `claimed` is set at each one, just before the claim registers
    (synchronously) and waits for the key."""

    claims = 0
    claimed: asyncio.Event

    async def wait_for_claims(self, count: int) -> None:
        """Return once `count` stagings have claimed (or queued for) a key."""
        while self.claims < count:
            self.claimed = asyncio.Event()
            await self.claimed.wait()

    @contextlib.asynccontextmanager
    async def claim(self, key: str, *, label: str) -> AsyncIterator[CacheClaim]:
        self.claims += 1
        if hasattr(self, "claimed"):
            self.claimed.set()
        async with super().claim(key, label=label) as claim:
            yield claim
