"""The job files in examples/jobs/, written in Bacalhau's format, checked with the real CLI against a real
`bacalhau serve`: each one validates, runs (or fails exactly as it intends) and does what its comments say;
and wrong files are refused with the exact field they get wrong.

The node is configured as the files need: labels `zone=eu`, `tier=gold` (constraints.yaml) and an
allow-listed data folder, read-only `in` and read-write `out` (local-dirs.yaml). The docker files name
`busybox:1.36`; the tests run a copy naming the locally built test image, so no public registry is used.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from scenario_jobs import EXEC_COMPLETED, JobWatch, one_job_id, parse_output

from serve_node import BacalhauNode, NodePool

pytestmark = pytest.mark.scenario

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "examples" / "jobs"
WAT = JOBS / "wat"
EXAMPLE_IMAGE = "busybox:1.36"
WASM_URL_RE = re.compile(r"data:application/wasm;base64,([A-Za-z0-9+/=]+)")

DOCKER_FILES = ("docker.yaml", "local-dirs.yaml")
TEMPLATED_FILES = ("local-dirs.yaml",)
# file -> lines its stdout must contain (in this order)
WASM_STDOUT = {
    "wasm.yaml": ["Lisbon", "Porto", "CITY=Faro"],
    "wasm-imports.yaml": ["2+3=5"],
    "wasm-relative.yaml": ["relative", "targets"],
    "type-names.yaml": ["greetings from the greet export"],
    "lowercase-keys.yaml": ["lower-case"],
    "wasm.json": ["from", "json"],
}
EVERY_FILE = (
    *WASM_STDOUT,
    *DOCKER_FILES,
    "noop-ops.yaml",
    "constraints.yaml",
    "constraints-unmatched.yaml",
    "wasm-timeout.yaml",
)


@dataclass(frozen=True)
class FilesNode:
    node: BacalhauNode
    watch: JobWatch
    data: Path  # holds in/ (allow-listed read-only) and out/ (allow-listed read-write)


@pytest.fixture(scope="module")
def files_node(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FilesNode]:
    """One node configured as the example files need, shared by the module's tests."""
    data = tmp_path_factory.mktemp("job-files-data")
    (data / "in").mkdir()
    (data / "out").mkdir()
    (data / "in" / "words.txt").write_text("one two three\n")
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        node = pool(
            extra_config=[
                "Labels.zone=eu",
                "Labels.tier=gold",
                f"Compute.AllowListedLocalPaths={data / 'in'},{data / 'out'}:rw",
            ]
        )
        yield FilesNode(node, JobWatch(node.url, node.log_excerpt), data)
    finally:
        pool.close()


@pytest.fixture(scope="module")
def wasm_runs(files_node: FilesNode) -> Callable[[str], tuple[str, str]]:
    """`wasm_runs(name)` runs a wasm example once per module (a named job run twice is an update,
    refused as "no changes detected"); returns (job ID, CLI output)."""
    done: dict[str, tuple[str, str]] = {}

    def run(name: str) -> tuple[str, str]:
        if name not in done:
            done[name] = run_file(files_node, JOBS / name)
        return done[name]

    return run


def template_args(name: str, files: FilesNode) -> list[str]:
    """`-V DIR=...` for the templated file, nothing for the others."""
    return ["-V", f"DIR={files.data}"] if name in TEMPLATED_FILES else []


def local_copy(name: str, tmp_path: Path, image: str) -> Path:
    """A copy of a docker example naming `image` instead of the public one."""
    text = (JOBS / name).read_text()
    assert EXAMPLE_IMAGE in text, f"{name} no longer names {EXAMPLE_IMAGE}"
    path = tmp_path / name
    path.write_text(text.replace(EXAMPLE_IMAGE, image))
    return path


def run_file(files: FilesNode, path: Path, *extra: str, succeed: bool = True) -> tuple[str, str]:
    """`bacalhau job run --wait FILE`; return (job ID, everything the CLI printed)."""
    args = ("job", "run", "--wait", *extra, str(path))
    result = files.node.ok(*args, timeout=120) if succeed else files.node.fails(*args, timeout=120)
    out = result.stdout + result.stderr
    return one_job_id(out), out


