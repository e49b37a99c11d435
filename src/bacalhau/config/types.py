"""Bacalhau's configuration tree, with its key names and defaults (CONTRACT.md section 6)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import Field, PrivateAttr, field_validator, model_validator

from bacalhau.config.api import APIConfig
from bacalhau.config.api import TLSConfig as TLSConfig  # re-exported: the TLS keys were defined here before
from bacalhau.config.duration import parse_duration_s
from bacalhau.models import constants as c
from bacalhau.models.job import SpecConfig
from bacalhau.models.limits import DEFAULT_LIMITS, JobLimits
from bacalhau.models.resources import parse_bytes, parse_cpu
from bacalhau.models.retry import (
    DEFAULT_RETRY,
    META_ATTEMPTS,
    META_BACKOFF,
    META_MAX_BACKOFF,
    META_STRATEGY,
    RetryPolicy,
)
from bacalhau.models.wire import WireModel


def default_data_dir() -> str:
    return os.environ.get("BACALHAU_DIR") or os.path.join(os.path.expanduser("~"), ".bacalhau")


class RetryConfig(WireModel):
    """`Orchestrator.Scheduler.Retry` (ours): the node's default retry policy (models/retry.py); a job's
    `retry.*` Meta keys override it. `Strategy: always` is Bacalhau's behaviour (retry every failure)."""

    strategy: str = Field("classified", alias="Strategy")
    attempts: int = Field(3, alias="Attempts")
    backoff: str = Field("1s", alias="Backoff")
    max_backoff: str = Field("1m", alias="MaxBackoff")

    @model_validator(mode="after")
    def _usable(self) -> RetryConfig:
        # Checked when the config loads: a bad value stops `serve` naming the key.
        self.to_policy()
        return self

    def to_policy(self) -> RetryPolicy:
        """The policy as numbers. ValueError naming the key when a value does not parse or is out of range."""
        meta = {
            META_STRATEGY: self.strategy,
            META_ATTEMPTS: str(self.attempts),
            META_BACKOFF: self.backoff,
            META_MAX_BACKOFF: self.max_backoff,
        }
        keys = dict(zip(meta, ("Strategy", "Attempts", "Backoff", "MaxBackoff"), strict=True))
        policy = DEFAULT_RETRY
        for key, value in meta.items():
            try:
                policy = policy.for_job({key: value})
            except ValueError as exc:
                reason = str(exc).split(": ", 1)[-1]
                raise ValueError(f"Orchestrator.Scheduler.Retry.{keys[key]}: {reason}") from None
        return policy


class SchedulerConfig(WireModel):
    worker_count: int = Field(default_factory=lambda: os.cpu_count() or 1, alias="WorkerCount")
    queue_backoff: str = Field("1m", alias="QueueBackoff")
    housekeeping_interval: str = Field("30s", alias="HousekeepingInterval")
    housekeeping_timeout: str = Field("2m", alias="HousekeepingTimeout")
    retry: RetryConfig = Field(default_factory=RetryConfig, alias="Retry")
    # Ours: rank the nodes that fit a job by the bytes of its inputs they hold (reported by the nodes,
    # or just given to them), before their queue and free capacity. False: data is ignored in placement.
    locality_ranking: bool = Field(True, alias="LocalityRanking")


class EvaluationBrokerConfig(WireModel):
    visibility_timeout: str = Field("1m", alias="VisibilityTimeout")
    max_retry_count: int = Field(10, alias="MaxRetryCount")


class NodeManagerConfig(WireModel):
    disconnect_timeout: str = Field("1m", alias="DisconnectTimeout")
    manual_approval: bool = Field(False, alias="ManualApproval")


class OrchestratorAuthConfig(WireModel):
    """`Orchestrator.Auth`: the secret compute nodes present to the orchestrator's NATS server."""

    token: str = Field("", alias="Token")


class OrchestratorTLSConfig(WireModel):
    """`Orchestrator.TLS`: TLS of the embedded NATS server (ServerCert + ServerKey: clients must use TLS), and
    CACert, which the orchestrator's own client trusts when it joins a NATS server it does not embed."""

    server_cert: str = Field("", alias="ServerCert")
    server_key: str = Field("", alias="ServerKey")
    # Seconds; 0 means Bacalhau's 10 s (`NATSServerDefaultTLSTimeout`).
    server_timeout: int = Field(0, alias="ServerTimeout")
    ca_cert: str = Field("", alias="CACert")


