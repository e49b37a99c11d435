"""The Docker side of the tests: the engine, a test image built here, a local registry, and the
containers a node leaves behind.

No public registry is reachable from the test machines, so every image is made locally:

    /bin/busybox (Debian's busybox-static) --tar: /bin/busybox + applet symlinks + /tmp + /etc-->
        `docker import` --> bacalhau-test/busybox:latest            (label: sha256 of the busybox binary)

and pulls are tested against Debian's `docker-registry serve` on 127.0.0.1:<free port> (the engine
treats 127.0.0.0/8 as an insecure, plain-HTTP registry without configuration)::

    LocalRegistry.start() --spawn--> poll GET /v2/ == 200 --> ready --push()--> tag, push, untag locally
          |  exited / deadline                                       --stop()--> SIGTERM --> SIGKILL
          +--> RegistryStartError (carries the registry's log)

The engine itself is started by scripts/services (scripts/test does it); these helpers only connect.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from serve_node import find_free_port

if TYPE_CHECKING:
    import docker

BUSYBOX_IMAGE = "bacalhau-test/busybox:latest"
BUSYBOX_BINARY = Path("/bin/busybox")
BUSYBOX_LABEL = "org.bacalhau-py.test.busybox-sha256"
REGISTRY_BINARY = Path("/usr/bin/docker-registry")
# Labels the docker executor puts on every container it creates.
MANAGED_LABEL = "bacalhau.org/managed"
NODE_ID_LABEL = "bacalhau.org/node-id"
EXECUTION_ID_LABEL = "bacalhau.org/execution-id"
JOB_ID_LABEL = "bacalhau.org/job-id"
ENGINE_TIMEOUT_S = 30
REGISTRY_READY_TIMEOUT_S = 30.0
REGISTRY_STOP_TIMEOUT_S = 10.0
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


class EngineUnavailable(RuntimeError):
    """No Docker engine answers (or the Docker SDK is not installed); the message says what to do."""


class RegistryStartError(RuntimeError):
    """`docker-registry serve` exited or never answered /v2/ before its deadline."""


def docker_cli() -> str:
    """The docker client to run: $TESTS_DOCKER_CLI (scripts/test sets Debian's), /usr/bin/docker, or PATH's.

    Debian's client matches Debian's daemon; a /usr/local/bin/docker may be another, newer version.
    """
    chosen = os.environ.get("TESTS_DOCKER_CLI")
    if chosen:
        return chosen
    if Path("/usr/bin/docker").is_file():
        return "/usr/bin/docker"
    return shutil.which("docker") or "docker"


def connect_engine(timeout_s: int = ENGINE_TIMEOUT_S) -> docker.DockerClient:
    """A DockerClient (DOCKER_HOST, else the default socket) that answered ping(); EngineUnavailable if not."""
    try:
        import docker
        import docker.errors
    except ImportError as exc:
        raise EngineUnavailable(f"the Docker SDK for Python is not installed ({exc}); run: bash scripts/setup") from exc
    # docker.from_env() asks the engine for its API version while constructing, and when that fails it
    # leaks its socket (an unraisable ResourceWarning, an error under our warning filters): so first see
    # whether anything listens on a unix socket at all.
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        path = host[len("unix://") :]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(5.0)
            try:
                probe.connect(path)
            except OSError as exc:
                raise EngineUnavailable(
                    f"no Docker engine listens on {path}: {exc} (start one with: bash scripts/services start)"
                ) from exc
    try:
        client = docker.from_env(timeout=timeout_s)
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(f"no Docker engine: {exc} (start one with: bash scripts/services start)") from exc
    try:
        if not client.ping():
            raise EngineUnavailable("the Docker engine did not answer ping (start one with: bash scripts/services start)")
    except (docker.errors.DockerException, OSError) as exc:
        client.close()
        raise EngineUnavailable(f"no Docker engine answers: {exc} (start one with: bash scripts/services start)") from exc
    return client


# -- the test image -------------------------------------------------------------------------------------
def _busybox_applets(busybox: Path) -> list[str]:
    """Where each applet lives (`usr/bin/env`, `bin/sh`...), as busybox itself says."""
    listed = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True, timeout=30)
    return [line.strip() for line in listed.stdout.splitlines() if "/" in line.strip()]


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def busybox_rootfs_tar(busybox: Path = BUSYBOX_BINARY) -> bytes:
    """A root filesystem as a tar: /bin/busybox, a symlink per applet, /tmp (1777), /etc/passwd and group."""
    binary = busybox.read_bytes()
    if b"ld-linux" in binary[:4096]:  # the PT_INTERP string sits right after the ELF headers
        raise EngineUnavailable(f"{busybox} is dynamically linked: install Debian's busybox-static (bash scripts/setup)")
    applets = _busybox_applets(busybox)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        directories = {"bin", "etc", "root", "tmp"}
        for applet in applets:
            parts = Path(applet).parts[:-1]
            directories |= {str(Path(*parts[:depth])) for depth in range(1, len(parts) + 1)}
        for directory in sorted(directories):  # a parent sorts before its children (usr < usr/bin)
            _add_dir(tar, directory, 0o1777 if directory == "tmp" else 0o755)
        _add_file(tar, "bin/busybox", binary, 0o755)
        _add_file(tar, "etc/passwd", PASSWD.encode())
        _add_file(tar, "etc/group", GROUP.encode())
        for applet in applets:
            if applet == "bin/busybox":
                continue
            link = tarfile.TarInfo(applet)
            link.type = tarfile.SYMTYPE
            link.linkname = "/bin/busybox"
            tar.addfile(link)
    return buf.getvalue()


def ensure_busybox_image(client: docker.DockerClient, tag: str = BUSYBOX_IMAGE, busybox: Path = BUSYBOX_BINARY) -> str:
    """Build `tag` from Debian's busybox-static with `docker import` unless it is there already; return `tag`.

    Idempotent: the image carries the sha256 of the busybox binary it was made from, and is rebuilt only
    when that binary changed (or the image is missing).
    """
    import docker.errors

    if not busybox.is_file():
        raise EngineUnavailable(f"{busybox} not found: install Debian's busybox-static (bash scripts/setup)")
    digest = hashlib.sha256(busybox.read_bytes()).hexdigest()
    with contextlib.suppress(docker.errors.ImageNotFound):
        labels = client.images.get(tag).labels or {}
        if labels.get(BUSYBOX_LABEL) == digest:
            return tag
    repository, _, version = tag.rpartition(":")
    client.api.import_image_from_data(
        busybox_rootfs_tar(busybox),
        repository=repository,
        tag=version,
        changes=[
            'CMD ["/bin/sh"]',
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            f"LABEL {BUSYBOX_LABEL}={digest}",
        ],
    )
    client.images.get(tag)  # raises if the import did not produce it
    return tag


# -- containers a node made -----------------------------------------------------------------------------
def managed_containers(client: docker.DockerClient, **labels: str) -> list[Any]:
    """Every container (running or not) labelled `bacalhau.org/managed=true`, plus the given label filters.

    Keyword names map to labels: node_id=, execution_id=, job_id= (e.g. `managed_containers(c, job_id=j)`).
    """
    names = {"node_id": NODE_ID_LABEL, "execution_id": EXECUTION_ID_LABEL, "job_id": JOB_ID_LABEL}
    wanted = [f"{MANAGED_LABEL}=true"] + [f"{names.get(k, k)}={v}" for k, v in labels.items()]
    import docker.errors

    for _ in range(10):  # bounded: the SDK lists, then inspects each; one removed in between is NotFound
        try:
            containers: list[Any] = client.containers.list(all=True, filters={"label": wanted})
            return containers
        except docker.errors.NotFound:
            time.sleep(0.05)
    return list(client.containers.list(all=True, filters={"label": wanted}))


def describe_containers(containers: list[Any]) -> str:
    """One line per container: name, status, labels (for assertion messages)."""
    if not containers:
        return "(none)"
    return "\n".join(f"  {c.name} {c.status} {c.labels}" for c in containers)


# -- a local registry -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PushedImage:
    """An image in the local registry: `ref` (host:port/repo:tag) to pull, and its manifest `digest`."""

    ref: str
    digest: str

    @property
    def repository(self) -> str:
        """`host:port/repo`, without the tag."""
        return self.ref.rpartition(":")[0]


class LocalRegistry:
    """Debian's `docker-registry serve` on 127.0.0.1:<free port>, storing under `root`."""

    def __init__(self, root: Path, *, binary: Path = REGISTRY_BINARY) -> None:
        self.root = root
        self.binary = binary
        self.port = 0
        self.log_path = root / "registry.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """`127.0.0.1:<port>`, the prefix of every image reference in this registry."""
        return f"127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        storage = self.root / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n"
        )
        return config

    def start(self, timeout_s: float = REGISTRY_READY_TIMEOUT_S, attempts: int = 3) -> LocalRegistry:
        """Spawn the registry and wait until GET /v2/ answers 200; RegistryStartError otherwise.

        The free port is picked before the registry binds it, so another process may take it in between:
        then the registry exits at once and a new port is tried (up to `attempts` times)."""
        if not self.binary.is_file():
            raise EngineUnavailable(f"{self.binary} not found: install Debian's docker-registry (bash scripts/setup)")
        self.root.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout_s)
            except RegistryStartError as exc:
                if attempt == attempts or "address already in use" not in str(exc):
                    raise
        raise AssertionError("unreachable")

    def _start_once(self, timeout_s: float) -> LocalRegistry:
        self.port = find_free_port()
        config = self._write_config()
        with self.log_path.open("ab") as log:
            log.write(f"\n===== docker-registry serve on {self.host}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [str(self.binary), "serve", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RegistryStartError(f"docker-registry exited with code {self.proc.returncode}\n{self.log_text()}")
                try:
                    resp = http.get(f"http://{self.host}/v2/")
                    if resp.status_code == 200:
                        return self
                    last = f"HTTP {resp.status_code}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                time.sleep(0.05)  # poll interval, bounded by the deadline
        self.stop()
        raise RegistryStartError(f"docker-registry did not answer /v2/ within {timeout_s:.0f}s ({last})\n{self.log_text()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period. Idempotent."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=REGISTRY_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=REGISTRY_STOP_TIMEOUT_S)

    def log_text(self) -> str:
        """What the registry printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def push(self, client: docker.DockerClient, image: str, repository: str, tag: str = "latest") -> PushedImage:
        """Push local `image` as `<host>/<repository>:<tag>`, then drop that tag locally so using it needs a pull."""
        ref = f"{self.host}/{repository}:{tag}"
        client.images.get(image).tag(f"{self.host}/{repository}", tag)
        digest = ""
        for line in client.api.push(f"{self.host}/{repository}", tag=tag, stream=True, decode=True):
            if "error" in line:
                raise RuntimeError(f"docker push {ref} failed: {line['error']}\n{self.log_text()}")
            digest = line.get("aux", {}).get("Digest", digest)
        if not digest:
            raise RuntimeError(f"docker push {ref} reported no digest\n{self.log_text()}")
        client.images.remove(ref)  # untag only: the layers stay under `image`
        return PushedImage(ref=ref, digest=digest)

    def has_manifest(self, repository: str, reference: str) -> bool:
        """Whether the registry serves a manifest for `repository` at `reference` (a tag or a digest)."""
        accept = "application/vnd.docker.distribution.manifest.v2+json"
        resp = httpx.head(f"http://{self.host}/v2/{repository}/manifests/{reference}", headers={"Accept": accept})
        return resp.status_code == 200


def wait_containers_gone(client: docker.DockerClient, timeout_s: float = 30.0, **labels: str) -> float:
    """Poll until no managed container matches `labels`; return the seconds it took, AssertionError if not."""
    started = time.monotonic()
    deadline = started + timeout_s
    while True:
        left = managed_containers(client, **labels)
        if not left:
            return time.monotonic() - started
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"containers {labels} still there after {timeout_s:.0f}s:\n{describe_containers(left)}"
            )
        time.sleep(0.1)  # poll interval, bounded by the deadline