def describe(files: FilesNode, job_id: str, namespace: str = "default") -> dict[str, Any]:
    """`bacalhau job describe --output json`: {Job, History, Executions}."""
    result = files.node.ok("job", "describe", "--namespace", namespace, "--output", "json", job_id)
    parsed: dict[str, Any] = parse_output(result.stdout)
    return parsed


def executions_of(described: dict[str, Any]) -> list[dict[str, Any]]:
    execs = described["Executions"]
    return list((execs.get("Items") if isinstance(execs, dict) else execs) or [])


def assert_lines_in_order(text: str, expected: list[str], context: str) -> None:
    lines = text.splitlines()
    positions = []
    for want in expected:
        assert want in lines, f"line {want!r} missing from stdout {text!r}\n{context}"
        positions.append(lines.index(want))
    assert positions == sorted(positions), f"lines {expected} out of order in {text!r}\n{context}"


# -- the files themselves ---------------------------------------------------------------------------
def test_every_example_file_is_covered_here_and_listed_in_the_readme() -> None:
    on_disk = {p.name for p in JOBS.iterdir() if p.is_file()}
    assert on_disk == set(EVERY_FILE), f"untested: {on_disk - set(EVERY_FILE)}, missing: {set(EVERY_FILE) - on_disk}"
    readme = (ROOT / "README.md").read_text()
    assert not [name for name in EVERY_FILE if name not in readme], "README.md must list every examples/jobs file"


def test_embedded_modules_are_the_compiled_wat_sources() -> None:
    compiled = {p.name: bytes(wasmtime.wat2wasm(p.read_text())) for p in sorted(WAT.glob("*.wat"))}
    used: set[str] = set()
    for path in sorted(JOBS.iterdir()):
        if not path.is_file():
            continue
        for payload in WASM_URL_RE.findall(path.read_text()):
            module = base64.b64decode(payload)
            names = [name for name, data in compiled.items() if data == module]
            assert names, f"{path.name} embeds a module that no examples/jobs/wat/*.wat compiles to (stale?)"
            used.update(names)
    assert used == set(compiled), f"WAT sources not used by any job file: {set(compiled) - used}"


@pytest.mark.parametrize("name", EVERY_FILE)
def test_job_validate_accepts_every_example(files_node: FilesNode, name: str) -> None:
    result = files_node.node.ok("job", "validate", *template_args(name, files_node), str(JOBS / name))
    assert "valid" in result.stdout.lower(), files_node.node.describe_result(result)


def test_the_templated_file_needs_its_variable(files_node: FilesNode) -> None:
    result = files_node.node.fails("job", "validate", str(JOBS / "local-dirs.yaml"))
    assert 'map has no entry for key "DIR"' in result.stderr, files_node.node.describe_result(result)


# -- running them -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(WASM_STDOUT))
def test_wasm_examples_complete_with_their_output(
    files_node: FilesNode, wasm_runs: Callable[[str], tuple[str, str]], name: str
) -> None:
    job_id, out = wasm_runs(name)
    namespace = "examples" if name == "wasm.yaml" else "default"
    described = describe(files_node, job_id, namespace)
    assert described["Job"]["State"]["StateType"] == "Completed", out
    (execution,) = executions_of(described)
    assert execution["ComputeState"]["StateType"] == EXEC_COMPLETED, execution
    run_output = execution["RunOutput"]
    assert run_output["ExitCode"] == 0, run_output
    assert_lines_in_order(run_output["Stdout"], WASM_STDOUT[name], out)
    logs = files_node.node.ok("job", "logs", "--namespace", namespace, job_id)
    assert_lines_in_order(logs.stdout, WASM_STDOUT[name], files_node.node.describe_result(logs))


