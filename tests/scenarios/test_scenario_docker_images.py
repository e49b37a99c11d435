"""Images: a missing one fails the job with a message naming it; one that is not on the node is pulled
from a registry (Debian's `docker-registry` on localhost, plain HTTP) and its digest is recorded on the
execution so a rerun is reproducible. Nothing here reaches beyond 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from scenario_jobs import EXEC_COMPLETED, JobWatch, one_job_id, parse_output

from docker_env import LocalRegistry, PushedImage, wait_containers_gone
from serve_node import BacalhauNode, NodePool, find_free_port

if TYPE_CHECKING:
    import docker

pytestmark = pytest.mark.scenario


@pytest.fixture(scope="module")
def image_node(
    bacalhau_bin: Path, tmp_path_factory: pytest.TempPathFactory, docker_engine: docker.DockerClient
) -> Iterator[tuple[BacalhauNode, JobWatch]]:
    """One hybrid node for the module's docker jobs."""
    pool = NodePool(bacalhau_bin, tmp_path_factory)
    try:
        node = pool()
        yield node, JobWatch(node.url, node.log_excerpt)
    finally:
        pool.close()


@pytest.fixture
def pushed(docker_engine: docker.DockerClient, busybox_image: str, local_registry: LocalRegistry) -> Iterator[PushedImage]:
    """The busybox image in the local registry under a fresh name, absent from the engine; removed after."""
    image = local_registry.push(docker_engine, busybox_image, f"bacalhau-test/pulled-{uuid.uuid4().hex[:8]}")
    assert not docker_engine.images.list(name=image.repository), f"{image.ref} is still on the engine"
    try:
        yield image
    finally:
        import docker.errors

        for reference in (image.ref, f"{image.repository}@{image.digest}"):  # untag only: busybox stays
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_engine.images.remove(reference)


