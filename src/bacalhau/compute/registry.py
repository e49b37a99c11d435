"""THE one place the built-in plugins (executors, storages, publishers) are constructed.

`build_registry` builds every built-in plugin from the node config, keyed by the type names in
`models.constants`, minus the types listed in `Engines/InputSources/Publishers.Disabled`. Nothing
registers itself by being imported. Look-ups are case-insensitive (Bacalhau compares type names with
EqualFold) and an unknown or uninstalled name raises UnsupportedTypeError listing what is supported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from bacalhau.compute.executors.base import Executor, Reattachable
from bacalhau.compute.executors.docker import DockerExecutor
from bacalhau.compute.executors.noop import NoopExecutor
from bacalhau.compute.executors.wasm import WasmExecutor
from bacalhau.compute.holdings import HoldingsReporter
from bacalhau.compute.publishers.base import PinningPublisher, Publisher
from bacalhau.compute.publishers.ipfs import IpfsPublisher
from bacalhau.compute.publishers.local import LocalPublisher
from bacalhau.compute.publishers.noop import NoopPublisher
from bacalhau.compute.publishers.retrying import RetryingPublisher
from bacalhau.compute.publishers.s3 import S3Publisher
from bacalhau.compute.storage.base import StorageProvider
from bacalhau.compute.storage.inline import InlineStorage
from bacalhau.compute.storage.inline_store import InlineStore
from bacalhau.compute.storage.input_cache import InputCache
from bacalhau.compute.storage.ipfs import IpfsStorage
from bacalhau.compute.storage.local import LocalStorage
from bacalhau.compute.storage.s3 import S3Storage
from bacalhau.compute.storage.url import UrlStorage
from bacalhau.config.duration import parse_duration_s
from bacalhau.config.types import BacalhauConfig
from bacalhau.ipfs.base import IpfsClient
from bacalhau.ipfs.factory import ipfs_client
from bacalhau.models import constants as c
from bacalhau.models.errors import ConfigurationError, ExecutionError, UnsupportedTypeError
from bacalhau.models.resources import parse_bytes, parse_cpu

logger = logging.getLogger(__name__)


@runtime_checkable
class ManagedPlugin(Protocol):
    """A plugin with a lifespan of its own (e.g. the local publisher's HTTP server)."""

    async def start(self) -> None:
        """Acquire what the plugin needs (ports, connections). Idempotent."""
        ...

    async def stop(self) -> None:
        """Release it. Idempotent."""
        ...


class _Installable(Protocol):
    def is_installed(self) -> bool:
        """What every plugin family has in common: whether this node can use it."""
        ...


P = TypeVar("P", bound=_Installable)


class PluginRegistry:
    """The plugins one compute node can use, by kind and type name."""

    def __init__(
        self,
        *,
        executors: Mapping[str, Executor],
        storages: Mapping[str, StorageProvider],
        publishers: Mapping[str, Publisher],
        empty_publisher: Publisher | None = None,
        input_cache: InputCache | None = None,
    ) -> None:
        """`input_cache` is the one the url and s3 storages share (None: disabled); the registry reports
        it in `debug_sections` and closes it at `stop`."""
        self._input_cache = input_cache
        # What input data the storages (and the cache) hold, for placement by data: started with them.
        self.holdings = HoldingsReporter([*storages.values(), *([input_cache] if input_cache else [])])
        self._executors = dict(executors)
        self._storages = dict(storages)
        self._publishers = dict(publishers)
        # What `Publisher: {}` (no type) means; Bacalhau treats it as noop even if noop is not listed.
        self._empty_publisher = empty_publisher or self._publishers.get(c.PUBLISHER_NOOP)

    def executor(self, name: str) -> Executor:
        """The executor for an engine type; UnsupportedTypeError if unknown or not installed."""
        return _lookup("engine", name, self._executors)

    def storage(self, name: str) -> StorageProvider:
        """The storage provider for an input source type; UnsupportedTypeError if unknown."""
        return _lookup("storage", name, self._storages)

    def publisher(self, name: str) -> Publisher:
        """The publisher for a type; an empty type means noop. UnsupportedTypeError if unknown."""
        if not name.strip() and self._empty_publisher is not None:
            return self._empty_publisher
        return _lookup("publisher", name, self._publishers)

    def reattachable(self, name: str) -> Reattachable | None:
        """The executor of an engine type if it can take back tasks an earlier process of this node
        started (see executors/base.py); None when it cannot (wasm runs tasks inside the node's process)
        or the type is unknown or not installed now."""
        try:
            executor = self.executor(name)
        except UnsupportedTypeError:
            return None
        return executor if isinstance(executor, Reattachable) else None

    def pinning_publishers(self) -> list[PinningPublisher]:
        """The publishers that keep what they published pinned on this node until released (ipfs), each
        once, unwrapped from their retries: results retention releases what expired."""
        found: dict[int, PinningPublisher] = {}
        for publisher in self._publishers.values():
            inner = publisher.inner if isinstance(publisher, RetryingPublisher) else publisher
            if isinstance(inner, PinningPublisher):
                found.setdefault(id(inner), inner)
        return list(found.values())

    async def remove_leftovers(self, *, keep: Collection[str] = ()) -> int:
        """Remove the tasks earlier processes of this node left behind in every executor that can
        re-attach, except those of the execution IDs in `keep`; return how many. Never raises: an engine
        that cannot be asked is logged and skipped (its leftovers go at the next start)."""
        removed = 0
        seen: set[int] = set()
        for name, executor in self._executors.items():
            if not isinstance(executor, Reattachable) or id(executor) in seen:
                continue
            seen.add(id(executor))
            if not await asyncio.to_thread(executor.is_installed):
                continue
            try:
                removed += await executor.remove_leftovers(keep=keep)
            except ExecutionError as exc:
                logger.warning("could not remove the %s tasks left by an earlier run: %s", name, exc.message)
        return removed

    def debug_sections(self) -> dict[str, Any]:
        """`agent debug` sections about the plugins: InputCache (ours), its size, entries and hit rate."""
        if self._input_cache is None:
            return {"InputCache": {"Enabled": False}}
        return {"InputCache": {"Enabled": True, **self._input_cache.stats().to_wire()}}

    def executor_names(self) -> list[str]:
        """Installed engine types, sorted (advertised as ExecutionEngines)."""
        return _installed(self._executors)

    def storage_names(self) -> list[str]:
        """Installed input source types, sorted (advertised as StorageSources)."""
        return _installed(self._storages)

    def publisher_names(self) -> list[str]:
        """Installed publisher types, sorted (advertised as Publishers)."""
        return _installed(self._publishers)

    async def start(self) -> None:
        """Start every plugin that has a lifespan; on failure, stop the ones already started."""
        started: list[ManagedPlugin] = []
        try:
            for plugin in self._managed():
                await plugin.start()
                started.append(plugin)
            await self.holdings.start()
        except BaseException:
            for plugin in reversed(started):
                with contextlib.suppress(Exception):
                    await plugin.stop()
            raise

    async def stop(self) -> None:
        """Stop every plugin that has a lifespan (each once, even if registered under two names)."""
        errors: list[Exception] = []
        await self.holdings.stop()
        for plugin in reversed(self._managed()):
            try:
                await plugin.stop()
            except Exception as exc:  # keep stopping the others; report the first afterwards
                errors.append(exc)
        if self._input_cache is not None:
            self._input_cache.close()
        if errors:
            raise errors[0]

    def _managed(self) -> list[ManagedPlugin]:
        seen: set[int] = set()
        out: list[ManagedPlugin] = []
        plugins: list[object] = [*self._executors.values(), *self._storages.values(), *self._publishers.values()]
        for plugin in plugins:
            if isinstance(plugin, ManagedPlugin) and id(plugin) not in seen:
                seen.add(id(plugin))
                out.append(plugin)
        return out


def _lookup(kind: str, name: str, plugins: Mapping[str, P]) -> P:
    wanted = name.strip().lower()
    for key, plugin in plugins.items():
        if key.lower() == wanted and plugin.is_installed():
            return plugin
    raise UnsupportedTypeError(kind, name, _installed(plugins))


def _installed(plugins: Mapping[str, _Installable]) -> list[str]:
    return sorted(name for name, plugin in plugins.items() if plugin.is_installed())


def _enabled(plugins: dict[str, P], disabled: list[str]) -> dict[str, P]:
    off = {name.strip().lower() for name in disabled}
    return {name: plugin for name, plugin in plugins.items() if name.lower() not in off}


def build_registry(*, config: BacalhauConfig, node_id: str = "") -> PluginRegistry:
    """Construct the built-in plugins for a compute node, honouring the config's `Disabled` lists.

    `node_id` labels the node's docker containers, so that at its next start it takes back or removes
    only its own (`PluginRegistry.reattachable`, `PluginRegistry.remove_leftovers`).
    """
    data_dir = Path(config.data_dir)
    local_storage = LocalStorage(allow_listed_paths=list(config.compute.allow_listed_local_paths))
    local_publisher_cfg = config.publishers.types.local
    noop_publisher = NoopPublisher()
    ipfs_for = _IpfsClients(config)
    read_timeout_s = _read_timeout_s(config)
    input_cache = _input_cache(config)
    executors: dict[str, Executor] = {
        c.ENGINE_DOCKER: _docker_executor(config, node_id),
        c.ENGINE_WASM: WasmExecutor(cache_dir=data_dir / "compute" / "cache" / "wasm"),
        c.ENGINE_NOOP: NoopExecutor(),
    }
    storages: dict[str, StorageProvider] = {
        c.STORAGE_INLINE: InlineStorage(store=InlineStore(data_dir / "compute" / "cache" / "inline")),
        c.STORAGE_LOCAL: local_storage,
        c.STORAGE_LOCAL_DIRECTORY: local_storage,
        c.STORAGE_URL: UrlStorage(
            read_timeout_s=read_timeout_s,
            max_retries=config.input_sources.max_retry_count,
            max_bytes=config.input_sources.max_download_bytes,
            cache=input_cache,
        ),
        c.STORAGE_S3: S3Storage(max_bytes=config.input_sources.max_download_bytes, cache=input_cache),
        c.STORAGE_IPFS: IpfsStorage(
            client=ipfs_for.endpoint(config.input_sources.types.ipfs.endpoint),
            # 0 means "no timeout" for Bacalhau's ReadTimeout; an IPFS fetch still needs a bound.
            timeout_s=read_timeout_s if read_timeout_s > 0 else 24 * 3600.0,
        ),
    }
    publishers: dict[str, Publisher] = {
        c.PUBLISHER_LOCAL: LocalPublisher(
            data_dir=data_dir, address=local_publisher_cfg.address, port=local_publisher_cfg.port
        ),
        c.PUBLISHER_S3: S3Publisher(scratch_dir=data_dir / "compute" / "publishing"),
        c.PUBLISHER_IPFS: IpfsPublisher(client=ipfs_for.endpoint(config.publishers.types.ipfs.endpoint)),
        c.PUBLISHER_NOOP: noop_publisher,
    }
    return PluginRegistry(
        executors=_enabled(executors, config.engines.disabled),
        storages=_enabled(storages, config.input_sources.disabled),
        publishers=_with_retries(_enabled(publishers, config.publishers.disabled)),
        empty_publisher=noop_publisher,
        input_cache=input_cache,
    )


def _input_cache(config: BacalhauConfig) -> InputCache | None:
    """The node's input cache from `InputSources.Cache` (None when disabled or MaxSize is 0). Nothing is
    created on disk until the first staging."""
    cache_cfg = config.input_sources.cache
    if not cache_cfg.enabled or cache_cfg.max_bytes <= 0:
        return None
    root = Path(cache_cfg.path) if cache_cfg.path else Path(config.data_dir) / "compute" / "input-cache"
    return InputCache(root=root, max_bytes=cache_cfg.max_bytes)


def _with_retries(publishers: dict[str, Publisher]) -> dict[str, Publisher]:
    """Every publisher that talks to something remote retries passing failures with backoff."""
    return {
        name: publisher if isinstance(publisher, NoopPublisher) else RetryingPublisher(publisher)
        for name, publisher in publishers.items()
    }


def _docker_executor(config: BacalhauConfig, node_id: str) -> DockerExecutor:
    """Construct the docker executor (it does not contact the engine until used)."""
    docker_cfg = config.engines.types.docker
    # A job that sets no resources gets the node's job defaults as its container limits.
    defaults = config.job_defaults.batch.task.resources
    try:
        default_memory, default_cpu = parse_bytes(defaults.memory), parse_cpu(defaults.cpu)
    except ValueError as exc:
        raise ConfigurationError(f"JobDefaults.Batch.Task.Resources: {exc}") from exc
    return DockerExecutor(
        node_id=node_id,
        allowed_images=list(docker_cfg.allowed_images),
        allowed_registries=list(docker_cfg.allowed_registries),
        accept_networked_jobs=config.job_admission_control.accept_networked_jobs,
        reject_networked_jobs=config.job_admission_control.reject_networked_jobs,
        default_memory_bytes=default_memory,
        default_cpu=default_cpu,
        pids_limit=docker_cfg.pids_limit,
    )


def _read_timeout_s(config: BacalhauConfig) -> float:
    """`InputSources.ReadTimeout` in seconds (0 or less: no timeout)."""
    try:
        return parse_duration_s(config.input_sources.read_timeout)
    except ValueError as exc:
        raise ConfigurationError(f"InputSources.ReadTimeout: {exc}") from exc


class _IpfsClients:
    """One IPFS client per distinct endpoint, so the ipfs storage and publisher share the embedded node.

    An empty `*.Types.IPFS.Endpoint` falls back to `IPFS.Connect`, and an empty one of those means the
    node's embedded IPFS node (repo in `<DataDir>/ipfs`). Nothing starts here: clients start on first use.
    """

    def __init__(self, config: BacalhauConfig) -> None:
        self._config = config
        self._clients: dict[str, IpfsClient] = {}

    def endpoint(self, endpoint: str) -> IpfsClient:
        """The client for `endpoint` (or the fallback), built once."""
        ipfs = self._config.ipfs
        chosen = (endpoint or ipfs.connect).strip()
        if chosen not in self._clients:
            self._clients[chosen] = ipfs_client(
                chosen,
                repo_dir=Path(self._config.data_dir) / "ipfs",
                swarm_port=ipfs.swarm_port,
                swarm_host=ipfs.swarm_host,
                peers=list(ipfs.swarm_addresses),
            )
        return self._clients[chosen]
