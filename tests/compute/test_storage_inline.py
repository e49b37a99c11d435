"""The `inline` input source: data URLs decoded into files (or directories) under the work dir."""

from __future__ import annotations

import asyncio
import base64
import io
import tarfile
import threading
from pathlib import Path

import pytest

from bacalhau.compute.storage import inline as inline_module
from bacalhau.compute.storage.inline import DECODE_ON_LOOP_CHARS, InlineStorage, parse_data_url
from bacalhau.models.errors import StorageError
from bacalhau.models.job import InputSource, SpecConfig


def inline(url: str, target: str = "/inputs/data.txt", alias: str = "") -> InputSource:
    return InputSource(Source=SpecConfig(Type="inline", Params={"URL": url}), Target=target, Alias=alias)


async def test_base64_data_url_is_decoded_into_a_file_named_after_the_target(tmp_path: Path) -> None:
    storage = InlineStorage()
    url = "data:text/plain;base64," + base64.b64encode(b"hello\nworld\n").decode()

    prepared = await storage.prepare(inline(url), tmp_path)

    assert prepared.host_path == tmp_path / "0" / "data.txt"
    assert prepared.host_path.read_bytes() == b"hello\nworld\n"
    assert prepared.read_only and prepared.owned


async def test_plain_data_url_is_percent_decoded(tmp_path: Path) -> None:
    prepared = await InlineStorage().prepare(inline("data:,hello%20there%0A"), tmp_path)

    assert prepared.host_path.read_bytes() == b"hello there\n"


async def test_each_input_gets_its_own_numbered_folder(tmp_path: Path) -> None:
    storage = InlineStorage()

    first = await storage.prepare(inline("data:,a", target="/x"), tmp_path)
    second = await storage.prepare(inline("data:,b", target="/x"), tmp_path)

    assert (first.host_path, second.host_path) == (tmp_path / "0" / "x", tmp_path / "1" / "x")


@pytest.mark.parametrize(
    "url",
    ["not a data url", "data:text/plain;base64", "data:;base64,@@@not-base64@@@", "", "   "],
)
async def test_invalid_data_url_is_a_storage_error_naming_the_input(tmp_path: Path, url: str) -> None:
    source = inline(url, alias="my-input")

    with pytest.raises(StorageError, match="my-input"):
        InlineStorage().validate(source)
    with pytest.raises(StorageError, match="my-input"):
        await InlineStorage().prepare(source, tmp_path)
    assert not list(tmp_path.glob("*")), "no partial files are left behind"  # noqa: ASYNC240


async def test_gzip_tarball_is_unpacked_as_a_directory(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = b"inside"
        info = tarfile.TarInfo("sub/file.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    url = "data:application/gzip;base64," + base64.b64encode(buffer.getvalue()).decode()

    prepared = await InlineStorage().prepare(inline(url, target="/inputs"), tmp_path)

    assert (prepared.host_path / "sub" / "file.txt").read_bytes() == b"inside"


async def test_cleanup_removes_the_staged_copy_and_is_idempotent(tmp_path: Path) -> None:
    storage = InlineStorage()
    prepared = await storage.prepare(inline("data:,x"), tmp_path)

    await storage.cleanup(prepared)
    await storage.cleanup(prepared)

    assert not (tmp_path / "0").exists()


async def test_cleanup_of_an_unpacked_archive_removes_its_whole_folder(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in ("a/one.txt", "a/b/two.txt"):
            info = tarfile.TarInfo(name)
            info.size = 1
            archive.addfile(info, io.BytesIO(b"x"))
    url = "data:application/gzip;base64," + base64.b64encode(buffer.getvalue()).decode()
    storage = InlineStorage()
    prepared = await storage.prepare(inline(url, target="/inputs"), tmp_path)
    assert (prepared.host_path / "a" / "b" / "two.txt").exists()

    await storage.cleanup(prepared)
    await storage.cleanup(prepared)

    assert not (tmp_path / "0").exists()


def test_parse_data_url_reads_media_type_and_url_safe_base64() -> None:
    decoded = parse_data_url("data:Application/Octet-Stream;base64," + base64.urlsafe_b64encode(b"\xfb\xff").decode())

    assert decoded.media_type == "application/octet-stream"
    assert decoded.data == b"\xfb\xff"


def test_a_long_url_is_checked_without_decoding_and_staged_in_a_thread(tmp_path: Path) -> None:
    data = b"z" * (DECODE_ON_LOOP_CHARS * 2)
    good = InputSource.from_user({"Source": {"Type": "inline", "Params": {
        "URL": "data:application/octet-stream;base64," + base64.b64encode(data).decode()}}, "Target": "/in/big"})
    bad = InputSource.from_user({"Source": {"Type": "inline", "Params": {
        "URL": "data:;base64," + "!" * (DECODE_ON_LOOP_CHARS + 1)}}, "Target": "/in/bad"})
    storage = InlineStorage()
    with pytest.raises(StorageError, match="invalid base64 data"):
        storage.validate(bad)

    decoded_in: list[str] = []
    real_parse = inline_module.parse_data_url

    def spy(url: str) -> inline_module.DataURL:
        decoded_in.append(threading.current_thread().name)
        return real_parse(url)

    storage.validate(good)  # no decode on the caller's thread for a long URL
    assert decoded_in == []
    inline_module.parse_data_url = spy  # type: ignore[assignment]
    try:
        prepared = asyncio.run(storage.prepare(good, tmp_path))
    finally:
        inline_module.parse_data_url = real_parse  # type: ignore[assignment]
    assert prepared.host_path.read_bytes() == data
    assert decoded_in and decoded_in[0] != threading.main_thread().name
