"""`bacalhau devstack` planning: Bacalhau's node order, names, port scheme, labels, `serve` arguments and text.

The expectations come from Bacalhau's pkg/devstack/devstack.go (Setup, JoinNode, GetStackInfo) and
cmd/cli/devstack/devstack.go (flags, run files). The processes themselves are exercised by
tests/scenarios/test_scenario_devstack.py.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bacalhau.cli.devstack import node_table, user_config_args
from bacalhau.cli.devstack.plan import (
    TEST_CONFIG_DEFAULTS,
    NodePlan,
    NodeRole,
    StackCounts,
    plan_stack,
    stack_info,
)
from bacalhau.cli.devstack.ports import PortReservation, first_unavailable
from bacalhau.cli.devstack.run_files import IGNORE_ENV, RunFiles
from bacalhau.cli.main import cli
from bacalhau.config.loader import load_config
from bacalhau.config.types import BacalhauConfig
from bacalhau.models.errors import BacalhauError, ConfigurationError

REPO = Path("/stack")


def free_ports(start: int = 50000) -> itertools.count[int]:
    """A stand-in for the OS: hands out 50000, 50001, ... so tests can tell which port came from it."""
    return itertools.count(start)


def plan(counts: StackCounts, *, random_ports: bool = False,
         api_base_port: int = 1234, nats_base_port: int = 4222) -> list[NodePlan]:
    ports = free_ports()
    return plan_stack(counts, repo=REPO, free_port=lambda: next(ports), random_ports=random_ports,
                      api_base_port=api_base_port, nats_base_port=nats_base_port)


def effective_config(node: NodePlan, user_config: list[str] | None = None) -> BacalhauConfig:
    """What `serve` makes of the node's arguments (its `-c` settings through the real loader)."""
    args = node.serve_args(user_config or [])
    settings = [args[i + 1] for i, arg in enumerate(args) if arg == "-c"]
    return load_config(settings, env={}, data_dir=str(node.data_dir))


# -- order, names, roles --------------------------------------------------------------------------------------
def test_default_stack_is_one_orchestrator_then_three_computes_named_node_0_to_3() -> None:
    nodes = plan(StackCounts())
    assert [(n.name, n.role) for n in nodes] == [
        ("node-0", NodeRole.ORCHESTRATOR),
        ("node-1", NodeRole.COMPUTE),
        ("node-2", NodeRole.COMPUTE),
        ("node-3", NodeRole.COMPUTE),
    ]
    assert [n.data_dir for n in nodes] == [REPO / f"node-{i}" for i in range(4)]
    assert all(n.log_path.parent == n.data_dir for n in nodes)


def test_orchestrators_come_first_then_hybrids_then_computes() -> None:
    nodes = plan(StackCounts(orchestrators=2, hybrids=1, computes=2))
    assert [n.role for n in nodes] == [
        NodeRole.ORCHESTRATOR, NodeRole.ORCHESTRATOR, NodeRole.HYBRID, NodeRole.COMPUTE, NodeRole.COMPUTE,
    ]


