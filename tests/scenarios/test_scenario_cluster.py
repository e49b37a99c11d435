"""A real cluster: one `bacalhau serve --orchestrator` (embedded nats-server) and compute-only
`bacalhau serve --compute` processes joining it, used through the real CLI.

What a user of a cluster notices: nodes listed with their labels and capacity, jobs placed by label
and spread over distinct nodes, results fetched from each compute node's own publisher, and, when a
node dies, freezes, is cut off, is rejected or the orchestrator restarts, a job that still ends
Completed with exactly one Completed execution (never two, never none).

Liveness is shortened through the config keys (heartbeat 0.5 s, disconnect after 3 s; cluster_env.py).
Long-running work is a docker `sleep` in the test busybox image whose length each compute node sets
(`env:TEST_SLEEP_S`, allow-listed): the execution a fault hits sleeps long, its replacement ends at
once. Its container lives in dockerd, so it outlives a frozen or killed compute node; what the node
does with it when it comes back (removes it, is told to cancel it, reports a late result) is what the
user sees. Placement is deterministic: the second compute node starts once the job runs on the first.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from scenario_jobs import EXEC_CANCELLED, EXEC_COMPLETED, EXEC_FAILED, EXEC_RUNNING, JobWatch, parse_output

from cluster_env import Cluster, ClusterNode, NetnsLink
from docker_env import EXECUTION_ID_LABEL, docker_cli
from parallel import worker_subnet

if TYPE_CHECKING:
    import docker

pytestmark = pytest.mark.scenario

ZONES = {"node-0": "a", "node-1": "b", "node-2": "c"}
NODE_LOST = "node has disappeared"
LATE_RESULT = "late result discarded"
# How long a `submit_sleep` job sleeps on a node that a fault will hit while it runs ("long": it must
# outlive the whole scenario), and on the node that takes over.
VICTIM_SLEEP_S = 60
REPLACEMENT_SLEEP_S = 1
JOB_TIMEOUT_S = 60.0
ClusterFactory = Callable[..., Cluster]


# -- fixtures ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared_cluster(
    bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory, busybox_image: str
) -> Iterator[Cluster]:
    """Orchestrator + node-0/1/2 labelled zone=a/b/c, for the tests that only add jobs."""
    cluster = Cluster(bacalhau_bin, tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        for name, zone in ZONES.items():
            cluster.add_compute(name, labels={"zone": zone})
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def make_cluster(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterFactory]:
    """`make_cluster(**Cluster kwargs)`: a cluster of the test's own (not started), closed at teardown."""
    made: list[Cluster] = []

    def make(**kwargs: Any) -> Cluster:
        cluster = Cluster(bacalhau_bin, tmp_path_factory.mktemp("cluster"), **kwargs)
        made.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in made:
            cluster.close()


# -- helpers ----------------------------------------------------------------------------------------------
def watch_of(cluster: Cluster) -> JobWatch:
    """A JobWatch on the orchestrator whose failures carry every node's log."""
    return JobWatch(cluster.orchestrator.url, cluster.describe)


def submit(cluster: Cluster, *args: str) -> str:
    """`bacalhau docker run --wait=false --id-only ARGS`; the job ID."""
    job_id = cluster.ok("docker", "run", "--wait=false", "--id-only", *args).stdout.strip()
    assert job_id.startswith("j-"), job_id
    return job_id


def add_sleeper(cluster: Cluster, name: str, sleep_s: int, **kwargs: Any) -> ClusterNode:
    """A compute node on which `submit_sleep` jobs sleep `sleep_s` seconds (its TEST_SLEEP_S variable)."""
    return cluster.add_compute(
        name, env={"TEST_SLEEP_S": str(sleep_s)}, extra_config=["Compute.Env.AllowList=TEST_*"], **kwargs
    )


def submit_sleep(cluster: Cluster, image: str, *flags: str) -> str:
    """A job that prints its execution ID, sleeps as long as its node says (`add_sleeper`), prints `finished`.

    The duration comes from the node (`env:TEST_SLEEP_S`), so the execution a fault hits can outlive the
    scenario while its replacement ends at once.
    """
    script = "echo started $BACALHAU_EXECUTION_ID; sleep $SLEEP_S; echo finished $BACALHAU_EXECUTION_ID"
    return submit(cluster, "-e", "SLEEP_S=env:TEST_SLEEP_S", *flags, image, "--", "sh", "-c", script)


