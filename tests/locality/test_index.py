"""The orchestrator's HoldingsIndex (who holds which input, reported or expected) and JobHoldings' texts."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from bacalhau.locality.held import NO_HOLDINGS, Held, JobHoldings
from bacalhau.locality.index import DEFAULT_EXPECT_TTL_S, HoldingsIndex, job_input_keys
from bacalhau.locality.keys import input_key, ipfs_key, local_key, url_key
from bacalhau.models.data_holdings import MAX_REPORTED_ENTRIES, DataHoldings, HeldData
from bacalhau.models.job import InputSource, Job, SpecConfig
from factories import make_job, make_task

GB = 1000**3
URL_A = "https://example.com/a.csv"
URL_B = "https://example.com/b.csv"
CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"


class Clock:
    """Monotonic seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counted(found: JobHoldings) -> JobHoldings:
    """What a lookup counted (per node, inputs, total size), without its ranking and keys."""
    return JobHoldings(by_node=dict(found.by_node), inputs=found.inputs, total_size=found.total_size)


def url_source(url: str) -> InputSource:
    return InputSource(Source=SpecConfig(Type="urlDownload", Params={"URL": url}), Target="/inputs/x")


def local_source(path: str) -> InputSource:
    return InputSource(Source=SpecConfig(Type="local", Params={"SourcePath": path}), Target="/inputs/x")


def job_with(*sources: InputSource) -> Job:
    return make_job(tasks=[make_task(input_sources=list(sources))])


def holdings(*entries: tuple[str, int], keeps: tuple[str, ...] = ()) -> DataHoldings:
    return DataHoldings(Keeps=list(keeps), Entries=[HeldData(Key=k, Bytes=size) for k, size in entries])


# ---- reports -----------------------------------------------------------------------------------------


def test_a_reported_input_is_held_by_that_node_with_its_bytes() -> None:
    index = HoldingsIndex()
    index.report("n-a", holdings((url_key(URL_A), 3_100_000_000)))

    found = index.for_job(job_with(url_source(URL_A)))

    assert counted(found) == JobHoldings(by_node={"n-a": Held(inputs=1, size=3_100_000_000)}, inputs=1, total_size=3_100_000_000)
    assert found.ranked == ("n-a",) and len(found.keys) == 1
    assert found.describe("n-a") == "holds 3.1 GB of 3.1 GB of inputs"
    assert found.describe("n-b") == ""


def test_a_job_keys_its_inputs_as_staging_does() -> None:
    index = HoldingsIndex()
    index.report("n-a", holdings((url_key(URL_A), 10)))
    # Spaces around the URL and the param's spelling do not make it another input.
    spaced = InputSource(Source=SpecConfig(Type="URLDownload", Params={"url": f"  {URL_A}\n"}), Target="/in")
    assert index.for_job(job_with(spaced)).by_node == {"n-a": Held(1, 10)}


def test_each_node_holds_what_it_reported_and_the_total_is_the_largest_size_per_input() -> None:
    index = HoldingsIndex()
    index.report("n-a", holdings((url_key(URL_A), 100)))
    index.report("n-b", holdings((url_key(URL_A), 150), (url_key(URL_B), 200)))
    index.report("n-c", holdings((url_key("https://example.com/unrelated"), 10**12)))

    found = index.for_job(job_with(url_source(URL_A), url_source(URL_B)))

    assert found.by_node == {"n-a": Held(1, 100), "n-b": Held(2, 350)}
    assert (found.inputs, found.total_size) == (2, 150 + 200)
    assert found.describe("n-b") == "holds 350 B of 350 B of inputs"
    assert found.describe("n-a") == "holds 100 B of 350 B of inputs"


def test_a_new_report_replaces_the_previous_one() -> None:
    index = HoldingsIndex()
    index.report("n-a", holdings((url_key(URL_A), 100)))
    index.report("n-b", holdings((url_key(URL_A), 100)))
    index.report("n-a", holdings((url_key(URL_B), 200)))

    assert index.for_job(job_with(url_source(URL_A))).by_node == {"n-b": Held(1, 100)}
    assert index.for_job(job_with(url_source(URL_B))).by_node == {"n-a": Held(1, 200)}
    assert index.entries() == 2

    index.report("n-a", holdings())  # holds nothing any more
    index.report("n-b", None)  # reports nothing (a Go node)
    assert index.for_job(job_with(url_source(URL_A))).by_node == {}
    assert index.for_job(job_with(url_source(URL_B))).by_node == {}
    assert index.entries() == 0