class OrchestratorClusterConfig(WireModel):
    """`Orchestrator.Cluster`: routes between orchestrators' NATS servers, used only when Peers is non-empty."""

    name: str = Field("", alias="Name")
    host: str = Field("", alias="Host")
    port: int = Field(0, alias="Port")
    advertise: str = Field("", alias="Advertise")
    peers: list[str] = Field(default_factory=list, alias="Peers")


# 16 MiB: NATS's own 1 MB default is below the 10 MB a job spec may have, and AskForBid carries the job.
DEFAULT_NATS_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024


class OrchestratorNATSConfig(WireModel):
    """`Orchestrator.NATS`: ours, not a Bacalhau v1.9 key (Bacalhau always embeds its NATS server)."""

    # NATS URLs of an existing server (or cluster) for the orchestrator to use instead of embedding one;
    # empty: embed nats-server on Orchestrator.Host:Port.
    servers: list[str] = Field(default_factory=list, alias="Servers")
    # Largest message the embedded server accepts, in bytes.
    max_payload: int = Field(DEFAULT_NATS_MAX_PAYLOAD_BYTES, alias="MaxPayload")


DEFAULT_LOG_STREAMS_PER_JOB = 16


class LogStreamConfig(WireModel):
    """`Orchestrator.LogStream`: ours, not a Bacalhau v1.9 key. Bounds on `job logs` websocket streams."""

    # Log streams (following or not) one job may have open at once on this orchestrator; one more is
    # refused with an error frame (ResourceExhausted, HTTPStatusCode 429). Each costs the orchestrator
    # at most a flow-control window (~1.5 MiB) and the compute node an open file.
    max_streams_per_job: int = Field(DEFAULT_LOG_STREAMS_PER_JOB, ge=1, alias="MaxStreamsPerJob")


class OrchestratorConfig(WireModel):
    enabled: bool = Field(False, alias="Enabled")
    host: str = Field("0.0.0.0", alias="Host")
    port: int = Field(4222, alias="Port")
    # NATS URL the embedded server advertises to clients (`client_advertise`); empty: its listen address.
    advertise: str = Field("", alias="Advertise")
    auth: OrchestratorAuthConfig = Field(default_factory=OrchestratorAuthConfig, alias="Auth")
    tls: OrchestratorTLSConfig = Field(default_factory=OrchestratorTLSConfig, alias="TLS")
    cluster: OrchestratorClusterConfig = Field(default_factory=OrchestratorClusterConfig, alias="Cluster")
    nats: OrchestratorNATSConfig = Field(default_factory=OrchestratorNATSConfig, alias="NATS")
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig, alias="Scheduler")
    evaluation_broker: EvaluationBrokerConfig = Field(default_factory=EvaluationBrokerConfig, alias="EvaluationBroker")
    node_manager: NodeManagerConfig = Field(default_factory=NodeManagerConfig, alias="NodeManager")
    log_stream: LogStreamConfig = Field(default_factory=LogStreamConfig, alias="LogStream")


class ResourceScaler(WireModel):
    """Capacity as absolute values (`4`, `8Gb`) or shares of the host (`80%`)."""

    cpu: str = Field("80%", alias="CPU")
    memory: str = Field("80%", alias="Memory")
    disk: str = Field("80%", alias="Disk")
    gpu: str = Field("100%", alias="GPU")


class HeartbeatConfig(WireModel):
    interval: str = Field("15s", alias="Interval")
    info_update_interval: str = Field("1m", alias="InfoUpdateInterval")


class EnvConfig(WireModel):
    allow_list: list[str] = Field(default_factory=list, alias="AllowList")


class ComputeAuthConfig(WireModel):
    """`Compute.Auth`: the secret a compute-only node presents (the orchestrator's `Orchestrator.Auth.Token`)."""

    token: str = Field("", alias="Token")


class ComputeTLSConfig(WireModel):
    """`Compute.TLS`: TLS towards the orchestrator's NATS server: CACert is the CA that signed its certificate
    (else the system's), RequireTLS does the TLS handshake before NATS's first message."""

    ca_cert: str = Field("", alias="CACert")
    require_tls: bool = Field(False, alias="RequireTLS")


