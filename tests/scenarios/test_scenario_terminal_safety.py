"""Untrusted text never drives the terminal: a job name, a job label, a node label and a job's output
carrying `ESC ] 0 ; pwned BEL` (an OSC "set the window title") go through the real CLI.

Tables and descriptions show such text escaped (`\\x1b]0;pwned\\x07`); `--output json|yaml` keep it
exact; `job logs` gives the job's bytes as they are to a pipe and escaped to a terminal, unless --raw.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import yaml
from scenario_jobs import JobWatch, items_of, parse_output

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

OSC_TITLE = "\x1b]0;pwned\x07"
SHOWN = "\\x1b]0;pwned\\x07"
RAW_CONTROLS = ("\x1b", "\x07", "\x9b")


@dataclass(frozen=True)
class EvilJob:
    node: BacalhauNode
    job_id: str


@pytest.fixture
def evil_job(serve: Callable[..., BacalhauNode], busybox_image: str) -> EvilJob:
    """A hybrid node labelled `evil=<OSC>`, and a completed job whose name, label and stdout hold it."""
    node = serve(extra_config=[f"Labels.evil={OSC_TITLE}"])
    result = node.cli(
        "docker", "run", "--wait=false", "--id-only", "--name", f"name{OSC_TITLE}", "-l", f"evil=x{OSC_TITLE}",
        busybox_image, "--", "sh", "-c", r"printf 'out\033]0;pwned\007\n'",
    )
    assert result.returncode == 0, node.describe_result(result)
    job_id = result.stdout.strip()
    JobWatch(node.url, node.log_excerpt).wait_state(job_id, "Completed")
    return EvilJob(node, job_id)


def assert_no_raw_controls(text: str, what: str) -> None:
    found = [repr(ch) for ch in RAW_CONTROLS if ch in text]
    assert not found, f"{what} printed raw {', '.join(found)}:\n{text!r}"


def test_job_list_describe_and_node_list_show_escape_sequences_escaped(evil_job: EvilJob) -> None:
    node = evil_job.node
    listed = node.ok("job", "list", "--wide").stdout
    assert_no_raw_controls(listed, "job list")
    assert f"name{SHOWN}" in listed, listed

    labels = node.ok("job", "list", "--labels", "evil", "--wide").stdout
    assert_no_raw_controls(labels, "job list --labels")

    described = node.ok("job", "describe", evil_job.job_id).stdout
    assert_no_raw_controls(described, "job describe")
    assert f"name{SHOWN}" in described and f"out{SHOWN}" in described, described

    nodes = node.ok("node", "list", "--wide").stdout
    assert_no_raw_controls(nodes, "node list")
    assert f"evil={SHOWN}" in nodes, nodes

    for args in (("job", "history", evil_job.job_id), ("job", "executions", evil_job.job_id)):
        assert_no_raw_controls(node.ok(*args).stdout, " ".join(args[:2]))


def test_json_and_yaml_output_keep_the_text_exact(evil_job: EvilJob) -> None:
    node = evil_job.node
    as_json = node.ok("job", "describe", evil_job.job_id, "--output", "json").stdout
    assert_no_raw_controls(as_json, "job describe --output json")  # escaped by JSON itself
    job = json.loads(as_json)["Job"]
    assert job["Name"] == f"name{OSC_TITLE}" and job["Labels"]["evil"] == f"x{OSC_TITLE}", job

    as_yaml = node.ok("job", "describe", evil_job.job_id, "--output", "yaml").stdout
    assert_no_raw_controls(as_yaml, "job describe --output yaml")
    assert yaml.safe_load(as_yaml)["Job"]["Name"] == f"name{OSC_TITLE}"

    nodes = items_of(parse_output(node.ok("node", "list", "--output", "json").stdout))
    assert any((n["Info"].get("Labels") or {}).get("evil") == OSC_TITLE for n in nodes), nodes


def test_job_logs_are_raw_to_a_pipe_and_escaped_on_a_terminal_unless_raw(evil_job: EvilJob) -> None:
    node = evil_job.node
    piped = node.ok("job", "logs", evil_job.job_id).stdout
    assert f"out{OSC_TITLE}" in piped, repr(piped)

    on_terminal = _on_terminal(node, "job", "logs", evil_job.job_id)
    assert_no_raw_controls(on_terminal, "job logs on a terminal")
    assert f"out{SHOWN}" in on_terminal, repr(on_terminal)

    raw = _on_terminal(node, "job", "logs", "--raw", evil_job.job_id)
    assert f"out{OSC_TITLE}" in raw, repr(raw)


def _on_terminal(node: BacalhauNode, *args: str) -> str:
    """What the CLI writes when its stdout and stderr are a terminal (a pty), as text."""
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [str(node.binary), *args], stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary,
            env=node.env, timeout=60, check=False,
        )
        os.close(secondary)
        secondary = -1
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the writer side is closed and everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(primary)
        if secondary >= 0:
            os.close(secondary)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    assert proc.returncode == 0, text
    return text
