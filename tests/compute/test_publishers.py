"""Publishers: `local` packs results into a tar.gz served over real HTTP; `noop` publishes nothing."""

from __future__ import annotations

import io
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bacalhau.compute.publishers.local import LocalPublisher
from bacalhau.compute.publishers.noop import NoopPublisher
from bacalhau.models.errors import ConfigurationError, PublishError
from bacalhau.models.job import SpecConfig

EXECUTION_ID = "e-6b1c2f6e-0000-4000-8000-000000000001"


@pytest.fixture
async def publisher(tmp_path: Path) -> AsyncIterator[LocalPublisher]:
    pub = LocalPublisher(data_dir=tmp_path / "data", address="127.0.0.1", port=0)
    await pub.start()
    try:
        yield pub
    finally:
        await pub.stop()


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    (folder / "outputs").mkdir(parents=True)
    (folder / "stdout").write_text("hello\n")
    (folder / "stderr").write_text("")
    (folder / "exitCode").write_text("0")
    (folder / "outputs" / "result.txt").write_text("42")
    return folder


async def test_local_publish_serves_the_results_archive_over_http(
    publisher: LocalPublisher, results: Path, tmp_path: Path
) -> None:
    published = await publisher.publish(SpecConfig(Type="local"), EXECUTION_ID, "j-1", results)

    assert published.type == "local"
    assert published.params == {"URL": f"http://127.0.0.1:{publisher.port}/{EXECUTION_ID}.tar.gz"}
    assert (tmp_path / "data" / "compute" / "published" / f"{EXECUTION_ID}.tar.gz").is_file()
    async with httpx.AsyncClient() as client:
        response = await client.get(published.params["URL"])
    assert response.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
        names = sorted(archive.getnames())
        stdout = archive.extractfile("stdout")
        assert stdout is not None and stdout.read() == b"hello\n"
    assert names == ["exitCode", "outputs", "outputs/result.txt", "stderr", "stdout"]


async def test_publishing_again_replaces_the_archive(publisher: LocalPublisher, results: Path) -> None:
    await publisher.publish(SpecConfig(Type="local"), EXECUTION_ID, "j-1", results)
    (results / "stdout").write_text("second\n")

    published = await publisher.publish(SpecConfig(Type="local"), EXECUTION_ID, "j-1", results)

    async with httpx.AsyncClient() as client:
        response = await client.get(published.params["URL"])
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as archive:
        stdout = archive.extractfile("stdout")
        assert stdout is not None and stdout.read() == b"second\n"
    leftovers = [p.name for p in publisher.published_dir.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.parametrize(
    "path",
    ["/../exitCode", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd", "/nope.tar.gz", "/", "/.hidden.tar.gz"],
)
async def test_server_serves_only_archives_in_its_folder(publisher: LocalPublisher, path: str) -> None:
    (publisher.published_dir.parent / "secret.tar.gz").write_text("not yours")

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{publisher.port}") as client:
        response = await client.get(path)

    assert response.status_code == 404


async def test_publish_starts_the_server_on_demand_and_stop_is_idempotent(tmp_path: Path, results: Path) -> None:
    publisher = LocalPublisher(data_dir=tmp_path / "data", address="0.0.0.0", port=0)
    try:
        published = await publisher.publish(SpecConfig(Type="local"), EXECUTION_ID, "j-1", results)
        assert published.params["URL"].startswith(f"http://127.0.0.1:{publisher.port}/")
    finally:
        await publisher.stop()
        await publisher.stop()
    assert publisher.port is None


async def test_busy_port_is_a_configuration_error(publisher: LocalPublisher, tmp_path: Path) -> None:
    assert publisher.port is not None
    clash = LocalPublisher(data_dir=tmp_path / "other", address="127.0.0.1", port=publisher.port)

    with pytest.raises(ConfigurationError, match="cannot listen"):
        await clash.start()


async def test_invalid_execution_id_is_not_used_as_a_file_name(publisher: LocalPublisher, results: Path) -> None:
    with pytest.raises(PublishError):
        await publisher.publish(SpecConfig(Type="local"), "../escape", "j-1", results)


async def test_noop_publisher_returns_a_noop_result(results: Path) -> None:
    published = await NoopPublisher().publish(SpecConfig(), EXECUTION_ID, "j-1", results)

    assert published.to_wire() == {"Type": "noop", "Params": {}}