def test_a_report_changing_a_size_replaces_it() -> None:
    index = HoldingsIndex()
    index.report("n-a", holdings((url_key(URL_A), 100)))
    index.report("n-a", holdings((url_key(URL_A), 70)))
    assert counted(index.for_job(job_with(url_source(URL_A)))) == JobHoldings({"n-a": Held(1, 70)}, inputs=1, total_size=70)


def test_forget_removes_everything_of_a_node() -> None:
    clock = Clock()
    index = HoldingsIndex(clock=clock)
    index.report("n-a", holdings((url_key(URL_A), 100), keeps=("url",)))
    index.report("n-b", holdings((url_key(URL_A), 100)))
    index.expect("n-a", [url_key(URL_B)])

    index.forget("n-a")

    assert index.for_job(job_with(url_source(URL_A))).by_node == {"n-b": Held(1, 100)}
    assert index.for_job(job_with(url_source(URL_B))).by_node == {}
    assert index.entries() == 1
    index.expect("n-a", [url_key(URL_B)])  # its Keeps went with it
    assert index.for_job(job_with(url_source(URL_B))).by_node == {}


def test_a_reported_local_folder_holds_every_path_below_it_with_unknown_size() -> None:
    index = HoldingsIndex()
    index.report("n-a", holdings((local_key("/data"), 5 * GB)))

    found = index.for_job(job_with(local_source("/data/a/b.csv")))

    assert counted(found) == JobHoldings(by_node={"n-a": Held(inputs=1, size=0)}, inputs=1, total_size=0)
    assert found.describe("n-a") == "holds 1 of 1 input(s)"
    # Normalised like the report; a sibling sharing the name's prefix is not below it.
    assert index.for_job(job_with(local_source("/data/./a/../a/b.csv"))).by_node == {"n-a": Held(1, 0)}
    assert index.for_job(job_with(local_source("/database/x"))).by_node == {}
    assert index.for_job(job_with(local_source("/"))).by_node == {}


def test_an_exactly_reported_local_path_counts_its_size_over_a_folder_reported_too() -> None:
    index = HoldingsIndex()
    index.report("n-a", holdings((local_key("/data"), 5 * GB), (local_key("/data/in.csv"), 2 * GB)))
    index.report("n-b", holdings((local_key("/data"), 5 * GB)))

    found = index.for_job(job_with(local_source("/data/in.csv")))

    assert found.by_node == {"n-a": Held(1, 2 * GB), "n-b": Held(1, 0)}
    assert found.total_size == 2 * GB
    assert found.describe("n-a") == "holds 2.0 GB of 2.0 GB of inputs"
    assert found.describe("n-b") == "holds 1 of 1 input(s)"


def test_entries_beyond_the_bound_of_a_report_are_ignored() -> None:
    index = HoldingsIndex()
    keys = [url_key(f"https://example.com/{n}") for n in range(MAX_REPORTED_ENTRIES + 5)]
    index.report("n-a", holdings(*((k, 1) for k in keys)))

    assert index.entries() == MAX_REPORTED_ENTRIES
    assert index.for_job(job_with(url_source("https://example.com/0"))).by_node == {"n-a": Held(1, 1)}
    last_kept = f"https://example.com/{MAX_REPORTED_ENTRIES - 1}"
    assert index.for_job(job_with(url_source(last_kept))).by_node == {"n-a": Held(1, 1)}
    first_dropped = f"https://example.com/{MAX_REPORTED_ENTRIES}"
    assert index.for_job(job_with(url_source(first_dropped))).by_node == {}


def test_an_entry_without_a_key_is_skipped() -> None:
    index = HoldingsIndex()
    index.report("n-a", holdings(("", 100), (url_key(URL_A), 5)))
    assert index.entries() == 1
    assert index.for_job(job_with(url_source(URL_A))).by_node == {"n-a": Held(1, 5)}


# ---- expectations ------------------------------------------------------------------------------------