def cli_executions(cluster: Cluster, job_id: str) -> list[dict[str, Any]]:
    """`bacalhau job executions JOB --output json`, as a list of executions."""
    parsed = parse_output(cluster.ok("job", "executions", job_id, "--output", "json").stdout)
    items = parsed.get("Items", parsed) if isinstance(parsed, dict) else parsed
    return list(items or [])


def state_of(execution: dict[str, Any]) -> int:
    """The execution's ComputeState as its wire integer."""
    return int(execution["ComputeState"]["StateType"])


def summary(executions: list[dict[str, Any]]) -> str:
    """One line per execution (ID, node, partition, states), for assertion messages."""
    return "\n".join(
        f"  {e['ID']} node={e['NodeID']} partition={e.get('PartitionIndex')} compute={e['ComputeState']} "
        f"desired={e['DesiredState']}"
        for e in executions
    )


def wait_running_on(watch: JobWatch, job_id: str, node: str) -> dict[str, Any]:
    """The job's execution once it runs; asserted to be on `node`."""
    execution = watch.wait_execution(job_id, EXEC_RUNNING, timeout_s=JOB_TIMEOUT_S)
    assert execution["NodeID"] == node, f"expected the job on {node}, it runs on {execution['NodeID']}"
    return execution


def container_states(engine: docker.DockerClient, execution_id: str) -> list[str]:
    """States (`running`, `exited`...) of the execution's containers, in one engine call.

    Not `containers.list()`: it inspects each container it lists and fails on one removed in between.
    """
    rows = engine.api.containers(all=True, filters={"label": [f"{EXECUTION_ID_LABEL}={execution_id}"]})
    return [str(row.get("State", "")) for row in rows]


