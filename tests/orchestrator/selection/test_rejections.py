"""Grouping rejections: one readable sentence for the job message, a bounded list for the API."""

from __future__ import annotations

import json
import random

import pytest

from bacalhau.models.node_rejections import DETAIL_NODE_REJECTIONS, RejectionKind, rejection_groups
from bacalhau.models.resources import Resources
from bacalhau.orchestrator.selection.rejections import (
    MAX_NODES_PER_GROUP,
    NodeRejection,
    summarize,
    to_details,
    to_wire,
)

GB = 1000**3
NEED = Resources(cpu=1, memory=8 * GB)


def _memory_short(node_id: str, offered_gb: int) -> NodeRejection:
    return NodeRejection(
        node_id, kind=RejectionKind.NOT_ENOUGH_MEMORY, needed=NEED, offered=Resources(cpu=4, memory=offered_gb * GB)
    )


def _mixed() -> list[NodeRejection]:
    return [
        *(NodeRejection(f"n-c{i}", kind=RejectionKind.CONSTRAINT_NOT_MATCHED, detail="zone=eu") for i in range(3)),
        NodeRejection("n-d1", kind=RejectionKind.ENGINE_UNSUPPORTED, detail="docker"),
        _memory_short("n-m1", 4),
        _memory_short("n-m2", 2),
        NodeRejection("n-p1", kind=RejectionKind.NOT_APPROVED, detail="PENDING"),
    ]


def test_summary_counts_each_reason_most_common_first() -> None:
    assert summarize(_mixed()) == (
        "3 nodes lack label zone=eu; "
        "2 have too little memory (need 8.0 GB, largest offers 4.0 GB); "
        "1 is not approved; "
        "1 has no docker engine"
    )


def test_summary_does_not_depend_on_the_order_of_nodes() -> None:
    rejections = _mixed()
    expected = summarize(rejections)
    for seed in range(5):
        random.Random(seed).shuffle(rejections)
        assert summarize(rejections) == expected


def test_one_node_reads_in_the_singular() -> None:
    assert summarize([_memory_short("n-1", 2)]) == "1 node has too little memory (need 8.0 GB, offers 2.0 GB)"
    assert summarize([NodeRejection("n-1", kind=RejectionKind.CONSTRAINT_NOT_MATCHED, detail="zone=eu")]) == (
        "1 node lacks label zone=eu"
    )
    assert summarize([]) == ""


def test_a_thousand_nodes_make_a_short_sentence_with_the_rest_counted() -> None:
    rejections: list[NodeRejection] = []
    for i in range(1000):
        match i % 10:
            case 0 | 1 | 2 | 3:
                rejections.append(NodeRejection(f"n-{i}", kind=RejectionKind.CONSTRAINT_NOT_MATCHED, detail="zone=eu"))
            case 4 | 5 | 6:
                rejections.append(_memory_short(f"n-{i}", 1 + i % 7))
            case 7:
                rejections.append(NodeRejection(f"n-{i}", kind=RejectionKind.DISCONNECTED))
            case 8:
                rejections.append(NodeRejection(f"n-{i}", kind=RejectionKind.SHUTTING_DOWN))
            case _:
                # Every node refusing in its own words: many groups, each of one node.
                rejections.append(NodeRejection(f"n-{i}", kind=RejectionKind.BID_REJECTED, detail=f"busy ({i})"))
    summary = summarize(rejections)
    assert summary.startswith(
        "400 nodes lack label zone=eu; 300 have too little memory (need 8.0 GB, largest offers 7.0 GB); "
        "100 are disconnected; 100 are shutting down; 1 refused the job: busy (109); "
    )
    assert summary.endswith("…and 99 more reasons")
    assert len(summary) < 400

    wire = to_wire(rejections)
    assert len(wire) == 21  # 20 groups, then the rest folded into one
    assert sum(group["Count"] for group in wire) == 1000
    assert all(len(group["Nodes"]) <= MAX_NODES_PER_GROUP for group in wire)
    folded = wire[-1]
    assert (folded["Kind"], folded["Reason"], folded["Count"]) == ("Other", "84 more reasons", 84)
    assert len(folded["Nodes"]) == MAX_NODES_PER_GROUP and all(n.endswith("9") for n in folded["Nodes"])


def test_wire_groups_carry_kind_reason_detail_count_and_example_nodes() -> None:
    wire = to_wire(_mixed())
    assert wire[0] == {
        "Kind": "ConstraintNotMatched", "Reason": "lacks label zone=eu", "Detail": "zone=eu", "Count": 3,
        "Nodes": ["n-c0", "n-c1", "n-c2"],
    }
    assert wire[1] == {
        "Kind": "NotEnoughMemory",
        "Reason": "has too little memory (need 8.0 GB, largest offers 4.0 GB)",
        "Detail": "memory",
        "Count": 2,
        "Nodes": ["n-m1", "n-m2"],
        "Need": {"Memory": 8 * GB},
        "LargestOffered": {"Memory": 4 * GB},
    }
    assert [group["Kind"] for group in wire[2:]] == ["NotApproved", "EngineUnsupported"]
    assert to_wire(_mixed(), max_nodes=2)[0]["Nodes"] == ["n-c0", "n-c1"]