class ComputeResultsConfig(WireModel):
    """`Compute.Results`: ours, not a Bacalhau v1.9 key. How long a compute node keeps what executions leave."""

    # Results folders (`<DataDir>/compute/results/<execution>`) and local publisher archives
    # (`<DataDir>/compute/published/<execution>.tar.gz`) of executions that ended longer ago than this
    # are removed by a periodic sweep; those of executions still queued or running never are. A Go
    # duration; 0 keeps them forever.
    retention: str = Field("168h", alias="Retention")

    @field_validator("retention")
    @classmethod
    def _duration(cls, value: str) -> str:
        try:
            seconds = parse_duration_s(value)
        except ValueError as exc:
            raise ValueError(f"Compute.Results.Retention: {exc}") from None
        if seconds < 0:
            raise ValueError(f"Compute.Results.Retention must not be negative, got {value!r}")
        return value

    @property
    def retention_s(self) -> float:
        """The retention in seconds; 0 means forever."""
        return parse_duration_s(self.retention)


class ComputeConfig(WireModel):
    enabled: bool = Field(False, alias="Enabled")
    orchestrators: list[str] = Field(default_factory=lambda: ["nats://127.0.0.1:4222"], alias="Orchestrators")
    auth: ComputeAuthConfig = Field(default_factory=ComputeAuthConfig, alias="Auth")
    tls: ComputeTLSConfig = Field(default_factory=ComputeTLSConfig, alias="TLS")
    allocated_capacity: ResourceScaler = Field(default_factory=ResourceScaler, alias="AllocatedCapacity")
    allow_listed_local_paths: list[str] = Field(default_factory=list, alias="AllowListedLocalPaths")
    env: EnvConfig = Field(default_factory=EnvConfig, alias="Env")
    heartbeat: HeartbeatConfig = Field(default_factory=HeartbeatConfig, alias="Heartbeat")
    # Ours (Bacalhau has none): on SIGTERM, how long running executions may take to finish before the
    # node hands them back; a second signal ends the wait at once.
    shutdown_grace_period: str = Field("10s", alias="ShutdownGracePeriod")
    results: ComputeResultsConfig = Field(default_factory=ComputeResultsConfig, alias="Results")
    # Ours: a hybrid node (--orchestrator --compute) runs its compute side as a supervised child process,
    # so that the node's own work (scheduling, bookkeeping) uses two cores instead of one
    # (compute_process.py). Off by default: on 2 cores it drained trivial jobs 35 % faster, but took
    # submissions 30 % slower and added 3-4 ms to a lone job; the jobs' own work (wasmtime, containers)
    # uses every core either way.
    separate_process: bool = Field(False, alias="SeparateProcess")


class TaskTimeouts(WireModel):
    execution_timeout: str = Field("", alias="ExecutionTimeout")
    total_timeout: str = Field("", alias="TotalTimeout")


class TaskResourcesDefaults(WireModel):
    cpu: str = Field("500m", alias="CPU")
    memory: str = Field("512Mb", alias="Memory")
    disk: str = Field("", alias="Disk")
    gpu: str = Field("", alias="GPU")


class TaskDefaults(WireModel):
    resources: TaskResourcesDefaults = Field(default_factory=TaskResourcesDefaults, alias="Resources")
    publisher: SpecConfig = Field(default_factory=SpecConfig, alias="Publisher")
    timeouts: TaskTimeouts = Field(default_factory=TaskTimeouts, alias="Timeouts")


class JobTypeDefaults(WireModel):
    priority: int = Field(0, alias="Priority")
    task: TaskDefaults = Field(default_factory=TaskDefaults, alias="Task")


class JobDefaultsConfig(WireModel):
    batch: JobTypeDefaults = Field(default_factory=JobTypeDefaults, alias="Batch")
    ops: JobTypeDefaults = Field(default_factory=JobTypeDefaults, alias="Ops")
    service: JobTypeDefaults = Field(default_factory=JobTypeDefaults, alias="Service")
    daemon: JobTypeDefaults = Field(default_factory=JobTypeDefaults, alias="Daemon")


class LocalPublisherConfig(WireModel):
    address: str = Field("127.0.0.1", alias="Address")
    port: int = Field(6001, alias="Port")