def test_an_expected_input_counts_only_on_a_node_that_keeps_its_kind() -> None:
    clock = Clock()
    index = HoldingsIndex(clock=clock)
    index.report("n-url", holdings(keeps=("url",)))
    index.report("n-s3", holdings(keeps=("s3", "ipfs")))
    index.report("n-none", holdings())
    keys = [url_key(URL_A), ipfs_key(CID)]
    for node_id in ("n-url", "n-s3", "n-none", "n-unknown"):
        index.expect(node_id, keys)

    ipfs = InputSource(Source=SpecConfig(Type="ipfs", Params={"CID": CID}), Target="/in")
    assert index.for_job(job_with(url_source(URL_A))).by_node == {"n-url": Held(1, 0)}
    assert index.for_job(job_with(ipfs)).by_node == {"n-s3": Held(1, 0)}
    both = index.for_job(job_with(url_source(URL_A), ipfs))
    assert both.by_node == {"n-url": Held(1, 0), "n-s3": Held(1, 0)}
    assert both.describe("n-url") == "holds 1 of 2 input(s)"
    assert index.entries() == 2


def test_an_expected_input_has_the_size_another_node_reported() -> None:
    index = HoldingsIndex(clock=Clock())
    index.report("n-a", holdings((url_key(URL_A), 2 * GB)))
    index.report("n-b", holdings(keeps=("url",)))
    index.expect("n-b", [url_key(URL_A)])

    found = index.for_job(job_with(url_source(URL_A)))

    assert found.by_node == {"n-a": Held(1, 2 * GB), "n-b": Held(1, 2 * GB)}
    assert found.describe("n-b") == "holds 2.0 GB of 2.0 GB of inputs"


def test_an_expectation_lasts_its_ttl() -> None:
    clock = Clock()
    index = HoldingsIndex(expect_ttl_s=300.0, clock=clock)
    index.report("n-a", holdings(keeps=("url",)))
    job = job_with(url_source(URL_A))
    index.expect("n-a", [url_key(URL_A)])

    clock.now += 299.9
    assert index.for_job(job).by_node == {"n-a": Held(1, 0)}
    clock.now += 0.1
    assert index.for_job(job).by_node == {}
    assert index.entries() == 0


def test_a_second_expectation_of_the_same_input_extends_it() -> None:
    clock = Clock()
    index = HoldingsIndex(expect_ttl_s=300.0, clock=clock)
    index.report("n-a", holdings(keeps=("url",)))
    job = job_with(url_source(URL_A))
    index.expect("n-a", [url_key(URL_A)])
    clock.now += 200
    index.expect("n-a", [url_key(URL_A)])

    clock.now += 150  # past the first expectation's end, within the second's
    assert index.for_job(job).by_node == {"n-a": Held(1, 0)}
    clock.now += 150
    assert index.for_job(job).by_node == {}


def test_the_default_ttl_is_used_without_one() -> None:
    clock = Clock()
    index = HoldingsIndex(clock=clock)
    index.report("n-a", holdings(keeps=("url",)))
    index.expect("n-a", [url_key(URL_A)])
    clock.now += DEFAULT_EXPECT_TTL_S - 1
    assert index.for_job(job_with(url_source(URL_A))).by_node == {"n-a": Held(1, 0)}
    clock.now += 1
    assert index.for_job(job_with(url_source(URL_A))).by_node == {}


def test_expectations_beyond_the_bound_drop_the_oldest() -> None:
    clock = Clock()
    index = HoldingsIndex(max_expected=2, clock=clock)
    index.report("n-a", holdings(keeps=("url",)))
    for n, url in enumerate(("https://example.com/1", "https://example.com/2", "https://example.com/3")):
        clock.now += n
        index.expect("n-a", [url_key(url)])

    held = {url: bool(index.for_job(job_with(url_source(url))).by_node) for url in (
        "https://example.com/1", "https://example.com/2", "https://example.com/3")}
    assert held == {"https://example.com/1": False, "https://example.com/2": True, "https://example.com/3": True}
    assert index.entries() == 2


def test_no_expectation_is_kept_with_a_bound_of_zero() -> None:
    index = HoldingsIndex(max_expected=0, clock=Clock())
    index.report("n-a", holdings(keeps=("url",)))
    index.expect("n-a", [url_key(URL_A)])
    assert index.for_job(job_with(url_source(URL_A))).by_node == {}
    assert index.entries() == 0


def test_a_node_reporting_what_it_was_expected_to_hold_counts_once_with_the_reported_size() -> None:
    index = HoldingsIndex(clock=Clock())
    index.report("n-a", holdings(keeps=("url",)))
    index.expect("n-a", [url_key(URL_A)])
    index.report("n-a", holdings((url_key(URL_A), 640), keeps=("url",)))

    assert counted(index.for_job(job_with(url_source(URL_A)))) == JobHoldings({"n-a": Held(1, 640)}, inputs=1, total_size=640)


