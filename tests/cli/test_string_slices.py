"""List flags parse as Bacalhau's pflag types: StringSlice splits CSV, StringToString splits pairs, the rest don't."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from bacalhau.cli.main import cli
from bacalhau.cli.node.list import list_nodes
from bacalhau.cli.pflag import CsvError, read_csv_record


def _dry_run(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, [*args[:2], "--dry-run", *args[2:]])
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(result.stdout)
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("", []),
        ("a", ["a"]),
        ("a,b,c", ["a", "b", "c"]),
        ("a,", ["a", ""]),
        (" a , b", [" a ", " b"]),  # Go's csv keeps spaces (TrimLeadingSpace is off in pflag)
        ('"a,b",c', ["a,b", "c"]),
        ('"say ""hi""",x', ['say "hi"', "x"]),
    ],
)
def test_csv_records_split_like_go_encoding_csv(text: str, fields: list[str]) -> None:
    assert read_csv_record(text) == fields


@pytest.mark.parametrize(("text", "why"), [('a"b', 'bare "'), ('"ab', 'extraneous or missing "'),
                                           ('"a"b', 'extraneous or missing "')])
def test_stray_quotes_are_refused_with_go_csv_messages(text: str, why: str) -> None:
    with pytest.raises(CsvError, match=why):
        read_csv_record(text)


def test_node_list_show_takes_comma_lists_and_repeats() -> None:
    ctx = list_nodes.make_context("list", ["--show", "labels,Features", "--show", "capacity"])
    assert ctx.params["show"] == ("labels", "features", "capacity")


def test_node_list_show_refuses_an_unknown_group_before_calling_the_api() -> None:
    result = CliRunner().invoke(cli, ["node", "list", "--show", "labels,bogus"])
    assert result.exit_code == 2
    assert "'bogus'" in result.stderr and "labels" in result.stderr


def test_labels_accept_comma_lists_and_repeats() -> None:
    job = _dry_run("docker", "run", "-l", "a=b,c", "--labels", "d=e", "-l", "f=g,h=i", "ubuntu")
    assert job["Labels"] == {"a": "b", "c": "", "d": "e", "f": "g", "h": "i"}


def test_a_quoted_label_keeps_its_comma_out_of_the_split() -> None:
    result = CliRunner().invoke(cli, ["docker", "run", "--dry-run", "-l", 'a="x,y"', "ubuntu"])
    # pflag's CSV reader refuses a quote inside an unquoted field; so do we, before anything is sent.
    assert result.exit_code == 2 and 'bare "' in result.stderr


def test_docker_entrypoint_is_a_string_slice() -> None:
    job = _dry_run("docker", "run", "--entrypoint", "/bin/sh,-c", "--entrypoint", '"echo a,b"', "ubuntu")
    assert job["Tasks"][0]["Engine"]["Params"]["Entrypoint"] == ["/bin/sh", "-c", "echo a,b"]


def test_wasm_import_modules_take_a_comma_list() -> None:
    job = _dry_run("wasm", "run", "ipfs://QmEntry", "-I", "ipfs://QmA:/a.wasm,ipfs://QmB:/b.wasm")
    assert job["Tasks"][0]["Engine"]["Params"]["ImportModules"] == ["/a.wasm", "/b.wasm"]


def test_env_splits_pairs_but_keeps_commas_of_a_single_pair() -> None:
    job = _dry_run("wasm", "run", "ipfs://QmEntry", "-e", "A=1,B=2", "-e", "LIST=x,y", "-e", "Q=a=b")
    assert job["Tasks"][0]["Env"] == {"A": "1", "B": "2", "LIST": "x,y", "Q": "a=b"}


def test_env_without_equals_is_refused() -> None:
    result = CliRunner().invoke(cli, ["wasm", "run", "--dry-run", "ipfs://QmEntry", "-e", "NOVALUE"])
    assert result.exit_code == 2 and "NOVALUE must be formatted as key=value" in result.stderr


def test_template_vars_split_pairs(tmp_path: Any) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text("type: batch\nname: '{{.WHO}}-{{.WHAT}}'\ntasks:\n- name: t\n  engine: {type: noop}\n")
    result = CliRunner().invoke(cli, ["job", "validate", str(spec), "-V", "WHO=me,WHAT=it"])
    assert result.exit_code == 0, result.output
    assert "The Job is valid" in result.stdout


def test_domain_is_a_string_array_so_its_commas_are_kept() -> None:
    # --domain is a pflag StringArray: the token is one domain, and this one is not a valid name.
    result = CliRunner().invoke(cli, ["docker", "run", "--dry-run", "--domain", "a.com,b.com", "ubuntu"])
    assert result.exit_code == 1 and "'a.com,b.com' is not a valid domain name" in result.stderr
    job = _dry_run("docker", "run", "--domain", "a.com", "--domain", "b.com", "ubuntu")
    assert job["Tasks"][0]["Network"]["Domains"] == ["a.com", "b.com"]


def test_input_takes_its_own_comma_syntax_whole() -> None:
    job = _dry_run("docker", "run", "-i", "src=ipfs://QmX,dst=/data", "ubuntu")
    assert [i["Target"] for i in job["Tasks"][0]["InputSources"]] == ["/data"]


def test_constraints_stay_one_selector() -> None:
    job = _dry_run("docker", "run", "--constraints", "region=eu,gpu!=none", "ubuntu")
    assert [c["Key"] for c in job["Constraints"]] == ["region", "gpu"]
