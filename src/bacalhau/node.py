"""The composition root: builds the orchestrator and/or the compute node from config (`bacalhau serve`).

The only module that imports both sides. A hybrid node links them in process; the API server
(uvicorn) serves /api/v1 for the orchestrator.

    serve ─> load identity ─> JobStore ─> Orchestrator ─┐
                              Registry ─> ComputeNode ──┤ (in-process link)
          recover evaluations ─> compute.start (reconcile) ─> workers ─> API server ─> wait for signal
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from bacalhau.config.duration import parse_duration_s
from bacalhau.config.types import BacalhauConfig, JobTypeDefaults
from bacalhau.models.errors import ConfigurationError
from bacalhau.models.node import NODE_TYPE_REQUESTER, PROTOCOL_NCL_V1, NodeInfo
from bacalhau.models.normalize import JobDefaults
from bacalhau.orchestrator.api.app import create_app
from bacalhau.orchestrator.api.context import ApiContext
from bacalhau.orchestrator.jobstore.sqlite import SQLiteJobStore
from bacalhau.orchestrator.results import result_transformer
from bacalhau.orchestrator.service import Orchestrator
from bacalhau.transport.inprocess import InProcessDirectory
from bacalhau.version import build_version

log = logging.getLogger(__name__)

METADATA_FILE = "system_metadata.yaml"


@dataclass(frozen=True)
class Identity:
    node_id: str
    instance_id: str
    installation_id: str


def load_identity(data_dir: Path, *, name: str | None, name_provider: str) -> Identity:
    """The node's persisted name (system_metadata.yaml); created on first start."""
    path = data_dir / METADATA_FILE
    data: dict[str, Any] = {}
    if path.exists():
        loaded = yaml.safe_load(path.read_text()) or {}
        if isinstance(loaded, dict):
            data = loaded
    node_id = name or data.get("NodeName") or _generate_name(name_provider)
    installation = data.get("InstallationID") or str(uuid.uuid4())
    data.update({"NodeName": node_id, "InstallationID": installation, "RepoVersion": 4})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data))
    os.replace(tmp, path)
    return Identity(node_id=node_id, instance_id=str(uuid.uuid4()), installation_id=installation)


def _generate_name(provider: str) -> str:
    if provider == "hostname":
        return os.uname().nodename
    if provider == "uuid":
        return str(uuid.uuid4())
    if provider == "puuid":
        return f"n-{uuid.uuid4()}"
    raise ConfigurationError(f"unknown NameProvider {provider!r}; valid: puuid, uuid, hostname")


def job_defaults(config: BacalhauConfig, job_type: str) -> JobDefaults:
    """The JobDefaults.<Type> config section as normalisation defaults."""
    section: JobTypeDefaults = getattr(config.job_defaults, job_type, config.job_defaults.batch)
    task = section.task
    publisher = task.publisher if task.publisher.type else None
    return JobDefaults(
        cpu=task.resources.cpu,
        memory=task.resources.memory,
        disk=task.resources.disk,
        gpu=task.resources.gpu,
        publisher=publisher if job_type in ("batch", "ops") else None,
        execution_timeout_s=int(parse_duration_s(task.timeouts.execution_timeout)) if job_type in ("batch", "ops") else 0,
        total_timeout_s=int(parse_duration_s(task.timeouts.total_timeout)) if job_type in ("batch", "ops") else 0,
        priority=section.priority,
    )