# ---- jobs without data, and the description texts ---------------------------------------------------


def test_a_job_without_data_inputs_holds_nothing() -> None:
    index = HoldingsIndex()
    index.report("n-a", holdings((url_key(URL_A), 100), (local_key("/data"), 1)))
    inline = InputSource(Source=SpecConfig(Type="inline", Params={"URL": "data:,hello"}), Target="/in")
    malformed = InputSource(Source=SpecConfig(Type="s3", Params={"Key": "no-bucket"}), Target="/in")
    relative = local_source("data/x")

    assert job_input_keys(job_with()) == []
    assert job_input_keys(job_with(inline, malformed, relative)) == []
    assert index.for_job(job_with()) == NO_HOLDINGS
    assert index.for_job(job_with(inline, malformed, relative)) == NO_HOLDINGS
    assert NO_HOLDINGS.describe("n-a") == ""


def test_a_job_whose_inputs_nobody_holds_counts_its_inputs_only() -> None:
    assert counted(HoldingsIndex().for_job(job_with(url_source(URL_A), url_source(URL_B)))) == JobHoldings(inputs=2)
    index = HoldingsIndex()
    index.report("n-a", holdings((url_key("https://example.com/other"), 100)))
    assert counted(index.for_job(job_with(url_source(URL_A)))) == JobHoldings(by_node={}, inputs=1, total_size=0)


def test_job_input_keys_are_the_data_inputs_keys_in_order() -> None:
    inline = InputSource(Source=SpecConfig(Type="inline", Params={"URL": "data:,hello"}), Target="/in")
    job = job_with(url_source(URL_B), inline, local_source("/data/x"))
    assert job_input_keys(job) == [url_key(URL_B), local_key("/data/x")]
    assert job_input_keys(job) == [input_key(s.source) for s in job.task.input_sources if input_key(s.source)]


@pytest.mark.parametrize(
    ("holdings_", "node_id", "text"),
    [
        (JobHoldings({"n": Held(2, 3_100_000_000)}, inputs=2, total_size=3_200_000_000), "n",
         "holds 3.1 GB of 3.2 GB of inputs"),
        (JobHoldings({"n": Held(1, 512_000_000)}, inputs=3, total_size=2_000_000_000), "n",
         "holds 512.0 MB of 2.0 GB of inputs"),
        (JobHoldings({"n": Held(1, 0)}, inputs=3, total_size=2_000_000_000), "n", "holds 1 of 3 input(s)"),
        (JobHoldings({"n": Held(2, 0)}, inputs=2, total_size=0), "n", "holds 2 of 2 input(s)"),
        (JobHoldings({"n": Held(1, 10)}, inputs=1, total_size=0), "n", "holds 1 of 1 input(s)"),
        (JobHoldings({"n": Held(0, 0)}, inputs=1, total_size=0), "n", ""),
        (JobHoldings({"n": Held(1, 10)}, inputs=1, total_size=10), "other", ""),
    ],
)
def test_describe_says_what_a_node_holds(holdings_: JobHoldings, node_id: str, text: str) -> None:
    assert holdings_.describe(node_id) == text


# ---- a path that once looped forever ------------------------------------------------------------


def test_a_local_path_with_a_double_leading_slash_is_looked_up_in_bounded_time() -> None:
    # In a child process with a memory cap: the failure was an endless loop appending to a list.
    program = textwrap.dedent(
        """
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from bacalhau.locality.index import HoldingsIndex
        from bacalhau.locality.keys import ancestors, local_key
        from bacalhau.models.data_holdings import DataHoldings, HeldData
        from bacalhau.models.job import InputSource, SpecConfig
        from factories import make_job, make_task
        index = HoldingsIndex()
        index.report("n-a", DataHoldings(Entries=[HeldData(Key=local_key("/data"), Bytes=1)]))
        source = InputSource(Source=SpecConfig(Type="local", Params={"SourcePath": "//data/x"}), Target="/in")
        index.for_job(make_job(tasks=[make_task(input_sources=[source])]))
        print(len(ancestors(local_key("//data/x"))))
        """
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", program], capture_output=True, text=True, timeout=3,
            env={"PYTHONPATH": "tests", "PATH": "/usr/bin:/bin"},
        )
    except subprocess.TimeoutExpired:
        pytest.fail("HoldingsIndex.for_job did not return within 3 s for SourcePath '//data/x'")
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) <= 4
