"""`bacalhau node drain|uncordon` and the CORDON column of `node list`, through the real CLI against a real
`bacalhau serve` (orchestrator + compute), and the column's wording on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from bacalhau.cli.node.list import cordon
from bacalhau.models.node import NodeCordon, NodeState
from serve_node import BacalhauNode


def state_with(deadline: datetime | None) -> NodeState:
    iso = None if deadline is None else deadline.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return NodeState(Cordon=NodeCordon(Since="2030-01-01T00:00:00Z", Deadline=iso))


def test_the_cordon_column_says_cordoned_draining_or_drained() -> None:
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC).astimezone()
    assert cordon(NodeState(), now=now) == ""
    assert cordon(state_with(None), now=now) == "cordoned"
    later, earlier = now + timedelta(minutes=10), now - timedelta(minutes=10)
    assert cordon(state_with(later), now=now).startswith("draining until ")
    assert later.strftime("%H:%M:%S") in cordon(state_with(later), now=now)
    assert cordon(state_with(earlier), now=now).startswith("drained at ")


# -- against a real node ----------------------------------------------------------------------------------
def parse_output(text: str) -> Any:
    """`--output json|yaml` (YAML is a superset of JSON)."""
    return yaml.safe_load(text)


def items_of(parsed: Any) -> list[Any]:
    assert isinstance(parsed, list), parsed
    return parsed


def node_id_of(node: BacalhauNode) -> str:
    [state] = items_of(parse_output(node.ok("node", "list", "--output", "json").stdout))
    node_id: str = state["Info"]["NodeID"]
    return node_id


def listed(node: BacalhauNode) -> dict[str, Any]:
    [state] = items_of(parse_output(node.ok("node", "list", "--output", "json").stdout))
    assert isinstance(state, dict)
    return state


def table_row(node: BacalhauNode) -> dict[str, str]:
    """The single row of `node list --wide` as {header: cell} (cells split on runs of two spaces)."""
    header, row = [line.strip() for line in node.ok("node", "list", "--wide", "--show", "version").stdout.splitlines()]
    starts = [header.index(h) for h in header.split()]
    names = header.split()
    full = row.ljust(len(header))
    cells = [full[a:b].strip() for a, b in zip(starts, [*starts[1:], len(full) + 1], strict=True)]
    return dict(zip(names, cells, strict=True))


@pytest.mark.scenario
def test_drain_shows_in_list_and_describe_and_uncordon_clears_it(shared_node: BacalhauNode) -> None:
    node_id = node_id_of(shared_node)
    assert table_row(shared_node)["CORDON"] == ""
    result = shared_node.ok("node", "drain", node_id[:10], "--deadline", "10m", "-m", "kernel upgrade")
    assert result.stdout == "Ok\n", shared_node.describe_result(result)

    cordon_json = listed(shared_node)["Cordon"]
    assert cordon_json["Message"] == "kernel upgrade" and cordon_json["Deadline"], cordon_json
    assert table_row(shared_node)["CORDON"].startswith("draining until "), table_row(shared_node)
    assert table_row(shared_node)["STATUS"] == "CONNECTED"  # Bacalhau's values, untouched
    described = parse_output(shared_node.ok("node", "describe", node_id).stdout)
    assert described["Cordon"] == cordon_json
    as_yaml = items_of(parse_output(shared_node.ok("node", "list", "--output", "yaml").stdout))
    assert as_yaml[0]["Cordon"] == cordon_json

    assert shared_node.ok("node", "uncordon", node_id).stdout == "Ok\n"
    assert listed(shared_node)["Cordon"] is None
    assert table_row(shared_node)["CORDON"] == ""
    again = shared_node.fails("node", "uncordon", node_id)
    assert again.returncode == 1 and "is not cordoned" in again.stderr, shared_node.describe_result(again)


@pytest.mark.scenario
def test_drain_without_deadline_cordons_and_a_zero_deadline_drains_at_once(shared_node: BacalhauNode) -> None:
    node_id = node_id_of(shared_node)
    try:
        shared_node.ok("node", "drain", node_id)
        assert table_row(shared_node)["CORDON"] == "cordoned"
        assert listed(shared_node)["Cordon"]["Deadline"] is None
        shared_node.ok("node", "drain", node_id, "--deadline", "0")
        assert table_row(shared_node)["CORDON"].startswith("drained at "), table_row(shared_node)
    finally:
        shared_node.cli("node", "uncordon", node_id)


@pytest.mark.scenario
def test_drain_refuses_an_unknown_node_and_a_bad_deadline(shared_node: BacalhauNode) -> None:
    unknown = shared_node.fails("node", "drain", "n-does-not-exist")
    assert unknown.returncode == 1 and "node not found" in unknown.stderr, shared_node.describe_result(unknown)
    bad = shared_node.fails("node", "drain", node_id_of(shared_node), "--deadline", "soon")
    assert bad.returncode == 1 and "invalid drain deadline" in bad.stderr, shared_node.describe_result(bad)
    assert "10m" in bad.stderr  # the hint
    assert listed(shared_node)["Cordon"] is None


@pytest.mark.scenario
def test_node_help_lists_drain_and_uncordon(shared_node: BacalhauNode) -> None:
    verbs = shared_node.ok("node", "--help").stdout
    assert "drain" in verbs and "uncordon" in verbs, verbs
    drain_help = shared_node.ok("node", "drain", "--help").stdout
    assert "--deadline" in drain_help and "--message" in drain_help, drain_help


@pytest.mark.scenario
def test_the_cordon_survives_a_restart_of_the_node(node: BacalhauNode) -> None:
    node_id = node_id_of(node)
    node.ok("node", "drain", node_id, "--deadline", "1h", "-m", "until the disk is replaced")
    before = listed(node)["Cordon"]
    node.restart()
    assert listed(node)["Cordon"] == before
    assert table_row(node)["CORDON"].startswith("draining until ")
    node.ok("node", "uncordon", node_id)
    assert listed(node)["Cordon"] is None
