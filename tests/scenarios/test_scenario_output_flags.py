"""Output flags of the read verbs: `job list --limit/--next-token/--wide/--no-style/--hide-header`,
`job versions`, `job history --event-type`, and `job executions --output yaml`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from scenario_jobs import JOB_ID_RE, JobWatch, items_of, job_ids_in, parse_output, wasm_job

from serve_node import BacalhauNode

pytestmark = pytest.mark.scenario

ANSI_ESCAPE = "\x1b["
NEXT_TOKEN_RE = re.compile(r"bacalhau job list --limit 1 --next-token (\S+)")
SHORT_JOB_ID_RE = re.compile(r"\bj-[0-9a-f]{8}\b(?!-)")


@dataclass(frozen=True)
class ListedJobs:
    first: str  # oldest
    second: str
    third: str  # newest


@pytest.fixture(scope="module")
def listed(shared_node: BacalhauNode, shared_watch: JobWatch, wasm_modules: dict[str, Path]) -> ListedJobs:
    """Three completed jobs, submitted one after the other."""
    ids = []
    for n in range(3):
        job_id = shared_watch.submit(wasm_job(wasm_modules["hello"], args=[f"job{n}"], name=f"listed-{n}"))
        shared_watch.wait_state(job_id, "Completed")
        ids.append(job_id)
    return ListedJobs(*ids)


def table_rows(text: str) -> list[str]:
    """The lines of the first table in `text` (up to the first blank line)."""
    rows: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            if rows:
                break
            continue
        rows.append(line)
    return rows


def test_job_list_limit_one_prints_one_row_and_the_next_token_hint(
    shared_node: BacalhauNode, listed: ListedJobs
) -> None:
    first_page = shared_node.ok("job", "list", "--limit", "1").stdout
    rows = table_rows(first_page)
    assert len(rows) == 2 and "CREATED" in rows[0].upper(), first_page  # header + one job
    assert "To fetch more records use:" in first_page, first_page
    match = NEXT_TOKEN_RE.search(first_page)
    assert match, first_page
    second_page = shared_node.ok("job", "list", "--limit", "1", "--next-token", match.group(1)).stdout
    second_rows = table_rows(second_page)
    assert len(second_rows) == 2, second_page
    assert SHORT_JOB_ID_RE.findall(rows[1]) != SHORT_JOB_ID_RE.findall(second_rows[1]), (first_page, second_page)


def test_job_list_wide_prints_full_ids_and_the_default_table_short_ones(
    shared_node: BacalhauNode, listed: ListedJobs
) -> None:
    wide = shared_node.ok("job", "list", "--wide").stdout
    assert {listed.first, listed.second, listed.third} <= set(job_ids_in(wide)), wide
    narrow = shared_node.ok("job", "list").stdout
    assert not JOB_ID_RE.search(narrow), narrow
    assert listed.third[:10] in narrow, narrow


def test_job_list_no_style_and_hide_header(shared_node: BacalhauNode, listed: ListedJobs) -> None:
    plain = shared_node.ok("job", "list", "--no-style").stdout
    assert ANSI_ESCAPE not in plain and "CREATED" in plain.upper(), plain
    assert listed.third[:10] in plain, plain
    headless = shared_node.ok("job", "list", "--hide-header").stdout
    rows = table_rows(headless)
    assert rows and not any("CREATED" in row.upper() for row in rows), headless
    assert any(listed.third[:10] in row for row in rows), headless
    csv_headless = shared_node.ok("job", "list", "--output", "csv", "--hide-header").stdout
    assert "CREATED" not in csv_headless.upper() and listed.third[:10] in csv_headless, csv_headless


def test_job_versions_lists_each_version_after_a_rerun(
    shared_node: BacalhauNode, shared_watch: JobWatch, listed: ListedJobs
) -> None:
    one = items_of(parse_output(shared_node.ok("job", "versions", listed.first, "--output", "json").stdout))
    assert [job["Version"] for job in one] == [1], one
    shared_node.ok("job", "rerun", listed.first)
    shared_watch.wait_for(
        "the rerun to complete",
        lambda: (j := shared_watch.job(listed.first))["Version"] == 2 and j["State"]["StateType"] == "Completed",
    )
    two = items_of(parse_output(shared_node.ok("job", "versions", listed.first, "--output", "json").stdout))
    assert sorted(job["Version"] for job in two) == [1, 2], two
    assert all(job["ID"] == listed.first for job in two), two
    table = shared_node.ok("job", "versions", listed.first).stdout
    assert "VERSION" in table.upper(), table
    assert len(table_rows(table)) == 3, table  # header + two versions

    def execution_versions(*extra: str) -> list[int]:
        out = shared_node.ok("job", "executions", listed.first, *extra, "--output", "json").stdout
        return sorted(e["JobVersion"] for e in items_of(parse_output(out)))

    assert execution_versions() == [2]  # the current version by default
    assert execution_versions("--all-versions") == [1, 2]
    assert execution_versions("--version", "1") == [1]


def test_job_history_event_type_filters_job_and_execution_events(
    shared_node: BacalhauNode, listed: ListedJobs
) -> None:
    def history(*extra: str) -> list[dict[str, object]]:
        out = shared_node.ok("job", "history", listed.second, *extra, "--output", "json").stdout
        return items_of(parse_output(out))

    every = history()
    job_level = history("--event-type", "job")
    execution_level = history("--event-type", "execution")
    assert job_level and all(item["Type"] == "JobLevel" for item in job_level), job_level
    assert execution_level and all(item["Type"] == "ExecutionLevel" for item in execution_level), execution_level
    assert all(item["ExecutionID"] for item in execution_level), execution_level
    assert len(job_level) + len(execution_level) == len(every), (job_level, execution_level, every)
    execution_id = str(execution_level[0]["ExecutionID"])
    for given in (execution_id, execution_id[:10]):  # the full ID or the short one a table shows
        one_execution = history("--execution-id", given)
        assert one_execution and {item["ExecutionID"] for item in one_execution} == {execution_id}, one_execution


def test_job_executions_yaml_parses_with_integer_states(shared_node: BacalhauNode, listed: ListedJobs) -> None:
    out = shared_node.ok("job", "executions", listed.third, "--output", "yaml").stdout
    assert not out.lstrip().startswith("{"), "expected block YAML, got JSON:\n" + out
    items = items_of(parse_output(out))
    assert len(items) == 1, items
    execution = items[0]
    assert execution["JobID"] == listed.third, execution
    assert execution["ComputeState"]["StateType"] == 9, execution["ComputeState"]
    assert isinstance(execution["DesiredState"]["StateType"], int), execution["DesiredState"]
    assert "arg1=job2" in execution["RunOutput"]["Stdout"], execution["RunOutput"]
