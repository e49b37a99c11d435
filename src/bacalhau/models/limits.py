"""Upper bounds on a job spec's numbers, checked where specs are validated (client and server alike).

A number in a spec is an amount of work or of time somebody must carry out: a Count of 10**30 is not
a plan, and a timeout of 10**20 seconds overflows the timers that would enforce it. Every numeric
field has a bound here; the configurable ones come from `JobAdmissionControl.Limits.*` (config), and
none may be set above its ceiling, the largest value every part of the system still handles:

    field                     config key (JobAdmissionControl.Limits.)   default       ceiling
    Count                     MaxCount                                   1,000         2**63-1 (Go int)
    Priority                  MaxPriority                                2**63-1       2**63-1 (Go int)
    Timeouts.ExecutionTimeout MaxExecutionTimeout                        87600h (10y)  100 years
    Timeouts.QueueTimeout     MaxQueueTimeout                            87600h (10y)  100 years
    Timeouts.TotalTimeout     MaxTotalTimeout                            87600h (10y)  100 years
    Resources.CPU             MaxCPU (cores)                             10000         -
    Resources.Memory          MaxMemory                                  1PiB          -
    Resources.Disk            MaxDisk                                    1PiB          -
    Resources.GPU             MaxGPU                                     1024          -
    Network.Ports[].Static    (fixed: a TCP/UDP port)                    65535         65535
    Network.Ports[].Target    (fixed: a TCP/UDP port)                    65535         65535

The size of a spec is bounded the same way: how many entries each list or map holds, and how many
bytes its inline inputs carry (`data:` URLs travel inside the spec, to the store, to NATS, to every
compute node that bids):

    field                     config key (JobAdmissionControl.Limits.)   default       ceiling
    InputSources              MaxInputSources                            256           10,000
    ResultPaths               MaxResultPaths                             256           10,000
    Constraints               MaxConstraints                             256           10,000
    Labels                    MaxLabels                                  1,000         100,000
    Meta (job's, task's)      MaxMetaEntries                             1,000         100,000
    Env                       MaxEnvEntries                              1,000         100,000
    inline URLs, summed       MaxInlineBytes                             8 MiB         10 MiB (a request)
    Tasks                     (fixed: only the first runs)               100           100
    Network.Ports, .Domains   (fixed)                                    10,000        10,000

Lists of models (tasks, inputs, result paths, constraints, ports, domains) are also refused at parse
time above their ceiling (`fields.MaxItems`), before a single entry is validated: validating each
costs microseconds, and a 10 MB body holds millions of `{}`. The default inline total leaves 2 MiB of
the 10 MiB request body (MAX_REQUEST_BYTES) for the rest of the spec; base64 makes it ~6 MiB of data.

The timeout ceiling (100 years, ~3.2e9 s) stays below Python's threading.TIMEOUT_MAX and Go's
time.Duration (both ~292 years), so no timer built from an accepted timeout overflows.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from bacalhau.models.constants import MAX_REQUEST_BYTES

INT64_MAX = 2**63 - 1
SECONDS_PER_YEAR = 365 * 24 * 3600
# The longest timer anything in this system arms: above it a timeout is as good as none.
TIMER_CEILING_S = 100 * SECONDS_PER_YEAR
MAX_PORT = 65535
CONFIG_PREFIX = "JobAdmissionControl.Limits."
# Parse-time ceilings (fields.MaxItems): the most entries any node accepts in one list of a spec.
MAX_TASKS = 100
MAX_LIST_ENTRIES = 10_000
# The most entries a configured map bound (labels, meta, env) may allow.
MAX_MAP_ENTRIES = 100_000
# No request carries more: orchestrator API bodies and job files are capped at 10 MiB.
MAX_INLINE_CEILING_BYTES = MAX_REQUEST_BYTES


@dataclass(frozen=True)
class JobLimits:
    """The bounds one node applies to job specs. Defaults are the config's defaults."""

    max_count: int = 1000
    max_priority: int = INT64_MAX
    max_execution_timeout_s: int = 10 * SECONDS_PER_YEAR
    max_queue_timeout_s: int = 10 * SECONDS_PER_YEAR
    max_total_timeout_s: int = 10 * SECONDS_PER_YEAR
    max_cpu_cores: float = 10_000.0
    max_memory_bytes: int = 1024**5
    max_disk_bytes: int = 1024**5
    max_gpus: int = 1024
    max_input_sources: int = 256
    max_result_paths: int = 256
    max_constraints: int = 256
    max_labels: int = 1000
    max_meta_entries: int = 1000
    max_env_entries: int = 1000
    max_inline_bytes: int = 8 * 1024 * 1024

    def problems(self) -> list[str]:
        """Why these limits cannot be used (a bound below 0 or above its ceiling); empty when fine."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            ceiling = _CEILINGS.get(f.name)
            key = CONFIG_PREFIX + LIMIT_KEYS[f.name]
            if value < 0:
                out.append(f"{key} must not be negative, got {value}")
            elif ceiling is not None and value > ceiling:
                out.append(f"{key} must be at most {ceiling}, got {value}")
        return out


# The config key (under CONFIG_PREFIX) of each bound, for messages that tell the user what to raise.
LIMIT_KEYS = {
    "max_count": "MaxCount",
    "max_priority": "MaxPriority",
    "max_execution_timeout_s": "MaxExecutionTimeout",
    "max_queue_timeout_s": "MaxQueueTimeout",
    "max_total_timeout_s": "MaxTotalTimeout",
    "max_cpu_cores": "MaxCPU",
    "max_memory_bytes": "MaxMemory",
    "max_disk_bytes": "MaxDisk",
    "max_gpus": "MaxGPU",
    "max_input_sources": "MaxInputSources",
    "max_result_paths": "MaxResultPaths",
    "max_constraints": "MaxConstraints",
    "max_labels": "MaxLabels",
    "max_meta_entries": "MaxMetaEntries",
    "max_env_entries": "MaxEnvEntries",
    "max_inline_bytes": "MaxInlineBytes",
}

_CEILINGS: dict[str, int] = {
    "max_count": INT64_MAX,
    "max_priority": INT64_MAX,
    "max_execution_timeout_s": TIMER_CEILING_S,
    "max_queue_timeout_s": TIMER_CEILING_S,
    "max_total_timeout_s": TIMER_CEILING_S,
    "max_input_sources": MAX_LIST_ENTRIES,
    "max_result_paths": MAX_LIST_ENTRIES,
    "max_constraints": MAX_LIST_ENTRIES,
    "max_labels": MAX_MAP_ENTRIES,
    "max_meta_entries": MAX_MAP_ENTRIES,
    "max_env_entries": MAX_MAP_ENTRIES,
    "max_inline_bytes": MAX_INLINE_CEILING_BYTES,
}

DEFAULT_LIMITS = JobLimits()


def show_number(value: int | float) -> str:
    """A number for a message, short even when absurd (Python refuses str() of ints over 4300 digits)."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    return f"{value:g}" if isinstance(value, float) else str(value)
