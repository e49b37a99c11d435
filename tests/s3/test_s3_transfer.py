"""bacalhau.s3 against a real S3 server (SeaweedFS): params, downloads, uploads, errors, presigned URLs."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import httpx
import pytest

from bacalhau.models.errors import ErrorCode, PublishError, StorageError, ValidationFailed
from bacalhau.models.job import SpecConfig
from bacalhau.s3.client import ClientSettings, S3Location, open_client, publisher_location, source_location, translated
from bacalhau.s3.presign import presign_get
from bacalhau.s3.transfer import ByteBudget, download_object, download_prefix, list_objects
from bacalhau.s3.upload import upload_file, upload_tree
from s3_env import READER_KEY, SeaweedS3

MiB = 1 << 20
SUBJECT = "s3 input 'data'"


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def budget(max_bytes: int = 1 << 30) -> ByteBudget:
    return ByteBudget(max_bytes, subject=SUBJECT, uri="s3://test")


async def fetch_object(server: SeaweedS3, location: S3Location, dest: Path, **kwargs: object) -> bool:
    """download_object with errors translated as the storage provider does."""
    settings = ClientSettings(max_attempts=1)
    with translated(StorageError, subject=SUBJECT, location=location, endpoint_url=location.endpoint):
        async with open_client(location.endpoint, "us-east-1", settings=settings) as client:
            return await download_object(client, location, dest, subject=SUBJECT, budget=budget(), **kwargs)  # type: ignore[arg-type]


# -- params ---------------------------------------------------------------------------------------------
def test_source_params_are_read_case_insensitively() -> None:
    spec = SpecConfig(
        Type="s3",
        Params={"bucket": "bkt", "KEY": "data/*", "Filter": r"\.csv$", "endpoint": "http://127.0.0.1:9000/"},
    )

    location = source_location(spec)

    assert location == S3Location(bucket="bkt", key="data/*", endpoint="http://127.0.0.1:9000", filter=r"\.csv$")
    assert location.is_prefix and location.prefix == "data/"
    assert location.matches("data/a.csv") and not location.matches("data/a.txt")


@pytest.mark.parametrize(("key", "is_prefix"), [("", True), ("dir/", True), ("dir/a*", True), ("dir/a.txt", False)])
def test_a_key_names_a_prefix_when_empty_or_ending_with_slash_or_star(key: str, is_prefix: bool) -> None:
    assert S3Location(bucket="bkt", key=key).is_prefix is is_prefix


def test_source_params_report_every_problem_at_once() -> None:
    spec = SpecConfig(
        Type="s3",
        Params={"Key": "d/", "Filter": "(", "Endpoint": "localhost:9000", "ChecksumSHA256": "abc", "VersionID": "v1"},
    )

    with pytest.raises(ValidationFailed) as caught:
        source_location(spec)

    paths = sorted(e.path for e in caught.value.errors)
    assert paths == [
        "Source.Params.Bucket",
        "Source.Params.ChecksumSHA256",
        "Source.Params.Endpoint",
        "Source.Params.Filter",
        "Source.Params.VersionID",
    ]


def test_publisher_params_need_bucket_and_key() -> None:
    with pytest.raises(ValidationFailed) as caught:
        publisher_location(SpecConfig(Type="s3", Params={"Bucket": "bkt"}))
    assert [e.path for e in caught.value.errors] == ["Publisher.Params.Key"]


# -- downloads ------------------------------------------------------------------------------------------
async def test_download_object_streams_large_objects_in_chunks(s3_env: SeaweedS3, bucket: str, tmp_path: Path) -> None:
    data = os.urandom(3 * MiB + 123)
    s3_env.put(bucket, "big/blob.bin", data)
    location = S3Location(bucket=bucket, key="big/blob.bin", endpoint=s3_env.endpoint, checksum_sha256=sha256_b64(data))

    assert await fetch_object(s3_env, location, tmp_path / "blob.bin", chunk_bytes=MiB)

    assert (tmp_path / "blob.bin").read_bytes() == data
    assert names(tmp_path) == ["blob.bin"]  # no .part file left


async def test_checksum_mismatch_names_expected_and_actual_and_keeps_nothing(
    s3_env: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    s3_env.put(bucket, "a.txt", b"actual content")
    wrong = sha256_b64(b"something else")
    location = S3Location(bucket=bucket, key="a.txt", endpoint=s3_env.endpoint, checksum_sha256=wrong)

    with pytest.raises(StorageError) as caught:
        await fetch_object(s3_env, location, tmp_path / "a.txt")

    assert wrong in caught.value.message and sha256_b64(b"actual content") in caught.value.message
    assert names(tmp_path) == []


async def test_version_id_fetches_that_version(seaweed: SeaweedS3, s3_env: SeaweedS3, tmp_path: Path) -> None:
    # SeaweedFS supports bucket versioning: the first version stays readable by its VersionId.
    seaweed.create_bucket("versioned-bkt", versioned=True)
    first = seaweed.put("versioned-bkt", "v.txt", b"one")["VersionId"]
    seaweed.put("versioned-bkt", "v.txt", b"two")
    location = S3Location(bucket="versioned-bkt", key="v.txt", endpoint=seaweed.endpoint, version_id=first)

    await fetch_object(seaweed, location, tmp_path / "old")
    await fetch_object(
        seaweed, S3Location(bucket="versioned-bkt", key="v.txt", endpoint=seaweed.endpoint), tmp_path / "new"
    )

    assert (tmp_path / "old").read_bytes() == b"one"
    assert (tmp_path / "new").read_bytes() == b"two"


async def test_download_prefix_keeps_the_key_structure_below_the_prefix_folder(
    s3_env: SeaweedS3, bucket: str, tmp_path: Path
) -> None:
    for key in ("data/a.csv", "data/sub/b.csv", "data/sub/deeper/c.txt", "data2/x.csv", "other/y.csv"):
        s3_env.put(bucket, key, key.encode())
    settings = ClientSettings(max_attempts=1)
    async with open_client(s3_env.endpoint, "us-east-1", settings=settings) as client:
        everything = S3Location(bucket=bucket, key="data/", endpoint=s3_env.endpoint)
        await download_prefix(client, everything, tmp_path / "slash", subject=SUBJECT, budget=budget())
        partial = S3Location(bucket=bucket, key="data*", endpoint=s3_env.endpoint, filter=r"\.csv$")
        await download_prefix(client, partial, tmp_path / "star", subject=SUBJECT, budget=budget())

    assert files_under(tmp_path / "slash") == {
        "a.csv": b"data/a.csv",
        "sub/b.csv": b"data/sub/b.csv",
        "sub/deeper/c.txt": b"data/sub/deeper/c.txt",
    }
    assert files_under(tmp_path / "star") == {
        "data/a.csv": b"data/a.csv",
        "data/sub/b.csv": b"data/sub/b.csv",
        "data2/x.csv": b"data2/x.csv",
    }


async def test_listing_follows_pagination(s3_env: SeaweedS3, bucket: str) -> None:
    keys = [f"many/{i:04d}" for i in range(25)]
    client = s3_env.client()
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"")
    async with open_client(s3_env.endpoint, "us-east-1") as aio:
        location = S3Location(bucket=bucket, key="many/", endpoint=s3_env.endpoint)
        entries = await list_objects(aio, location, page_size=10)
    assert [e.key for e in entries] == keys


async def test_an_empty_prefix_is_an_error(s3_env: SeaweedS3, bucket: str, tmp_path: Path) -> None:
    location = S3Location(bucket=bucket, key="nothing-here/", endpoint=s3_env.endpoint)
    async with open_client(s3_env.endpoint, "us-east-1") as client:
        with pytest.raises(StorageError, match=rf"no object matches s3://{bucket}/nothing-here/"):
            await download_prefix(client, location, tmp_path, subject=SUBJECT, budget=budget())


async def test_the_size_cap_stops_a_download(s3_env: SeaweedS3, bucket: str, tmp_path: Path) -> None:
    s3_env.put(bucket, "big", b"x" * 5000)
    location = S3Location(bucket=bucket, key="big", endpoint=s3_env.endpoint)
    async with open_client(s3_env.endpoint, "us-east-1") as client:
        with pytest.raises(StorageError, match="larger than the node's limit") as caught:
            await download_object(client, location, tmp_path / "big", subject=SUBJECT, budget=budget(1000))
    assert caught.value.code == ErrorCode.ResourceExhausted
    assert names(tmp_path) == []


# -- errors ---------------------------------------------------------------------------------------------
async def test_a_missing_bucket_is_named(s3_env: SeaweedS3, tmp_path: Path) -> None:
    location = S3Location(bucket="no-such-bucket", key="a.txt", endpoint=s3_env.endpoint)
    with pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist") as caught:
        await fetch_object(s3_env, location, tmp_path / "a.txt")
    assert caught.value.code == ErrorCode.NotFound and not caught.value.retryable


async def test_a_missing_key_says_nothing_matches(s3_env: SeaweedS3, bucket: str, tmp_path: Path) -> None:
    location = S3Location(bucket=bucket, key="missing.txt", endpoint=s3_env.endpoint)
    with pytest.raises(StorageError, match=rf"no object matches s3://{bucket}/missing.txt"):
        await fetch_object(s3_env, location, tmp_path / "missing.txt")


async def test_wrong_credentials_are_access_denied(
    s3_env: SeaweedS3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_env.put(bucket, "a.txt", b"a")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "not-a-key")
    location = S3Location(bucket=bucket, key="a.txt", endpoint=s3_env.endpoint)

    with pytest.raises(StorageError, match=r"access denied .*check the node's AWS credentials") as caught:
        await fetch_object(s3_env, location, tmp_path / "a.txt")

    assert "InvalidAccessKeyId" in caught.value.message and not caught.value.retryable
    assert "AWS_ACCESS_KEY_ID" in caught.value.hint


async def test_an_unreachable_endpoint_is_named_and_retryable(s3_env: SeaweedS3, tmp_path: Path) -> None:
    from serve_node import find_free_port

    endpoint = f"http://127.0.0.1:{find_free_port()}"  # nothing listens there
    location = S3Location(bucket="bkt", key="a.txt", endpoint=endpoint)

    with pytest.raises(StorageError, match=f"cannot reach S3 endpoint {endpoint}") as caught:
        await fetch_object(s3_env, location, tmp_path / "a.txt")

    assert caught.value.retryable and caught.value.code == ErrorCode.NetworkFailure


# -- uploads --------------------------------------------------------------------------------------------
async def test_upload_file_round_trips_small_and_multipart(s3_env: SeaweedS3, bucket: str, tmp_path: Path) -> None:
    small, large = tmp_path / "small", tmp_path / "large"
    small.write_bytes(b"small file")
    large.write_bytes(os.urandom(11 * MiB))
    async with open_client(s3_env.endpoint, "us-east-1") as client:
        one = await upload_file(client, small, bucket, "up/small")
        many = await upload_file(
            client, large, bucket, "up/large", part_bytes=5 * MiB, multipart_threshold_bytes=6 * MiB
        )

    s3 = s3_env.client()
    assert s3.get_object(Bucket=bucket, Key="up/small")["Body"].read() == b"small file"
    assert s3.get_object(Bucket=bucket, Key="up/large")["Body"].read() == large.read_bytes()
    assert one.checksum_sha256 == sha256_b64(b"small file")
    assert many.size == 11 * MiB
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


async def test_upload_tree_skips_symlinks(s3_env: SeaweedS3, bucket: str, tmp_path: Path) -> None:
    root = tmp_path / "results"
    (root / "outputs" / "nested").mkdir(parents=True)
    (root / "stdout").write_text("hi")
    (root / "outputs" / "nested" / "r.txt").write_text("42")
    (root / "outputs" / "leak").symlink_to("/etc/hostname")

    async with open_client(s3_env.endpoint, "us-east-1") as client:
        uploaded = await upload_tree(client, root, bucket, "run/")

    assert [u.key for u in uploaded] == ["run/outputs/nested/r.txt", "run/stdout"]


async def test_upload_with_read_only_credentials_is_access_denied(
    s3_env: SeaweedS3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", READER_KEY[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", READER_KEY[1])
    (tmp_path / "f").write_text("x")
    location = S3Location(bucket=bucket, key="f", endpoint=s3_env.endpoint)

    with (
        pytest.raises(PublishError, match="access denied") as caught,
        translated(PublishError, subject="publishing", location=location, endpoint_url=s3_env.endpoint),
    ):
        async with open_client(s3_env.endpoint, "us-east-1") as client:
            await upload_file(client, tmp_path / "f", bucket, "f")

    assert caught.value.code == ErrorCode.Forbidden and not caught.value.retryable


# -- presigned URLs -------------------------------------------------------------------------------------
async def test_presigned_url_downloads_without_credentials(s3_env: SeaweedS3, bucket: str) -> None:
    s3_env.put(bucket, "dir/shared.txt", b"shared")

    url = presign_get(bucket, "dir/shared.txt", s3_env.endpoint, "us-east-1", 60)

    assert url.startswith(f"{s3_env.endpoint}/{bucket}/dir/shared.txt?")
    async with httpx.AsyncClient() as http:
        assert (await http.get(url)).content == b"shared"
        assert (await http.get(url.split("?")[0])).status_code == 403


def test_presigning_without_credentials_is_refused(s3_env: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StorageError, match="no AWS credentials"):
        presign_get("bkt", "k", s3_env.endpoint, "us-east-1", 60)


def files_under(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())
