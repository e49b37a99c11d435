"""ClientPool: one long-lived client per (endpoint, region), bounded, closed when retired and idle."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from botocore.exceptions import HTTPClientError

from bacalhau.s3.client import ClientSettings
from bacalhau.s3.pool import ClientPool
from s3_env import SeaweedS3

ONE_TRY = ClientSettings(max_attempts=1)  # a closed client's error is not worth retrying


async def assert_closed(client: Any) -> None:
    with pytest.raises(HTTPClientError):
        await client.list_buckets()


async def test_leases_of_one_endpoint_share_a_client(s3_env: SeaweedS3) -> None:
    pool = ClientPool(settings=ONE_TRY)
    try:
        async with pool.lease(s3_env.endpoint, "us-east-1") as first:
            await first.list_buckets()
        async with pool.lease(s3_env.endpoint, "us-east-1") as again, pool.lease(s3_env.endpoint, "eu-west-1") as other:
            assert again is first
            assert other is not first
            await again.list_buckets()  # still open between leases
    finally:
        await pool.aclose()
    await assert_closed(first)
    await assert_closed(other)


async def test_concurrent_first_leases_open_one_client(s3_env: SeaweedS3) -> None:
    pool = ClientPool(settings=ONE_TRY)
    seen: list[Any] = []

    async def use() -> None:
        async with pool.lease(s3_env.endpoint, "us-east-1") as client:
            seen.append(client)

    try:
        await asyncio.gather(*(use() for _ in range(5)))
    finally:
        await pool.aclose()
    assert len({id(c) for c in seen}) == 1


async def test_the_least_recently_used_client_is_closed_once_its_lease_ends(s3_env: SeaweedS3) -> None:
    pool = ClientPool(settings=ONE_TRY, max_clients=1)
    try:
        async with pool.lease(s3_env.endpoint, "us-east-1") as old, pool.lease(s3_env.endpoint, "eu-west-1") as new:
            await old.list_buckets()  # evicted by `new`, but still leased: it keeps working
            await new.list_buckets()
        await assert_closed(old)
        async with pool.lease(s3_env.endpoint, "eu-west-1") as again:
            assert again is new
    finally:
        await pool.aclose()
