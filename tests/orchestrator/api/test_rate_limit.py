"""API.RateLimit: a token bucket per client address, 429 with Retry-After, loopback exempt by default."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bacalhau.orchestrator.api.rate_limit import MAX_CLIENTS, RateLimit, TokenBuckets, client_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_the_burst_then_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.allow("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.allow("a") == pytest.approx(0.5)  # one token comes back every 0.5 s
    assert buckets.allow("b") == 0.0  # another client has its own bucket
    clock.now += 0.5
    assert buckets.allow("a") == 0.0
    assert buckets.allow("a") > 0


def test_buckets_are_bounded() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, clock=Clock())
    for i in range(MAX_CLIENTS + 50):
        buckets.allow(f"10.0.{i // 256}.{i % 256}")
    assert len(buckets._buckets) == MAX_CLIENTS


def app(*, loopback: bool, clock: Clock) -> RateLimit:
    inner = Starlette(routes=[Route("/api/v1/agent/alive", lambda _: PlainTextResponse("ok"))])
    return RateLimit(inner, rate=1.0, burst=2, loopback=loopback, clock=clock)


@pytest.mark.asyncio
async def test_a_client_over_its_rate_gets_429_with_retry_after() -> None:
    clock = Clock()
    transport = httpx.ASGITransport(app=app(loopback=False, clock=clock), client=("203.0.113.7", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        codes = [(await client.get("/api/v1/agent/alive")).status_code for _ in range(2)]
        refused = await client.get("/api/v1/agent/alive")
        clock.now += 1.0
        again = await client.get("/api/v1/agent/alive")
    assert codes == [200, 200]
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    body = refused.json()
    assert body["Code"] == "ResourceExhausted" and "203.0.113.7" in body["Message"] and "API.RateLimit" in body["Hint"]
    assert again.status_code == 200


@pytest.mark.asyncio
@pytest.mark.parametrize("loopback", [False, True])
async def test_loopback_is_exempt_unless_asked(loopback: bool) -> None:
    transport = httpx.ASGITransport(app=app(loopback=loopback, clock=Clock()), client=("127.0.0.1", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        codes = [(await client.get("/api/v1/agent/alive")).status_code for _ in range(5)]
    assert (429 in codes) is loopback


@pytest.mark.parametrize(
    ("address", "key"),
    [("203.0.113.7", "203.0.113.7"), ("2001:db8:1:2::7", "2001:db8:1:2::/64"),
     ("2001:db8:1:2:ffff:1:2:3", "2001:db8:1:2::/64"), ("::ffff:203.0.113.7", "203.0.113.7"),
     ("fe80::1%eth0", "fe80::/64"), ("not-an-address", "not-an-address")],
)
def test_a_client_is_its_ipv4_address_or_its_ipv6_64(address: str, key: str) -> None:
    assert client_key(address) == key


@pytest.mark.asyncio
async def test_new_ipv6_addresses_of_one_64_share_a_bucket() -> None:
    limited = app(loopback=False, clock=Clock())
    codes = []
    for host in range(1, 5):  # a host hopping through its /64, one address per request
        transport = httpx.ASGITransport(app=limited, client=(f"2001:db8:1:2::{host}", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            codes.append((await client.get("/api/v1/agent/alive")).status_code)
    assert codes == [200, 200, 429, 429]
    other = httpx.ASGITransport(app=limited, client=("2001:db8:1:3::1", 5555))  # another /64: its own bucket
    async with httpx.AsyncClient(transport=other, base_url="http://node") as client:
        assert (await client.get("/api/v1/agent/alive")).status_code == 200
