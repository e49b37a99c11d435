"""Plain-HTTP requests go over a plain socket (no httpx, no http.client), and behave as the httpx client did:
same query strings, bodies and headers, errors decoded the same way, connections kept alive and replaced
when the server closed them; answers are read as HTTP/1.1 says (chunked, interim, close-delimited) and
anything else is a transport error."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.client.recording_server import Recording, Responder, recording_handler
from tests.http_env import http_server

from bacalhau.client import Client, routes
from bacalhau.client.httpx_sender import HttpxSender
from bacalhau.client.plain_http import PlainHttpSender
from bacalhau.models.errors import BacalhauError, ErrorCode, NotFoundError


def _answering(status: int = 200, answer: bytes = b'{"Status": "OK"}') -> Responder:
    return lambda _seen: (status, answer)


@pytest.fixture
def recording() -> Recording:
    return Recording()


@pytest.fixture
def url(recording: Recording) -> Iterator[str]:
    with http_server(recording_handler(recording, _answering())) as base:
        yield base


def test_http_urls_use_a_plain_socket_and_everything_else_httpx(url: str, tmp_path: Any) -> None:
    assert isinstance(Client(base_url=url)._sender, PlainHttpSender)
    assert isinstance(Client(base_url="https://example.com")._sender, HttpxSender)
    assert isinstance(Client(base_url=url, transport=httpx.MockTransport(lambda r: httpx.Response(200)))._sender,
                      HttpxSender)
    # A CA file is checked when the client is built, as it always was, whatever the scheme.
    with pytest.raises(BacalhauError, match="does not exist"):
        Client(base_url=url, ca_file=str(tmp_path / "missing.pem"))


def test_requests_match_what_httpx_sent(url: str, recording: Recording) -> None:
    call = routes.list_jobs(limit=5, next_token="t/1 +", order_by="", reverse=True, labels=["a=b", "c in (x,y)"],
                            namespace="n s")
    put = routes.put_job_spec({"Type": "batch", "Name": "é"}, force=True)
    seen = []
    for sender in ("plain", "httpx"):
        with Client(base_url=url, headers={"Authorization": "Bearer k"},
                    transport=None if sender == "plain" else httpx.HTTPTransport()) as client:
            client.raw(call)
            client.raw(put)
        seen.append(recording.requests[-2:])
    plain, via_httpx = seen
    for ours, theirs in zip(plain, via_httpx, strict=True):
        assert (ours.method, ours.target, ours.body) == (theirs.method, theirs.target, theirs.body)
        for name in ("User-Agent", "Accept", "Authorization", "X-Bacalhau-Git-Version", "Content-Type"):
            assert ours.headers.get(name) == theirs.headers.get(name), name
    assert json.loads(plain[1].body) == {"Job": {"Type": "batch", "Name": "é"}, "Force": True}


def test_connections_are_kept_alive(url: str, recording: Recording) -> None:
    with Client(base_url=url) as client:
        for _ in range(3):
            assert client.raw(routes.alive()) == {"Status": "OK"}
    assert len({r.peer for r in recording.requests}) == 1


def test_a_connection_the_server_closed_is_replaced_without_resending(recording: Recording) -> None:
    with http_server(recording_handler(recording, _answering(), close_after=True)) as base, Client(base_url=base) as client:
        for _ in range(3):
            assert client.alive().status == "OK"
    assert len(recording.requests) == 3 and len({r.peer for r in recording.requests}) == 3


def test_error_bodies_become_the_same_errors(recording: Recording) -> None:
    body = json.dumps({"Message": "job not found: j-x", "Code": "NotFound", "Hint": "check the ID"}).encode()
    with (
        http_server(recording_handler(recording, _answering(404, body))) as base,
        Client(base_url=base) as client,
        pytest.raises(NotFoundError) as info,
    ):
        client.raw(routes.get_job("j-x", include=(), namespace="", job_version=0, limit=0))
    assert info.value.hint == "check the ID" and info.value.message == "job not found: j-x"
    with (
        http_server(recording_handler(recording, _answering(502, b"bad gateway"))) as base,
        Client(base_url=base) as client,
        pytest.raises(BacalhauError, match="bad gateway"),
    ):
        client.alive()


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with Client(host="127.0.0.1", port=port, timeout_s=0.2) as client, pytest.raises(BacalhauError) as info:
            client.alive()
    assert info.value.code is ErrorCode.TimeOut


def test_the_client_module_does_not_import_httpx_or_pydantic_for_raw_calls(url: str) -> None:
    code = (
        "import sys\n"
        "from bacalhau.client import Client, routes\n"
        f"with Client(base_url={url!r}) as c:\n"
        "    assert c.raw(routes.alive()) == {'Status': 'OK'}\n"
        "print(sorted(m for m in ('httpx', 'pydantic') if sys.modules.get(m) is not None))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


@contextlib.contextmanager
def canned_server(*answers: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """A raw TCP server answering the n-th request on a connection with `answers[n]` (then closing when
    they run out); yields its base URL and the request heads it read."""
    heads: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)

    def serve() -> None:
        with contextlib.suppress(OSError), listener:
            conn, _ = listener.accept()
            with conn, conn.makefile("rb") as reader:
                for answer in answers:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = reader.readline()
                        if not line:
                            return
                        head += line
                    heads.append(head)
                    length = int(next((h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")), b"0"))
                    reader.read(length)
                    conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", heads
    finally:
        thread.join(5)


def _sender(url: str) -> PlainHttpSender:
    return PlainHttpSender(url, timeout_s=5, headers={"Accept": "application/json"})


def test_chunked_bodies_with_extensions_and_trailers_are_read() -> None:
    answer = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5;ext=1\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\nX-Trailer: t\r\n\r\n")
    with canned_server(answer, b"HTTP/1.1 204 No Content\r\n\r\n") as (url, heads):
        sender = _sender(url)
        assert sender.send("GET", "/x", [("q", "a b")], None) == (200, b'{"a": 1}')
        assert sender.send("DELETE", "/y", [], None) == (204, b"")  # the same connection, kept alive
        sender.close()
    assert heads[0].startswith(b"GET /x?q=a+b HTTP/1.1\r\nHost: 127.0.0.1:") and len(heads) == 2


def test_interim_answers_are_skipped_and_a_close_delimited_body_read_to_the_end() -> None:
    answer = b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.0 200 OK\r\n\r\n{\"done\": true}"
    with canned_server(answer) as (url, _):
        assert _sender(url).send("GET", "/", [], None) == (200, b'{"done": true}')


def test_answers_that_are_not_http_are_transport_errors() -> None:
    for answer in (b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                   b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n\r\n",
                   b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n", b""):
        with canned_server(answer) as (url, _), pytest.raises(BacalhauError) as info:
            _sender(url).send("GET", "/", [], None)
        assert info.value.code is ErrorCode.NetworkFailure and url in info.value.message


def test_a_header_that_would_smuggle_a_line_is_refused_before_sending() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        sender = PlainHttpSender(url, timeout_s=5, headers={"Authorization": "Bearer x\r\nX-Admin: yes"})
        with pytest.raises(BacalhauError, match="illegal character"):
            sender.send("GET", "/", [], None)
        listener.settimeout(0.1)
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing was sent: not even a connection was made


def test_an_answer_sent_before_the_body_was_read_is_still_reported() -> None:
    """A server refusing a body too large answers at once and closes: the user sees its 413, not a broken pipe."""
    refusal = json.dumps({"Message": "request body too large", "Code": "BadRequest"}).encode()
    listener = socket.create_server(("127.0.0.1", 0))

    def refuse() -> None:
        with listener, contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)  # the head and a little of the body, no more
                conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: "
                             + str(len(refusal)).encode() + b"\r\n\r\n" + refusal)
            # Closed with most of the body unread: the client's send fails with a broken pipe or a reset.

    thread = threading.Thread(target=refuse, daemon=True)
    thread.start()
    sender = _sender(f"http://127.0.0.1:{listener.getsockname()[1]}")
    status, content = sender.send("PUT", "/jobs", [], {"Job": {"Blob": "x" * 20_000_000}})
    thread.join(5)
    assert status == 413 and json.loads(content)["Message"] == "request body too large"