def test_a_single_hybrid_is_a_whole_stack() -> None:
    (node,) = plan(StackCounts(orchestrators=0, hybrids=1, computes=0))
    assert node.role is NodeRole.HYBRID and node.api_port == 1234 and node.nats_port == 4222
    assert node.orchestrators == ()  # it joins its own orchestrator, as in Bacalhau


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        (StackCounts(orchestrators=0, hybrids=0, computes=0), "you cannot create a devstack with zero nodes"),
        (StackCounts(orchestrators=0, hybrids=0, computes=2),
         "cannot add compute node: no orchestrators found in the existing devstack"),
    ],
)
def test_stacks_bacalhau_refuses_are_refused_with_its_message(counts: StackCounts, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        plan(counts)


# -- ports ----------------------------------------------------------------------------------------------------
def test_standard_ports_count_up_from_1234_and_4222_by_node_index() -> None:
    nodes = plan(StackCounts(orchestrators=2, hybrids=1, computes=2))
    assert [n.api_port for n in nodes] == [1234, 1235, 1236, 1237, 1238]
    assert [n.nats_port for n in nodes] == [4222, 4223, 4224, None, None]


def test_standard_ports_start_from_the_configured_api_and_orchestrator_ports() -> None:
    nodes = plan(StackCounts(orchestrators=1, computes=1), api_base_port=2000, nats_base_port=5000)
    assert [(n.api_port, n.nats_port) for n in nodes] == [(2000, 5000), (2001, None)]


def test_compute_only_nodes_serve_their_api_on_their_own_port() -> None:
    nodes = plan(StackCounts(orchestrators=1, hybrids=1, computes=2))
    assert [n.role for n in nodes[2:]] == [NodeRole.COMPUTE, NodeRole.COMPUTE]
    assert [n.api_port for n in nodes] == [1234, 1235, 1236, 1237]
    assert "API.Port=1236" in nodes[2].own_settings() and "API.Port=1237" in nodes[3].own_settings()
    assert effective_config(nodes[3], ["API.Port=9999"]).api.port == 1237


def test_random_ports_are_all_free_ports_and_all_different() -> None:
    nodes = plan(StackCounts(orchestrators=1, hybrids=1, computes=2), random_ports=True)
    used = [p for n in nodes for p in (n.api_port, n.nats_port, n.publisher_port) if p is not None]
    assert all(p >= 50000 for p in used)
    assert len(used) == len(set(used)) == 4 + 2 + 3


def test_compute_nodes_get_a_free_publisher_port_even_with_standard_ports() -> None:
    nodes = plan(StackCounts(orchestrators=1, hybrids=1, computes=1))
    assert nodes[0].publisher_port is None  # no compute, no local publisher
    assert [n.publisher_port for n in nodes[1:]] == [50000, 50001]


def test_compute_only_nodes_join_every_orchestrator_on_loopback() -> None:
    nodes = plan(StackCounts(orchestrators=2, hybrids=1, computes=1))
    urls = ("nats://127.0.0.1:4222", "nats://127.0.0.1:4223", "nats://127.0.0.1:4224")
    assert nodes[3].orchestrators == urls
    assert all(n.orchestrators == () for n in nodes[:3])


def test_port_reservation_hands_out_distinct_ports_that_are_free_after_release() -> None:
    with PortReservation() as ports:
        taken = [ports.take() for _ in range(5)]
        assert len(set(taken)) == 5
        assert first_unavailable({taken[0]: "held"}) == (taken[0], "held")
    assert first_unavailable({p: "x" for p in taken}) is None


def test_out_of_range_ports_are_unavailable() -> None:
    assert first_unavailable({65536: "the API of node-3"}) == (65536, "the API of node-3")


# -- serve arguments, through the real config loader -----------------------------------------------------------
def test_serve_args_start_the_node_with_its_role_name_and_data_dir() -> None:
    orchestrator, hybrid, compute = plan(StackCounts(orchestrators=1, hybrids=1, computes=1))
    assert orchestrator.serve_args()[:5] == ["--data-dir", "/stack/node-0", "serve", "--name", "node-0"]
    assert "--orchestrator" in orchestrator.serve_args() and "--compute" not in orchestrator.serve_args()
    assert {"--orchestrator", "--compute"} <= set(hybrid.serve_args())
    assert "--compute" in compute.serve_args() and "--orchestrator" not in compute.serve_args()


def test_each_node_config_carries_its_ports_labels_and_orchestrators() -> None:
    orchestrator, compute = plan(StackCounts(orchestrators=1, computes=1))
    cfg = effective_config(orchestrator)
    assert (cfg.api.port, cfg.orchestrator.port, cfg.data_dir) == (1234, 4222, "/stack/node-0")
    assert cfg.labels == {"id": "node-0", "name": "node-0", "env": "devstack"}
    cfg = effective_config(compute)
    assert cfg.compute.orchestrators == ["nats://127.0.0.1:4222"]
    assert cfg.publishers.types.local.port == 50000
    assert cfg.labels == {"id": "node-1", "name": "node-1", "env": "devstack"}


def test_nodes_start_with_bacalhaus_test_defaults() -> None:
    cfg = effective_config(plan(StackCounts())[0])
    assert cfg.compute.heartbeat.interval == "5s"
    assert cfg.orchestrator.node_manager.disconnect_timeout == "30s"
    assert cfg.orchestrator.scheduler.worker_count == 3
    assert cfg.orchestrator.evaluation_broker.visibility_timeout == "5s"
    assert cfg.disable_analytics is True
    # Every default is a key our config knows, or `serve` would refuse to start.
    load_config(list(TEST_CONFIG_DEFAULTS), env={})


def test_user_settings_beat_test_defaults_but_not_the_nodes_own_settings() -> None:
    orchestrator = plan(StackCounts())[0]
    cfg = effective_config(
        orchestrator,
        ["Compute.Heartbeat.Interval=1s", "API.Port=9999", "Labels.team=ml", "Labels.name=mine"],
    )
    assert cfg.compute.heartbeat.interval == "1s"
    assert cfg.api.port == 1234
    assert cfg.labels == {"id": "node-0", "name": "node-0", "env": "devstack", "team": "ml"}


def test_a_user_config_file_cannot_move_the_nodes_data_dir(tmp_path: Path) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text("DataDir: /elsewhere\nAPI:\n  Port: 7777\n")
    cfg = effective_config(plan(StackCounts())[0], [str(config_file)])
    assert (cfg.data_dir, cfg.api.port) == ("/stack/node-0", 1234)


def test_the_users_data_dir_config_file_is_passed_on_unless_a_file_is_named(tmp_path: Path) -> None:
    assert user_config_args(("API.Port=1",), str(tmp_path)) == ["API.Port=1"]
    (tmp_path / "config.yaml").write_text("{}\n")
    assert user_config_args(("API.Port=1",), str(tmp_path)) == [str(tmp_path / "config.yaml"), "API.Port=1"]
    named = str(tmp_path / "other.yaml")
    assert user_config_args((named,), str(tmp_path)) == [named]


# -- printed text -------------------------------------------------------------------------------------------------
def test_stack_info_is_bacalhaus_text_with_the_first_nodes_address() -> None:
    nodes = plan(StackCounts(orchestrators=1, hybrids=1, computes=3))
    assert stack_info(nodes, api_host="0.0.0.0") == (
        "\nDevstack is ready!\n"
        "No. of requester only nodes: 1\n"
        "No. of compute only nodes: 3\n"
        "No. of hybrid nodes: 1\n"
        "To use the devstack, run the following commands in your shell:\n"
        "\n"
        "export BACALHAU_API_HOST=0.0.0.0\n"
        "export BACALHAU_API_PORT=1234\n"
        "\n"
        "\n"
    )


def test_node_table_lists_every_node_with_ports_and_files() -> None:
    table = node_table(plan(StackCounts(orchestrators=1, computes=1))).splitlines()
    assert table[0].split() == ["NAME", "ROLE", "API", "PORT", "NATS", "PORT", "DATA", "DIR", "LOG", "FILE"]
    assert table[1].split() == ["node-0", "orchestrator", "1234", "4222", "/stack/node-0", "/stack/node-0/serve.log"]
    assert table[2].split() == ["node-1", "compute", "1235", "-", "/stack/node-1", "/stack/node-1/serve.log"]


# -- run files ----------------------------------------------------------------------------------------------------
def test_existing_run_files_refuse_a_second_devstack_unless_ignored(tmp_path: Path) -> None:
    files = RunFiles(tmp_path)
    files.check_absent(env={})
    files.port_file.write_text("1234")
    with pytest.raises(BacalhauError, match=f"found file {files.port_file} - Devstack likely already running"):
        files.check_absent(env={})
    files.check_absent(env={IGNORE_ENV: ""})


def test_run_files_hold_the_port_and_pid_and_are_removed_only_by_their_writer(tmp_path: Path) -> None:
    files = RunFiles(tmp_path)
    files.port_file.write_text("1234")
    files.remove()  # not ours: left alone
    assert files.port_file.exists()
    files.write(api_port=4321, pid=os.getpid())
    assert (files.port_file.read_text(), files.pid_file.read_text()) == ("4321", str(os.getpid()))
    files.remove()
    assert not files.port_file.exists() and not files.pid_file.exists()


# -- the command's refusals (nothing is started) -------------------------------------------------------------------
@pytest.fixture
def quiet_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BACALHAU_DIR", str(tmp_path / "home"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.delenv(IGNORE_ENV, raising=False)
    return tmp_path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bad-computes", "1"], "bad compute actors (--bad-computes) are not supported"),
        (["--bad-compute-actors", "9"], "you cannot have more bad compute actors (9) than there are nodes (3)"),
        (["--cpu-profiling-file", "cpu.out"], "--cpu-profiling-file and --memory-profiling-file are not supported"),
        (["--computes", "0", "--orchestrators", "0"], "you cannot create a devstack with zero nodes"),
        (["--requester-nodes", "0"], "cannot add compute node: no orchestrators found"),
        (["-c", "API.Nope=1"], "unknown config key"),
    ],
)
def test_refused_requests_exit_1_before_starting_anything(quiet_env: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["devstack", *args])
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert sorted(p.name for p in quiet_env.iterdir()) == []  # no temp repo, no run files


def test_a_running_devstacks_port_file_refuses_another(quiet_env: Path) -> None:
    (quiet_env / "bacalhau-devstack.pid").write_text("1")
    result = CliRunner().invoke(cli, ["devstack", "--random-ports"])
    assert result.exit_code == 1
    assert f"found file {quiet_env / 'bacalhau-devstack.pid'} - Devstack likely already running" in result.stderr


def test_hidden_old_flag_names_still_work_and_are_hidden() -> None:
    help_text = CliRunner().invoke(cli, ["devstack", "--help"]).output
    for flag in ("--computes", "--orchestrators", "--hybrids", "--stack-repo", "--random-ports", "--bad-computes"):
        assert flag in help_text
    for hidden in ("--compute-nodes", "--requester-nodes", "--hybrid-nodes", "--bad-compute-actors"):
        assert f"{hidden} " not in help_text.split("Examples:")[0]
