"""`bacalhau job list` and `bacalhau wasm run` start fast: they import neither pydantic nor httpx, and print
exactly what the models would have printed for the same answers.

Each command runs as a real process (the way a user runs it) against tests/cli/fake_api.py; a small
harness reports, after the command, which heavy libraries it had imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.cli.fake_api import JOBS, FakeApi, serving

from bacalhau.cli.job.tables import JOB_COLUMNS
from bacalhau.cli.output import CSV, JSON, TABLE, OutputOptions, render_object, render_rows
from bacalhau.models.api import PutJobRequest
from bacalhau.models.job import Job

HEAVY = ("pydantic", "pydantic_core", "httpx", "httpcore")
HARNESS = f"""
import atexit, sys
def _report():
    loaded = [name for name in {HEAVY!r} if sys.modules.get(name) is not None]
    sys.stderr.write("LOADED=" + ",".join(loaded) + "\\n")
atexit.register(_report)
from bacalhau.cli.main import main
sys.argv = ["bacalhau", *sys.argv[1:]]
main()
"""
NOW_NS = 1_700_000_000 * 10**9


def run_cli(url: str, home: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run `bacalhau ARGS` against `url`; the result (harness line removed) and the heavy modules it loaded."""
    host, port = url.removeprefix("http://").split(":")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACALHAU_")}
    env.update(BACALHAU_API_HOST=host, BACALHAU_API_PORT=port, BACALHAU_DIR=str(home))
    result = subprocess.run([sys.executable, "-c", HARNESS, *args], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    lines = result.stderr.splitlines(keepends=True)
    marker = next(line for line in reversed(lines) if line.startswith("LOADED="))
    lines.remove(marker)
    loaded = [name for name in marker.strip().removeprefix("LOADED=").split(",") if name]
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout, "".join(lines)), loaded


def wire_jobs() -> list[dict[str, Any]]:
    """Jobs as servers send them, odd ones included (null and missing keys, state names in any case, numbers,
    unknown names, controls in names): the models and the views must read each the same way."""
    wasm = {"Type": "wasm", "Params": {"EntryModule": "/m.wasm"}}
    return [
        {"ID": "j-11111111-aaaa-bbbb-cccc-dddddddddddd", "Name": "hello", "Type": "batch", "CreateTime": NOW_NS,
         "State": {"StateType": "Completed"}, "Tasks": [{"Name": "main", "Engine": wasm}]},
        {"ID": "j-22222222-aaaa", "Name": "a name much longer than forty characters, truncated", "Type": "ops",
         "CreateTime": NOW_NS + 5, "State": {"StateType": "running"}, "Tasks": None},
        {"ID": "j-33333333", "Name": "evil\x1b]0;title\x07name", "Type": "service", "State": {"StateType": 5},
         "Tasks": [{"Engine": {"Type": " docker "}}], "Unknown": {"kept": "out"}},
        {"ID": "j-44444444", "State": {"StateType": "Exploded"}},
        {"ID": "j-55555555", "State": None, "Tasks": []},
    ]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty BACALHAU_DIR: no config file, no profile, no saved token."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("flags", "opts"),
    [
        ((), OutputOptions()),
        (("--wide",), OutputOptions(wide=True)),
        (("--hide-header", "--no-style"), OutputOptions(hide_header=True, no_style=True)),
        (("--output", "csv"), OutputOptions(format=CSV)),
    ],
)
def test_job_list_tables_are_read_from_the_json_without_pydantic_or_httpx(
    home: Path, flags: tuple[str, ...], opts: OutputOptions
) -> None:
    api = FakeApi(jobs=wire_jobs())
    with serving(api) as url:
        result, loaded = run_cli(url, home, "job", "list", *flags)
    assert result.returncode == 0, result.stderr
    assert loaded == []
    models = [Job.model_validate(job) for job in wire_jobs()]
    assert result.stdout == render_rows(JOB_COLUMNS, models, opts)
    assert "j-111111" in result.stdout and "\x1b" not in result.stdout


def test_job_list_json_prints_the_jobs_as_the_models_read_them(home: Path) -> None:
    api = FakeApi(jobs=wire_jobs())
    with serving(api) as url:
        result, _ = run_cli(url, home, "job", "list", "--output", "json")
    assert result.returncode == 0, result.stderr
    expected = render_object([Job.model_validate(job).to_wire() for job in wire_jobs()], OutputOptions(format=JSON))
    assert result.stdout == expected
    assert "Unknown" not in json.loads(result.stdout)[2]


def test_job_list_sends_its_flags_as_before(home: Path) -> None:
    api = FakeApi()
    with serving(api) as url:
        result, _ = run_cli(url, home, "job", "list", "--limit", "3", "--order-by", "modified_at", "--order-reversed",
                            "--namespace", "ns", "--labels", "a=b")
    assert result.returncode == 0, result.stderr
    (request,) = api.requests
    assert request.query == {"namespace": ["ns"], "limit": ["3"], "order_by": ["modified_at"], "reverse": ["true"],
                             "labels": ["a=b"]}
    assert result.stdout == render_rows(JOB_COLUMNS, [], OutputOptions(format=TABLE))