class IpfsEndpointConfig(WireModel):
    """`*.Types.IPFS`: the Kubo RPC API to use (`/ip4/127.0.0.1/tcp/5001` or `http://host:5001`).

    Empty: the node's own embedded IPFS node (see `IPFS`), or `IPFS.Connect` when that is set.
    """

    endpoint: str = Field("", alias="Endpoint")


class S3PublisherConfig(WireModel):
    """`Publishers.Types.S3`: how the orchestrator hands out S3 results."""

    # True: `job get` downloads S3 results with the user's own credentials instead of a presigned URL.
    pre_signed_url_disabled: bool = Field(False, alias="PreSignedURLDisabled")
    pre_signed_url_expiration: str = Field("1h", alias="PreSignedURLExpiration")


class PublisherTypes(WireModel):
    local: LocalPublisherConfig = Field(default_factory=LocalPublisherConfig, alias="Local")
    ipfs: IpfsEndpointConfig = Field(default_factory=IpfsEndpointConfig, alias="IPFS")
    s3: S3PublisherConfig = Field(default_factory=S3PublisherConfig, alias="S3")


class PublishersConfig(WireModel):
    disabled: list[str] = Field(default_factory=list, alias="Disabled")
    types: PublisherTypes = Field(default_factory=PublisherTypes, alias="Types")


class DockerEngineConfig(WireModel):
    """`Engines.Types.Docker`: what docker jobs may use on this compute node."""

    # Glob patterns over image references (`bacalhau-test/*`, `127.0.0.1:*/*`); empty allows every image.
    allowed_images: list[str] = Field(default_factory=list, alias="AllowedImages")
    # Glob patterns over registry hosts (`docker.io`, `ghcr.io`, `localhost:5000`); empty allows every
    # registry. Ours, not a Bacalhau v1.9 key: an image reference makes the engine fetch any host:port.
    allowed_registries: list[str] = Field(default_factory=list, alias="AllowedRegistries")
    # Most processes one container may hold (fork bombs); 0 or less means no limit.
    pids_limit: int = Field(1024, alias="PidsLimit")


class EngineTypes(WireModel):
    docker: DockerEngineConfig = Field(default_factory=DockerEngineConfig, alias="Docker")


class EnginesConfig(WireModel):
    disabled: list[str] = Field(default_factory=list, alias="Disabled")
    types: EngineTypes = Field(default_factory=EngineTypes, alias="Types")


