"""`Logging.Mode` and `Logging.Level` from config change what `bacalhau serve` writes, as in Bacalhau."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from scenario_jobs import JobWatch, wasm_job

from serve_node import NodePool

pytestmark = pytest.mark.scenario

WASM = Path(__file__).resolve().parents[1] / "wasm" / "build" / "hello.wasm"


def test_json_mode_at_debug_logs_every_line_as_json(serve: NodePool) -> None:
    node = serve(extra_config=["Logging.Mode=json", "Logging.Level=debug"])
    watch = JobWatch(node.url, node.log_excerpt)
    job_id = watch.submit(wasm_job(WASM))
    watch.wait_state(job_id, "Completed")
    node.stop()
    records = []
    for line in node.log_text().splitlines():
        # The one line on stdout is the start banner, for people, and the harness marks each start;
        # everything logged is JSON.
        if not line.strip() or line.startswith(("bacalhau node ", "===== start")):
            continue
        records.append(json.loads(line))
    assert records, node.log_excerpt()
    assert {"level", "time", "message"} <= set(records[0])
    assert any(r["level"] == "debug" and job_id in r["message"] for r in records), node.log_excerpt()


def test_default_level_hides_debug_lines(serve: NodePool) -> None:
    node = serve(extra_config=["Logging.Mode=json"])
    watch = JobWatch(node.url, node.log_excerpt)
    watch.wait_state(watch.submit(wasm_job(WASM)), "Completed")
    node.stop()
    assert '"level": "debug"' not in node.log_text()


def test_log_level_flag_beats_the_config(serve: NodePool) -> None:
    node = serve(extra_config=["Logging.Mode=json", "Logging.Level=error"], extra_env={"LOG_LEVEL": "debug"})
    watch = JobWatch(node.url, node.log_excerpt)
    job_id = watch.submit(wasm_job(WASM))
    watch.wait_state(job_id, "Completed")
    node.stop()
    assert f"of job {job_id}" in node.log_text()


def test_unknown_mode_stops_serve_with_the_reason(serve: NodePool) -> None:
    node = serve(extra_config=["Logging.Mode=xml"], start=False)
    result = subprocess.run(node.command, env=node.env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1, result
    assert "'xml' is an invalid log-mode" in result.stderr
    assert "Logging.Mode" in result.stderr or "logging.mode" in result.stderr.lower()
