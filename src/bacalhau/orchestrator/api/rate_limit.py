"""Per-client rate limits on the API (ours; `API.RateLimit`): a token bucket per client address.

Each address may make `rate` requests per second on average and `burst` at once; past that it gets 429
with Bacalhau's error body (code ResourceExhausted) and a `Retry-After` saying when the next request
will pass. Loopback clients (the node's own CLI, a devstack) are not limited unless `Loopback` is set.
It runs before authorization, so a flood of bad passwords costs no bcrypt work past the limit.

A client is its IPv4 address, or its IPv6 /64: one host is usually given a whole /64, so keying by
the full address would let it take a fresh bucket per request. IPv4-mapped IPv6 addresses count as the
IPv4 address they carry.

Bounded: at most MAX_CLIENTS buckets are kept (the least recently seen dropped first: a dropped client
starts again with a full bucket, which only ever errs towards letting a request through).
"""

from __future__ import annotations

import ipaddress
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

MAX_CLIENTS = 10_000


class TokenBuckets:
    """`allow(key)` -> 0 when a request may pass now, else the seconds until one may."""

    def __init__(self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def allow(self, key: str) -> float:
        """0 when `key` may make a request now (a token is taken), else the seconds until it may."""
        now = self._clock()
        tokens, at = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return wait


class RateLimit:
    """ASGI middleware applying TokenBuckets per client address (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, rate: float, burst: int, loopback: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate=rate, burst=burst, clock=clock)
        self.loopback = loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = str((scope.get("client") or ("", 0))[0])
        if not self.loopback and _is_loopback(client):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.allow(client_key(client))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry_after = str(max(1, math.ceil(wait)))
        body = json.dumps({
            "Status": 429, "Message": f"too many requests from {client}: retry in {retry_after}s", "RequestID": "",
            "Code": "ResourceExhausted", "Component": "APIServer",
            "Hint": f"this node allows {self.buckets.rate:g} requests per second per client (API.RateLimit)",
        }).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"retry-after", retry_after.encode())]
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1013, "reason": "too many requests"})
            return
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def client_key(address: str) -> str:
    """The bucket of a client address: the IPv4 address, or the IPv6 /64 (`2001:db8:1:2::/64`)."""
    try:
        parsed = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{parsed}/64", strict=False))
    return str(parsed)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
