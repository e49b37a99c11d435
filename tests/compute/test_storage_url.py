"""The `urlDownload` input source, against a real HTTP server on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bacalhau.compute.storage.base import PreparedInput
from bacalhau.compute.storage.url import UrlStorage, filename_for
from bacalhau.models.errors import StorageError
from bacalhau.models.job import InputSource, SpecConfig

BIG = b"x" * 5000


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        self.server.hits[path] = self.server.hits.get(path, 0) + 1
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout, size cap)
            self._route(path)

    def _route(self, path: str) -> None:
        if path.startswith("/files/"):
            self._send(200, b"hello\n")
        elif path == "/report":
            self._send(200, b"a,b\n", {"Content-Disposition": 'attachment; filename="report.csv"'})
        elif path == "/unsafe-name":
            self._send(200, b"data", {"Content-Disposition": 'attachment; filename="../../etc/evil.txt"'})
        elif path == "/":
            self._send(200, b"root")
        elif path == "/missing":
            self._send(404, b"not found")
        elif path == "/flaky":
            if self.server.hits[path] == 1:
                self._send(500, b"oops")
            else:
                self._send(200, b"second time lucky")
        elif path == "/broken":
            self._send(503, b"down")
        elif path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"sl")
            self.wfile.flush()
            time.sleep(1.5)
            self.wfile.write(b"ow")
        elif path == "/big":
            self._send(200, BIG)
        elif path == "/big-no-length":
            # HTTP/1.0 with no Content-Length: the body ends when the connection closes.
            self.send_response(200)
            self.end_headers()
            for _ in range(50):
                self.wfile.write(BIG[:100])
        elif path == "/redirect":
            self._send(302, b"", {"Location": "/files/target.bin"})
        elif path == "/loop":
            self._send(302, b"", {"Location": "/loop-b"})
        elif path == "/loop-b":
            self._send(301, b"", {"Location": "/loop"})
        elif path.startswith("/hop/"):
            n = int(path.rsplit("/", 1)[1])
            self._send(302, b"", {"Location": f"/hop/{n + 1}"})
        elif path == "/to-ftp":
            self._send(302, b"", {"Location": "ftp://example.com/file"})
        else:
            self._send(404, b"no route")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hits: dict[str, int]


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.hits = {}
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def base(srv: _Server) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def url_input(url: str, alias: str = "data", target: str = "/inputs/data", checksum: str = "") -> InputSource:
    params: dict[str, object] = {"URL": url}
    if checksum:
        params["Checksum"] = checksum
    return InputSource(Source=SpecConfig(Type="urlDownload", Params=params), Target=target, Alias=alias)


def storage(**overrides: float) -> UrlStorage:
    kwargs: dict[str, float] = {"read_timeout_s": 5.0, "max_retries": 3, "max_bytes": 1000, "retry_backoff_s": 0.01}
    kwargs.update(overrides)
    return UrlStorage(
        read_timeout_s=kwargs["read_timeout_s"],
        max_retries=int(kwargs["max_retries"]),
        max_bytes=int(kwargs["max_bytes"]),
        retry_backoff_s=kwargs["retry_backoff_s"],
        max_redirects=int(kwargs.get("max_redirects", 10)),
    )


def downloaded(prepared: PreparedInput) -> Path:
    """The one file a urlDownload input stages, inside the folder that is mounted at the Target."""
    assert prepared.host_path.is_dir()
    (only,) = [p for p in prepared.host_path.iterdir()]
    return only


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*")) if path.exists() else []


async def test_download_is_named_after_the_url_path(server: _Server, tmp_path: Path) -> None:
    prepared = await storage().prepare(url_input(f"{base(server)}/files/hello.txt?x=1"), tmp_path)

    assert downloaded(prepared) == tmp_path / "0" / "hello.txt"
    assert downloaded(prepared).read_bytes() == b"hello\n"
    assert prepared.read_only and prepared.owned
    assert files_under(tmp_path) == [tmp_path / "0", downloaded(prepared)]  # no temp file left next to it


async def test_download_is_named_from_content_disposition(server: _Server, tmp_path: Path) -> None:
    prepared = await storage().prepare(url_input(f"{base(server)}/report"), tmp_path)

    assert downloaded(prepared) == tmp_path / "0" / "report.csv"
    assert downloaded(prepared).read_bytes() == b"a,b\n"


async def test_a_path_in_content_disposition_cannot_escape_the_folder(server: _Server, tmp_path: Path) -> None:
    prepared = await storage().prepare(url_input(f"{base(server)}/unsafe-name"), tmp_path)

    assert downloaded(prepared) == tmp_path / "0" / "evil.txt"


async def test_a_url_without_a_file_name_is_saved_as_download(server: _Server, tmp_path: Path) -> None:
    prepared = await storage().prepare(url_input(f"{base(server)}/"), tmp_path)

    assert downloaded(prepared) == tmp_path / "0" / "download"
    assert downloaded(prepared).read_bytes() == b"root"


async def test_cleanup_deletes_the_download_and_is_idempotent(server: _Server, tmp_path: Path) -> None:
    store = storage()
    first = await store.prepare(url_input(f"{base(server)}/files/a.txt"), tmp_path)
    second = await store.prepare(url_input(f"{base(server)}/files/a.txt"), tmp_path)
    assert downloaded(second) == tmp_path / "1" / "a.txt"

    await store.cleanup(first)
    await store.cleanup(first)

    assert not (tmp_path / "0").exists()
    assert downloaded(second).exists()


async def test_404_fails_with_the_status_and_is_not_retried(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(StorageError) as caught:
        await storage().prepare(url_input(f"{base(server)}/missing", alias="weights"), tmp_path)

    assert "'weights'" in caught.value.message
    assert "404" in caught.value.message
    assert f"{base(server)}/missing" in caught.value.message
    assert server.hits["/missing"] == 1
    assert files_under(tmp_path) == []


async def test_a_500_is_retried_and_then_succeeds(server: _Server, tmp_path: Path) -> None:
    prepared = await storage().prepare(url_input(f"{base(server)}/flaky"), tmp_path)

    assert downloaded(prepared).read_bytes() == b"second time lucky"
    assert server.hits["/flaky"] == 2


async def test_persistent_server_errors_fail_after_the_retries(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(StorageError) as caught:
        await storage(max_retries=2).prepare(url_input(f"{base(server)}/broken"), tmp_path)

    assert "503" in caught.value.message
    assert "3 attempts" in caught.value.message
    assert server.hits["/broken"] == 3
    assert files_under(tmp_path) == []


async def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the download: nothing listens there

    with pytest.raises(StorageError) as caught:
        await storage(max_retries=1).prepare(url_input(f"http://127.0.0.1:{port}/x"), tmp_path)

    assert "'data'" in caught.value.message
    assert "2 attempts" in caught.value.message
    assert files_under(tmp_path) == []


async def test_a_slow_server_exceeding_the_read_timeout_fails(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(StorageError) as caught:
        await storage(read_timeout_s=0.3).prepare(url_input(f"{base(server)}/slow"), tmp_path)

    assert "timed out after 0.3s" in caught.value.message
    assert "'data'" in caught.value.message
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("path", ["/big", "/big-no-length"])
async def test_a_body_over_the_size_cap_is_refused(server: _Server, tmp_path: Path, path: str) -> None:
    with pytest.raises(StorageError) as caught:
        await storage(max_bytes=1000).prepare(url_input(f"{base(server)}{path}"), tmp_path)

    assert "larger than the node's limit" in caught.value.message
    assert files_under(tmp_path) == []


async def test_a_redirect_is_followed_and_the_final_name_used(server: _Server, tmp_path: Path) -> None:
    prepared = await storage().prepare(url_input(f"{base(server)}/redirect"), tmp_path)

    assert downloaded(prepared) == tmp_path / "0" / "target.bin"
    assert downloaded(prepared).read_bytes() == b"hello\n"


async def test_a_redirect_loop_fails(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="redirect loop") as caught:
        await storage().prepare(url_input(f"{base(server)}/loop"), tmp_path)

    assert "'data'" in caught.value.message
    assert files_under(tmp_path) == []


async def test_too_many_redirects_fail(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="too many redirects"):
        await storage(max_redirects=3).prepare(url_input(f"{base(server)}/hop/0"), tmp_path)

    assert server.hits.get("/hop/3") == 1 and "/hop/4" not in server.hits
    assert files_under(tmp_path) == []


async def test_a_redirect_to_another_scheme_fails(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"unsupported URL ftp://example\.com/file"):
        await storage().prepare(url_input(f"{base(server)}/to-ftp"), tmp_path)

    assert files_under(tmp_path) == []


@pytest.mark.parametrize("url", ["ftp://example.com/file.txt", "file:///etc/passwd", "example.com/file"])
async def test_unsupported_schemes_are_refused(tmp_path: Path, url: str) -> None:
    store = storage()
    with pytest.raises(StorageError) as caught:
        store.validate(url_input(url, alias="", target="/inputs/x"))
    assert "'/inputs/x'" in caught.value.message
    assert url in caught.value.message

    with pytest.raises(StorageError, match="unsupported URL scheme"):
        await store.prepare(url_input(url), tmp_path)
    assert files_under(tmp_path) == []


def test_a_missing_url_is_refused() -> None:
    source = InputSource(Source=SpecConfig(Type="urlDownload", Params={}), Target="/inputs/x", Alias="a")
    with pytest.raises(StorageError, match="has no URL"):
        storage().validate(source)


def test_passwords_in_urls_are_not_shown_in_errors() -> None:
    with pytest.raises(StorageError) as caught:
        storage().validate(url_input("ftp://bob:secret@example.com/f"))
    assert "secret" not in caught.value.message
    assert "bob:***@example.com" in caught.value.message


@pytest.mark.parametrize(
    ("disposition", "url", "expected"),
    [
        ('attachment; filename="a b.txt"', "http://h/x", "a b.txt"),
        ("attachment; filename*=UTF-8''na%C3%AFve.txt", "http://h/x", "naïve.txt"),
        ("attachment", "http://h/dir/file%20name.tar.gz", "file name.tar.gz"),
        ("", "http://h/dir/", "download"),
        ('attachment; filename=".."', "http://h/", "download"),
    ],
)
def test_filename_for(disposition: str, url: str, expected: str) -> None:
    assert filename_for(disposition, url) == expected


@pytest.mark.parametrize("form", ["sha256:{}", "{}", "SHA256:{}"])
async def test_a_matching_checksum_is_accepted(server: _Server, tmp_path: Path, form: str) -> None:
    digest = hashlib.sha256(b"hello\n").hexdigest()
    checksum = form.format(digest.upper() if form.startswith("SHA") else digest)

    prepared = await storage().prepare(url_input(f"{base(server)}/files/a.txt", checksum=checksum), tmp_path)

    assert downloaded(prepared).read_bytes() == b"hello\n"


async def test_a_wrong_checksum_fails_and_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    wrong = "sha256:" + hashlib.sha256(b"something else").hexdigest()

    with pytest.raises(StorageError) as err:
        await storage().prepare(url_input(f"{base(server)}/files/a.txt", alias="mydata", checksum=wrong), tmp_path)

    message = str(err.value)
    assert "'mydata'" in message and "checksum mismatch" in message
    assert hashlib.sha256(b"hello\n").hexdigest() in message
    assert files_under(tmp_path) == []
    assert server.hits["/files/a.txt"] == 1  # a mismatch is not retried


@pytest.mark.parametrize("checksum", ["md5:abc", "sha256:xyz", "1234"])
def test_a_malformed_checksum_is_refused_before_download(checksum: str) -> None:
    with pytest.raises(StorageError, match="invalid Checksum"):
        storage().validate(url_input("http://127.0.0.1:1/x", checksum=checksum))