class JobLimitsConfig(WireModel):
    """`JobAdmissionControl.Limits`: the largest numbers and sizes a job spec may hold (ours, not a Bacalhau v1.9 key).

    Checked by the orchestrator on submit (HTTP 400 naming the field, the value and the key), by the CLI
    before sending (`job run`, `job validate`, from the CLI's own config), and on every evaluation and
    restart for jobs already stored. Each has a ceiling it may not exceed (see models/limits.py).
    """

    max_count: int = Field(DEFAULT_LIMITS.max_count, alias="MaxCount")
    max_priority: int = Field(DEFAULT_LIMITS.max_priority, alias="MaxPriority")
    # Go durations (`87600h` is 10 years of 365 days); at most 100 years, so that no timer overflows.
    max_execution_timeout: str = Field("87600h", alias="MaxExecutionTimeout")
    max_queue_timeout: str = Field("87600h", alias="MaxQueueTimeout")
    max_total_timeout: str = Field("87600h", alias="MaxTotalTimeout")
    # Resource strings as in a task's Resources (`500m`, `512Mb`, `1PiB`).
    max_cpu: str = Field("10000", alias="MaxCPU")
    max_memory: str = Field("1PiB", alias="MaxMemory")
    max_disk: str = Field("1PiB", alias="MaxDisk")
    max_gpu: int = Field(DEFAULT_LIMITS.max_gpus, alias="MaxGPU")
    # How many entries a spec's lists and maps may hold; a spec over one is refused for that alone.
    max_input_sources: int = Field(DEFAULT_LIMITS.max_input_sources, alias="MaxInputSources")
    max_result_paths: int = Field(DEFAULT_LIMITS.max_result_paths, alias="MaxResultPaths")
    max_constraints: int = Field(DEFAULT_LIMITS.max_constraints, alias="MaxConstraints")
    max_labels: int = Field(DEFAULT_LIMITS.max_labels, alias="MaxLabels")
    # Each of the job's Meta and the task's Meta, keys under bacalhau.org/ (the system's) not counted.
    max_meta_entries: int = Field(DEFAULT_LIMITS.max_meta_entries, alias="MaxMetaEntries")
    # Each of the task's Env and a docker engine's EnvironmentVariables.
    max_env_entries: int = Field(DEFAULT_LIMITS.max_env_entries, alias="MaxEnvEntries")
    # The `data:` URLs of a task's inline inputs, summed, as they stand in the spec (base64 included).
    max_inline_bytes: str = Field("8MiB", alias="MaxInlineBytes")

    @model_validator(mode="after")
    def _usable(self) -> JobLimitsConfig:
        # Checked when the config loads: a bad limit stops `serve` naming the key, not the first submit.
        self.to_limits()
        return self

    def to_limits(self) -> JobLimits:
        """The limits as numbers. ValueError naming the key when one does not parse or is out of range."""
        prefix = "JobAdmissionControl.Limits."
        numbers: dict[str, float] = {}
        parsed: tuple[tuple[str, str, str, Callable[[str], float]], ...] = (
            ("max_execution_timeout_s", "MaxExecutionTimeout", self.max_execution_timeout, parse_duration_s),
            ("max_queue_timeout_s", "MaxQueueTimeout", self.max_queue_timeout, parse_duration_s),
            ("max_total_timeout_s", "MaxTotalTimeout", self.max_total_timeout, parse_duration_s),
            ("max_cpu_cores", "MaxCPU", self.max_cpu, parse_cpu),
            ("max_memory_bytes", "MaxMemory", self.max_memory, parse_bytes),
            ("max_disk_bytes", "MaxDisk", self.max_disk, parse_bytes),
            ("max_inline_bytes", "MaxInlineBytes", self.max_inline_bytes, parse_bytes),
        )
        for name, key, raw, parse in parsed:
            try:
                numbers[name] = parse(raw)
            except ValueError as exc:
                raise ValueError(f"{prefix}{key}: {exc}") from None
        limits = JobLimits(
            max_count=self.max_count,
            max_priority=self.max_priority,
            max_execution_timeout_s=int(numbers["max_execution_timeout_s"]),
            max_queue_timeout_s=int(numbers["max_queue_timeout_s"]),
            max_total_timeout_s=int(numbers["max_total_timeout_s"]),
            max_cpu_cores=numbers["max_cpu_cores"],
            max_memory_bytes=int(numbers["max_memory_bytes"]),
            max_disk_bytes=int(numbers["max_disk_bytes"]),
            max_gpus=self.max_gpu,
            max_input_sources=self.max_input_sources,
            max_result_paths=self.max_result_paths,
            max_constraints=self.max_constraints,
            max_labels=self.max_labels,
            max_meta_entries=self.max_meta_entries,
            max_env_entries=self.max_env_entries,
            max_inline_bytes=int(numbers["max_inline_bytes"]),
        )
        problems = limits.problems()
        if problems:
            raise ValueError("; ".join(problems))
        return limits


LOCALITY_ANYWHERE = "anywhere"
LOCALITY_LOCAL = "local"
LOCALITIES = (LOCALITY_ANYWHERE, LOCALITY_LOCAL)


class JobAdmissionControlConfig(WireModel):
    """Which jobs a compute node takes at all (Bacalhau's `JobAdmissionControl`), and the bounds every
    job spec must keep (`Limits`, ours)."""

    # anywhere: take jobs whatever their inputs; local: only jobs whose every input is on this node
    # already (an allow-listed local path that exists, an IPFS CID in the node's own repo, inline data).
    locality: str = Field("anywhere", alias="Locality")
    # False: a job asking for any network (Host, Full, HTTP, Bridge) is refused with the reason.
    accept_networked_jobs: bool = Field(False, alias="AcceptNetworkedJobs")
    # Bacalhau's key: true refuses networked jobs whatever AcceptNetworkedJobs says (Bacalhau's default,
    # false, takes them; ours refuses them unless AcceptNetworkedJobs, so this only ever tightens).
    reject_networked_jobs: bool = Field(False, alias="RejectNetworkedJobs")
    limits: JobLimitsConfig = Field(default_factory=JobLimitsConfig, alias="Limits")

    @field_validator("locality")
    @classmethod
    def _known_locality(cls, value: str) -> str:
        # Checked when the config loads: a typo must not silently mean "anywhere".
        lowered = value.strip().lower()
        if lowered not in LOCALITIES:
            raise ValueError(f"JobAdmissionControl.Locality: {value!r} is not one of {', '.join(LOCALITIES)}")
        return lowered