def test_wasm_yaml_job_fields_are_kept(files_node: FilesNode, wasm_runs: Callable[[str], tuple[str, str]]) -> None:
    job_id, _ = wasm_runs("wasm.yaml")
    job = describe(files_node, job_id, "examples")["Job"]
    assert (job["Name"], job["Namespace"], job["Type"], job["Count"], job["Priority"]) == (
        "wasm-example",
        "examples",
        "batch",
        1,
        1,
    ), job
    assert job["Labels"] == {"project": "examples", "engine": "wasm"}, job["Labels"]
    assert job["Meta"]["owner"] == "data-team", job["Meta"]
    task = job["Tasks"][0]
    assert task["Engine"]["Params"]["Entrypoint"] == "_start", task["Engine"]
    assert task["Env"] == {"CITY": "Faro"}, task
    assert task["Resources"]["CPU"] == "0.5" and task["Resources"]["Memory"].lower() == "64mb", task["Resources"]
    assert task["Network"]["Type"] == "None", task["Network"]
    assert task["Timeouts"]["ExecutionTimeout"] == 30, task["Timeouts"]


def test_lowercase_keys_come_back_pascal_case(
    files_node: FilesNode, wasm_runs: Callable[[str], tuple[str, str]]
) -> None:
    job_id, _ = wasm_runs("lowercase-keys.yaml")
    job = describe(files_node, job_id)["Job"]
    assert (job["Name"], job["Labels"]) == ("lowercase-keys", {"style": "lowercase"}), job
    assert job["Tasks"][0]["Timeouts"]["ExecutionTimeout"] == 30, job["Tasks"][0]


def test_docker_example_runs_and_publishes_its_outputs(
    files_node: FilesNode, busybox_image: str, tmp_path: Path
) -> None:
    job_id, out = run_file(files_node, local_copy("docker.yaml", tmp_path, busybox_image))
    logs = files_node.node.ok("job", "logs", job_id)
    # EnvironmentVariables (GREETING), WorkingDirectory (/tmp), task Env (CITY), the inline input
    assert_lines_in_order(logs.stdout, ["hello from /tmp to Lisbon", "one two three"], out)
    results = tmp_path / "results"
    files_node.node.ok("job", "get", "--output-dir", str(results), job_id)
    assert (results / "outputs" / "count.txt").read_text().strip() == "3"
    assert (results / "exitCode").read_text().strip() == "0"
    assert "hello from /tmp to Lisbon" in (results / "stdout").read_text()
    job = describe(files_node, job_id)["Job"]
    assert job["Labels"] == {"project": "examples", "engine": "docker"}, job["Labels"]
    assert (job["Name"], job["Priority"], job["Meta"]["owner"]) == ("docker-example", 5, "data-team"), job
    task = job["Tasks"][0]
    assert task["Engine"]["Params"]["Entrypoint"] == ["/bin/sh", "-c"], task["Engine"]
    assert task["Meta"] == {"step": "count-words"}, task["Meta"]
    assert {k: task["Resources"][k].lower() for k in ("CPU", "Memory", "Disk")} == {
        "CPU": "500m",
        "Memory": "256mb",
        "Disk": "100mb",
    }, task["Resources"]
    assert task["Timeouts"] == {"ExecutionTimeout": 60, "QueueTimeout": 30, "TotalTimeout": 120}, task["Timeouts"]
    assert task["ResultPaths"] == [{"Name": "outputs", "Path": "/outputs"}], task["ResultPaths"]
    labelled = files_node.node.ok("job", "list", "--labels", "engine=docker", "--output", "json")
    assert job_id in labelled.stdout, files_node.node.describe_result(labelled)


def test_local_dirs_example_reads_and_writes_host_folders(
    files_node: FilesNode, busybox_image: str, tmp_path: Path
) -> None:
    path = local_copy("local-dirs.yaml", tmp_path, busybox_image)
    job_id, out = run_file(files_node, path, *template_args("local-dirs.yaml", files_node))
    assert (files_node.data / "out" / "shout.txt").read_text() == "ONE TWO THREE\n", out
    sources = [
        i["Source"]["Params"]["SourcePath"] for i in describe(files_node, job_id)["Job"]["Tasks"][0]["InputSources"]
    ]
    assert sources == [f"{files_node.data}/in", f"{files_node.data}/out"], sources


