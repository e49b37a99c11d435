"""`bacalhau devstack`: a real cluster of `bacalhau serve` processes on one machine, through the real CLI.

Each test runs the devstack in its own session with its own TMPDIR (where Bacalhau's devstack puts its
temp repo and its `bacalhau-devstack.port` / `.pid` files), waits for the printed exports, uses the
cluster through the CLI, stops it with a signal and checks that nothing it started is left: no node
process (found by scanning /proc for the test's own paths), no run files, no temp repo.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from scenario_jobs import EXEC_COMPLETED, JobWatch, items_of, one_job_id, parse_output, wasm_job, write_job_file

pytestmark = pytest.mark.scenario

READY_TIMEOUT_S = 120.0
EXIT_TIMEOUT_S = 60.0
POLL_S = 0.1
PORT_RE = re.compile(r"^export BACALHAU_API_PORT=(\d+)$", re.MULTILINE)


def processes_mentioning(text: str, *, exclude: int | None = None) -> dict[int, str]:
    """{pid: command line} of every live process whose command line contains `text`."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (exclude, os.getpid()):
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:  # zombies have an empty command line, so only live processes match
            found[int(entry.name)] = cmdline
    return found


class DevstackRun:
    """`bacalhau devstack ...` in its own session and TMPDIR, its output (stdout and stderr) in a file."""

    def __init__(self, binary: Path, args: list[str], *, root: Path) -> None:
        self.tmpdir = root / "tmp"
        self.tmpdir.mkdir()
        self.log_path = root / "devstack.out"
        self.argv = [str(binary), "devstack", *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACALHAU_") and k != "LOG_LEVEL"}
        env.pop("IGNORE_PID_AND_PORT_FILES", None)
        self.env = {**env, "TMPDIR": str(self.tmpdir), "BACALHAU_DIR": str(root / "home"), "PYTHONUNBUFFERED": "1"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.api_port = 0

    def start(self) -> DevstackRun:
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         env=self.env, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def node_logs(self) -> str:
        """The tail of every node log under TMPDIR or the stack repo, for failure messages."""
        parts = []
        for log in sorted(self.tmpdir.rglob("serve.log")):
            parts.append(f"----- {log} -----\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:]))
        return "\n".join(parts)

    def describe(self) -> str:
        return f"----- devstack output -----\n{self.output()}\n{self.node_logs()}"

    def wait_ready(self) -> int:
        """Wait for the printed `export BACALHAU_API_PORT=...`; return that port."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            match = PORT_RE.search(self.output())
            if match:
                self.api_port = int(match.group(1))
                return self.api_port
            assert self.proc is not None and self.proc.poll() is None, (
                f"devstack exited with {self.proc and self.proc.returncode} before it was ready\n{self.describe()}"
            )
            time.sleep(POLL_S)  # poll interval, bounded by the deadline
        raise AssertionError(f"devstack printed no exports within {READY_TIMEOUT_S:.0f}s\n{self.describe()}")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the CLI against the devstack the way its printed exports say (on loopback)."""
        env = {**self.env, "BACALHAU_API_HOST": "127.0.0.1", "BACALHAU_API_PORT": str(self.api_port)}
        result = subprocess.run([self.argv[0], *args], capture_output=True, text=True, env=env, timeout=60,
                                stdin=subprocess.DEVNULL, check=False)
        assert result.returncode == 0, f"bacalhau {' '.join(args)}: {result.stdout}{result.stderr}\n{self.describe()}"
        return result

    def signal_and_wait(self, sig: signal.Signals) -> int:
        """Send `sig` as a terminal would (to the devstack's process group) and wait for it to exit."""
        os.killpg(self.pid, sig)
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"devstack did not exit within {EXIT_TIMEOUT_S:.0f}s of {sig.name}\n{self.describe()}") from None

    def wait_exit(self) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=EXIT_TIMEOUT_S)

    def leftovers(self, marker: Path) -> dict[int, str]:
        """Processes still mentioning `marker` (a path only this test's nodes use), polled briefly."""
        deadline = time.monotonic() + 10.0
        found = processes_mentioning(str(marker), exclude=self.pid)
        while found and time.monotonic() < deadline:
            time.sleep(POLL_S)  # a node's own children may take a moment after it was reaped
            found = processes_mentioning(str(marker), exclude=self.pid)
        return found

    def kill_everything(self, marker: Path) -> None:
        """Teardown after a failure: the devstack and any process of this test's nodes, by SIGKILL."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=EXIT_TIMEOUT_S)
        for pid in processes_mentioning(str(marker), exclude=self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def devstack_run(bacalhau_bin: Path, tmp_path: Path) -> Iterator[list[DevstackRun]]:
    """Runs created by the test (append to the list); killed, with their nodes, at teardown."""
    runs: list[DevstackRun] = []
    try:
        yield runs
    finally:
        for run in runs:
            run.kill_everything(tmp_path)


def printed_api_ports(output: str) -> dict[str, int]:
    """{node name: API port} from the node table the devstack prints (Name, Role, API Port, ...)."""
    rows = (line.split() for line in output.splitlines())
    return {row[0]: int(row[2]) for row in rows if len(row) >= 3 and row[0].startswith("node-") and row[2].isdigit()}


def node_states(run: DevstackRun) -> dict[str, dict[str, str]]:
    """{node id: {type, status}} from `bacalhau node list --output json`."""
    nodes = items_of(parse_output(run.cli("node", "list", "--output", "json").stdout))
    return {
        n["Info"]["NodeID"]: {"type": n["Info"]["NodeType"], "status": n["ConnectionState"]["Status"]} for n in nodes
    }


def test_devstack_runs_a_count_2_job_on_two_compute_nodes_and_leaves_nothing_behind(
    devstack_run: list[DevstackRun], bacalhau_bin: Path, wasm_modules: dict[str, Path], tmp_path: Path,
) -> None:
    run = DevstackRun(bacalhau_bin, ["--computes", "2", "--random-ports"], root=tmp_path)
    devstack_run.append(run)
    api_port = run.start().wait_ready()

    output = run.output()
    for line in ("Devstack is ready!", "No. of requester only nodes: 1", "No. of compute only nodes: 2",
                 "No. of hybrid nodes: 0", "export BACALHAU_API_HOST=0.0.0.0"):
        assert line in output, output
    for name in ("node-0", "node-1", "node-2"):
        assert re.search(rf"^{name} \((orchestrator|compute)\) is up", output, re.MULTILINE), output
    # Bacalhau's run files: the first node's API port and the devstack's pid.
    port_file, pid_file = run.tmpdir / "bacalhau-devstack.port", run.tmpdir / "bacalhau-devstack.pid"
    assert port_file.read_text() == str(api_port) and pid_file.read_text() == str(run.pid)
    (repo,) = [p for p in run.tmpdir.iterdir() if p.is_dir() and p.name.startswith("bacalhau-devstack")]
    assert sorted(p.name for p in repo.iterdir()) == ["node-0", "node-1", "node-2"]
    assert all((repo / n / "serve.log").stat().st_size > 0 for n in ("node-0", "node-1", "node-2"))

    states = node_states(run)
    computes = {name: s for name, s in states.items() if s["type"] == "Compute"}
    assert computes == {name: {"type": "Compute", "status": "CONNECTED"} for name in ("node-1", "node-2")}, states
    assert set(states) - set(computes) <= {"node-0"}, states  # the orchestrator, if it lists itself

    # Every node serves its API on its own printed port; a compute node's answers for itself.
    ports = printed_api_ports(output)
    assert set(ports) == {"node-0", "node-1", "node-2"} and len(set(ports.values())) == 3, output
    assert ports["node-0"] == api_port, output
    for name in ("node-1", "node-2"):
        info = parse_output(run.cli("agent", "node", "--output", "json", "--api-port", str(ports[name])).stdout)
        assert (info["NodeID"], info["NodeType"], info["Labels"]["env"]) == (name, "Compute", "devstack"), info

    job_file = write_job_file(tmp_path, wasm_job(wasm_modules["hello"], count=2, name="devstack-count-2"))
    job_id = one_job_id(run.cli("job", "run", str(job_file), "--wait=false", "--id-only").stdout)
    watch = JobWatch(f"http://127.0.0.1:{api_port}", run.describe)
    watch.wait_state(job_id, "Completed", timeout_s=120)
    executions = watch.executions(job_id)
    completed = [e for e in executions if e["ComputeState"]["StateType"] == EXEC_COMPLETED]
    assert len(completed) == 2, executions
    assert {e["NodeID"] for e in completed} == {"node-1", "node-2"}, executions

    node_pids = processes_mentioning(str(repo), exclude=run.pid)
    assert len([c for c in node_pids.values() if " serve " in c]) == 3, node_pids
    assert any("nats-server" in c for c in node_pids.values()), node_pids

    assert run.signal_and_wait(signal.SIGINT) == 0, run.describe()
    assert "Shutting down devstack" in run.output()
    assert run.leftovers(run.tmpdir) == {}
    assert not set(node_pids) & set(processes_mentioning(str(repo))), "every node process is gone"
    assert list(run.tmpdir.iterdir()) == [], "the temp repo and the run files are removed"


def test_devstack_with_a_hybrid_keeps_its_stack_repo_and_stops_on_sigterm(
    devstack_run: list[DevstackRun], bacalhau_bin: Path, tmp_path: Path,
) -> None:
    repo = tmp_path / "stack"
    run = DevstackRun(
        bacalhau_bin,
        ["--orchestrators", "0", "--hybrids", "1", "--compute-nodes", "1", "--random-ports", "--stack-repo", str(repo)],
        root=tmp_path,
    )
    devstack_run.append(run)
    run.start().wait_ready()
    assert "No. of hybrid nodes: 1" in run.output() and "No. of compute only nodes: 1" in run.output()
    states = node_states(run)
    assert states == {"node-0": {"type": "Compute", "status": "CONNECTED"},
                      "node-1": {"type": "Compute", "status": "CONNECTED"}}, states

    assert run.signal_and_wait(signal.SIGTERM) == 0, run.describe()
    assert run.leftovers(repo) == {}
    assert list(run.tmpdir.iterdir()) == [], "the run files are removed"
    # --stack-repo is the user's: kept, with each node's data and log.
    assert (repo / "node-0" / "serve.log").is_file() and (repo / "node-1" / "serve.log").is_file()


def test_a_node_dying_during_startup_stops_the_others_and_exits_1_with_its_log(
    devstack_run: list[DevstackRun], bacalhau_bin: Path, tmp_path: Path,
) -> None:
    # A certificate that does not exist: the loader accepts the setting, the orchestrator cannot start.
    missing = tmp_path / "missing"
    run = DevstackRun(
        bacalhau_bin,
        ["--computes", "1", "--random-ports",
         "-c", f"Orchestrator.TLS.ServerCert={missing}/cert.pem", "-c", f"Orchestrator.TLS.ServerKey={missing}/key.pem"],
        root=tmp_path,
    )
    devstack_run.append(run)
    assert run.start().wait_exit() == 1, run.describe()
    output = run.output()
    assert "Error: node node-0 (orchestrator) exited with code 1 before the devstack was ready" in output, output
    assert re.search(r"----- node-0: last \d+ lines of .*node-0/serve\.log -----", output), output
    assert "Devstack is ready!" not in output
    assert run.leftovers(run.tmpdir) == {}
    assert list(run.tmpdir.iterdir()) == [], "the temp repo is removed and no run file was written"
