"""`-p` publishers and `-o` result paths."""

from __future__ import annotations

import click
import pytest

from bacalhau.cli.publisher import parse_publisher, parse_result_paths


@pytest.mark.parametrize("raw", ["local", "LOCAL", "ipfs", "noop", "s3managed"])
def test_simple_publishers(raw: str) -> None:
    spec = parse_publisher(raw)
    assert spec is not None and spec["Type"] == raw.lower() and spec["Params"] == {}


def test_no_publisher_flag_means_none() -> None:
    assert parse_publisher("") is None


def test_s3_publisher_with_options() -> None:
    spec = parse_publisher("s3://bucket/results/{jobID}.tar.gz,opt=region=us-east-1,opt=endpoint=http://m:9000")
    assert spec is not None and spec["Type"] == "s3"
    assert spec["Params"] == {
        "Bucket": "bucket",
        "Key": "results/{jobID}.tar.gz",
        "Region": "us-east-1",
        "Endpoint": "http://m:9000",
    }


def test_unknown_publisher_lists_the_valid_ones() -> None:
    with pytest.raises(click.BadParameter, match="local, ipfs, noop, s3managed"):
        parse_publisher("dropbox")


def test_result_paths_name_colon_path() -> None:
    paths = parse_result_paths(["outputs:/outputs", "/data/out"])
    assert [(p["Name"], p["Path"]) for p in paths] == [("outputs", "/outputs"), ("out", "/data/out")]


def test_relative_result_paths_are_refused() -> None:
    with pytest.raises(click.BadParameter, match="absolute"):
        parse_result_paths(["outputs:outputs"])