def test_noop_ops_example_completes(files_node: FilesNode) -> None:
    job_id, out = run_file(files_node, JOBS / "noop-ops.yaml")
    described = describe(files_node, job_id)
    assert (described["Job"]["Type"], described["Job"]["State"]["StateType"]) == ("ops", "Completed"), out
    assert [e["ComputeState"]["StateType"] for e in executions_of(described)] == [EXEC_COMPLETED]


def test_constraints_example_runs_on_the_matching_node(files_node: FilesNode) -> None:
    job_id, out = run_file(files_node, JOBS / "constraints.yaml")
    described = describe(files_node, job_id)
    assert described["Job"]["State"]["StateType"] == "Completed", out
    assert [(c["Key"], c["Operator"]) for c in described["Job"]["Constraints"]] == [
        ("zone", "="),
        ("tier", "in"),
        ("zone", "exists"),
    ], described["Job"]["Constraints"]


def test_constraints_unmatched_example_fails_naming_the_constraint(files_node: FilesNode) -> None:
    job_id, out = run_file(files_node, JOBS / "constraints-unmatched.yaml", succeed=False)
    message = describe(files_node, job_id)["Job"]["State"]["Message"]
    for text in (out, message):
        assert "not enough nodes" in text and re.search(r"lacks? label zone=us", text), f"{text}\n{out}"


def test_wasm_timeout_example_fails_with_a_timeout(files_node: FilesNode) -> None:
    job_id, out = run_file(files_node, JOBS / "wasm-timeout.yaml", succeed=False)
    job = files_node.watch.job(job_id)
    assert job["State"]["StateType"] == "Failed", job["State"]
    assert re.search(r"(?i)timed out.*2s", job["State"]["Message"]), job["State"]
    assert re.search(r"(?i)timed out", out), out


# -- wrong files ------------------------------------------------------------------------------------
def _misspelled_tasks(text: str) -> str:
    return text.replace("\nTasks:", "\nTsks:")


def _server_owned_id(text: str) -> str:
    return "ID: j-00000000-0000-0000-0000-000000000000\n" + text


def _no_entry_module(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "EntryModule:" not in line) + "\n"


def _count_two(text: str) -> str:
    return re.sub(r"(?m)^Count: 1\b", "Count: two", text)


def _timeout_soon(text: str) -> str:
    return text.replace("ExecutionTimeout: 30", "ExecutionTimeout: soon")


# (id, base file, how it is broken, what the error must say exactly)
WRONG_FILES: list[tuple[str, str, Callable[[str], str], str]] = [
    ("misspelled-key", "wasm.yaml", _misspelled_tasks, "unknown field: 'Tsks' in 'Job'"),
    ("server-owned-key", "wasm.yaml", _server_owned_id, "field: 'ID' in 'Job' is not allowed"),
    ("missing-entry-module", "wasm-imports.yaml", _no_entry_module, "Tasks[0].Engine.Params.EntryModule: required"),
    ("wrong-type", "wasm.yaml", _count_two, "field 'Count' in 'Job' is invalid type"),
    (
        "wrong-nested-type",
        "wasm.yaml",
        _timeout_soon,
        "field 'ExecutionTimeout' in 'Job.Tasks[0].Timeouts' is invalid type",
    ),
]


@pytest.mark.parametrize(("base", "breaker", "expected"), [pytest.param(b, f, e, id=i) for i, b, f, e in WRONG_FILES])
def test_a_wrong_file_is_refused_with_the_field_path(
    files_node: FilesNode, tmp_path: Path, base: str, breaker: Callable[[str], str], expected: str
) -> None:
    original = (JOBS / base).read_text()
    broken = breaker(original)
    assert broken != original, "the breaker changed nothing"
    path = tmp_path / f"wrong-{base}"
    path.write_text(broken)
    before = len(files_node.watch.jobs())
    for command in ("validate", "run"):
        result = files_node.node.fails("job", command, str(path))
        assert expected in result.stdout + result.stderr, files_node.node.describe_result(result)
    assert len(files_node.watch.jobs()) == before, "a refused file must not submit a job"