class Node:
    """A running bacalhau node: orchestrator, compute, or both."""

    def __init__(self, *, config: BacalhauConfig, orchestrator: bool, compute: bool, name: str | None = None) -> None:
        # Flags win; without them the config's Orchestrator.Enabled / Compute.Enabled decide.
        orchestrator = orchestrator or config.orchestrator.enabled
        compute = compute or config.compute.enabled
        if not orchestrator and not compute:
            log.warning("neither --orchestrator nor --compute given: running an orchestrator only")
            orchestrator = True
        if compute and not orchestrator:
            raise ConfigurationError(
                "a compute-only node needs the NATS transport to reach its orchestrator, which is not available yet",
                hint="run a hybrid node: bacalhau serve --orchestrator --compute",
            )
        config.orchestrator.enabled = orchestrator
        config.compute.enabled = compute
        self.config = config
        self.data_dir = Path(config.data_dir).expanduser()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.identity = load_identity(self.data_dir, name=name, name_provider=config.name_provider)
        self._with_compute = compute
        self._stop = asyncio.Event()
        self.server: uvicorn.Server | None = None

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Start everything, serve until a stop is requested (SIGTERM/SIGINT), then shut down cleanly."""
        cfg = self.config
        store = SQLiteJobStore(path=self.data_dir / "orchestrator" / "jobs.db")
        directory = InProcessDirectory()
        orchestrator = Orchestrator(
            node_id=self.identity.node_id,
            store=store,
            directory=directory,
            defaults=lambda job_type: job_defaults(cfg, job_type),
            worker_count=cfg.orchestrator.scheduler.worker_count,
            queue_backoff_s=parse_duration_s(cfg.orchestrator.scheduler.queue_backoff),
            manual_approval=cfg.orchestrator.node_manager.manual_approval,
            installation_id=self.identity.installation_id,
            instance_id=self.identity.instance_id,
            result_transformer=result_transformer(
                presign_s3=not cfg.publishers.types.s3.pre_signed_url_disabled,
                presign_expires_s=int(parse_duration_s(cfg.publishers.types.s3.pre_signed_url_expiration)),
            ),
        )
        compute_node = None
        if self._with_compute:
            from bacalhau.compute.registry import build_registry
            from bacalhau.compute.service import ComputeNode

            compute_node = ComputeNode(
                node_id=self.identity.node_id,
                config=cfg,
                registry=build_registry(config=cfg, node_id=self.identity.node_id),
                orchestrator=orchestrator.compute_events,
            )
            directory.register(self.identity.node_id, compute_node)

        def node_info() -> NodeInfo:
            if compute_node is not None:
                info: NodeInfo = compute_node.node_info()
            else:
                info = NodeInfo(NodeID=self.identity.node_id, NodeType=NODE_TYPE_REQUESTER, Labels=dict(cfg.labels))
            info.supported_protocols = [PROTOCOL_NCL_V1]
            info.bacalhau_version = build_version()
            return info

        ctx = ApiContext(orchestrator=orchestrator, version=build_version(), node_info=node_info, config=cfg.redacted)
        app = create_app(ctx)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await orchestrator.recover()
            if compute_node is not None:
                await compute_node.start()
            orchestrator.start_workers()
            self.server = uvicorn.Server(
                uvicorn.Config(
                    app,
                    host=cfg.api.host,
                    port=cfg.api.port,
                    log_level="warning",
                    # None: uvicorn's records go through the root handler `serve` set up, so they
                    # follow Logging.Mode (json lines stay json) instead of uvicorn's own format.
                    log_config=None,
                    lifespan="off",
                    ws="websockets-sansio",
                    timeout_graceful_shutdown=2,
                )
            )
            # `_serve` skips uvicorn's signal capture: our handlers decide when the whole node stops,
            # so that the orchestrator and compute shut down in order behind the API.
            serve_task = asyncio.create_task(self.server._serve())
            while not self.server.started:
                if serve_task.done():
                    raise ConfigurationError(
                        f"API server could not listen on {cfg.api.host}:{cfg.api.port}",
                        hint="choose another port with -c API.Port=<port>",
                    )
                await asyncio.sleep(0.01)
            print(
                f"bacalhau node {self.identity.node_id} started: API on http://{cfg.api.host}:{cfg.api.port}"
                f" (orchestrator{', compute' if compute_node else ''}); data in {self.data_dir}",
                flush=True,
            )
            await self._stop.wait()
            self.server.should_exit = True
            await serve_task
        finally:
            # Compute first: what it reports while stopping still reaches a live orchestrator.
            if compute_node is not None:
                await compute_node.stop()
            await orchestrator.stop()
            await store.close()