def _event(seq: int, topic: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"SeqNum": seq, "JobVersion": 1, "Time": "2024-05-01T10:20:30.123456789Z",
            "Event": {"Topic": topic, "Message": message}, **extra}


def _described(state: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    job = {"ID": "j-fake", "Type": "batch", "Version": 1, "State": {"StateType": state},
           "Tasks": [{"Engine": {"Type": "wasm"}}]}
    return {"Job": job, "History": {"Items": events}}


EVENTS = [
    _event(1, "Submission", "Job submitted"),
    _event(2, "State Update", "", JobState={"Previous": "Pending", "New": "Running"}),
    _event(3, "Execution", "Running", ExecutionID="e-12345678-aaaa"),
    _event(4, "State Update", "", JobState={"Previous": "Running", "New": "Completed"}),
]
DONE = {"ID": "e-12345678-aaaa", "JobID": "j-fake", "NodeID": "n-1", "ComputeState": {"StateType": 9},
        "RunOutput": {"Stdout": "Hello from the module\n", "stderr": "", "ExitCode": 0}}


def test_wasm_run_submits_waits_and_prints_the_output_without_pydantic_or_httpx(home: Path, tmp_path: Path) -> None:
    module = tmp_path / "hello.wasm"
    module.write_bytes(b"\0asm\1\0\0\0")
    api = FakeApi(script=[_described("Running", EVENTS[:3]), _described("Completed", EVENTS)], executions=[DONE])
    with serving(api) as url:
        result, loaded = run_cli(url, home, "wasm", "run", "-e", "GREETING=hi", str(module), "--", "world")
    assert result.returncode == 0, result.stderr
    assert loaded == []
    out = result.stdout
    assert out.startswith("Job successfully submitted. Job ID: j-fake\n")
    assert "Submission        Job submitted" in out and "e-12345678  Execution         Running" in out
    assert out.rstrip().endswith("bacalhau job executions j-fake")
    assert "\nHello from the module\n" in out
    # Each answer asked the server to hold it until there is news past the events already seen.
    gets = [r for r in api.requests if r.method == "GET" and r.path == f"{JOBS}/j-fake"]
    assert [g.query.get("after_seq", ["0"])[0] for g in gets] == ["0", "3"]
    assert all(int(g.query["wait_ms"][0]) > 0 for g in gets)


def test_the_job_sent_is_the_one_the_models_would_have_sent(home: Path, tmp_path: Path) -> None:
    """The spec goes as built (only the fields the flags set); the server must read it exactly as it reads
    the model's full dump, which is what was sent before."""
    module = tmp_path / "hello.wasm"
    module.write_bytes(b"\0asm\1\0\0\0")
    api = FakeApi(script=[_described("Completed", EVENTS)], executions=[DONE])
    with serving(api) as url:
        result, _ = run_cli(url, home, "wasm", "run", "--name", "n", "-l", "a=b,c", "-s", "region=eu", "--cpu", "1",
                            "--memory", "1Gb", "--timeout", "60", "--network", "http", "--domain", "example.com",
                            "-i", "ipfs://QmX:/data", "-p", "local", "-o", "out:/out", "--target", "all",
                            str(module), "--", "x")
    assert result.returncode == 0, result.stderr
    (put,) = [r for r in api.requests if r.method == "PUT"]
    sent = put.body["Job"]
    as_before = PutJobRequest(Job=Job.model_validate(sent), Force=False).to_wire()
    assert put.body["Force"] is False
    assert Job.from_user(sent) == Job.from_user(as_before["Job"])
    assert Job.from_user(sent).type == "ops" and Job.from_user(sent).task.network.type == "HTTP"


def test_server_validation_errors_reach_the_user_with_exit_code_1(home: Path, tmp_path: Path) -> None:
    module = tmp_path / "hello.wasm"
    module.write_bytes(b"\0asm\1\0\0\0")
    message = "Tasks[0].Env.lower: names must be UPPERCASE letters, digits and _, starting with a letter"
    api = FakeApi(put_status=400, put_answer={"Status": 400, "Message": message, "Code": "ValidationError",
                                              "Component": "Validation", "Hint": "fix the fields listed above"})
    with serving(api) as url:
        result, _ = run_cli(url, home, "wasm", "run", "-e", "lower=x", str(module))
    assert result.returncode == 1
    assert result.stderr == f"\nError: {message}\nHint:  fix the fields listed above\n"
    assert api.count("GET", JOBS) == 0


def test_limits_in_the_clis_own_config_are_checked_before_sending(home: Path, tmp_path: Path) -> None:
    module = tmp_path / "hello.wasm"
    module.write_bytes(b"\0asm\1\0\0\0")
    api = FakeApi()
    with serving(api) as url:
        result, _ = run_cli(url, home, "-c", "JobAdmissionControl.Limits.MaxCount=2", "wasm", "run", "--count", "3",
                            str(module))
    assert result.returncode == 1, result.stdout
    assert "Count: 3 exceeds the limit of 2 (JobAdmissionControl.Limits.MaxCount)" in result.stderr
    assert api.requests == []
