"""Feasibility: which check a node fails, as a structured rejection, and nothing allocated for a fit."""

from __future__ import annotations

import tracemalloc

import pytest
from tests.orchestrator.scheduler.harness import make_job, make_node

from bacalhau.models.job import InputSource, Job, LabelSelectorRequirement, SpecConfig
from bacalhau.models.node import Membership, NodeState
from bacalhau.orchestrator.selection.feasibility import (
    NodeRejection,
    RejectionKind,
    rejection,
    task_resources,
)

GB = 1000**3


def _with_constraint(job: Job, key: str, op: str, *values: str) -> Job:
    job.constraints = [LabelSelectorRequirement(Key=key, Operator=op, Values=list(values))]
    return job


def test_a_node_that_fits_is_accepted() -> None:
    assert rejection(make_job(), make_node("n-a")) is None


@pytest.mark.parametrize(
    ("node", "kind", "detail"),
    [
        (make_node("n-a", membership=Membership.PENDING), RejectionKind.NOT_APPROVED, "PENDING"),
        (make_node("n-a", membership=Membership.REJECTED), RejectionKind.NOT_APPROVED, "REJECTED"),
        (make_node("n-a", connected=False), RejectionKind.DISCONNECTED, ""),
        (make_node("n-a", engines=("docker",)), RejectionKind.ENGINE_UNSUPPORTED, "wasm"),
    ],
)
def test_each_failed_check_has_its_kind_and_detail(node: NodeState, kind: RejectionKind, detail: str) -> None:
    found = rejection(make_job(), node)
    assert found is not None
    assert (found.node_id, found.kind, found.detail) == ("n-a", kind, detail)


def test_a_node_without_compute_is_rejected_as_such() -> None:
    node = make_node("n-a")
    node.info.compute_node_info = None
    found = rejection(make_job(), node)
    assert found is not None and found.kind is RejectionKind.NO_COMPUTE


def test_unsupported_publisher_and_input_source_name_the_type() -> None:
    job = make_job()
    job.task.publisher = SpecConfig(Type="s3")
    found = rejection(job, make_node("n-a"))
    assert found is not None and (found.kind, found.detail) == (RejectionKind.PUBLISHER_UNSUPPORTED, "s3")

    job = make_job()
    job.task.input_sources = [InputSource(Source=SpecConfig(Type="ipfs"), Target="/in")]
    found = rejection(job, make_node("n-a"))
    assert found is not None and (found.kind, found.detail) == (RejectionKind.INPUT_SOURCE_UNSUPPORTED, "ipfs")


@pytest.mark.parametrize(
    ("op", "values", "text"),
    [
        ("=", ("eu",), "zone=eu"),
        ("in", ("eu", "us"), "zone in (eu,us)"),
        ("!=", ("ap",), "zone!=ap"),
        ("notin", ("ap", "sa"), "zone notin (ap,sa)"),
        ("exists", (), "zone"),
        ("gt", ("9",), "zone>9"),
    ],
)
def test_a_failed_constraint_is_written_as_a_selector(op: str, values: tuple[str, ...], text: str) -> None:
    labels = {"zone": "ap"} if op != "notin" else {"zone": "sa"}
    if op == "exists":
        labels = {}
    found = rejection(_with_constraint(make_job(), "zone", op, *values), make_node("n-a", labels=labels))
    assert found is not None
    assert (found.kind, found.detail) == (RejectionKind.CONSTRAINT_NOT_MATCHED, text)


def test_resource_rejections_name_every_short_resource_and_keep_references() -> None:
    job = make_job(cpu="8", memory="16gb")
    node = make_node("n-a", cpu=4, memory=32 * GB)
    needed = task_resources(job)
    found = rejection(job, node, needed)
    assert found is not None and found.kind is RejectionKind.NOT_ENOUGH_CPU
    assert found.shortfalls == (RejectionKind.NOT_ENOUGH_CPU,)
    # References, not copies: building a rejection costs one object.
    compute = node.info.compute_node_info
    assert compute is not None
    assert found.needed is needed and found.offered is compute.max_capacity

    found = rejection(job, make_node("n-b", cpu=4, memory=8 * GB), needed)
    assert found is not None and found.kind is RejectionKind.NOT_ENOUGH_CPU
    assert found.shortfalls == (RejectionKind.NOT_ENOUGH_CPU, RejectionKind.NOT_ENOUGH_MEMORY)

    found = rejection(make_job(memory="16gb"), make_node("n-c", memory=8 * GB))
    assert found is not None and found.kind is RejectionKind.NOT_ENOUGH_MEMORY
    assert found.reason == "has too little memory (need 16.0 GB, offers 8.0 GB)"


def test_max_job_requirements_bound_the_offer_when_set() -> None:
    node = make_node("n-a", cpu=16)
    compute = node.info.compute_node_info
    assert compute is not None
    compute.max_job_requirements.cpu = 1
    found = rejection(make_job(cpu="2"), node)
    assert found is not None and found.offered is compute.max_job_requirements


def test_disk_and_gpu_shortfalls() -> None:
    job = make_job()
    job.task.resources.disk = "1tb"
    job.task.resources.gpu = "1"
    found = rejection(job, make_node("n-a"))
    assert found is not None and found.kind is RejectionKind.NOT_ENOUGH_DISK
    assert found.shortfalls == (RejectionKind.NOT_ENOUGH_DISK, RejectionKind.NOT_ENOUGH_GPU)


def test_checking_accepted_nodes_keeps_nothing_per_node() -> None:
    job = _with_constraint(make_job(), "zone", "in", "eu", "us")
    nodes = [make_node(f"n-{i}", labels={"zone": "eu"}) for i in range(1000)]
    needed = task_resources(job)
    rejection(job, nodes[0], needed)  # warm up: lazily built schemas and caches are not per node
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for node in nodes:
            assert rejection(job, node, needed) is None
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Transient lower-cased names at most; nothing that grows with the number of nodes.
    assert current - before < 1_000 and peak - before < 4_000, (current - before, peak - before)


def test_the_free_text_form_keeps_working_and_defaults_to_other() -> None:
    legacy = NodeRejection("n-a", "node is shutting down")
    assert legacy.kind is RejectionKind.OTHER and legacy.reason == "node is shutting down"
    assert str(legacy) == "node n-a: node is shutting down"


