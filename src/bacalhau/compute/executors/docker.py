"""The Docker executor: runs `docker` engine tasks in locked-down containers on a real Docker engine.

    run(request) ── params invalid / not admitted / relative Target / cancelled earlier ─> ExecutionError
       │ register execution_id                        cancel(id) ──┐    timeout timer ──┐
       v                                                           v                    v
    worker thread (the SDK blocks):                          stop(reason): remember why, then
      resolve image: local, else pull ── fails ──> ExecutionError   kill the container if started
       │  "image <ref> could not be pulled from <registry>: ..."          │
       v                                                                  │
      create bacalhau-<execution id> (labels, limits, mounts; see docker_container)
       v                                                                  │
      attach (LogPump thread -> stdout/stderr files, live)                │
      start ── stopped before start: never started ──────────────────────>┤
       v                                                                  │
      wait for exit <─────────────────────────────────────────────────────┘ (killed: exits at once)
       │  stopped ──────> "execution timed out after Ns" / "execution cancelled"
       │  OOMKilled ────> "the container ran out of memory (limit N)"
       v
      RunOutcome(exit_code, {Image, ImageDigest})   (a non-zero exit code is an outcome, not an error)
    finally: remove the container with its anonymous volumes

    reattach(request) (node restarted after a crash, kill -9): the container bacalhau-<execution id>
       of this node (see docker_reattach) ── gone / never started ──> None (the result is lost)
       │ register execution_id; the timer gets what is left of the timeout since State.StartedAt
       v
      logs from the first line (two pumps: stdout, stderr), rewriting the files; arm; wait if running
       v
      the same end as run: stopped / OOMKilled / RunOutcome; ran past its timeout -> timed out; remove

    remove_leftovers(keep=...) (compute node start): every container labelled as managed by this node
                                     except those of the executions the node takes back

    scratch_bytes(id) (the runner's disk-limit watch): the container's writable layer size (SizeRw),
       which the engine measures for the one container its label matches

The kill happens on `stop` rather than in the worker because the worker is blocked in the engine's
wait call; a container that was not started yet is never started (the worker checks after create).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

import docker
import docker.errors

from bacalhau.compute.executors.base import RunOutcome, RunRequest
from bacalhau.compute.executors.docker_container import (
    LABEL_EXECUTION_ID,
    LABEL_MANAGED,
    LABEL_NODE_ID,
    Limits,
    container_name,
    container_spec,
    managed_filter,
    refuse_relative_targets,
)
from bacalhau.compute.executors.docker_images import ResolvedImage, image_details, resolve_image
from bacalhau.compute.executors.docker_logs import LogPump, follow_logs
from bacalhau.compute.executors.docker_params import DockerParams
from bacalhau.compute.executors.docker_policy import DockerPolicy
from bacalhau.compute.executors.docker_reattach import FoundContainer, find_container
from bacalhau.compute.executors.docker_stop import StopSwitch, engine_reason
from bacalhau.compute.executors.stopping import RunningExecutions, Stop, stop_error
from bacalhau.egress.networking import Attachment, JobNetworking, NetworkingUnavailable
from bacalhau.models.errors import ErrorCode, ExecutionError, FieldError, ValidationFailed
from bacalhau.models.job import NetworkConfig, SpecConfig
from bacalhau.models.resources import format_bytes

logger = logging.getLogger(__name__)
T = TypeVar("T")
ClientFactory = Callable[[], docker.DockerClient]

_PING_TIMEOUT_S = 2.0
_LOG_DRAIN_S = 10.0  # the attach stream ends with the container; this only bounds a stuck engine
_ENGINE_HINT = "check that dockerd is running on the compute node and that it may use its socket"


class DockerExecutor:
    """Runs `docker` engine tasks on the local Docker engine, through the Docker SDK for Python."""

    def __init__(
        self,
        *,
        node_id: str,
        client_factory: ClientFactory = docker.from_env,
        allowed_images: Sequence[str] = (),
        allowed_registries: Sequence[str] = (),
        accept_networked_jobs: bool = False,
        reject_networked_jobs: bool = False,
        default_memory_bytes: int = 0,
        default_cpu: float = 0.0,
        pids_limit: int = 1024,
        ping_ttl_s: float = 5.0,
        networking: JobNetworking | None = None,
    ) -> None:
        self._node_id = node_id
        self._client_factory = client_factory
        self._policy = DockerPolicy(
            tuple(allowed_images), accept_networked_jobs, tuple(allowed_registries), reject_networked_jobs
        )
        self._limits = Limits(default_memory_bytes, default_cpu, pids_limit)
        self._ping_ttl_s = ping_ttl_s
        self._client_lock = threading.Lock()
        self._client_obj: docker.DockerClient | None = None
        self._reachable: tuple[float, bool] | None = None  # (checked at, answer)
        self._runs: RunningExecutions[StopSwitch] = RunningExecutions()
        # Bridge/Full/HTTP jobs run on the node's own networks, guarded (egress/networking.py).
        self._networking = networking or JobNetworking(node_id=node_id)

    # -- Executor protocol --------------------------------------------------------------------------
    def is_installed(self) -> bool:
        """True when the Docker engine answers a ping (the answer is cached for `ping_ttl_s`)."""
        now = time.monotonic()
        if self._reachable is not None and now - self._reachable[0] < self._ping_ttl_s:
            return self._reachable[1]
        # A client of its own, closed at once: a registry that is only asked for its engine names
        # (and never started, so never stopped) must not keep an engine connection open.
        try:
            client = self._new_client()
        except (docker.errors.DockerException, OSError):
            answer = False
        else:
            try:
                answer = _ping(client)
            except (docker.errors.DockerException, OSError):
                answer = False
            finally:
                client.close()
        self._reachable = (time.monotonic(), answer)
        return answer

    def validate(self, engine: SpecConfig, *, network: NetworkConfig | None = None) -> None:
        """Raise ValidationFailed for unusable params, an image outside the node's allow-list, or (when
        `network` is given) a network the node does not grant. No engine call."""
        self._admit(DockerParams.parse(engine), network)

    async def run(self, request: RunRequest) -> RunOutcome:
        """Run the task's container to its end; see the module docstring for the errors."""
        params = self._params(request)
        if request.resources.gpu > 0:
            raise ExecutionError("GPUs are not available to docker jobs on this node", hint="run the job without --gpu")
        refuse_relative_targets(request)
        execution = StopSwitch()
        # A cancel of the awaiting task (node stopping) kills the container; the worker then removes it.
        return await self._runs.run(
            request.execution_id,
            execution,
            lambda: self._run_sync(request, params, execution),
            timeout_s=request.timeout_s,
            name=f"docker-{request.execution_id}",
        )

    async def cancel(self, execution_id: str) -> None:
        """Kill a running execution's container (its `run` raises "execution cancelled"), or pre-empt it."""
        await self._runs.stop(execution_id)

    # -- lifespan (PluginRegistry.start/stop) --------------------------------------------------------
    async def start(self) -> None:
        """Say whether docker jobs are offered. Leftover containers are the compute node's call
        (`remove_leftovers`): it knows which of them it takes back. Never fails the node."""
        if not await asyncio.to_thread(self.is_installed):
            logger.info("no Docker engine answers: docker jobs are not offered by this node")
        elif self._policy.accept_networked_jobs and not self._policy.reject_networked_jobs:
            await asyncio.to_thread(self._networking.check)  # says once, at start, if it cannot guard them

    async def stop(self) -> None:
        """Close the engine connection (runs were cancelled by the node before). Idempotent."""
        with self._client_lock:
            client, self._client_obj = self._client_obj, None
        self._reachable = None
        await asyncio.to_thread(self._networking.close, client)
        if client is not None:
            await asyncio.to_thread(client.close)

    async def remove_leftovers(self, *, keep: Collection[str] = ()) -> int:
        """Remove every container labelled as managed by this node, except those of running executions
        and of the execution IDs in `keep`; return how many."""
        return await asyncio.to_thread(self._remove_leftovers_sync, frozenset(keep))

    # -- Reattachable --------------------------------------------------------------------------------
    async def reattach(self, request: RunRequest) -> RunOutcome | None:
        """Take back the container an earlier process of this node started for this execution; see the
        module docstring. None when there is none to take (or it never started: removed, nothing ran)."""
        params = self._params(request)
        found = await asyncio.to_thread(self._engine_call, params, lambda client: self._find(client, request))
        if found is None:
            return None
        if not found.running and not found.ended:  # created, never started: nothing ran
            await asyncio.to_thread(self._engine_call, params, lambda client: _remove(client, found.container_id))
            return None
        switch = StopSwitch()
        remaining_s = found.remaining_s(request.timeout_s, time.time()) if found.running else None
        return await self._runs.run(
            request.execution_id,
            switch,
            lambda: self._engine_call(params, lambda client: self._reattach_sync(client, request, params, found, switch)),
            timeout_s=remaining_s,
            name=f"docker-{request.execution_id}",
        )

    # -- MeasuresScratch -----------------------------------------------------------------------------
    async def scratch_bytes(self, execution_id: str) -> int:
        """What the execution's container wrote to its writable layer (not to its mounts); 0 when there
        is no container (yet) or the engine does not answer (the next measure tries again)."""
        return await asyncio.to_thread(self._scratch_bytes_sync, execution_id)

    def _scratch_bytes_sync(self, execution_id: str) -> int:
        # The list call with size=True: the engine sizes only the containers the filters match, and
        # unlike inspect it is public API of the SDK.
        filters = managed_filter(self._node_id)
        filters["label"].append(f"{LABEL_EXECUTION_ID}={execution_id}")
        try:
            found = self._client().api.containers(all=True, size=True, filters=filters)
        except (docker.errors.DockerException, OSError) as exc:
            logger.debug("cannot measure the writable layer of %s: %s", execution_id, exc)
            return 0
        return sum(int(container.get("SizeRw") or 0) for container in found)

    # -- internals ----------------------------------------------------------------------------------
    def _params(self, request: RunRequest) -> DockerParams:
        try:
            params = DockerParams.parse(request.engine)
            # Checked again here: the bid may have been taken without the network being checked.
            self._admit(params, request.network)
        except ValidationFailed as exc:
            raise ExecutionError(
                f"the docker job cannot run on this node: {exc.message}", code=ErrorCode.ValidationError, hint=exc.hint
            ) from exc
        return params

    def _admit(self, params: DockerParams, network: NetworkConfig | None) -> None:
        refusals: list[FieldError | None] = [self._policy.image_refusal(params.image)]
        if network is not None:
            refused = self._policy.network_refusal(network)
            if refused is None and (reason := self._networking.refusal(network.type, network.domains)):
                refused = FieldError("Network", reason)
            refusals.append(refused)
        errors = [error for error in refusals if error is not None]
        if errors:
            raise ValidationFailed(errors, hint="ask for what this node allows, or run the job on another node")

    def _client(self) -> docker.DockerClient:
        with self._client_lock:
            if self._client_obj is None:
                self._client_obj = self._new_client()
            return self._client_obj

    def _new_client(self) -> docker.DockerClient:
        # The SDK leaves the socket of a failed unix connect open (a ResourceWarning per attempt): on a
        # machine without Docker, answer from the missing socket file instead of trying every few seconds.
        if self._client_factory is docker.from_env:
            missing = _missing_default_socket()
            if missing is not None:
                raise docker.errors.DockerException(f"no Docker engine socket at {missing}")
        return self._client_factory()

    def _engine(self) -> docker.DockerClient:
        try:
            return self._client()
        except (docker.errors.DockerException, OSError) as exc:
            raise ExecutionError(
                f"the Docker engine is not reachable: {exc}",
                code=ErrorCode.ServiceUnavailable,
                hint=_ENGINE_HINT,
                retryable=True,
            ) from exc

    def _run_sync(self, request: RunRequest, params: DockerParams, execution: StopSwitch) -> RunOutcome:
        client = self._engine()
        image = resolve_image(client, params.image)
        details = image.details(params.image)
        execution.raise_if_stopped(request.timeout_s, details)  # a pull cannot be interrupted: check after
        try:
            return self._engine_call(
                params, lambda c: self._run_container(c, request, params, image, execution, details)
            )
        except ExecutionError as exc:
            exc.details = {**details, **exc.details}
            raise

    def _engine_call(self, params: DockerParams, call: Callable[[docker.DockerClient], T]) -> T:
        """`call(client)`, with the SDK's errors translated into ExecutionError."""
        client = self._engine()
        try:
            return call(client)
        except (docker.errors.DockerException, OSError) as exc:
            raise ExecutionError(
                f"the Docker engine failed while running image {params.image.reference}: {engine_reason(exc)}",
                hint=_ENGINE_HINT,
            ) from exc

    def _find(self, client: docker.DockerClient, request: RunRequest) -> FoundContainer | None:
        return find_container(client, execution_id=request.execution_id, node_id=self._node_id)

    def _reattach_sync(
        self,
        client: docker.DockerClient,
        request: RunRequest,
        params: DockerParams,
        found: FoundContainer,
        execution: StopSwitch,
    ) -> RunOutcome:
        details = image_details(client, params.image, found.image_id)
        pumps: list[LogPump] = []
        try:
            self._attach(client, request)  # the new process's proxy grants it its Domains again
            try:
                pumps = follow_logs(
                    client, found.container_id, stdout_path=request.stdout_path, stderr_path=request.stderr_path
                )
            except docker.errors.APIError as exc:  # e.g. a logging driver the engine cannot read back
                logger.warning("the output of %s cannot be read back: %s", found.container_id, engine_reason(exc))
            execution.arm(client, found.container_id)
            if found.running:
                client.api.wait(found.container_id)  # the timer and `cancel` end it by killing the container
            execution.exited()
            if found.ended and found.overran(request.timeout_s):
                raise stop_error(Stop.TIMEOUT, request.timeout_s, details)
            return self._collect(client, found.container_id, request, pumps, execution, details)
        except ExecutionError as exc:
            exc.details = {**details, **exc.details}
            raise
        finally:
            self._networking.release(request.execution_id)
            _remove(client, found.container_id)
            for pump in pumps:
                pump.close()

    def _collect(
        self,
        client: docker.DockerClient,
        container_id: str,
        request: RunRequest,
        pumps: list[LogPump],
        execution: StopSwitch,
        details: dict[str, str],
    ) -> RunOutcome:
        """After the container exited: its outcome, or why it is an error (stopped, out of memory, logs)."""
        deadline = time.monotonic() + _LOG_DRAIN_S
        drained = all(pump.join(max(deadline - time.monotonic(), 0.0)) for pump in pumps)
        if not drained:
            logger.warning("output of %s still streaming after exit; the log files may be cut", container_id)
        state: dict[str, Any] = client.api.inspect_container(container_id)["State"]
        execution.raise_if_stopped(request.timeout_s, details)
        if state.get("OOMKilled"):
            raise ExecutionError(
                f"the container ran out of memory (limit {_memory_text(self._limits.memory_bytes(request))})",
                code=ErrorCode.ResourceExhausted,
                hint="raise Resources.Memory (--memory) for this job, or make the task use less",
            )
        errors = [pump.error for pump in pumps if pump.error is not None]
        if drained and errors:
            raise ExecutionError(f"the task's output could not be saved: {errors[0]}")
        return RunOutcome(exit_code=int(state.get("ExitCode", -1)), details=details)

    def _run_container(
        self,
        client: docker.DockerClient,
        request: RunRequest,
        params: DockerParams,
        image: ResolvedImage,
        execution: StopSwitch,
        details: dict[str, str],
    ) -> RunOutcome:
        attachment = self._attach(client, request)
        spec = container_spec(
            request,
            params,
            image_id=image.image_id,
            node_id=self._node_id,
            network_mode=attachment.network_mode,
            limits=self._limits,
            network_env=attachment.env,
        )
        try:
            container_id = self._create(client, spec, params)
        except BaseException:
            self._networking.release(request.execution_id)
            raise
        pump: LogPump | None = None
        try:
            chunks = client.api.attach(container_id, stdout=True, stderr=True, stream=True, logs=True, demux=True)
            pump = LogPump(chunks, stdout_path=request.stdout_path, stderr_path=request.stderr_path)
            pump.start()
            execution.raise_if_stopped(request.timeout_s, details)
            try:
                client.api.start(container_id)
            except docker.errors.APIError as exc:  # e.g. the entrypoint is not in the image
                raise ExecutionError(
                    f"the container for image {params.image.reference} could not be started: {engine_reason(exc)}",
                    hint="check the job's Entrypoint, Parameters and WorkingDirectory against the image",
                ) from exc
            execution.arm(client, container_id)
            client.api.wait(container_id)  # no timeout: the timer and `cancel` end it by killing the container
            execution.exited()
            return self._collect(client, container_id, request, [pump], execution, details)
        finally:
            self._networking.release(request.execution_id)  # first: its address is not free before removal
            _remove(client, container_id)
            if pump is not None:
                pump.close()

    def _attach(self, client: docker.DockerClient, request: RunRequest) -> Attachment:
        try:
            return self._networking.attach(
                client,
                network_type=request.network.type,
                domains=list(request.network.domains),
                execution_id=request.execution_id,
                job_id=request.job_id,
                docker_mode=self._policy.network_mode(request.network),
            )
        except NetworkingUnavailable as exc:
            raise ExecutionError(
                f"the job's network ({request.network.type}) cannot be set up safely on this node: {exc}",
                code=ErrorCode.ServiceUnavailable,
                hint="run it with network None, or on another node",
            ) from exc

    def _create(self, client: docker.DockerClient, spec: dict[str, Any], params: DockerParams) -> str:
        for attempt in (1, 2):
            try:
                return str(client.containers.create(**spec).id)
            except docker.errors.APIError as exc:
                if exc.status_code == 409 and attempt == 1 and self._owns(client, spec["name"]):
                    # Left by an earlier process of this node running this same execution (a crash).
                    _remove(client, spec["name"])
                    continue
                raise ExecutionError(
                    f"the container for image {params.image.reference} could not be created: {engine_reason(exc)}",
                    hint="check the job's inputs, result paths and resources",
                ) from exc
        raise AssertionError("unreachable")

    def _owns(self, client: docker.DockerClient, container: str) -> bool:
        """Whether `container` carries this node's managed labels (never remove another's container)."""
        try:
            labels = client.api.inspect_container(container)["Config"].get("Labels") or {}
        except docker.errors.DockerException:
            return False
        return bool(labels.get(LABEL_MANAGED) == "true" and labels.get(LABEL_NODE_ID) == self._node_id)

    def _remove_leftovers_sync(self, keep: frozenset[str]) -> int:
        client = self._engine()
        active = {container_name(execution_id) for execution_id in (*self._runs.ids(), *keep)}
        try:
            found = client.api.containers(all=True, filters=managed_filter(self._node_id))
            removed = 0
            for entry in found:
                names = {str(name).lstrip("/") for name in entry.get("Names") or []}
                if names & active:
                    continue
                if _remove(client, str(entry["Id"])):
                    removed += 1
            return removed
        except (docker.errors.DockerException, OSError) as exc:
            raise ExecutionError(
                f"listing leftover containers failed: {engine_reason(exc)}", hint=_ENGINE_HINT
            ) from exc