def find_key_paths(value: Any, needle: str, path: str = "") -> list[str]:
    """Where `needle` appears among the string values of a JSON document (`Executions.Items[0]...`)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += find_key_paths(item, needle, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += find_key_paths(item, needle, f"{path}[{index}]")
    elif isinstance(value, str) and needle in value:
        found.append(path)
    return found


def test_an_image_missing_from_the_registry_fails_the_job_naming_it(
    image_node: tuple[BacalhauNode, JobWatch], docker_engine: docker.DockerClient, local_registry: LocalRegistry
) -> None:
    node, watch = image_node
    image = f"{local_registry.host}/bacalhau-test/no-such-image:never"
    result = node.fails("docker", "run", image, "--", "echo", "unreachable", timeout=120)
    out = result.stdout + result.stderr
    assert image in out, node.describe_result(result)
    job_id = one_job_id(out)
    job = watch.wait_state(job_id, "Failed")
    assert image in job["State"].get("Message", ""), job["State"]
    messages = [e["ComputeState"].get("Message", "") for e in watch.executions(job_id)]
    assert any(image in m for m in messages), messages
    wait_containers_gone(docker_engine, job_id=job_id)


def test_an_image_from_an_unreachable_registry_fails_the_job_naming_it(
    image_node: tuple[BacalhauNode, JobWatch],
) -> None:
    node, watch = image_node
    image = f"127.0.0.1:{find_free_port()}/bacalhau-test/nobody-listens:1"  # a closed port: refused at once
    result = node.fails("docker", "run", image, "--", "echo", "unreachable", timeout=120)
    out = result.stdout + result.stderr
    assert image in out, node.describe_result(result)
    job = watch.wait_state(one_job_id(out), "Failed")
    assert image in job["State"].get("Message", ""), job["State"]


def test_an_image_absent_from_the_node_is_pulled_and_its_digest_recorded(
    image_node: tuple[BacalhauNode, JobWatch], docker_engine: docker.DockerClient, pushed: PushedImage
) -> None:
    node, watch = image_node
    result = node.ok("docker", "run", pushed.ref, "--", "echo", "pulled-and-ran", timeout=120)
    assert "pulled-and-ran" in result.stdout, node.describe_result(result)
    job_id = one_job_id(result.stdout)
    watch.wait_state(job_id, "Completed")
    # The engine now has it, pinned to the digest the registry gave at push time.
    local = docker_engine.images.get(pushed.ref)
    assert f"{pushed.repository}@{pushed.digest}" in local.attrs["RepoDigests"], local.attrs["RepoDigests"]
    # And the execution records that digest (in ComputeState.Details, next to the image as written).
    execution = watch.wait_execution(job_id, EXEC_COMPLETED)
    details = execution["ComputeState"].get("Details") or {}
    assert details.get("ImageDigest") == pushed.digest, (
        f"digest {pushed.digest} not recorded on the execution (found at {find_key_paths(execution, pushed.digest)}):\n"
        f"{json.dumps(execution, indent=1)[:4000]}"
    )
    assert details.get("Image") == pushed.ref, details
    described = parse_output(node.ok("job", "describe", job_id, "--output", "json").stdout)
    assert find_key_paths(described, pushed.digest), f"digest {pushed.digest} not in `job describe --output json`"
    wait_containers_gone(docker_engine, job_id=job_id)


def test_a_pinned_digest_runs_that_exact_image(
    image_node: tuple[BacalhauNode, JobWatch], pushed: PushedImage
) -> None:
    node, watch = image_node
    pinned = f"{pushed.repository}@{pushed.digest}"
    result = node.ok("docker", "run", pinned, "--", "echo", "pinned", timeout=120)
    assert "pinned" in result.stdout, node.describe_result(result)
    execution = watch.wait_execution(one_job_id(result.stdout), EXEC_COMPLETED)
    details = execution["ComputeState"].get("Details") or {}
    assert details.get("ImageDigest") == pushed.digest, json.dumps(execution, indent=1)[:4000]


# -- a "registry" that is any HTTP server ----------------------------------------------------------------
HOSTILE_BODY_CHARS = 200_000
HOSTILE_MARK = "\x1b]0;pwned\x07INTERNAL-SECRET-PAGE\x1b[2J"


class _HostileServer:
    """An HTTP server on 127.0.0.1 that passes the engine's registry probe (`/v2/`) and answers every
    other request 404 with a large body full of escape sequences (what an internal service may send
    back; the engine quotes such a body whole in its error), and records the paths it was asked for."""

    def __init__(self) -> None:
        import http.server
        import threading

        requests: list[str] = []
        body = (HOSTILE_MARK + "\n") * (HOSTILE_BODY_CHARS // (len(HOSTILE_MARK) + 1))

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                if self.path == "/v2/":
                    data = b"{}"
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                else:
                    data = body.encode()
                    self.send_response(404)
                    self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_HEAD = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.requests = requests
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def hostile_server() -> Iterator[_HostileServer]:
    server = _HostileServer()
    try:
        yield server
    finally:
        server.close()


def test_a_registry_answering_a_large_body_with_escapes_fails_the_job_with_a_short_clean_message(
    image_node: tuple[BacalhauNode, JobWatch], docker_engine: docker.DockerClient, hostile_server: _HostileServer
) -> None:
    node, watch = image_node
    image = f"127.0.0.1:{hostile_server.port}/bacalhau-test/x:latest"
    result = node.fails("docker", "run", image, "--", "echo", "unreachable", timeout=120)
    job_id = one_job_id(result.stdout + result.stderr)
    job = watch.wait_state(job_id, "Failed")
    assert hostile_server.requests, "the engine never asked the server: the test proves nothing"
    messages = [job["State"].get("Message", "")] + [e["ComputeState"].get("Message", "") for e in watch.executions(job_id)]
    for message in messages:
        assert len(message) < 1000, f"{len(message)} characters: {message[:300]!r}..."
        assert "\n" not in message and "\x1b" not in message and "\x07" not in message, repr(message)
    assert any(image in m and "could not be pulled from" in m and "INTERNAL-SECRET-PAGE" in m for m in messages), (
        messages  # the registry's words are quoted, a few hundred characters of them
    )
    assert "\x1b" not in result.stdout + result.stderr and "\x07" not in result.stdout + result.stderr


def test_an_image_from_a_registry_outside_allowed_registries_is_refused_before_any_pull(
    serve: Any, docker_engine: docker.DockerClient, hostile_server: _HostileServer
) -> None:
    node = serve(extra_config=["Engines.Types.Docker.AllowedRegistries=docker.io,localhost:5000"])
    image = f"127.0.0.1:{hostile_server.port}/bacalhau-test/x:latest"
    result = node.fails("docker", "run", image, "--", "echo", "unreachable", timeout=120)
    out = result.stdout + result.stderr
    assert f"registry 127.0.0.1:{hostile_server.port}" in out, node.describe_result(result)
    assert "Engines.Types.Docker.AllowedRegistries" in out, node.describe_result(result)
    assert hostile_server.requests == [], hostile_server.requests
