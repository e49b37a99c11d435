"""download_results and job_logs against small real servers (stdlib HTTP, websockets) on free ports.

These stand in for the publisher and the log endpoint only; the whole node is covered by the
scenario tests.
"""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from websockets.sync.server import ServerConnection, serve

from bacalhau.client import AsyncClient, Client
from bacalhau.models.errors import BacalhauError
from http_env import http_server

RESULT = {"stdout": "hello\n", "stderr": "", "exitCode": "0"}


def make_archive(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content.encode())
            tar.addfile(info, io.BytesIO(content.encode()))
    return path


@pytest.fixture
def result_server(tmp_path: Path) -> Iterator[str]:
    archive = make_archive(tmp_path / "e-1.tar.gz", RESULT).read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            if self.path.startswith("/api/v1/orchestrator/jobs/j-1/results"):
                body = json.dumps({"Items": [{"Type": "urlDownload", "Params": {"URL": f"{base}/e-1.tar.gz"}}]})
                payload, kind = body.encode(), "application/json"
            elif self.path.startswith("/api/v1/orchestrator/jobs/j-2/results"):
                body = json.dumps({"Items": [{"Type": "urlDownload", "Params": {"URL": f"{base}/gone.tar.gz"}}]})
                payload, kind = body.encode(), "application/json"
            elif self.path == "/e-1.tar.gz":
                payload, kind = archive, "application/gzip"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            return None

    with http_server(Handler) as base:
        yield base


def test_download_results_unpacks_into_the_folder_and_reports_progress(result_server: str, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    with Client(base_url=result_server) as client:
        out = client.download_results("j-1", tmp_path / "out", progress=lambda done, total: seen.append((done, total)))
    assert (out / "stdout").read_text() == "hello\n"
    assert seen and seen[-1][0] == seen[-1][1]
    assert not [p for p in out.iterdir() if p.name.startswith(".bacalhau-")]


def test_download_results_refuses_to_overwrite_a_previous_download(result_server: str, tmp_path: Path) -> None:
    with Client(base_url=result_server) as client:
        client.download_results("j-1", tmp_path / "out")
        with pytest.raises(BacalhauError, match="refusing to overwrite"):
            client.download_results("j-1", tmp_path / "out")
        client.download_results("j-1", tmp_path / "out", overwrite=True)


def test_a_failed_download_leaves_no_folder_behind(result_server: str, tmp_path: Path) -> None:
    with Client(base_url=result_server) as client, pytest.raises(BacalhauError, match="HTTP 404"):
        client.download_results("j-2", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_async_download_results_matches_the_sync_one(result_server: str, tmp_path: Path) -> None:
    async def go() -> Path:
        async with AsyncClient(base_url=result_server) as client:
            return await client.download_results("j-1", tmp_path / "out", raw=True)

    out = asyncio.run(go())
    assert (out / "raw" / "e-1" / "stdout").read_text() == "hello\n"


@pytest.fixture
def log_server() -> Iterator[tuple[str, list[str]]]:
    paths: list[str] = []

    def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        paths.append(ws.request.path)
        ws.send(json.dumps({"value": {"Type": 1, "Line": "out\n"}}))
        ws.send(json.dumps({"value": {"Type": 2, "Line": "err\n"}}))
        if "fail" in ws.request.path:
            ws.send(json.dumps({"error": {"Cause": "no execution", "Code": "NotFound"}}))
        ws.close()

    with serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.socket.getsockname()[1]}", paths
        finally:
            server.shutdown()
            thread.join(timeout=5)


def test_job_logs_streams_lines_until_the_server_closes(log_server: tuple[str, list[str]]) -> None:
    url, paths = log_server
    with Client(base_url=url) as client:
        lines = list(client.job_logs("j-1", follow=True))
    assert [(line.type, line.line) for line in lines] == [(1, "out\n"), (2, "err\n")]
    assert paths == ["/api/v1/orchestrator/jobs/j-1/logs?follow=true"]


def test_job_logs_error_frame_raises(log_server: tuple[str, list[str]]) -> None:
    url, _ = log_server
    with Client(base_url=url) as client, pytest.raises(BacalhauError, match="no execution"):
        list(client.job_logs("fail"))


def test_async_job_logs_streams_lines(log_server: tuple[str, list[str]]) -> None:
    url, _ = log_server

    async def go() -> list[str]:
        async with AsyncClient(base_url=url) as client:
            return [line.line async for line in client.job_logs("j-1")]

    assert asyncio.run(go()) == ["out\n", "err\n"]