class InputSourceTypes(WireModel):
    ipfs: IpfsEndpointConfig = Field(default_factory=IpfsEndpointConfig, alias="IPFS")


class InputCacheConfig(WireModel):
    """`InputSources.Cache`: ours, not a Bacalhau key. What a compute node keeps of the `urlDownload` and
    `s3` inputs it fetched, so that the next execution staging the same content downloads nothing
    (compute/storage/input_cache.py)."""

    enabled: bool = Field(True, alias="Enabled")
    # Where the cache lives; empty means `<DataDir>/compute/input-cache`. On the same filesystem as the
    # data dir, a hit is a hard link; elsewhere it is a copy.
    path: str = Field("", alias="Path")
    # Total size the cached inputs may take (least recently used go first); 0 disables the cache.
    max_size: str = Field("10GB", alias="MaxSize")

    @field_validator("max_size")
    @classmethod
    def _size(cls, value: str) -> str:
        try:
            parse_bytes(value)
        except ValueError as exc:
            raise ValueError(f"InputSources.Cache.MaxSize: {exc}") from None
        return value

    @property
    def max_bytes(self) -> int:
        """MaxSize in bytes (0: no caching)."""
        return parse_bytes(self.max_size)


class InputSourcesConfig(WireModel):
    disabled: list[str] = Field(default_factory=list, alias="Disabled")
    types: InputSourceTypes = Field(default_factory=InputSourceTypes, alias="Types")
    read_timeout: str = Field("5m", alias="ReadTimeout")
    max_retry_count: int = Field(3, alias="MaxRetryCount")
    # Largest body a `urlDownload` input may have, in bytes (10 GB); bigger downloads fail.
    max_download_bytes: int = Field(10 * 10**9, alias="MaxDownloadBytes")
    cache: InputCacheConfig = Field(default_factory=InputCacheConfig, alias="Cache")


class ResultDownloaderTypes(WireModel):
    ipfs: IpfsEndpointConfig = Field(default_factory=IpfsEndpointConfig, alias="IPFS")


class ResultDownloadersConfig(WireModel):
    """`ResultDownloaders`: how `bacalhau job get` fetches results that are not behind a URL."""

    disabled: list[str] = Field(default_factory=list, alias="Disabled")
    timeout: str = Field("5m", alias="Timeout")
    types: ResultDownloaderTypes = Field(default_factory=ResultDownloaderTypes, alias="Types")


class IpfsNodeConfig(WireModel):
    """`IPFS`: the embedded IPFS node a compute node (and `job get`) runs when no Kubo endpoint is set.

    Not a Bacalhau v1.9 key (it dropped its embedded node); the names follow Bacalhau v1.4's `Node.IPFS`.
    """

    # Legacy `BACALHAU_IPFS_CONNECT`: a Kubo RPC address used wherever no `*.Types.IPFS.Endpoint` is set.
    connect: str = Field("", alias="Connect")
    # Swarm peers (multiaddrs ending in /p2p/<peer id>) the embedded node connects to at start.
    swarm_addresses: list[str] = Field(default_factory=list, alias="SwarmAddresses")
    # Where the embedded node's swarm listens: loopback by default, so that a node joins no network
    # unless told to; set the machine's address for other machines to fetch its results.
    swarm_host: str = Field("127.0.0.1", alias="SwarmHost")
    # TCP port of the embedded node's swarm; 0 picks a free one.
    swarm_port: int = Field(0, alias="SwarmPort")


# Bacalhau's zerolog levels and log modes (`pkg/logger/logger.go`); `warning` is Python's spelling of warn.
LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "fatal", "panic")
LOG_MODES = ("default", "json", "cmd")


