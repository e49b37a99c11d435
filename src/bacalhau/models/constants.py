"""Type names and well-known keys, exactly as Bacalhau spells them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

# Job types
JOB_TYPE_BATCH: Final = "batch"
JOB_TYPE_OPS: Final = "ops"
JOB_TYPE_SERVICE: Final = "service"
JOB_TYPE_DAEMON: Final = "daemon"
JOB_TYPES: Final = (JOB_TYPE_BATCH, JOB_TYPE_OPS, JOB_TYPE_SERVICE, JOB_TYPE_DAEMON)

# Engines
ENGINE_DOCKER: Final = "docker"
ENGINE_WASM: Final = "wasm"
ENGINE_NOOP: Final = "noop"

# Publishers
PUBLISHER_NOOP: Final = "noop"
PUBLISHER_LOCAL: Final = "local"
PUBLISHER_S3: Final = "s3"
PUBLISHER_IPFS: Final = "ipfs"
PUBLISHER_S3_MANAGED: Final = "s3managed"

# Storage sources
STORAGE_INLINE: Final = "inline"
STORAGE_LOCAL: Final = "local"
STORAGE_LOCAL_DIRECTORY: Final = "localDirectory"  # deprecated alias of `local`
STORAGE_URL: Final = "urlDownload"
STORAGE_S3: Final = "s3"
STORAGE_S3_PRESIGNED: Final = "s3PreSigned"
STORAGE_IPFS: Final = "ipfs"

# Task network types
NETWORK_TYPES: Final = ("Default", "None", "Host", "Full", "HTTP", "Bridge")

DEFAULT_NAMESPACE: Final = "default"
DEFAULT_TASK_NAME: Final = "main"
DEFAULT_CPU: Final = "500m"
DEFAULT_MEMORY: Final = "512Mb"
WASM_DEFAULT_ENTRYPOINT: Final = "_start"

META_PREFIX: Final = "bacalhau.org/"
META_ORCHESTRATOR_ID: Final = "bacalhau.org/orchestrator.id"
META_REQUESTER_ID: Final = "bacalhau.org/requester.id"
META_ORCHESTRATOR_PROTOCOL: Final = "bacalhau.org/orchestrator.protocol"
META_SERVER_INSTALLATION_ID: Final = "bacalhau.org/server.installation.id"
META_SERVER_INSTANCE_ID: Final = "bacalhau.org/server.instance.id"
META_CLIENT_INSTALLATION_ID: Final = "bacalhau.org/client.installation.id"
META_CLIENT_INSTANCE_ID: Final = "bacalhau.org/client.instance.id"

# Files written into every execution's results folder (Bacalhau's download names).
RESULT_STDOUT: Final = "stdout"
RESULT_STDERR: Final = "stderr"
RESULT_EXIT_CODE: Final = "exitCode"

# RunOutput carries at most this much of stdout/stderr (the rest is in the results folder).
RUN_OUTPUT_MAX_BYTES: Final = 2048

MAX_REQUEST_BYTES: Final = 10 * 1024 * 1024

# ComputeState.Details key a stopping compute node sets ("true") on each execution it hands back
# unfinished (never started, or stopped on purpose at the end of its drain): the node's doing, not the
# job's, so it does not count against the job's retries.
DETAIL_HANDED_BACK: Final = "HandedBack"
# ComputeState.Details key set ("true") on an execution lost rather than failed: by the orchestrator when
# it lost the node (gone, disconnected, no longer holding it after a restart), by a compute node that
# lost it to its own restart. An attempt, but the node did not fail the task itself, so a retry may go
# back to that node once it is healthy again.
DETAIL_NODE_LOST: Final = "NodeLost"

# Ours: Meta key asking for the result of an identical completed job instead of a run (orchestrator/result_reuse.py).
META_RESULTS_REUSE: Final = "results.reuse"
META_BOOLEAN_TRUE: Final = ("true", "yes", "1")
META_BOOLEAN_FALSE: Final = ("false", "no", "0", "")

# An Env value `env:NAME` is forwarded from the compute node's own environment (Compute.Env.AllowList).
ENV_FORWARD_PREFIX: Final = "env:"
# Bacalhau's mask for secrets it serves (`pkg/publicapi/endpoint/agent/util.go`).
REDACTED_MASK: Final = "********"


def canonical_type(name: str, known: Iterable[str]) -> str | None:
    """Bacalhau compares type names case-insensitively; return the canonical spelling or None."""
    lowered = name.strip().lower()
    for k in known:
        if k.lower() == lowered:
            return k
    return None
