"""`bacalhau wasm run` flags end to end: -e, --entry-point, -i file://, -o with -p local, --memory,
--timeout and -I, each checked by what the user sees (the module's output, the job's state, the files
`bacalhau job get` downloads)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from scenario_jobs import EXEC_COMPLETED, EXEC_FAILED, JobWatch, one_job_id, parse_output

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario


def test_env_flags_reach_the_module(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    result = shared_node.ok(
        "wasm", "run", "-e", "GREETING=hello world", "--env", "COUNT=3", str(wasm_modules["env"]),
        "--", "GREETING", "COUNT", "NOT_SET",
    )
    out = result.stdout
    assert "GREETING=hello world" in out and "COUNT=3" in out, shared_node.describe_result(result)
    assert "NOT_SET=<unset>" in out, shared_node.describe_result(result)
    job = shared_watch.job(one_job_id(out))
    assert job["Tasks"][0]["Env"] == {"GREETING": "hello world", "COUNT": "3"}, job["Tasks"][0]


def test_env_values_may_contain_equals_signs_and_bad_names_are_refused_before_submission(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    result = shared_node.ok("wasm", "run", "-e", "QUERY=a=b&c=d", str(wasm_modules["env"]), "--", "QUERY")
    assert "QUERY=a=b&c=d" in result.stdout, shared_node.describe_result(result)
    jobs_before = len(shared_watch.jobs())
    for bad, why in (("lower=x", "lower"), ("BACALHAU_X=1", "BACALHAU_"), ("NOVALUE", "NOVALUE")):
        refused = shared_node.fails("wasm", "run", "-e", bad, str(wasm_modules["env"]))
        assert why in refused.stderr, shared_node.describe_result(refused)
    assert len(shared_watch.jobs()) == jobs_before, "a job with an invalid env was submitted"


def test_entry_point_calls_an_exported_function_other_than_start(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    result = shared_node.ok("wasm", "run", "--entry-point", "hello", str(wasm_modules["reactor"]))
    job_id = one_job_id(result.stdout)
    shared_watch.wait_state(job_id, "Completed")
    execution = shared_watch.wait_execution(job_id, EXEC_COMPLETED)
    assert execution["RunOutput"]["ExitCode"] == 0, execution
    assert shared_watch.job(job_id)["Tasks"][0]["Engine"]["Params"]["Entrypoint"] == "hello"


def test_a_missing_entry_point_fails_the_job_naming_the_function(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    result = shared_node.fails("wasm", "run", "--entry-point", "no_such_function", str(wasm_modules["reactor"]))
    out = result.stdout + result.stderr
    assert "no_such_function" in out, shared_node.describe_result(result)
    job_id = one_job_id(out)
    shared_watch.wait_state(job_id, "Failed")
    execution = shared_watch.wait_execution(job_id, EXEC_FAILED)
    assert "no_such_function" in execution["ComputeState"]["Message"], execution
    # Without --entry-point the default `_start` is called, which this module does not export either.
    default = shared_node.fails("wasm", "run", str(wasm_modules["reactor"]))
    assert "_start" in default.stdout + default.stderr, shared_node.describe_result(default)


def test_input_from_an_allow_listed_local_path_is_read_by_the_module(
    serve: Callable[..., BacalhauNode], wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "greeting.txt").write_text("bom dia from the host\n")
    node = serve(extra_config=[f"Compute.AllowListedLocalPaths={allowed}"])
    watch = JobWatch(node.url, node.log_excerpt)
    result = node.ok(
        "wasm", "run", "-i", f"file://{allowed}:/data", str(wasm_modules["cat"]), "--", "/data/greeting.txt"
    )
    assert "bom dia from the host" in result.stdout, node.describe_result(result)
    job = watch.job(one_job_id(result.stdout))
    sources = [i["Source"] for i in job["Tasks"][0]["InputSources"]]
    assert {"Type": "local", "Params": {"SourcePath": str(allowed)}} in sources, sources


def test_outputs_published_locally_are_downloaded_by_job_get(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    # The module copies a file it can always read, its own bytes (mounted at /cat.wasm), into /outputs.
    job_id = shared_node.ok(
        "wasm", "run", "--id-only", "-o", "outputs:/outputs", "-p", "local",
        str(wasm_modules["cat"]), "--", "/cat.wasm", "/outputs/copy.txt",
    ).stdout.strip()
    shared_watch.wait_state(job_id, "Completed")
    out_dir = tmp_path / "results"
    got = shared_node.ok("job", "get", job_id, "--output-dir", str(out_dir))
    copy = out_dir / "outputs" / "copy.txt"
    assert copy.is_file(), shared_node.describe_result(got) + f"\nfiles: {sorted(out_dir.rglob('*'))}"
    assert copy.read_bytes() == wasm_modules["cat"].read_bytes()
    assert (out_dir / "exitCode").read_text().strip() == "0"
    assert (out_dir / "stdout").is_file() and (out_dir / "stderr").is_file()


def test_memory_limit_makes_allocation_fail_and_the_exit_code_is_recorded(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    # wasmtime refuses to grow linear memory past the limit: malloc returns NULL, the module exits 1.
    result = shared_node.ok("wasm", "run", "--memory", "2mb", str(wasm_modules["memhog"]), "--", "64")
    job_id = one_job_id(result.stdout)
    assert "malloc of 64 MiB failed" in result.stderr, shared_node.describe_result(result)
    shared_watch.wait_state(job_id, "Completed")
    execution = shared_watch.wait_execution(job_id, EXEC_COMPLETED)
    assert execution["RunOutput"]["ExitCode"] != 0, execution
    assert "malloc of 64 MiB failed" in execution["RunOutput"]["stderr"], execution
    # The same allocation under the default memory (512Mb) succeeds.
    roomy = shared_node.ok("wasm", "run", str(wasm_modules["memhog"]), "--", "64")
    assert "allocated 64 MiB" in roomy.stdout, shared_node.describe_result(roomy)


def test_timeout_is_recorded_and_a_job_finishing_in_time_completes(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    # (test_scenario_wasm_run covers a timeout killing a loop; this is the other side.)
    result = shared_node.ok("wasm", "run", "--timeout", "60", str(wasm_modules["hello"]))
    job_id = one_job_id(result.stdout)
    assert "hello from wasm" in result.stdout, shared_node.describe_result(result)
    job = shared_watch.wait_state(job_id, "Completed")
    assert job["Tasks"][0]["Timeouts"]["TotalTimeout"] == 60, job["Tasks"][0]


def test_import_modules_are_linked_by_their_target(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    lib = f"{wasm_modules['lib']}:/lib.wasm"
    result = shared_node.ok("wasm", "run", "-I", lib, str(wasm_modules["uses_lib"]))
    assert "2+3=5" in result.stdout, shared_node.describe_result(result)
    job = shared_watch.job(one_job_id(result.stdout))
    assert job["Tasks"][0]["Engine"]["Params"]["ImportModules"] == ["/lib.wasm"], job["Tasks"][0]["Engine"]
    # Without the import the job fails, naming the module it could not find.
    missing = shared_node.fails("wasm", "run", str(wasm_modules["uses_lib"]))
    assert "lib.wasm" in missing.stdout + missing.stderr, shared_node.describe_result(missing)


def test_dry_run_shows_every_flag_in_the_job_spec(shared_node: BacalhauNode, wasm_modules: dict[str, Path]) -> None:
    result = shared_node.ok(
        "wasm", "run", "--dry-run", "--timeout", "7", "--memory", "3mb", "-e", "A=b", "-o", "outputs:/outputs",
        "-p", "local", "--entry-point", "main2", "-I", f"{wasm_modules['lib']}:/lib.wasm",
        str(wasm_modules["uses_lib"]), "--", "x",
    )
    task = parse_output(result.stdout)["Tasks"][0]
    params = task["Engine"]["Params"]
    assert params["Entrypoint"] == "main2" and params["Parameters"] == ["x"], params
    assert params["ImportModules"] == ["/lib.wasm"], params
    assert task["Env"] == {"A": "b"}, task
    assert task["ResultPaths"] == [{"Name": "outputs", "Path": "/outputs"}], task
    assert task["Publisher"]["Type"] == "local", task
    assert re.fullmatch(r"(?i)3mb", task["Resources"]["Memory"]), task["Resources"]
    assert task["Timeouts"]["TotalTimeout"] == 7, task["Timeouts"]


def test_wait_timeout_returns_while_the_job_keeps_running(
    shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path]
) -> None:
    result = shared_node.ok("wasm", "run", "--wait-timeout-secs", "2", str(wasm_modules["loop"]), timeout=60)
    job_id = one_job_id(result.stdout)
    try:
        assert re.search(r"(?i)stopped waiting|continue", result.stdout + result.stderr), shared_node.describe_result(result)
        assert shared_watch.state(job_id) == "Running", shared_watch.job(job_id)
    finally:
        shared_node.cli("job", "stop", job_id)
    shared_watch.wait_state(job_id, "Stopped", timeout_s=30)