def _missing_default_socket() -> str | None:
    """The unix socket path `docker.from_env()` would use, if it does not exist; else None."""
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if host.startswith("unix://") and not os.path.exists(host.removeprefix("unix://")):
        return host.removeprefix("unix://")
    return None


def _ping(client: docker.DockerClient) -> bool:
    """GET /_ping with a short timeout. `client.ping()` takes none and would use the client's (60 s):
    this runs on the event loop (node info, bids), where a hung engine must not stall the node."""
    api = client.api  # an APIClient is a requests.Session: its own get() accepts a timeout
    response = api.get(f"{api.base_url}/_ping", timeout=_PING_TIMEOUT_S)
    try:
        return bool(response.ok and response.text == "OK")
    finally:
        response.close()


def _remove(client: docker.DockerClient, container: str) -> bool:
    """Force-remove a container and its anonymous volumes; False if it was already gone or it failed."""
    try:
        client.api.remove_container(container, v=True, force=True)
        return True
    except docker.errors.NotFound:
        return False
    except (docker.errors.DockerException, OSError):
        # Not fatal: it carries our labels, so remove_leftovers() takes it at the next start.
        logger.warning("removing container %s failed", container, exc_info=True)
        return False


def _memory_text(limit_bytes: int) -> str:
    if limit_bytes <= 0:
        return "none set: the host ran out of memory"
    if limit_bytes % (1024 * 1024) == 0:
        return f"{limit_bytes // (1024 * 1024)} MiB"
    return format_bytes(limit_bytes)
