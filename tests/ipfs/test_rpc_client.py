"""KuboRpcClient beyond the conformance suite: addresses it accepts, and an API that does not answer."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bacalhau.ipfs.rpc import KuboRpcClient
from bacalhau.ipfs.rpc_address import rpc_base_url
from bacalhau.models.errors import ErrorCode, StorageError


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("http://127.0.0.1:5001", "http://127.0.0.1:5001"),
        ("http://127.0.0.1:5001/", "http://127.0.0.1:5001"),
        ("https://ipfs.example:443", "https://ipfs.example:443"),
        ("127.0.0.1:5001", "http://127.0.0.1:5001"),
        ("/ip4/127.0.0.1/tcp/5001", "http://127.0.0.1:5001"),
        ("/ip4/127.0.0.1/tcp/5001/http", "http://127.0.0.1:5001"),
        ("/ip6/::1/tcp/5001", "http://[::1]:5001"),
        ("/dns/kubo.internal/tcp/5001/https", "https://kubo.internal:5001"),
        ("http://[::1]:5001", "http://[::1]:5001"),
    ],
)
def test_rpc_addresses_in_both_forms_are_accepted(address: str, url: str) -> None:
    assert rpc_base_url(address) == url


@pytest.mark.parametrize(
    "address", ["/ip4/127.0.0.1/udp/5001", "/ip4/127.0.0.1", "ftp://host:21", "http://host:5001/api", "http://:5001"]
)
def test_other_addresses_are_rejected_naming_them(address: str) -> None:
    with pytest.raises(StorageError) as caught:
        rpc_base_url(address)
    assert address in caught.value.message
    assert caught.value.code == ErrorCode.ConfigurationError


async def test_start_fails_clearly_when_no_api_answers(free_port: Callable[[], int]) -> None:
    client = KuboRpcClient(f"/ip4/127.0.0.1/tcp/{free_port()}")

    with pytest.raises(StorageError) as caught:
        await client.start()

    assert caught.value.code == ErrorCode.NetworkFailure
    assert client.base_url in caught.value.message
    await client.stop()


async def test_calls_before_start_fail_saying_so() -> None:
    client = KuboRpcClient("http://127.0.0.1:5001")

    with pytest.raises(StorageError, match="not started"):
        await client.addresses()
