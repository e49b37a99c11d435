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

The timeout ceiling (100 years, ~3.2e9 s) stays below Python's threading.TIMEOUT_MAX and Go's
time.Duration (both ~292 years), so no timer built from an accepted timeout overflows.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

INT64_MAX = 2**63 - 1
SECONDS_PER_YEAR = 365 * 24 * 3600
# The longest timer anything in this system arms: above it a timeout is as good as none.
TIMER_CEILING_S = 100 * SECONDS_PER_YEAR
MAX_PORT = 65535
CONFIG_PREFIX = "JobAdmissionControl.Limits."


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
}

_CEILINGS: dict[str, int] = {
    "max_count": INT64_MAX,
    "max_priority": INT64_MAX,
    "max_execution_timeout_s": TIMER_CEILING_S,
    "max_queue_timeout_s": TIMER_CEILING_S,
    "max_total_timeout_s": TIMER_CEILING_S,
}

DEFAULT_LIMITS = JobLimits()


def show_number(value: int | float) -> str:
    """A number for a message, short even when absurd (Python refuses str() of ints over 4300 digits)."""
    if isinstance(value, int) and value.bit_length() > 128:
        return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    return f"{value:g}" if isinstance(value, float) else str(value)
