"""The `s3` input source, against a real S3 server (SeaweedFS, see tests/s3_env.py); no mocks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.s3.fixtures import StallingProxy, bucket, s3_env, seaweed, stalling_proxy

from bacalhau.compute.storage.s3 import S3Storage
from bacalhau.models.errors import ErrorCode, StorageError, ValidationFailed
from bacalhau.models.job import InputSource, SpecConfig
from s3_env import SeaweedS3
from serve_node import find_free_port

__all__ = ["bucket", "s3_env", "seaweed", "stalling_proxy"]  # fixtures, imported to be found by pytest

MiB = 1 << 20


def s3_input(alias: str = "data", **params: Any) -> InputSource:
    return InputSource(Source=SpecConfig(Type="s3", Params=params), Alias=alias, Target="/inputs")


StorageFactory = Callable[..., S3Storage]


def storage(**overrides: Any) -> S3Storage:
    kwargs: dict[str, Any] = {"max_bytes": 1 << 30}
    kwargs.update(overrides)
    return S3Storage(**kwargs)


@pytest.fixture
async def make_storage() -> AsyncIterator[StorageFactory]:
    """S3Storage instances that are stopped (their pooled clients closed) when the test ends."""
    made: list[S3Storage] = []

    def factory(**overrides: Any) -> S3Storage:
        made.append(storage(**overrides))
        return made[-1]

    try:
        yield factory
    finally:
        for provider in made:
            await provider.stop()


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def entries(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


async def test_an_object_is_staged_as_its_basename_in_a_fresh_folder(
    make_storage: StorageFactory, s3_env: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    s3_env.put(bucket, "data/2024/report.csv", b"a,b\n1,2\n")
    provider = make_storage()
    source = s3_input(Bucket=bucket, Key="data/2024/report.csv", Endpoint=s3_env.endpoint)

    prepared = await provider.prepare(source, tmp_path / "work")

    assert prepared.host_path == tmp_path / "work" / "0"
    assert tree(prepared.host_path) == {"report.csv": b"a,b\n1,2\n"}
    assert prepared.read_only and prepared.owned
    await provider.cleanup(prepared)
    await provider.cleanup(prepared)  # idempotent
    assert not prepared.host_path.exists()


async def test_a_prefix_is_staged_as_a_folder_with_nested_keys(
    make_storage: StorageFactory, s3_env: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    for key in ("set/a.txt", "set/sub/b.txt", "set/sub/deep/c.bin", "setting.txt"):
        s3_env.put(bucket, key, key.encode())

    for key in ("set/", "set/*"):
        prepared = await make_storage().prepare(s3_input(Bucket=bucket, Key=key, Endpoint=s3_env.endpoint), tmp_path)
        assert tree(prepared.host_path) == {
            "a.txt": b"set/a.txt",
            "sub/b.txt": b"set/sub/b.txt",
            "sub/deep/c.bin": b"set/sub/deep/c.bin",
        }


async def test_an_empty_key_stages_the_whole_bucket_and_filter_narrows_it(
    make_storage: StorageFactory, s3_env: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    for key in ("x/a.csv", "x/b.json", "y/c.csv"):
        s3_env.put(bucket, key, b"-")

    everything = await make_storage().prepare(s3_input(Bucket=bucket, Endpoint=s3_env.endpoint), tmp_path)
    csv = await make_storage().prepare(s3_input(Bucket=bucket, Filter=r"\.csv$", Endpoint=s3_env.endpoint), tmp_path)

    assert sorted(tree(everything.host_path)) == ["x/a.csv", "x/b.json", "y/c.csv"]
    assert sorted(tree(csv.host_path)) == ["x/a.csv", "y/c.csv"]


async def test_checksum_sha256_is_verified(
    make_storage: StorageFactory, s3_env: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(2 * MiB)
    s3_env.put(bucket, "blob", data)

    prepared = await make_storage(chunk_bytes=256 << 10).prepare(
        s3_input(Bucket=bucket, Key="blob", ChecksumSHA256=sha256_b64(data), Endpoint=s3_env.endpoint), tmp_path
    )

    assert tree(prepared.host_path) == {"blob": data}


async def test_a_checksum_mismatch_names_the_input_and_both_checksums(
    make_storage: StorageFactory, s3_env: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    s3_env.put(bucket, "blob", b"what is there")
    expected = sha256_b64(b"what was promised")
    source = s3_input(alias="promised", Bucket=bucket, Key="blob", ChecksumSHA256=expected, Endpoint=s3_env.endpoint)

    with pytest.raises(StorageError) as caught:
        await make_storage().prepare(source, tmp_path / "work")

    message = caught.value.message
    assert "'promised'" in message and "checksum mismatch" in message
    assert expected in message and sha256_b64(b"what is there") in message
    assert entries(tmp_path / "work") == []


async def test_version_id_stages_that_version(
    make_storage: StorageFactory, seaweed: SeaweedS3, s3_env: SeaweedS3, tmp_path: Path
) -> None:
    # SeaweedFS supports S3 bucket versioning, so this runs against the real feature.
    seaweed.create_bucket("versions-input", versioned=True)
    old = seaweed.put("versions-input", "model.bin", b"v1")["VersionId"]
    seaweed.put("versions-input", "model.bin", b"v2")

    prepared = await make_storage().prepare(
        s3_input(Bucket="versions-input", Key="model.bin", VersionID=old, Endpoint=seaweed.endpoint), tmp_path
    )

    assert tree(prepared.host_path) == {"model.bin": b"v1"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"Bucket": "no-such-bucket", "Key": "a.txt"}, "bucket 'no-such-bucket' does not exist"),
        ({"Key": "missing.txt"}, "no object matches s3://{bucket}/missing.txt"),
        ({"Key": "missing/"}, "no object matches s3://{bucket}/missing/"),
        ({"Key": "", "Filter": "^nothing$"}, "no object matches s3://{bucket}/ with Filter '^nothing$'"),
    ],
)
async def test_missing_buckets_and_keys_are_reported_and_leave_nothing(
    make_storage: StorageFactory, s3_env: SeaweedS3, bucket: str, tmp_path: Path, params: dict[str, str], message: str
) -> None:
    s3_env.put(bucket, "present.txt", b"x")
    source = s3_input(alias="in", **{"Bucket": bucket, "Endpoint": s3_env.endpoint, **params})

    with pytest.raises(StorageError) as caught:
        await make_storage().prepare(source, tmp_path / "work")

    assert message.format(bucket=bucket) in caught.value.message
    assert caught.value.message.startswith("s3 input 'in'")
    assert caught.value.code == ErrorCode.NotFound and not caught.value.retryable
    assert entries(tmp_path / "work") == []


async def test_wrong_credentials_are_access_denied(
    make_storage: StorageFactory, s3_env: SeaweedS3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_env.put(bucket, "a.txt", b"a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")

    with pytest.raises(StorageError, match="access denied") as caught:
        await make_storage().prepare(s3_input(Bucket=bucket, Key="a.txt", Endpoint=s3_env.endpoint), tmp_path / "work")

    assert "check the node's AWS credentials" in caught.value.message
    assert entries(tmp_path / "work") == []


async def test_an_unreachable_endpoint_is_named(
    make_storage: StorageFactory, s3_env: SeaweedS3, tmp_path: Path
) -> None:
    from bacalhau.s3.client import ClientSettings

    endpoint = f"http://127.0.0.1:{find_free_port()}"
    provider = make_storage(client_settings=ClientSettings(max_attempts=1))

    with pytest.raises(StorageError, match=f"cannot reach S3 endpoint {endpoint}") as caught:
        await provider.prepare(s3_input(Bucket="bkt", Key="a", Endpoint=endpoint), tmp_path / "work")

    assert caught.value.retryable
    assert entries(tmp_path / "work") == []


async def test_a_download_over_the_size_cap_fails_and_leaves_nothing(
    make_storage: StorageFactory, s3_env: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    s3_env.put(bucket, "dir/one", b"x" * 600)
    s3_env.put(bucket, "dir/two", b"x" * 600)

    with pytest.raises(StorageError, match="larger than the node's limit"):
        await make_storage(max_bytes=1000).prepare(
            s3_input(Bucket=bucket, Key="dir/", Endpoint=s3_env.endpoint), tmp_path / "w"
        )

    assert entries(tmp_path / "w") == []


async def test_cancelling_mid_download_leaves_nothing(
    make_storage: StorageFactory, s3_env: SeaweedS3, bucket: str, tmp_path: Path, stalling_proxy: StallingProxy
) -> None:
    s3_env.put(bucket, "big.bin", os.urandom(4 * MiB))
    work = tmp_path / "work"
    source = s3_input(Bucket=bucket, Key="big.bin", Endpoint=stalling_proxy.endpoint)
    task = asyncio.create_task(make_storage(chunk_bytes=256 << 10).prepare(source, work))

    await asyncio.wait_for(stalling_proxy.stalled.wait(), 30)
    assert any(name.endswith(".part") for name in entries(work)), "the download should be under way"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert entries(work) == []


async def test_a_connection_cut_mid_download_is_retryable_and_leaves_nothing(
    make_storage: StorageFactory, s3_env: SeaweedS3, bucket: str, tmp_path: Path, stalling_proxy: StallingProxy
) -> None:
    from bacalhau.s3.client import ClientSettings

    s3_env.put(bucket, "big.bin", os.urandom(4 * MiB))
    source = s3_input(Bucket=bucket, Key="big.bin", Endpoint=stalling_proxy.endpoint)
    provider = make_storage(chunk_bytes=256 << 10, client_settings=ClientSettings(max_attempts=1))
    task = asyncio.create_task(provider.prepare(source, tmp_path / "work"))

    await asyncio.wait_for(stalling_proxy.stalled.wait(), 30)
    stalling_proxy.sever()
    with pytest.raises(StorageError) as caught:
        await task

    assert caught.value.retryable
    assert entries(tmp_path / "work") == []


def test_validate_rejects_a_missing_bucket_naming_the_input() -> None:
    with pytest.raises(ValidationFailed) as caught:
        storage().validate(s3_input(alias="training-data", Key="a.txt"))

    assert [e.path for e in caught.value.errors] == ["InputSources[training-data].Source.Params.Bucket"]
    assert "required" in str(caught.value)


def test_validate_accepts_a_complete_source() -> None:
    storage().validate(s3_input(Bucket="bkt", Key="dir/*", Filter=r"\.csv$", Region="eu-west-1"))
