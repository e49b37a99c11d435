"""Reading the grouped node rejections a job state carries: tolerant of what it cannot read."""

from __future__ import annotations

import json

import pytest

from bacalhau.models.node_rejections import DETAIL_NODE_REJECTIONS, RejectionGroup, RejectionKind, rejection_groups


def test_groups_are_read_from_the_detail() -> None:
    raw = json.dumps([{"Kind": "Disconnected", "Reason": "is disconnected", "Count": 2, "Nodes": ["n-1", "n-2"]}])
    [group] = rejection_groups({DETAIL_NODE_REJECTIONS: raw, "NewState": "Queued"})
    assert (group.kind, group.reason, group.count, group.nodes) == ("Disconnected", "is disconnected", 2, ["n-1", "n-2"])
    assert group.to_wire() == {
        "Kind": "Disconnected", "Reason": "is disconnected", "Detail": "", "Count": 2, "Nodes": ["n-1", "n-2"],
    }


def test_a_kind_this_client_does_not_know_is_still_shown() -> None:
    raw = json.dumps([{"Kind": "Quarantined", "Reason": "is quarantined", "Count": 1}])
    assert rejection_groups({DETAIL_NODE_REJECTIONS: raw})[0].kind == "Quarantined"


@pytest.mark.parametrize("raw", ["", "not json", "{}", '[{"Count": "many"}]', "[1]"])
def test_absent_or_unreadable_details_give_no_groups(raw: str) -> None:
    assert rejection_groups({DETAIL_NODE_REJECTIONS: raw}) == []
    assert rejection_groups({}) == []


def test_resource_kinds_say_so() -> None:
    assert RejectionKind.NOT_ENOUGH_GPU.is_resource and not RejectionKind.CONSTRAINT_NOT_MATCHED.is_resource
    assert RejectionGroup(Need={"CPU": 2}).to_wire()["Need"] == {"CPU": 2}
