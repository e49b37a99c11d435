"""The `s3` publisher, against a real S3 server (SeaweedFS, see tests/s3_env.py); no mocks."""

from __future__ import annotations

import io
import tarfile
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tests.s3.fixtures import bucket, s3_env, seaweed

from bacalhau.compute.publishers.s3 import S3Publisher, render_key
from bacalhau.compute.storage.s3 import S3Storage
from bacalhau.models.errors import ErrorCode, PublishError, ValidationFailed
from bacalhau.models.job import InputSource, SpecConfig
from bacalhau.s3.client import ClientSettings
from s3_env import READER_KEY, SeaweedS3
from serve_node import find_free_port

__all__ = ["bucket", "s3_env", "seaweed"]  # fixtures, imported to be found by pytest

EXECUTION_ID = "e-6b1c2f6e-0000-4000-8000-000000000001"
JOB_ID = "j-0d8c3a52-0000-4000-8000-000000000002"
NOW = datetime(2024, 3, 9, 7, 5, 1)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    (folder / "outputs" / "nested").mkdir(parents=True)
    (folder / "stdout").write_text("hello\n")
    (folder / "stderr").write_text("")
    (folder / "exitCode").write_text("0")
    (folder / "outputs" / "result.txt").write_text("42")
    (folder / "outputs" / "nested" / "deep.txt").write_text("deep")
    return folder


def publisher(**overrides: Any) -> S3Publisher:
    kwargs: dict[str, Any] = {"clock": lambda: NOW, "client_settings": ClientSettings(max_attempts=1)}
    kwargs.update(overrides)
    return S3Publisher(**kwargs)


@pytest.fixture
async def pub() -> AsyncIterator[S3Publisher]:
    """A publisher with a fixed clock, stopped (its pooled clients closed) when the test ends."""
    made = publisher()
    try:
        yield made
    finally:
        await made.stop()


def spec(**params: str) -> SpecConfig:
    return SpecConfig(Type="s3", Params=params)


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


async def test_gzip_publishes_one_archive_with_entries_at_the_top(
    pub: S3Publisher, s3_env: SeaweedS3, bucket: str, results: Path
) -> None:
    published = await pub.publish(
        spec(Bucket=bucket, Key="runs/{jobID}/{executionID}", Endpoint=s3_env.endpoint),
        EXECUTION_ID,
        JOB_ID,
        results,
        node_id="n-1",
    )

    key = f"runs/{JOB_ID}/{EXECUTION_ID}.tar.gz"
    assert published.type == "s3"
    assert published.params["Key"] == key
    assert {k: published.params[k] for k in ("Bucket", "Endpoint", "Region", "Encoding")} == {
        "Bucket": bucket,
        "Endpoint": s3_env.endpoint,
        "Region": "us-east-1",
        "Encoding": "gzip",
    }
    body = s3_env.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        names = sorted(archive.getnames())
        stdout = archive.extractfile("stdout")
        assert stdout is not None and stdout.read() == b"hello\n"
    assert names == [
        "exitCode",
        "outputs",
        "outputs/nested",
        "outputs/nested/deep.txt",
        "outputs/result.txt",
        "stderr",
        "stdout",
    ]


async def test_the_published_archive_reads_back_as_an_s3_input(
    pub: S3Publisher, s3_env: SeaweedS3, bucket: str, results: Path, tmp_path: Path
) -> None:
    published = await pub.publish(
        spec(Bucket=bucket, Key="out.tar.gz", Endpoint=s3_env.endpoint), EXECUTION_ID, JOB_ID, results
    )
    assert published.params["Key"] == "out.tar.gz"  # not doubled
    assert published.params["ChecksumSHA256"]

    # The PublishedResult is a valid s3 source; its ChecksumSHA256 verifies the download.
    reader = S3Storage(max_bytes=1 << 30)
    try:
        staged = await reader.prepare(
            InputSource(Source=published, Alias="results", Target="/inputs"), tmp_path / "work"
        )
    finally:
        await reader.stop()
    with tarfile.open(staged.host_path / "out.tar.gz") as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    assert files_of(tmp_path / "unpacked") == files_of(results)


