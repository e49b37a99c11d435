"""`wasm run`, `docker run` and `job run` up to submission: flags become the job spec (--dry-run)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from bacalhau.cli.main import cli


def _dry_run(*args: str, stdin: str | None = None) -> dict[str, Any]:
    result = CliRunner().invoke(cli, [*args[:2], "--dry-run", *args[2:]], input=stdin)
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(result.stdout)
    assert isinstance(data, dict)
    return data


def test_wasm_run_sends_a_local_module_inline_with_its_arguments(tmp_path: Path) -> None:
    module = tmp_path / "hello.wasm"
    module.write_bytes(b"\0asm\1\0\0\0")
    job = _dry_run("wasm", "run", str(module), "-e", "GREETING=hi", "-p", "local", "-o", "out:/out", "--",
                   "world", "--flag")
    task = job["Tasks"][0]
    assert job["Type"] == "batch" and job["Count"] == 1
    assert task["Engine"]["Params"] == {
        "EntryModule": "/hello.wasm",
        "Entrypoint": "_start",
        "Parameters": ["world", "--flag"],
        "ImportModules": [],
    }
    assert task["InputSources"][0]["Source"]["Type"] == "inline"
    assert task["Env"] == {"GREETING": "hi"}
    assert task["Publisher"]["Type"] == "local"
    assert task["ResultPaths"] == [{"Name": "out", "Path": "/out"}]


def test_wasm_run_import_modules_and_uri_entry() -> None:
    job = _dry_run("wasm", "run", "ipfs://QmEntry", "-I", "ipfs://QmLib:/lib.wasm", "--entry-point", "run")
    params = job["Tasks"][0]["Engine"]["Params"]
    assert params["EntryModule"] == "/main.wasm" and params["Entrypoint"] == "run"
    assert params["ImportModules"] == ["/lib.wasm"]


def test_job_flags_build_the_job() -> None:
    job = _dry_run("docker", "run", "--name", "n", "--namespace", "ns", "--priority", "3", "-l", "a=b,c",
                   "--constraints", "region=eu", "--count", "2", "--cpu", "1", "--memory", "1Gb",
                   "--timeout", "60", "--network", "http", "--domain", "example.com", "ubuntu", "--", "echo", "-n")
    task = job["Tasks"][0]
    assert (job["Name"], job["Namespace"], job["Priority"], job["Count"]) == ("n", "ns", 3, 2)
    assert job["Labels"] == {"a": "b", "c": ""}
    assert job["Constraints"] == [{"Key": "region", "Operator": "=", "Values": ["eu"]}]
    assert task["Engine"]["Params"]["Image"] == "ubuntu"
    assert task["Engine"]["Params"]["Parameters"] == ["echo", "-n"]
    assert task["Resources"]["CPU"] == "1" and task["Timeouts"]["TotalTimeout"] == 60
    assert task["Network"]["Type"] == "HTTP" and task["Network"]["Domains"] == ["example.com"]


def test_target_all_makes_an_ops_job() -> None:
    job = _dry_run("docker", "run", "--target", "all", "ubuntu")
    assert job["Type"] == "ops" and job["Count"] == 0


def test_job_run_reads_stdin_and_fills_templates(free_port: Callable[[], int]) -> None:
    spec = "type: batch\nname: '{{.WHO}}'\ntasks:\n- name: t\n  engine: {type: noop}\n"
    # Nothing listens on the port: the dry run falls back to printing the spec, as Bacalhau's does.
    env = {"BACALHAU_API_HOST": "127.0.0.1", "BACALHAU_API_PORT": str(free_port())}
    result = CliRunner().invoke(cli, ["job", "run", "--dry-run", "-V", "WHO=me"], input=spec, env=env)
    assert result.exit_code == 0, result.output
    assert "Error: failed to fetch Job spec: " in result.stderr
    assert "Warning: falling back to offline mode..." in result.stderr
    job = yaml.safe_load(result.stdout)
    assert job["Name"] == "me" and job["Tasks"][0]["Engine"]["Type"] == "noop"


def test_job_run_validation_errors_list_every_field() -> None:
    spec = "type: batch\ntasks:\n- name: ''\n  engine: {type: wasm}\n"
    result = CliRunner().invoke(cli, ["job", "run", "-"], input=spec)
    assert result.exit_code == 1
    assert "Tasks[0].Name" in result.stderr and "EntryModule" in result.stderr


def test_job_run_rejects_server_owned_keys_with_bacalhau_message() -> None:
    result = CliRunner().invoke(cli, ["job", "run", "-"], input="id: x\ntype: batch\n")
    assert result.exit_code == 1
    assert "Error: field: 'id' in 'Job' is not allowed" in result.stderr


def test_job_validate_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("type: batch\ntasks:\n- name: t\n  engine: {type: noop}\n")
    result = CliRunner().invoke(cli, ["job", "validate", str(path)])
    assert result.exit_code == 0 and "valid" in result.stdout


def test_bad_input_flag_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["docker", "run", "-i", "ftp://x", "ubuntu", "--dry-run"])
    assert result.exit_code == 2 and "unsupported scheme" in result.output