class LoggingConfig(WireModel):
    """`Logging`: how `bacalhau serve` writes its log (level and line format)."""

    level: str = Field("info", alias="Level")
    mode: str = Field("default", alias="Mode")
    log_debug_info_interval: str = Field("30s", alias="LogDebugInfoInterval")

    @field_validator("level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        # Checked when the config loads, so a typo stops `serve` with the key's name instead of
        # silently logging at the default level.
        if value.strip().lower() not in LOG_LEVELS:
            raise ValueError(f"{value!r} is an invalid log-level (valid levels: {', '.join(LOG_LEVELS)})")
        return value.strip().lower()

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if value.strip().lower() not in LOG_MODES:
            raise ValueError(f"{value!r} is an invalid log-mode (valid modes: {', '.join(LOG_MODES)})")
        return value.strip().lower()


class WebUIConfig(WireModel):
    enabled: bool = Field(False, alias="Enabled")
    listen: str = Field("0.0.0.0:8438", alias="Listen")
    # The API the UI talks to; empty: this node's own.
    backend: str = Field("", alias="Backend")


class UpdateConfig(WireModel):
    interval: str = Field("24h", alias="Interval")


REDACTED_MASK = c.REDACTED_MASK


class BacalhauConfig(WireModel):
    data_dir: str = Field(default_factory=default_data_dir, alias="DataDir")
    api: APIConfig = Field(default_factory=APIConfig, alias="API")
    name_provider: str = Field("puuid", alias="NameProvider")
    labels: dict[str, str] = Field(default_factory=dict, alias="Labels")
    orchestrator: OrchestratorConfig = Field(default_factory=OrchestratorConfig, alias="Orchestrator")
    compute: ComputeConfig = Field(default_factory=ComputeConfig, alias="Compute")
    job_defaults: JobDefaultsConfig = Field(default_factory=JobDefaultsConfig, alias="JobDefaults")
    publishers: PublishersConfig = Field(default_factory=PublishersConfig, alias="Publishers")
    engines: EnginesConfig = Field(default_factory=EnginesConfig, alias="Engines")
    job_admission_control: JobAdmissionControlConfig = Field(
        default_factory=JobAdmissionControlConfig, alias="JobAdmissionControl"
    )
    input_sources: InputSourcesConfig = Field(default_factory=InputSourcesConfig, alias="InputSources")
    result_downloaders: ResultDownloadersConfig = Field(
        default_factory=ResultDownloadersConfig, alias="ResultDownloaders"
    )
    ipfs: IpfsNodeConfig = Field(default_factory=IpfsNodeConfig, alias="IPFS")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, alias="Logging")
    web_ui: WebUIConfig = Field(default_factory=WebUIConfig, alias="WebUI")
    update_config: UpdateConfig = Field(default_factory=UpdateConfig, alias="UpdateConfig")
    strict_version_match: bool = Field(False, alias="StrictVersionMatch")
    disable_analytics: bool = Field(False, alias="DisableAnalytics")
    # The keys a config file, an env var, a -c flag or an override set (config/loader.py), canonical
    # and lower-cased: some defaults depend on whether the user chose a value (API.Host).
    _set_keys: frozenset[str] = PrivateAttr(default_factory=frozenset)

    def is_set(self, key: str) -> bool:
        """Whether `key` (e.g. `API.Host`) was given by the user rather than left at its default."""
        return key.lower() in self._set_keys

    @property
    def set_keys(self) -> frozenset[str]:
        """The keys the user set (canonical, lower-cased): what `is_set` answers from."""
        return self._set_keys

    def mark_set(self, keys: Iterable[str]) -> None:
        """Record `keys` as given by the user (the loader, or a hybrid node handing its config to its child)."""
        self._set_keys = frozenset(key.lower() for key in keys)

    def redacted(self) -> dict[str, Any]:
        """The config as served by /api/v1/agent/config: NATS tokens and API users' passwords and API keys
        masked, as Bacalhau's agent endpoint does."""
        wire = self.to_wire()
        for section in ("Orchestrator", "Compute"):
            auth = wire[section]["Auth"]
            if auth["Token"]:
                auth["Token"] = REDACTED_MASK
        for user in wire["API"]["Auth"]["Users"] or []:
            for secret in ("Password", "APIKey"):
                if user.get(secret):
                    user[secret] = REDACTED_MASK
        return wire