def test_several_short_resources_are_named_together_with_their_figures() -> None:
    need = Resources(cpu=8, memory=16 * GB)
    rejections = [
        NodeRejection("n-1", kind=RejectionKind.NOT_ENOUGH_CPU, needed=need, offered=Resources(cpu=2, memory=4 * GB)),
        NodeRejection("n-2", kind=RejectionKind.NOT_ENOUGH_CPU, needed=need, offered=Resources(cpu=4, memory=2 * GB)),
        NodeRejection("n-3", kind=RejectionKind.NOT_ENOUGH_CPU, needed=need, offered=Resources(cpu=2, memory=32 * GB)),
    ]
    assert summarize(rejections) == (
        "2 nodes have too little CPU and memory (need 8 CPU, 16.0 GB memory; largest offers 4 CPU, 4.0 GB memory); "
        "1 has too little CPU (need 8 CPU, offers 2 CPU)"
    )
    [both, cpu_only] = to_wire(rejections)
    assert both["Detail"] == "cpu,memory" and both["Kind"] == "NotEnoughCPU"
    assert both["Need"] == {"CPU": 8, "Memory": 16 * GB} and both["LargestOffered"] == {"CPU": 4, "Memory": 4 * GB}
    assert cpu_only["Need"] == {"CPU": 8} and cpu_only["LargestOffered"] == {"CPU": 2}


def test_negative_constraints_and_memberships_read_naturally() -> None:
    rejections = [
        NodeRejection("n-1", kind=RejectionKind.CONSTRAINT_NOT_MATCHED, detail="zone!=eu"),
        NodeRejection("n-2", kind=RejectionKind.CONSTRAINT_NOT_MATCHED, detail="!gpu"),
        NodeRejection("n-3", kind=RejectionKind.NOT_APPROVED, detail="REJECTED"),
        NodeRejection("n-4", kind=RejectionKind.ALREADY_RUNS_JOB),
        NodeRejection("n-5", kind=RejectionKind.INPUT_SOURCE_UNSUPPORTED, detail="ipfs"),
        NodeRejection("n-6", kind=RejectionKind.ALREADY_FAILED, detail="3"),
        NodeRejection("n-7", kind=RejectionKind.CORDONED),
    ]
    assert [r.reason for r in rejections] == [
        "does not match zone!=eu",
        "does not match !gpu",
        "is rejected from the cluster",
        "already runs an execution of this job",
        "cannot read ipfs inputs",
        "already failed partition 3 of this job",
        "is cordoned (drained by an operator)",
    ]


@pytest.mark.parametrize("kind", list(RejectionKind))
def test_every_kind_reads_as_its_own_phrase(kind: RejectionKind) -> None:
    text = NodeRejection("n-1", kind=kind, detail="x").reason
    assert text and text[0].islower()
    assert ("too little" in text) == kind.is_resource


def test_free_text_rejections_are_grouped_by_their_text() -> None:
    rejections = [
        NodeRejection("n-1", "node is shutting down"),
        NodeRejection("n-2", "node is shutting down"),
        NodeRejection("n-3", "refused the job: full"),
    ]
    assert summarize(rejections) == "2 nodes: node is shutting down; 1 node: refused the job: full"
    assert to_wire(rejections)[0]["Kind"] == "Other" and to_wire(rejections)[0]["Detail"] == "node is shutting down"


def test_a_nodes_refusal_is_quoted_on_one_line_and_bounded() -> None:
    refusal = "no\x1b]0;pwned\x07 room\n" + "x" * 500
    [group] = to_wire([NodeRejection("n-1", kind=RejectionKind.BID_REJECTED, detail=refusal)])
    assert "\x1b" not in group["Reason"] and "\n" not in group["Reason"]
    assert group["Reason"].startswith("refused the job: no room x") and len(group["Reason"]) < 250


def test_details_round_trip_through_the_wire_model() -> None:
    details = to_details(_mixed())
    assert list(details) == [DETAIL_NODE_REJECTIONS]
    groups = rejection_groups(details)
    assert [(g.kind, g.count) for g in groups] == [
        ("ConstraintNotMatched", 3), ("NotEnoughMemory", 2), ("NotApproved", 1), ("EngineUnsupported", 1),
    ]
    assert groups[1].largest_offered == {"Memory": 4 * GB}
    assert json.loads(details[DETAIL_NODE_REJECTIONS]) == to_wire(_mixed())
    assert to_details([]) == {}
