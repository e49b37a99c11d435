"""Bacalhau v1.9 command-line habits through the real `bacalhau` binary (issue 11, items 2, 3 and 5):

- `config set Key=value` (and the deprecated `Key value`), `--config FILE` choosing the file written,
  and the CLI then reaching the node the written file points at;
- comma lists for StringSlice flags (`node list --show labels,features,capacity`, `-l a=b,c=d`) and
  pairs for StringToString ones (`-e A=1,B=2`), against a real node;
- `bacalhau help COMMAND...` and `bacalhau completion bash`, the script sourced in a real bash.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from scenario_jobs import items_of, parse_output

from serve_node import BacalhauNode, NodePool, missing_prerequisite

pytestmark = pytest.mark.scenario

NODE_LABELS = {"zone": "eu", "tier": "gold"}


@pytest.fixture(scope="module")
def labelled_node(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BacalhauNode]:
    """A hybrid node with labels zone=eu, tier=gold."""
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        yield pool(extra_config=[f"Labels.{key}={value}" for key, value in NODE_LABELS.items()])
    finally:
        pool.close()


def _bare_cli(binary: Path, data_dir: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`bacalhau ARGS` with BACALHAU_DIR=data_dir and no other BACALHAU_* setting: only config files decide."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACALHAU_")}
    env["BACALHAU_DIR"] = str(data_dir)
    return subprocess.run([str(binary), *args], capture_output=True, text=True, env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL, timeout=60, check=False)


def _node_id(node: BacalhauNode) -> str:
    node_id: str = items_of(parse_output(node.ok("node", "list", "--output", "json").stdout))[0]["Info"]["NodeID"]
    return node_id


# -- item 2: config set ------------------------------------------------------------------------------
def test_config_set_key_value_points_the_cli_at_the_node(
    labelled_node: BacalhauNode, bacalhau_bin: Path, tmp_path: Path
) -> None:
    client_dir = tmp_path / "client"  # does not exist yet: `config set` creates it, as Bacalhau does
    first = _bare_cli(bacalhau_bin, client_dir, "config", "set", "api.host=127.0.0.1")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"Writing config to {client_dir / 'config.yaml'}"
    second = _bare_cli(bacalhau_bin, client_dir, "config", "set", "API.Port", str(labelled_node.api_port))
    assert second.returncode == 0, second.stderr
    assert "DEPRECATED: use key=value instead of space-separated key value" in second.stdout
    written = yaml.safe_load((client_dir / "config.yaml").read_text())
    assert written == {"API": {"Host": "127.0.0.1", "Port": labelled_node.api_port}}
    listed = _bare_cli(bacalhau_bin, client_dir, "node", "list")
    assert listed.returncode == 0, listed.stderr
    assert _node_id(labelled_node)[:8] in listed.stdout


def test_config_set_with_config_writes_that_file_only(
    labelled_node: BacalhauNode, bacalhau_bin: Path, tmp_path: Path
) -> None:
    client_dir = tmp_path / "client"
    target = tmp_path / "cluster.yaml"
    target.write_text("")
    # -c after the verb and -c before it both name the file to write, as `set`'s own --config does in Bacalhau.
    for args in (["config", "set", "--config", str(target), f"api.port={labelled_node.api_port}"],
                 ["-c", str(target), "config", "set", "labels=team=ml,stage=dev"]):
        result = _bare_cli(bacalhau_bin, client_dir, *args)
        assert result.returncode == 0, result.stderr
        assert f"Writing config to {target}" in result.stdout
    assert yaml.safe_load(target.read_text()) == {
        "API": {"Port": labelled_node.api_port}, "Labels": {"team": "ml", "stage": "dev"},
    }
    assert not (client_dir / "config.yaml").exists()
    # The file now points the CLI at the node when read with the global -c.
    listed = _bare_cli(bacalhau_bin, client_dir, "-c", str(target), "-c", "API.Host=127.0.0.1", "node", "list")
    assert listed.returncode == 0 and _node_id(labelled_node)[:8] in listed.stdout, listed.stderr


def test_config_set_refuses_a_missing_file_and_a_bad_value_without_writing(bacalhau_bin: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = _bare_cli(bacalhau_bin, tmp_path / "client", "config", "set", "--config", str(missing), "api.port=1")
    assert result.returncode == 1
    assert f"specified configuration file doesn't exist: {missing}" in result.stderr
    assert not missing.exists()
    bad = _bare_cli(bacalhau_bin, tmp_path / "client", "config", "set", "api.port=many")
    assert bad.returncode == 1
    assert 'config key: "api.port" expects an integer value, received: "many"' in bad.stderr
    assert not (tmp_path / "client" / "config.yaml").exists()


# -- item 3: comma lists -----------------------------------------------------------------------------
def test_node_list_show_takes_a_comma_list(labelled_node: BacalhauNode) -> None:
    comma = labelled_node.ok("node", "list", "--show", "labels,features,capacity", "--wide").stdout
    repeated = labelled_node.ok("node", "list", "--show", "labels", "--show", "features", "--show", "capacity",
                                "--wide").stdout
    header = comma.splitlines()[0].upper()
    for column in ("LABELS", "ENGINES", "CPU", "MEMORY"):
        assert column in header, comma
    assert "tier=gold zone=eu" in comma and "wasm" in comma, comma
    assert [line.split()[:4] for line in comma.splitlines()] == [line.split()[:4] for line in repeated.splitlines()]
    refused = labelled_node.fails("node", "list", "--show", "labels,bogus")
    assert "bogus" in refused.stderr


def test_job_labels_and_env_take_comma_lists(labelled_node: BacalhauNode, wasm_modules: dict[str, Path]) -> None:
    result = labelled_node.ok(
        "wasm", "run", "-l", "team=ml,stage=dev", "-e", "A=1,B=2", "-e", "LIST=x,y",
        str(wasm_modules["env"]), "--", "A", "B", "LIST",
    )
    assert "A=1" in result.stdout and "B=2" in result.stdout and "LIST=x,y" in result.stdout, result.stdout
    jobs = items_of(parse_output(labelled_node.ok("job", "list", "--labels", "team=ml,stage=dev",
                                                  "--output", "json").stdout))
    assert len(jobs) == 1 and jobs[0]["Labels"] == {"team": "ml", "stage": "dev"}, jobs


# -- item 5: help and completion ---------------------------------------------------------------------
def test_help_verb_prints_the_commands_help(bacalhau_bin: Path, tmp_path: Path) -> None:
    via_help = _bare_cli(bacalhau_bin, tmp_path, "help", "node", "list")
    via_flag = _bare_cli(bacalhau_bin, tmp_path, "node", "list", "--help")
    assert via_help.returncode == 0 and via_help.stdout == via_flag.stdout
    assert via_help.stdout.startswith("Usage: bacalhau node list")
    unknown = _bare_cli(bacalhau_bin, tmp_path, "help", "nosuch")
    assert unknown.returncode == 0
    assert unknown.stdout.startswith("Unknown help topic [`nosuch`]\nUsage: bacalhau")


def test_bash_completion_script_completes_in_bash(bacalhau_bin: Path, tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        missing_prerequisite("bash is not installed")
    script = _bare_cli(bacalhau_bin, tmp_path, "completion", "bash")
    assert script.returncode == 0, script.stderr
    (tmp_path / "bacalhau.bash").write_text(script.stdout)
    # What bash does on TAB: fill COMP_WORDS/COMP_CWORD and call the function registered for `bacalhau`.
    probe = r"""
source ./bacalhau.bash
fn=$(complete -p bacalhau | sed -E 's/.* -F ([^ ]+) .*/\1/')
tab() { COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); COMPREPLY=(); "$fn" bacalhau; echo "${COMPREPLY[*]}"; }
tab bacalhau jo
tab bacalhau job l
tab bacalhau node list --show labels,fe
tab bacalhau help no
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACALHAU_")}
    env["PATH"] = f"{bacalhau_bin.parent}{os.pathsep}{env.get('PATH', '')}"
    env["BACALHAU_DIR"] = str(tmp_path)
    done = subprocess.run([bash, "--norc", "--noprofile", "-c", probe], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["job", "list logs", "labels,features", "node"], done.stdout + done.stderr
