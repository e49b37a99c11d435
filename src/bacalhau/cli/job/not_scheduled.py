"""`bacalhau job describe`'s "Why Not Scheduled": how many nodes could not take the job, and why.

While a job waits in the queue, or once it failed for lack of nodes, the scheduler leaves the grouped
reasons in the job state's Details["NodeRejections"] (models/node_rejections.py). The description
shows them as a table, most common reason first:

    Why Not Scheduled
     COUNT  REASON                                                      EXAMPLE NODES
     5      lacks label zone=eu                                         n-1a2b3c4d, n-5e6f7a8b, n-9c0d1e2f, …
     2      has too little memory (need 8.0 GB, largest offers 4.0 GB)  n-3a4b5c6d, n-7e8f9a0b
     1      has no docker engine                                        n-0a1b2c3d

`--output json|yaml` adds them decoded as a top-level `NotScheduled` list, only when there are any:
the document stays Bacalhau's GetJobResponse with one key more.
"""

from __future__ import annotations

from typing import Any

from bacalhau.cli.output import Column, OutputOptions, render_rows, short_id
from bacalhau.models.job import Job
from bacalhau.models.node_rejections import RejectionGroup, rejection_groups
from bacalhau.models.state import JobStateType

NOT_SCHEDULED_KEY = "NotScheduled"
# Node IDs per row unless --wide (which shows every ID the server sent, at most 10 per reason).
EXAMPLE_NODES = 3

# A Running or Completed job may have been queued before; only a waiting or failed one is explained.
_EXPLAINED_STATES = (JobStateType.Queued, JobStateType.Failed)


def not_scheduled(job: Job) -> list[RejectionGroup]:
    """The reasons nodes could not take `job`, when it is Queued or Failed and the server gave them."""
    if job.state.state_type not in _EXPLAINED_STATES:
        return []
    return rejection_groups(job.state.details)


def add_not_scheduled(document: dict[str, Any], job: Job) -> dict[str, Any]:
    """`document` (a GetJobResponse on the wire) with a NotScheduled list when there are reasons."""
    groups = not_scheduled(job)
    if groups:
        document[NOT_SCHEDULED_KEY] = [group.to_wire() for group in groups]
    return document


def render_not_scheduled(groups: list[RejectionGroup], opts: OutputOptions) -> str:
    """The section's title and table; "" without groups. Cells are made terminal-safe by render_rows."""
    if not groups:
        return ""
    columns: list[Column[RejectionGroup]] = [
        Column("Count", lambda g: str(g.count)),
        Column("Reason", lambda g: g.reason, truncate=False),
        Column("Example Nodes", lambda g: _examples(g, wide=opts.wide), truncate=False),
    ]
    return "Why Not Scheduled\n" + render_rows(columns, groups, opts)


def _examples(group: RejectionGroup, *, wide: bool) -> str:
    shown = group.nodes if wide else [short_id(n) for n in group.nodes[:EXAMPLE_NODES]]
    more = ", …" if group.count > len(shown) else ""
    return ", ".join(shown) + more
