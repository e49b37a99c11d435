"""result_reuse.check: who asks for reuse, what the fingerprint covers, and why an opted-in job is refused."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bacalhau.models import constants as c
from bacalhau.models.job import (
    InputSource,
    Job,
    LabelSelectorRequirement,
    NetworkConfig,
    ResourcesConfig,
    ResultPath,
    SpecConfig,
    TimeoutConfig,
)
from bacalhau.models.validation import validate_job
from bacalhau.orchestrator.result_reuse import NOT_ASKED, ReuseCheck, check, wants_reuse
from factories import make_job, make_task

PINNED = "ubuntu@sha256:" + "ab" * 32
CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
HEX64 = re.compile(r"[0-9a-f]{64}")


def docker(image: str = PINNED, args: list[str] | None = None) -> SpecConfig:
    return SpecConfig(Type="docker", Params={"Image": image, "Parameters": args or ["echo", "hello"]})


def source(kind: str, target: str = "/data", alias: str = "", **params: Any) -> InputSource:
    return InputSource(Source=SpecConfig(Type=kind, Params=params), Target=target, Alias=alias)


def opted(*, meta: dict[str, str] | None = None, task: dict[str, Any] | None = None, **job: Any) -> Job:
    """A batch job asking for reuse, eligible unless the overrides make it not: a docker task with its
    image pinned by digest, no inputs, no network."""
    task_fields: dict[str, Any] = {"engine": docker()}
    task_fields.update(task or {})
    return make_job(meta={c.META_RESULTS_REUSE: "true", **(meta or {})}, tasks=[make_task(**task_fields)], **job)


def fingerprint(job: Job) -> str:
    result = check(job)
    assert result.refusal == "", result.refusal
    assert HEX64.fullmatch(result.fingerprint), result.fingerprint
    return result.fingerprint


def refusal(job: Job) -> str:
    result = check(job)
    assert result.fingerprint == "", "a refused job has no fingerprint"
    return result.refusal


# ---- asking -------------------------------------------------------------------------------------


def test_a_job_without_the_meta_key_is_not_asked() -> None:
    job = make_job(tasks=[make_task(engine=docker())])
    assert not wants_reuse(job)
    assert check(job) == NOT_ASKED == ReuseCheck("", "")


@pytest.mark.parametrize("value", ["false", "no", "0", "", "FALSE"])
def test_a_job_that_says_false_is_not_asked(value: str) -> None:
    job = opted(meta={c.META_RESULTS_REUSE: value})
    assert check(job) == NOT_ASKED


@pytest.mark.parametrize("value", ["true", "TRUE", " yes ", "1"])
def test_every_true_spelling_asks(value: str) -> None:
    job = opted(meta={c.META_RESULTS_REUSE: value})
    assert wants_reuse(job)
    assert check(job).fingerprint


def test_an_ineligible_job_that_did_not_ask_is_not_refused() -> None:
    # Refusals are only for jobs that asked: the others' history says nothing about reuse.
    job = make_job(type="service", tasks=[make_task(env={"K": "env:K"})])
    assert check(job) == NOT_ASKED


@pytest.mark.parametrize("value", ["maybe", "on", "2"])
def test_validation_refuses_a_value_that_is_not_a_boolean(value: str) -> None:
    errors = [e for e in validate_job(opted(meta={c.META_RESULTS_REUSE: value})) if "reuse" in e.path]
    assert [(e.path, e.message) for e in errors] == [
        ("Meta[results.reuse]", f"must be true or false, got {value!r}")
    ]


@pytest.mark.parametrize("value", ["true", "False", "yes", "0", ""])
def test_validation_accepts_a_boolean(value: str) -> None:
    assert [e for e in validate_job(opted(meta={c.META_RESULTS_REUSE: value})) if "reuse" in e.path] == []


# ---- the fingerprint ----------------------------------------------------------------------------


def test_the_fingerprint_is_stable_for_the_same_spec() -> None:
    first = opted(task={"input_sources": [source("ipfs", CID=CID)], "env": {"MODE": "fast"}})
    second = opted(task={"input_sources": [source("ipfs", CID=CID)], "env": {"MODE": "fast"}})
    assert first.id != second.id and first.name != second.name
    assert fingerprint(first) == fingerprint(second) == fingerprint(first)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"name": "another-name"}, id="name"),
        pytest.param({"labels": {"team": "b"}}, id="labels"),
        pytest.param({"meta": {"owner": "someone", c.META_RESULTS_REUSE: "yes"}}, id="meta"),
        pytest.param({"priority": 50}, id="priority"),
        pytest.param(
            {"constraints": [LabelSelectorRequirement(Key="zone", Operator="=", Values=["eu"])]}, id="constraints"
        ),
        pytest.param({"task": {"resources": ResourcesConfig(CPU="4", Memory="8Gb")}}, id="resources"),
        pytest.param({"task": {"timeouts": TimeoutConfig(ExecutionTimeout=30, QueueTimeout=60)}}, id="timeouts"),
        pytest.param({"task": {"name": "other-task"}}, id="task-name"),
        pytest.param({"task": {"meta": {"k": "v"}}}, id="task-meta"),
    ],
)
def test_what_does_not_change_the_computation_does_not_change_the_fingerprint(change: dict[str, Any]) -> None:
    base = opted(name="base", labels={"team": "a"})
    task = change.pop("task", None)
    changed = opted(task=task, **{"name": "base", "labels": {"team": "a"}, **change})
    assert fingerprint(changed) == fingerprint(base)


def test_env_order_does_not_change_the_fingerprint() -> None:
    one = opted(task={"env": {"A": "1", "B": "2"}})
    other = opted(task={"env": {"B": "2", "A": "1"}})
    assert fingerprint(one) == fingerprint(other)


@pytest.mark.parametrize(
    ("base_task", "changed_task", "job_change"),
    [
        pytest.param({}, {"engine": docker(args=["echo", "bye"])}, {}, id="engine-args"),
        pytest.param({}, {"engine": docker(image="ubuntu@sha256:" + "cd" * 32)}, {}, id="engine-image"),
        pytest.param({}, {"engine": SpecConfig(Type="wasm", Params={"EntryModule": "/m.wasm"})}, {}, id="engine-type"),
        pytest.param(
            {"input_sources": [source("ipfs", CID=CID)]},
            {"input_sources": [source("ipfs", CID=CID[:-1] + "a")]},
            {},
            id="input-source",
        ),
        pytest.param(
            {"input_sources": [source("ipfs", CID=CID)]},
            {"input_sources": [source("ipfs", target="/other", CID=CID)]},
            {},
            id="input-target",
        ),
        pytest.param(
            {"input_sources": [source("ipfs", CID=CID)]},
            {"input_sources": [source("ipfs", CID=CID), source("inline", target="/x", URL="data:,x")]},
            {},
            id="one-more-input",
        ),
        pytest.param({"env": {"MODE": "fast"}}, {"env": {"MODE": "slow"}}, {}, id="env-value"),
        pytest.param({"env": {"MODE": "fast"}}, {"env": {"MODE2": "fast"}}, {}, id="env-key"),
        pytest.param({}, {"publisher": SpecConfig(Type="local")}, {}, id="publisher"),
        pytest.param(
            {"publisher": SpecConfig(Type="s3", Params={"Bucket": "a", "Key": "k"})},
            {"publisher": SpecConfig(Type="s3", Params={"Bucket": "b", "Key": "k"})},
            {},
            id="publisher-params",
        ),
        pytest.param(
            {"result_paths": [ResultPath(Name="out", Path="/out")]},
            {"result_paths": [ResultPath(Name="out", Path="/outputs")]},
            {},
            id="result-paths",
        ),
        pytest.param({}, {}, {"namespace": "other"}, id="namespace"),
    ],
)
def test_what_changes_the_computation_changes_the_fingerprint(
    base_task: dict[str, Any], changed_task: dict[str, Any], job_change: dict[str, Any]
) -> None:
    base = opted(task=base_task)
    changed = opted(task=changed_task or base_task, **job_change)
    assert fingerprint(changed) != fingerprint(base)


def test_the_fingerprint_is_a_hash_not_the_env_in_clear() -> None:
    secret = "hunter2-very-secret-value"
    value = fingerprint(opted(task={"env": {"PASSWORD": secret}}))
    assert HEX64.fullmatch(value) and secret not in value


# ---- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("job_type", ["service", "ops", "daemon"])
def test_only_batch_jobs_are_reused(job_type: str) -> None:
    assert refusal(opted(type=job_type)) == "result not reused: only batch jobs with Count 1 are reused"


def test_a_job_with_count_2_is_not_reused() -> None:
    assert refusal(opted(count=2)) == "result not reused: only batch jobs with Count 1 are reused"


@pytest.mark.parametrize("kind", ["Full", "Host", "HTTP", "Bridge"])
def test_a_networked_task_is_not_reused(kind: str) -> None:
    job = opted(task={"network": NetworkConfig(Type=kind)})
    assert refusal(job) == (
        f"result not reused: the task has network access ({kind}), so its result may depend on more than its spec"
    )


@pytest.mark.parametrize("kind", ["Default", "None", "none", ""])
def test_a_task_without_network_may_be_reused(kind: str) -> None:
    assert fingerprint(opted(task={"network": NetworkConfig(Type=kind)}))


def test_env_values_forwarded_from_the_node_are_named() -> None:
    job = opted(task={"env": {"TOKEN": "env:TOKEN", "PLAIN": "x", "API_KEY": "env:KEY"}})
    assert refusal(job) == "result not reused: Env API_KEY, TOKEN is forwarded from the node (env:), not part of the spec"


def test_an_env_value_that_only_mentions_env_is_fine() -> None:
    assert fingerprint(opted(task={"env": {"NOTE": "see env:X", "E": "environment"}}))


def test_a_docker_image_by_tag_is_refused_with_how_to_pin_it() -> None:
    job = opted(task={"engine": docker(image="ubuntu:24.04")})
    assert refusal(job) == (
        "result not reused: the image 'ubuntu:24.04' is a tag, which can move: pin it by digest (image@sha256:...)"
    )


def test_a_docker_image_by_tag_and_digest_is_accepted() -> None:
    assert fingerprint(opted(task={"engine": docker(image="ubuntu:24.04@sha256:" + "ef" * 32)}))


@pytest.mark.parametrize(
    "engine",
    [SpecConfig(Type="wasm", Params={"EntryModule": "/m.wasm"}), SpecConfig(Type="noop")],
    ids=["wasm", "noop"],
)
def test_engines_without_an_image_are_not_asked_for_one(engine: SpecConfig) -> None:
    assert fingerprint(opted(task={"engine": engine}))


def test_a_url_without_a_checksum_is_refused_and_with_one_accepted() -> None:
    url = "https://example.com/data.csv"
    unpinned = opted(task={"input_sources": [source("urlDownload", URL=url)]})
    assert refusal(unpinned) == (
        "result not reused: input '/data' (urlDownload) has no Checksum, so the download may change"
    )
    pinned = opted(task={"input_sources": [source("urlDownload", URL=url, Checksum="sha256:" + "0" * 64)]})
    assert fingerprint(pinned)


def test_an_input_is_named_by_its_alias_first() -> None:
    job = opted(task={"input_sources": [source("urlDownload", alias="table", URL="https://example.com/t")]})
    assert refusal(job) == "result not reused: input 'table' (urlDownload) has no Checksum, so the download may change"


def test_an_s3_object_needs_a_version_or_a_checksum() -> None:
    unpinned = opted(task={"input_sources": [source("s3", Bucket="b", Key="k.csv")]})
    assert refusal(unpinned) == (
        "result not reused: input '/data' (s3) names no VersionID or ChecksumSHA256, so the object may change"
    )
    by_version = opted(task={"input_sources": [source("s3", Bucket="b", Key="k.csv", VersionID="v1")]})
    by_checksum = opted(task={"input_sources": [source("s3", Bucket="b", Key="k.csv", ChecksumSHA256="x" * 44)]})
    assert fingerprint(by_version) != fingerprint(by_checksum)


@pytest.mark.parametrize("kind", ["local", "localDirectory", "s3PreSigned"])
def test_local_folders_and_presigned_urls_are_refused(kind: str) -> None:
    job = opted(task={"input_sources": [source(kind, SourcePath="/srv/data", URL="https://x/y")]})
    assert refusal(job) == f"result not reused: input '/data' ({kind}) may change between runs"


def test_inline_and_ipfs_inputs_are_pinned_by_nature() -> None:
    job = opted(task={"input_sources": [source("inline", URL="data:,hello"), source("ipfs", target="/cid", CID=CID)]})
    assert fingerprint(job)


def test_the_first_unpinned_input_is_the_one_named() -> None:
    job = opted(
        task={
            "input_sources": [
                source("ipfs", target="/ok", CID=CID),
                source("local", target="/first", SourcePath="/a"),
                source("s3", target="/second", Bucket="b", Key="k"),
            ]
        }
    )
    assert refusal(job) == "result not reused: input '/first' (local) may change between runs"