def docker_ps(execution_id: str) -> list[str]:
    """`docker ps -a --filter label=bacalhau.org/execution-id=ID`: one `name state` line per container."""
    result = subprocess.run(
        [docker_cli(), "ps", "-a", "--filter", f"label={EXECUTION_ID_LABEL}={execution_id}",
         "--format", "{{.Names}} {{.State}}"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, f"docker ps failed: {result.stderr}"
    return result.stdout.split("\n")[:-1] if result.stdout else []


def wait_container(
    watch: JobWatch, engine: docker.DockerClient, execution_id: str, *, running: bool, timeout_s: float = JOB_TIMEOUT_S
) -> None:
    """Wait until the execution's container runs (`running=True`), or is gone (removed by its node)."""
    def probe() -> bool:
        states = container_states(engine, execution_id)
        return "running" in states if running else not states

    watch.wait_for(
        f"the container of {execution_id} {'to run' if running else 'to be removed'}", probe, timeout_s=timeout_s,
        explain=lambda: f"containers of {execution_id}: {container_states(engine, execution_id)}",
    )


def assert_exactly_one_completed(cluster: Cluster, job_id: str, *, on: str, lost_id: str) -> dict[str, Any]:
    """The job is Completed with one Completed execution, on `on`; `lost_id` is Failed as lost. Read by the CLI."""
    described = parse_output(cluster.ok("job", "describe", job_id, "--output", "json").stdout)
    job = described.get("Job", described)
    executions = cli_executions(cluster, job_id)
    completed = [e for e in executions if state_of(e) == EXEC_COMPLETED]
    assert job["State"]["StateType"] == "Completed", f"job {job_id} is {job['State']}\n{summary(executions)}"
    assert len(completed) == 1, (
        f"expected EXACTLY ONE Completed execution of {job_id}, found {len(completed)}:\n{summary(executions)}"
    )
    assert completed[0]["NodeID"] == on, f"the Completed execution is not the replacement on {on}:\n{summary(executions)}"
    lost = next((e for e in executions if e["ID"] == lost_id), None)
    assert lost is not None, f"the lost execution {lost_id} is gone from the job:\n{summary(executions)}"
    assert state_of(lost) == EXEC_FAILED and NODE_LOST in lost["ComputeState"].get("Message", ""), (
        f"the execution of the lost node should be Failed '{NODE_LOST}', it is {lost['ComputeState']}"
    )
    return completed[0]


def history_messages(watch: JobWatch, job_id: str, execution_id: str) -> list[str]:
    """The messages of the execution's history events."""
    return [
        str((item.get("Event") or {}).get("Message", ""))
        for item in watch.history(job_id)
        if item.get("ExecutionID") == execution_id
    ]


def node_rows(text: str) -> dict[str, str]:
    """{node ID: its line} of `bacalhau node list`."""
    rows: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split()
        if words and words[0] not in ("ID",):
            rows[words[0]] = line
    return rows


# -- labels, placement, spread, results ----------------------------------------------------------------
def test_node_list_shows_every_compute_node_connected_with_its_labels_and_capacity(shared_cluster: Cluster) -> None:
    listed = shared_cluster.ok("node", "list").stdout
    rows = node_rows(listed)
    for name, zone in ZONES.items():
        assert name in rows, f"{name} missing from `node list`:\n{listed}"
        row = rows[name]
        assert "Compute" in row and "CONNECTED" in row and "APPROVED" in row, row
        assert f"zone={zone}" in row, f"label zone={zone} not shown for {name}:\n{listed}"
        # CPU / MEMORY / DISK columns: "<available> / <total>", with a non-zero total.
        capacities = re.findall(r"([0-9.]+)(?: [KMGT]?B)? / ([0-9.]+)", row)
        assert len(capacities) >= 3 and float(capacities[0][1]) > 0, f"no capacity shown for {name}: {row!r}"
    assert "orchestrator" not in rows, f"the orchestrator-only node is not a compute node:\n{listed}"

    nodes = parse_output(shared_cluster.ok("node", "list", "--output", "json").stdout)
    nodes = nodes.get("Nodes", nodes) if isinstance(nodes, dict) else nodes
    by_id = {n["Info"]["NodeID"]: n for n in nodes}
    for name in ZONES:
        info = by_id[name]["Info"]["ComputeNodeInfo"]
        assert info["MaxCapacity"]["CPU"] > 0 and info["MaxCapacity"]["Memory"] > 0, info
        assert "docker" in info["ExecutionEngines"], info


def test_a_constrained_job_runs_on_the_matching_node(shared_cluster: Cluster, busybox_image: str) -> None:
    watch = watch_of(shared_cluster)
    job_id = submit(shared_cluster, "-s", "zone=b", busybox_image, "--", "echo", "placed")
    watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
    executions = cli_executions(shared_cluster, job_id)
    assert [(e["NodeID"], state_of(e)) for e in executions] == [("node-1", EXEC_COMPLETED)], summary(executions)


def test_count_3_runs_one_partition_per_node_and_job_get_fetches_each_nodes_results(
    shared_cluster: Cluster, busybox_image: str, tmp_path: Path
) -> None:
    watch = watch_of(shared_cluster)
    script = "echo partition=$BACALHAU_PARTITION_INDEX execution=$BACALHAU_EXECUTION_ID"
    job_id = submit(shared_cluster, "--count", "3", "-p", "local", busybox_image, "--", "sh", "-c", script)
    watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
    executions = cli_executions(shared_cluster, job_id)
    assert all(state_of(e) == EXEC_COMPLETED for e in executions) and len(executions) == 3, summary(executions)
    assert sorted(e["NodeID"] for e in executions) == sorted(ZONES), f"not one per node:\n{summary(executions)}"
    assert sorted(e["PartitionIndex"] for e in executions) == [0, 1, 2], summary(executions)

    out = tmp_path / "results"
    shared_cluster.ok("job", "get", job_id, "--raw", "--output-dir", str(out))
    stdouts = sorted((out / "raw").rglob("stdout"))
    assert len(stdouts) == 3, f"expected one result per execution under {out / 'raw'}: {stdouts}"
    seen: dict[str, int] = {}
    for path in stdouts:
        match = re.search(r"partition=(\d+) execution=(e-\S+)", path.read_text())
        assert match, f"{path}: {path.read_text()!r}"
        seen[match.group(2)] = int(match.group(1))
    assert seen == {e["ID"]: e["PartitionIndex"] for e in executions}, (
        f"each execution's stdout should carry its own partition index: {seen}\n{summary(executions)}"
    )
    # The local publisher of each compute node served its own execution's results.
    urls = {
        e["NodeID"]: (e.get("PublishedResult") or {}).get("Params", {}).get("URL", "") for e in executions
    }
    assert len(set(urls.values())) == 3 and all(urls.values()), f"results not published per node: {urls}"


# -- stop reaches a remote node ------------------------------------------------------------------------
def test_job_stop_cancels_the_container_on_the_remote_compute_node(
    shared_cluster: Cluster, docker_engine: docker.DockerClient, busybox_image: str
) -> None:
    watch = watch_of(shared_cluster)
    job_id = submit(shared_cluster, "-s", "zone=c", busybox_image, "--", "sleep", "600")
    execution = wait_running_on(watch, job_id, "node-2")
    wait_container(watch, docker_engine, execution["ID"], running=True)

    shared_cluster.ok("job", "stop", job_id)
    watch.wait_state(job_id, "Stopped", timeout_s=JOB_TIMEOUT_S)
    cancelled = watch.wait_execution(job_id, EXEC_CANCELLED, timeout_s=JOB_TIMEOUT_S)
    assert cancelled["ID"] == execution["ID"], cancelled
    # What the user of node-2's host sees: the container is gone.
    watch.wait_for(
        f"`docker ps -a` on node-2's engine to show no container of {execution['ID']}",
        lambda: not docker_ps(execution["ID"]),
        timeout_s=JOB_TIMEOUT_S,
        explain=lambda: f"docker ps: {docker_ps(execution['ID'])}",
    )


# -- kill -9 of a compute node -------------------------------------------------------------------------
def test_a_killed_compute_node_is_replaced_and_its_return_counts_nothing_twice(
    make_cluster: ClusterFactory, docker_engine: docker.DockerClient, busybox_image: str
) -> None:
    cluster = make_cluster().start()
    watch = watch_of(cluster)
    killed = add_sleeper(cluster, "node-0", VICTIM_SLEEP_S)
    job_id = submit_sleep(cluster, busybox_image)
    first = wait_running_on(watch, job_id, "node-0")
    add_sleeper(cluster, "node-1", REPLACEMENT_SLEEP_S)

    killed.kill9()
    cluster.wait_node("node-0", "DISCONNECTED")
    watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
    assert_exactly_one_completed(cluster, job_id, on="node-1", lost_id=first["ID"])

    killed.restart()
    cluster.wait_node("node-0", "CONNECTED")
    # The restarted node removes the container its previous run left (still sleeping) and fails that
    # execution locally: nothing of it may change the job's outcome.
    wait_container(watch, docker_engine, first["ID"], running=False)
    assert_exactly_one_completed(cluster, job_id, on="node-1", lost_id=first["ID"])


# -- a compute node stopped gracefully (SIGTERM) ----------------------------------------------------------
def test_a_compute_node_stopped_gracefully_says_goodbye_and_its_work_moves_at_once(
    make_cluster: ClusterFactory, docker_engine: docker.DockerClient, busybox_image: str
) -> None:
    cluster = make_cluster().start()
    watch = watch_of(cluster)
    leaving = add_sleeper(cluster, "node-0", VICTIM_SLEEP_S)
    job_id = submit_sleep(cluster, busybox_image)
    first = wait_running_on(watch, job_id, "node-0")
    add_sleeper(cluster, "node-1", REPLACEMENT_SLEEP_S)

    assert leaving.stop() == 0, f"node-0 did not exit cleanly on SIGTERM\n{leaving.log_excerpt()}"
    # Its shutdown notice disconnects it at once (no heartbeat timeout), and it took its container down.
    state = cluster.wait_node("node-0", "DISCONNECTED", timeout_s=5)
    assert state["ConnectionState"]["LastError"] == "graceful shutdown", state["ConnectionState"]
    assert not container_states(docker_engine, first["ID"]), "node-0 left its container running"
    watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
    executions = cli_executions(cluster, job_id)
    completed = [e for e in executions if state_of(e) == EXEC_COMPLETED]
    assert [e["NodeID"] for e in completed] == ["node-1"], summary(executions)
    interrupted = next(e for e in executions if e["ID"] == first["ID"])
    assert state_of(interrupted) == EXEC_FAILED, summary(executions)
    errors = [line for line in cluster.orchestrator.log_text().splitlines() if " ERROR " in line or "Traceback" in line]
    assert not errors, "the orchestrator logged errors on a graceful leave:\n" + "\n".join(errors) + "\n" + cluster.describe()


# -- a frozen compute node (SIGSTOP past the disconnect timeout) ---------------------------------------
def test_a_frozen_compute_node_is_replaced_and_told_to_cancel_when_it_thaws(
    make_cluster: ClusterFactory, docker_engine: docker.DockerClient, busybox_image: str
) -> None:
    cluster = make_cluster().start()
    watch = watch_of(cluster)
    frozen = add_sleeper(cluster, "node-0", VICTIM_SLEEP_S)
    job_id = submit_sleep(cluster, busybox_image)
    first = wait_running_on(watch, job_id, "node-0")
    wait_container(watch, docker_engine, first["ID"], running=True)
    add_sleeper(cluster, "node-1", REPLACEMENT_SLEEP_S)

    frozen.freeze()
    cluster.wait_node("node-0", "DISCONNECTED")
    watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
    assert_exactly_one_completed(cluster, job_id, on="node-1", lost_id=first["ID"])
    # Frozen, the node cannot touch its container: it still sleeps in dockerd.
    assert "running" in container_states(docker_engine, first["ID"]), (
        f"the frozen node's container should still run\n{frozen.log_excerpt()}"
    )

    frozen.thaw()
    cluster.wait_node("node-0", "CONNECTED")
    # It reconnects holding the replaced execution and is told to cancel it: its container goes long
    # before its sleep would have ended (VICTIM_SLEEP_S after it started).
    wait_container(watch, docker_engine, first["ID"], running=False, timeout_s=30)
    assert_exactly_one_completed(cluster, job_id, on="node-1", lost_id=first["ID"])


# -- a compute node cut off the network (network namespace + veth pair) --------------------------------
@pytest.fixture
def make_netns_cluster(
    bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., tuple[Cluster, NetnsLink]]]:
    """`make_netns_cluster(**Cluster kwargs)` -> (cluster, link): the orchestrator's NATS listens on the
    root-namespace end of a fresh veth pair; put a compute node behind it with `netns=link.netns`.
    Teardown stops the cluster first, then removes the link and the namespace."""
    NetnsLink.require()
    made: list[tuple[Cluster, NetnsLink]] = []

    def make(**kwargs: Any) -> tuple[Cluster, NetnsLink]:
        index = len(made)
        link = NetnsLink(f"bcl{os.getpid() % 100000}{index}", subnet=worker_subnet(index, first=100, span=150))
        cluster = Cluster(bacalhau_bin, tmp_path_factory.mktemp("cluster"), nats_host=link.host_ip, **kwargs)
        made.append((cluster, link))
        link.create()
        return cluster.start(), link

    try:
        yield make
    finally:
        for cluster, link in made:
            try:
                cluster.close()
            finally:
                link.destroy()


def test_a_partitioned_compute_node_is_replaced_and_its_late_result_is_discarded(
    make_netns_cluster: Callable[..., tuple[Cluster, NetnsLink]],
    docker_engine: docker.DockerClient,
    busybox_image: str,
) -> None:
    cluster, link = make_netns_cluster()
    watch = watch_of(cluster)
    # node-0 reaches the orchestrator only through the link; node-1 (root namespace) reaches it locally.
    cut = add_sleeper(cluster, "node-0", 6, netns=link.netns)
    job_id = submit_sleep(cluster, busybox_image)
    first = wait_running_on(watch, job_id, "node-0")
    add_sleeper(cluster, "node-1", REPLACEMENT_SLEEP_S)

    link.down()
    cluster.wait_node("node-0", "DISCONNECTED")
    watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
    assert_exactly_one_completed(cluster, job_id, on="node-1", lost_id=first["ID"])
    # Cut off, node-0 keeps working: its task ends and it removes the container, then publishes and
    # keeps the RunResult for when the orchestrator is reachable again.
    wait_container(watch, docker_engine, first["ID"], running=False)
    assert cut.running, f"node-0 should keep running while cut off\n{cut.log_excerpt()}"

    link.up()
    cluster.wait_node("node-0", "CONNECTED")
    watch.wait_for(
        f"node-0's late result for {first['ID']} to be discarded with a history note",
        lambda: any(LATE_RESULT in m for m in history_messages(watch, job_id, first["ID"])),
        timeout_s=30,
        explain=lambda: f"history of {first['ID']}: {history_messages(watch, job_id, first['ID'])}",
    )
    assert_exactly_one_completed(cluster, job_id, on="node-1", lost_id=first["ID"])


def test_a_network_blip_shorter_than_the_disconnect_timeout_loses_no_result(
    make_netns_cluster: Callable[..., tuple[Cluster, NetnsLink]],
    docker_engine: docker.DockerClient,
    busybox_image: str,
) -> None:
    # The orchestrator waits 20 s before giving a silent node up; the node itself gives the link up
    # after 5 unanswered heartbeats (2.5 s) and handshakes again when it can.
    cluster, link = make_netns_cluster(orchestrator_config=["Orchestrator.NodeManager.DisconnectTimeout=20s"])
    watch = watch_of(cluster)
    cut = add_sleeper(cluster, "node-0", 4, netns=link.netns)
    job_id = submit_sleep(cluster, busybox_image)
    first = wait_running_on(watch, job_id, "node-0")

    log_mark = len(cut.log_text())
    link.down()
    # The task ends during the blip, and the node notices the link is gone.
    wait_container(watch, docker_engine, first["ID"], running=False)
    watch.wait_for("node-0 to give the link up", lambda: "reconnecting" in cut.log_text()[log_mark:], timeout_s=30)
    link.up()
    watch.wait_for(
        "node-0 to handshake again",
        lambda: "connected to the orchestrator" in cut.log_text()[log_mark:],
        timeout_s=30,
    )
    watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
    executions = cli_executions(cluster, job_id)
    assert [(e["ID"], state_of(e)) for e in executions] == [(first["ID"], EXEC_COMPLETED)], (
        "a blip shorter than the disconnect timeout must not lose the result produced during it (the node's "
        "outbox delivers it after the re-handshake); expected the one execution to complete, found:\n"
        f"{summary(executions)}\nhistory of {first['ID']}: {history_messages(watch, job_id, first['ID'])}"
    )


# -- the orchestrator restarts mid-job -----------------------------------------------------------------
def test_a_result_produced_while_the_orchestrator_was_down_is_delivered_after_its_restart(
    make_cluster: ClusterFactory, docker_engine: docker.DockerClient, busybox_image: str
) -> None:
    cluster = make_cluster().start()
    watch = watch_of(cluster)
    add_sleeper(cluster, "node-0", 5)
    job_id = submit_sleep(cluster, busybox_image, "-p", "local")
    first = wait_running_on(watch, job_id, "node-0")
    history_before = [str((i.get("Event") or {}).get("Message", "")) for i in watch.history(job_id)]

    cluster.orchestrator.kill9()
    # The task ends while nobody listens: the compute node must keep its RunResult until delivered.
    wait_container(watch, docker_engine, first["ID"], running=False)
    cluster.orchestrator.restart()

    cluster.wait_node("node-0", "CONNECTED")
    watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
    executions = cli_executions(cluster, job_id)
    assert [(e["ID"], state_of(e)) for e in executions] == [(first["ID"], EXEC_COMPLETED)], (
        "expected the one execution started before the restart to complete with the result its node kept "
        f"(no re-run):\n{summary(executions)}\nhistory of {first['ID']}: {history_messages(watch, job_id, first['ID'])}"
    )
    messages = [str((i.get("Event") or {}).get("Message", "")) for i in watch.history(job_id)]
    assert messages[: len(history_before)] == history_before, (
        f"history lost over the restart:\nbefore {history_before}\nafter {messages}"
    )
    logs = cluster.ok("job", "logs", job_id).stdout
    assert f"finished {first['ID']}" in logs, logs

# -- a compute node that starts first ------------------------------------------------------------------
def test_a_compute_node_started_before_the_orchestrator_joins_it(
    make_cluster: ClusterFactory, busybox_image: str
) -> None:
    cluster = make_cluster()
    cluster.add_compute("early", labels={"zone": "early"}, wait_connected=False)
    cluster.start()
    cluster.wait_node("early", "CONNECTED", timeout_s=30)
    watch = watch_of(cluster)
    job_id = submit(cluster, busybox_image, "--", "echo", "hello")
    watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
    assert [e["NodeID"] for e in cli_executions(cluster, job_id)] == ["early"]


# -- node reject ---------------------------------------------------------------------------------------
def test_a_rejected_node_loses_its_work_and_stays_out(make_cluster: ClusterFactory, busybox_image: str) -> None:
    cluster = make_cluster().start()
    watch = watch_of(cluster)
    add_sleeper(cluster, "node-0", VICTIM_SLEEP_S)
    job_id = submit_sleep(cluster, busybox_image)
    first = wait_running_on(watch, job_id, "node-0")
    add_sleeper(cluster, "node-1", REPLACEMENT_SLEEP_S)

    log_mark = len(cluster.orchestrator.log_text())
    assert cluster.ok("node", "reject", "node-0").stdout.strip() == "Ok"
    cluster.wait_node("node-0", "DISCONNECTED", membership="REJECTED")
    watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
    assert_exactly_one_completed(cluster, job_id, on="node-1", lost_id=first["ID"])

    # The rejected node keeps knocking (heartbeat -> HandshakeRequired -> handshake) and is refused.
    watch.wait_for(
        "node-0's handshakes to be refused (twice)",
        lambda: len(re.findall(r"node node-0 refused", cluster.orchestrator.log_text()[log_mark:])) >= 2,
        timeout_s=30,
    )
    rows = node_rows(cluster.ok("node", "list").stdout)
    assert "REJECTED" in rows["node-0"] and "DISCONNECTED" in rows["node-0"], rows["node-0"]
    # No new work reaches it: two partitions cannot be placed on the one node left.
    result = cluster.cli("docker", "run", "--count", "2", busybox_image, "--", "echo", "x")
    assert result.returncode != 0, cluster.orchestrator.describe_result(result)
    assert "not enough nodes" in result.stdout + result.stderr, result.stdout + result.stderr


# -- Count=2 with one node: queued until a second node joins -------------------------------------------
def test_a_job_needing_two_nodes_fails_without_queue_timeout_and_waits_with_one(
    make_cluster: ClusterFactory, busybox_image: str
) -> None:
    cluster = make_cluster().start()
    watch = watch_of(cluster)
    cluster.add_compute("node-0")

    # QueueTimeout 0 (the default), as in Bacalhau: not enough nodes fails the job at once.
    failed = submit(cluster, "--count", "2", busybox_image, "--", "echo", "x")
    job = watch.wait_state(failed, "Failed", timeout_s=JOB_TIMEOUT_S)
    assert "not enough nodes" in job["State"]["Message"] and "requested: 2, available: 1" in job["State"]["Message"], (
        job["State"]
    )

    # With a queue timeout the job waits (Queued) and runs once a second node joins.
    queued = submit(cluster, "--count", "2", "--queue-timeout", "120", busybox_image, "--", "echo", "x")
    job = watch.wait_state(queued, "Queued", timeout_s=JOB_TIMEOUT_S)
    assert "not enough nodes" in job["State"]["Message"], job["State"]
    assert not watch.executions(queued), f"nothing runs while queued:\n{summary(watch.executions(queued))}"
    cluster.add_compute("node-1")
    watch.wait_state(queued, "Completed", timeout_s=JOB_TIMEOUT_S)
    executions = cli_executions(cluster, queued)
    assert sorted((e["NodeID"], state_of(e)) for e in executions) == [
        ("node-0", EXEC_COMPLETED),
        ("node-1", EXEC_COMPLETED),
    ], summary(executions)



# -- node delete -----------------------------------------------------------------------------------------
def test_a_deleted_live_node_registers_again_and_takes_new_work(
    make_cluster: ClusterFactory, busybox_image: str
) -> None:
    """`node delete` of the only connected node: its next heartbeat is answered HandshakeRequired, it
    handshakes again as a new registration, and the next job runs on it (no restart needed). A job
    before the delete makes both sides' message numbering non-zero, which the new registration resets."""
    cluster = make_cluster().start()
    watch = watch_of(cluster)
    cluster.add_compute("node-0")
    before = submit(cluster, busybox_image, "--", "echo", "before delete")
    watch.wait_state(before, "Completed", timeout_s=JOB_TIMEOUT_S)
    first = cluster.nodes()["node-0"]["ConnectionState"]["ConnectedSince"]

    assert cluster.ok("node", "delete", "node-0").stdout.strip() == "Ok"
    # Back within a few heartbeat intervals (0.5 s each), as a new registration.
    state = cluster.wait_node("node-0", "CONNECTED", timeout_s=10)
    assert state["ConnectionState"]["ConnectedSince"] != first, state["ConnectionState"]
    assert state["Membership"] == "APPROVED", state
    assert "CONNECTED" in node_rows(cluster.ok("node", "list").stdout)["node-0"]

    for text in ("after delete", "and again"):
        job_id = submit(cluster, busybox_image, "--", "echo", text)
        watch.wait_state(job_id, "Completed", timeout_s=JOB_TIMEOUT_S)
        assert [e["NodeID"] for e in cli_executions(cluster, job_id)] == ["node-0"]
        assert text in cluster.ok("job", "logs", job_id).stdout