async def test_plain_uploads_every_file_under_the_key(
    pub: S3Publisher, s3_env: SeaweedS3, bucket: str, results: Path
) -> None:
    published = await pub.publish(
        spec(Bucket=bucket, Key="plain/{nodeID}-{date}-{time}", Endpoint=s3_env.endpoint, Encoding="plain"),
        EXECUTION_ID,
        JOB_ID,
        results,
        node_id="node-7",
    )

    prefix = "plain/node-7-20240309-070501/"
    assert published.params["Key"] == prefix and published.params["Encoding"] == "plain"
    listed = s3_env.client().list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    assert sorted(o["Key"] for o in listed) == [
        prefix + name for name in ("exitCode", "outputs/nested/deep.txt", "outputs/result.txt", "stderr", "stdout")
    ]
    body = s3_env.client().get_object(Bucket=bucket, Key=prefix + "outputs/nested/deep.txt")["Body"].read()
    assert body == b"deep"


def test_render_key_fills_every_placeholder() -> None:
    key = render_key(
        "{jobID}/{executionID}/{nodeID}/{date}/{time}/{other}", job_id="j", execution_id="e", node_id="n", now=NOW
    )
    assert key == "j/e/n/20240309/070501/{other}"


async def test_publishing_again_overwrites(pub: S3Publisher, s3_env: SeaweedS3, bucket: str, results: Path) -> None:
    target = spec(Bucket=bucket, Key="again", Endpoint=s3_env.endpoint, Encoding="plain")
    await pub.publish(target, EXECUTION_ID, JOB_ID, results)
    (results / "stdout").write_text("second\n")

    await pub.publish(target, EXECUTION_ID, JOB_ID, results)

    assert s3_env.client().get_object(Bucket=bucket, Key="again/stdout")["Body"].read() == b"second\n"


async def test_a_missing_bucket_is_a_final_publish_error(pub: S3Publisher, s3_env: SeaweedS3, results: Path) -> None:
    with pytest.raises(PublishError, match="bucket 'no-such-bucket' does not exist") as caught:
        await pub.publish(
            spec(Bucket="no-such-bucket", Key="k", Endpoint=s3_env.endpoint), EXECUTION_ID, JOB_ID, results
        )
    assert not caught.value.retryable and caught.value.code == ErrorCode.NotFound


async def test_read_only_credentials_are_a_final_access_denied(
    pub: S3Publisher, s3_env: SeaweedS3, bucket: str, results: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", READER_KEY[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", READER_KEY[1])

    with pytest.raises(PublishError, match="access denied") as caught:
        await pub.publish(spec(Bucket=bucket, Key="k", Endpoint=s3_env.endpoint), EXECUTION_ID, JOB_ID, results)

    assert not caught.value.retryable and "AWS_ACCESS_KEY_ID" in caught.value.hint


async def test_an_unreachable_endpoint_is_retryable(pub: S3Publisher, s3_env: SeaweedS3, results: Path) -> None:
    endpoint = f"http://127.0.0.1:{find_free_port()}"

    with pytest.raises(PublishError, match=f"cannot reach S3 endpoint {endpoint}") as caught:
        await pub.publish(spec(Bucket="bkt", Key="k", Endpoint=endpoint), EXECUTION_ID, JOB_ID, results)

    assert caught.value.retryable


@pytest.mark.parametrize(
    ("params", "paths"),
    [
        ({"Key": "k"}, ["Publisher.Params.Bucket"]),
        ({"Bucket": "b"}, ["Publisher.Params.Key"]),
        ({"Bucket": "b", "Key": "k", "Encoding": "zip"}, ["Publisher.Params.Encoding"]),
        ({}, ["Publisher.Params.Bucket", "Publisher.Params.Key"]),
    ],
)
def test_validate_requires_bucket_and_key(params: dict[str, str], paths: list[str]) -> None:
    with pytest.raises(ValidationFailed) as caught:
        publisher().validate(spec(**params))
    assert [e.path for e in caught.value.errors] == paths


def test_validate_accepts_bacalhau_params() -> None:
    publisher().validate(spec(Bucket="b", Key="{jobID}/out", Region="eu-west-1", Encoding="GZIP"))


async def test_the_scratch_folder_is_created_on_first_publish_and_left_empty(
    s3_env: SeaweedS3, bucket: str, results: Path, tmp_path: Path
) -> None:
    scratch = tmp_path / "data" / "compute" / "publishing"  # a fresh node's data dir has no such folder
    made = publisher(scratch_dir=scratch)
    try:
        published = await made.publish(spec(Bucket=bucket, Key="fresh", Endpoint=s3_env.endpoint), EXECUTION_ID,
                                       JOB_ID, results)
    finally:
        await made.stop()
    assert published.params["Key"] == "fresh.tar.gz"
    assert scratch.is_dir() and list(scratch.iterdir()) == []
