"""Error mapping: Bacalhau's error bodies and transport failures become BacalhauErrors.

These use httpx.MockTransport to produce exact error bodies; the real server is covered by the
scenario tests (tests/scenarios).
"""

from __future__ import annotations

import socket

import httpx
import pytest

from bacalhau.client import Client
from bacalhau.models.errors import BacalhauError, ErrorCode, NotFoundError


def _client_answering(status: int, body: object) -> Client:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    return Client(base_url="http://test", transport=httpx.MockTransport(handler))


def test_error_body_becomes_bacalhau_error_with_code_message_and_hint() -> None:
    body = {"Status": 500, "Message": "no changes detected", "Code": "", "Component": "Jobs", "Hint": "Use --force"}
    with _client_answering(500, body) as client, pytest.raises(BacalhauError) as info:
        client.get_job("j-1")
    assert info.value.message == "no changes detected"
    assert info.value.hint == "Use --force"
    assert info.value.component == "Jobs"
    assert info.value.code is ErrorCode.InternalError


def test_not_found_code_gives_a_not_found_error() -> None:
    body = {"Status": 404, "Message": "job not found: j-x", "Code": "NotFound", "Component": "JobStore"}
    with _client_answering(404, body) as client, pytest.raises(NotFoundError) as info:
        client.get_job("j-x")
    assert info.value.code is ErrorCode.NotFound
    assert "j-x" in info.value.message


def test_unknown_code_falls_back_to_the_http_status() -> None:
    body = {"Status": 409, "Message": "conflict", "Code": "SomethingJobstoreSpecific"}
    with _client_answering(409, body) as client, pytest.raises(BacalhauError) as info:
        client.list_jobs()
    assert info.value.code is ErrorCode.ResourceInUse


def test_fastapi_detail_bodies_are_understood() -> None:
    body = {"detail": [{"loc": ["query", "limit"], "msg": "must be an int"}]}
    with _client_answering(422, body) as client, pytest.raises(BacalhauError) as info:
        client.list_jobs()
    assert "query.limit: must be an int" in info.value.message


def test_non_json_error_body_keeps_its_text() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="bad gateway")

    with Client(base_url="http://t", transport=httpx.MockTransport(handler)) as client, pytest.raises(
        BacalhauError
    ) as info:
        client.alive()
    assert "bad gateway" in info.value.message


def test_connection_refused_is_a_network_failure_naming_the_address_and_flags() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port now: a real refused connection, no mock.
    with Client(host="127.0.0.1", port=port) as client, pytest.raises(BacalhauError) as info:
        client.alive()
    assert info.value.code is ErrorCode.NetworkFailure
    assert f"127.0.0.1:{port}" in info.value.message
    assert "--api-host" in info.value.hint and "--api-port" in info.value.hint


def test_success_bodies_decode_into_models() -> None:
    body = {"Items": [{"ID": "j-1", "Type": "batch", "State": {"StateType": "Running"}}], "NextToken": "t"}
    with _client_answering(200, body) as client:
        resp = client.list_jobs(limit=1)
    assert resp.items[0].id == "j-1"
    assert resp.items[0].state.state_type.name == "Running"
    assert resp.next_token == "t"


def test_agent_config_unwraps_the_lowercase_config_key() -> None:
    with _client_answering(200, {"config": {"API": {"Port": 1}}}) as client:
        assert client.agent_config() == {"API": {"Port": 1}}


def test_async_client_maps_errors_the_same_way() -> None:
    import asyncio

    from bacalhau.client import AsyncClient

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"Message": "job not found: j-x", "Code": "NotFound", "Hint": "check the ID"})

    async def go() -> None:
        async with AsyncClient(base_url="http://t", transport=httpx.MockTransport(handler)) as client:
            await client.get_job("j-x")

    with pytest.raises(NotFoundError) as info:
        asyncio.run(go())
    assert info.value.hint == "check the ID"
