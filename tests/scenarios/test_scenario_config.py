"""Configuration as a user meets it: `serve -c FILE`, `BACALHAU_API_*` for the CLI, flags beating env,
`config list`, `agent config`, and an unknown key refused by `serve`."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from scenario_jobs import parse_output

from serve_node import BacalhauNode, NodePool, find_free_port

pytestmark = pytest.mark.scenario

FILE_LABELS = {"region": "eu-west", "tier": "gold"}


class FileConfiguredNode(BacalhauNode):
    """A node whose API address comes only from a config file given with `serve -c FILE`."""

    def __init__(self, *, config_file: Path, binary: Path, base: Path, api_port: int, extra_config: list[str]) -> None:
        super().__init__(
            binary=binary,
            data_dir=base / "bacalhau",
            log_path=base / "serve.log",
            api_port=api_port,
            extra_config=extra_config,
        )
        self.config_file = config_file

    @property
    def command(self) -> list[str]:
        """`bacalhau serve --orchestrator --compute -c FILE [-c extra...]`: no API.Port flag."""
        cmd = [str(self.binary), "serve", "--orchestrator", "--compute", "-c", str(self.config_file)]
        # The embedded NATS server on a free loopback port (4222 may be taken by another test's node).
        for setting in ["Orchestrator.Host=127.0.0.1", "Orchestrator.Port=0", *self.extra_config]:
            cmd += ["-c", setting]
        return cmd


@dataclass(frozen=True)
class FileNode:
    node: FileConfiguredNode
    empty_dir: Path  # a BACALHAU_DIR with no config file, for CLI runs that must rely on env/flags only


@pytest.fixture(scope="module")
def file_node(bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileNode]:
    """A node started with `serve -c config.yaml` (API.Host/API.Port/Labels in the file) plus `-c Labels.extra=yes`."""
    base = tmp_path_factory.mktemp("file-config")
    port = find_free_port()
    config_file = base / "my-config.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "API": {"Host": "127.0.0.1", "Port": port},
                "Labels": FILE_LABELS,
                "Publishers": {"Types": {"Local": {"Port": 0}}},
            }
        )
    )
    node = FileConfiguredNode(
        config_file=config_file, binary=bacalhau_bin, base=base, api_port=port, extra_config=["Labels.extra=yes"]
    )
    NodePool.live.append(node)
    try:
        node.start()
        empty = base / "client-dir"
        empty.mkdir()
        yield FileNode(node, empty)
    finally:
        node.stop()
        NodePool.live.remove(node)


def bare_cli(binary: Path, *args: str, env: Mapping[str, str], timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run `bacalhau` with exactly the BACALHAU_* variables in `env` (none inherited from the test run)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BACALHAU_")}
    full_env.update(env)
    return subprocess.run(
        [str(binary), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout_s,
        check=False,
    )


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """A CLI result for assertion messages."""
    return f"{result.args} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def test_serve_takes_the_api_port_and_labels_from_a_config_file(file_node: FileNode) -> None:
    node = file_node.node
    config = parse_output(node.ok("agent", "config", "--output", "json").stdout)
    config = config.get("config", config)
    assert config["API"]["Port"] == node.api_port, config["API"]
    assert config["Labels"] == {**FILE_LABELS, "extra": "yes"}, config["Labels"]
    info = parse_output(node.ok("agent", "node", "--output", "json").stdout)
    labels = info.get("Labels", {})
    assert {**FILE_LABELS, "extra": "yes"}.items() <= labels.items(), info


def test_bacalhau_api_port_env_points_the_cli_at_the_node(file_node: FileNode, bacalhau_bin: Path) -> None:
    # No host given: the default 0.0.0.0 is reached as 127.0.0.1, where the node listens.
    env = {"BACALHAU_DIR": str(file_node.empty_dir), "BACALHAU_API_PORT": str(file_node.node.api_port)}
    result = bare_cli(bacalhau_bin, "agent", "alive", env=env)
    assert result.returncode == 0 and "OK" in result.stdout, describe(result)


def test_api_flags_beat_the_environment(file_node: FileNode, bacalhau_bin: Path) -> None:
    port = str(file_node.node.api_port)
    dead_port = str(find_free_port())
    wrong_env = {
        "BACALHAU_DIR": str(file_node.empty_dir),
        "BACALHAU_API_HOST": "nowhere.invalid",
        "BACALHAU_API_PORT": dead_port,
    }
    for args in (
        ("--api-host", "127.0.0.1", "--api-port", port, "agent", "alive"),
        ("agent", "alive", "--api-host", "127.0.0.1", "--api-port", port),  # global flags after the verb too
        ("agent", "alive", "--api-host=127.0.0.1", f"--api-port={port}"),
    ):
        result = bare_cli(bacalhau_bin, *args, env=wrong_env)
        assert result.returncode == 0 and "OK" in result.stdout, describe(result)
    # And the other way round: a good env does not rescue a wrong flag.
    good_env = {"BACALHAU_DIR": str(file_node.empty_dir), "BACALHAU_API_HOST": "127.0.0.1", "BACALHAU_API_PORT": port}
    wrong_flag = bare_cli(bacalhau_bin, "--api-port", dead_port, "agent", "alive", env=good_env, timeout_s=90)
    assert wrong_flag.returncode != 0, describe(wrong_flag)


def test_config_list_shows_keys_with_their_defaults_and_overrides(tmp_path: Path, bacalhau_bin: Path) -> None:
    env = {"BACALHAU_DIR": str(tmp_path)}
    table = bare_cli(bacalhau_bin, "config", "list", env=env)
    assert table.returncode == 0, describe(table)
    values = {}
    for line in table.stdout.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            values[parts[0]] = parts[1].strip()
    expected = {
        "API.Port": "1234",
        "API.Host": "0.0.0.0",
        "Publishers.Types.Local.Port": "6001",
        "Orchestrator.Scheduler.QueueBackoff": "1m",
        "Compute.Heartbeat.Interval": "15s",
        "Compute.AllowListedLocalPaths": "[]",
        "DataDir": str(tmp_path),
    }
    for key, value in expected.items():
        assert values.get(key) == value, f"{key}: {values.get(key)!r}\n{table.stdout}"
    as_json = parse_output(bare_cli(bacalhau_bin, "config", "list", "--output", "json", env=env).stdout)
    assert as_json["API"]["Port"] == 1234 and as_json["Compute"]["AllocatedCapacity"]["CPU"] == "80%", as_json
    # Env beats the default, a -c flag beats env.
    from_env = parse_output(
        bare_cli(bacalhau_bin, "config", "list", "--output", "json", env={**env, "BACALHAU_API_PORT": "2345"}).stdout
    )
    assert from_env["API"]["Port"] == 2345, from_env["API"]
    from_flag = parse_output(
        bare_cli(
            bacalhau_bin, "-c", "API.Port=3456", "config", "list", "--output", "json",
            env={**env, "BACALHAU_API_PORT": "2345"},
        ).stdout
    )
    assert from_flag["API"]["Port"] == 3456, from_flag["API"]


def test_serve_refuses_an_unknown_config_key_naming_it(serve: Callable[..., BacalhauNode]) -> None:
    node = serve(extra_config=["Compute.NoSuchSetting=1"], start=False)
    node.data_dir.mkdir(parents=True)
    proc = subprocess.Popen(
        node.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=node.env, start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the server and anything it spawned
        stdout, stderr = proc.communicate(timeout=10)
        raise AssertionError(f"`bacalhau serve` with an unknown key kept running:\n{stdout}\n{stderr}") from None
    assert proc.returncode != 0, f"exited {proc.returncode}\n{stdout}\n{stderr}"
    assert "Compute.NoSuchSetting" in stdout + stderr, f"exited {proc.returncode}\n{stdout}\n{stderr}"
