"""`local` inputs from job files are confined to `Compute.AllowListedLocalPaths`: no path outside it, no
escape through a symlink or `..`, no write access unless the entry grants `:rw`, and a read-only mount
really is read-only for the module."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from scenario_jobs import JobWatch, one_job_id, wasm_job, write_job_file

from serve_node import BacalhauNode, NodePool

pytestmark = pytest.mark.scenario

DATA_TARGET = "/data"


@dataclass(frozen=True)
class Confined:
    node: BacalhauNode
    watch: JobWatch
    read_only: Path  # allow-listed, read-only (the default)
    writable: Path  # allow-listed with :rw
    outside: Path  # not allow-listed


@pytest.fixture(scope="module")
def confined(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Confined]:
    """A node allowing one read-only and one writable folder, and a folder it does not allow."""
    root = tmp_path_factory.mktemp("local-inputs")
    read_only, writable, outside = root / "ro", root / "rw", root / "outside"
    for folder in (read_only, writable, outside):
        folder.mkdir()
    (read_only / "in.txt").write_text("allowed content\n")
    (outside / "secret.txt").write_text("the host's secret\n")
    (read_only / "escape.txt").symlink_to(outside / "secret.txt")
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        node = pool(extra_config=[f"Compute.AllowListedLocalPaths={read_only},{writable}:rw"])
        yield Confined(node, JobWatch(node.url, node.log_excerpt), read_only, writable, outside)
    finally:
        pool.close()


def local_input(source_path: str, *, read_write: bool = False) -> dict[str, Any]:
    """A `local` InputSource mounted at /data."""
    params: dict[str, Any] = {"SourcePath": source_path}
    if read_write:
        params["ReadWrite"] = True
    return {"Target": DATA_TARGET, "Source": {"Type": "local", "Params": params}}


def run_job_file(confined: Confined, tmp_path: Path, job: dict[str, Any], *, succeed: bool) -> tuple[str, str]:
    """`bacalhau job run` the job; return (job ID, everything the CLI printed)."""
    path = write_job_file(tmp_path, job)
    result = confined.node.ok("job", "run", str(path)) if succeed else confined.node.fails("job", "run", str(path))
    out = result.stdout + result.stderr
    return one_job_id(out), out


def assert_refused(confined: Confined, tmp_path: Path, job: dict[str, Any], message: str) -> None:
    """The job fails, and both the CLI and the job's state say why."""
    job_id, out = run_job_file(confined, tmp_path, job, succeed=False)
    assert message in out, out
    failed = confined.watch.wait_state(job_id, "Failed")
    assert message in failed["State"]["Message"], failed["State"]


def test_a_path_outside_the_allow_list_is_refused(
    confined: Confined, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    secret = str(confined.outside / "secret.txt")
    job = wasm_job(wasm_modules["cat"], args=[DATA_TARGET], extra_inputs=[local_input(secret)])
    assert_refused(confined, tmp_path, job, f"volume {secret} is not allowlisted")


def test_a_symlink_inside_the_allowed_folder_pointing_outside_is_refused(
    confined: Confined, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    link = str(confined.read_only / "escape.txt")
    job = wasm_job(wasm_modules["cat"], args=[DATA_TARGET], extra_inputs=[local_input(link)])
    assert_refused(confined, tmp_path, job, "is not allowlisted")


def test_dot_dot_escaping_the_allowed_folder_is_refused(
    confined: Confined, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    sneaky = f"{confined.read_only}/../{confined.outside.name}/secret.txt"
    job = wasm_job(wasm_modules["cat"], args=[DATA_TARGET], extra_inputs=[local_input(sneaky)])
    assert_refused(confined, tmp_path, job, "is not allowlisted")


def test_read_write_on_a_read_only_entry_is_refused(
    confined: Confined, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    path = str(confined.read_only)
    job = wasm_job(
        wasm_modules["write_attempt"], args=[f"{DATA_TARGET}/new.txt"], extra_inputs=[local_input(path, read_write=True)]
    )
    assert_refused(confined, tmp_path, job, f"volume {path} is not granted write access")
    assert not (confined.read_only / "new.txt").exists()


def test_an_allowed_file_is_read_by_the_module(
    confined: Confined, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    job = wasm_job(wasm_modules["cat"], args=[DATA_TARGET], extra_inputs=[local_input(str(confined.read_only / "in.txt"))])
    job_id, _ = run_job_file(confined, tmp_path, job, succeed=True)
    logs = confined.node.ok("job", "logs", job_id)
    assert "allowed content" in logs.stdout, confined.node.describe_result(logs)


def test_a_read_only_mount_cannot_be_written_by_the_module(
    confined: Confined, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    job = wasm_job(
        wasm_modules["write_attempt"], args=[f"{DATA_TARGET}/in.txt"], extra_inputs=[local_input(str(confined.read_only))]
    )
    job_id, _ = run_job_file(confined, tmp_path, job, succeed=True)  # a non-zero exit code completes the job
    logs = confined.node.ok("job", "logs", job_id)
    assert "write failed" in logs.stdout, confined.node.describe_result(logs)
    assert (confined.read_only / "in.txt").read_text() == "allowed content\n"
    created = wasm_job(
        wasm_modules["write_attempt"], args=[f"{DATA_TARGET}/new.txt"], extra_inputs=[local_input(str(confined.read_only))]
    )
    created_id, _ = run_job_file(confined, tmp_path, created, succeed=True)
    assert "write failed" in confined.node.ok("job", "logs", created_id).stdout
    assert not (confined.read_only / "new.txt").exists()


def test_a_read_write_mount_of_an_rw_entry_is_written_on_the_host(
    confined: Confined, wasm_modules: dict[str, Path], tmp_path: Path
) -> None:
    job = wasm_job(
        wasm_modules["write_attempt"],
        args=[f"{DATA_TARGET}/made-by-wasm.txt"],
        extra_inputs=[local_input(str(confined.writable), read_write=True)],
    )
    job_id, _ = run_job_file(confined, tmp_path, job, succeed=True)
    logs = confined.node.ok("job", "logs", job_id)
    assert "write ok" in logs.stdout, confined.node.describe_result(logs)
    assert (confined.writable / "made-by-wasm.txt").read_text() == "written by wasm\n"
