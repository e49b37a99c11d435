"""Rejections: why a node cannot run a job, one node at a time and summarized for people and tools.

Feasibility (feasibility.py) yields one NodeRejection per node that cannot run the job. Listing them
one by one is unreadable at 1,000 nodes, so they are grouped by what a user would fix (kind + detail):

    rejections ──> groups (count desc, then kind order, then detail)
                     ├─> summarize: "3 nodes lack label zone=eu; 2 have too little memory (need 8.0 GB,
                     │              largest offers 4.0 GB); 1 has no docker engine; …and 2 more reasons"
                     │              (the job state message)
                     └─> to_wire / to_details: [{"Kind", "Reason", "Detail", "Count", "Nodes", ...}]
                                    (Details["NodeRejections"], see models/node_rejections.py)

Pure and deterministic: the same rejections in any order give the same text, so the scheduler stays
a pure function of its inputs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from bacalhau.models.job import LabelSelectorRequirement
from bacalhau.models.node_rejections import DETAIL_NODE_REJECTIONS, RESOURCE_KINDS, RejectionGroup, RejectionKind
from bacalhau.models.printable import one_line
from bacalhau.models.resources import Resources, format_bytes

# Groups named in the summary before "…and K more reasons": the message stays one readable line.
MAX_SUMMARY_GROUPS: Final = 5
# Groups in the wire list; the rest fold into one Other group. Bounds the detail stored with every
# state change of a queued job even when each node refuses with its own message.
MAX_WIRE_GROUPS: Final = 20
# Example node IDs per wire group.
MAX_NODES_PER_GROUP: Final = 10
# A node's refusal message or free text, as quoted in a reason.
MAX_DETAIL_CHARS: Final = 200
# As Resources.fits_in: CPU is a float, and 0.1 + 0.2 cores must still fit in 0.3.
_CPU_TOLERANCE = 1e-9

_KIND_ORDER = {kind: i for i, kind in enumerate(RejectionKind)}
_RESOURCE_WORD = {
    RejectionKind.NOT_ENOUGH_CPU: ("CPU", "CPU"),
    RejectionKind.NOT_ENOUGH_MEMORY: ("memory", "Memory"),
    RejectionKind.NOT_ENOUGH_DISK: ("disk", "Disk"),
    RejectionKind.NOT_ENOUGH_GPU: ("GPU", "GPU"),
}


class NodeRejection:
    """Why one node cannot run a job: a kind to count by, its detail, and the text a user reads.

    `NodeRejection(node_id, reason)` is free text (kind OTHER). Structured rejections give `kind` and
    `detail`; resource ones also the job's `needed` resources and the node's `offered` limit. Up to
    1,000 are built per evaluation, so they keep references and render their text only when asked.
    """

    __slots__ = ("_reason", "detail", "kind", "needed", "node_id", "offered")

    def __init__(
        self,
        node_id: str,
        reason: str = "",
        *,
        kind: RejectionKind = RejectionKind.OTHER,
        detail: str = "",
        needed: Resources | None = None,
        offered: Resources | None = None,
    ) -> None:
        self.node_id = node_id
        self.kind = kind
        self.detail = detail
        self.needed = needed
        self.offered = offered
        self._reason = reason

    @property
    def reason(self) -> str:
        """The reason for this node alone (`lacks label zone=eu`), or the free text it was given."""
        return self._reason or _group_of(self).reason(plural=False)

    @property
    def shortfalls(self) -> tuple[RejectionKind, ...]:
        """The resources that fall short, in RESOURCE_KINDS order; () for other kinds."""
        if not self.kind.is_resource:
            return ()
        if self.needed is None or self.offered is None:
            return (self.kind,)
        need, offer = self.needed, self.offered
        short = (
            need.cpu > offer.cpu + _CPU_TOLERANCE,
            need.memory > offer.memory,
            need.disk > offer.disk,
            need.gpu > offer.gpu,
        )
        found = tuple(k for k, is_short in zip(RESOURCE_KINDS, short, strict=True) if is_short)
        return found or (self.kind,)

    def __str__(self) -> str:
        return f"node {self.node_id}: {self.reason}"

    def __repr__(self) -> str:
        return f"NodeRejection({self.node_id!r}, kind={self.kind.name}, detail={self.detail!r}, reason={self.reason!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NodeRejection):
            return NotImplemented
        return (self.node_id, self.kind, self.detail, self._reason, self.shortfalls) == (
            other.node_id, other.kind, other.detail, other._reason, other.shortfalls,
        )

    def __hash__(self) -> int:
        return hash((self.node_id, self.kind, self.detail, self._reason))


def first_shortfall(needed: Resources, offered: Resources) -> RejectionKind:
    """The first resource (CPU, memory, disk, GPU) of which `offered` has less than `needed`.

    Only called once `needed.fits_in(offered)` is known to be False.
    """
    if needed.cpu > offered.cpu + _CPU_TOLERANCE:
        return RejectionKind.NOT_ENOUGH_CPU
    if needed.memory > offered.memory:
        return RejectionKind.NOT_ENOUGH_MEMORY
    if needed.disk > offered.disk:
        return RejectionKind.NOT_ENOUGH_DISK
    return RejectionKind.NOT_ENOUGH_GPU


def constraint_text(req: LabelSelectorRequirement) -> str:
    """A constraint as a user writes it in a selector: `zone=eu`, `zone in (eu,us)`, `gpu`, `!gpu`."""
    op = req.operator.lower()
    values = ",".join(req.values)
    if op in ("=", "==", "!="):
        return f"{req.key}{op}{values}"
    if op in ("in", "notin"):
        return f"{req.key} {op} ({values})"
    if op == "exists":
        return req.key
    if op == "!":
        return f"!{req.key}"
    if op in ("gt", "lt"):
        return f"{req.key}{'>' if op == 'gt' else '<'}{values}"
    return f"{req.key} {req.operator} {values}".rstrip()


def summarize(rejections: Iterable[NodeRejection], *, max_groups: int = MAX_SUMMARY_GROUPS) -> str:
    """One sentence: each reason with how many nodes it rejected, the most common first.

    `3 nodes lack label zone=eu; 1 has no docker engine; …and 2 more reasons`. "" for no rejections.
    """
    groups = _groups(rejections)
    parts = [group.counted(first=i == 0) for i, group in enumerate(groups[:max_groups])]
    rest = len(groups) - max_groups
    if rest > 0:
        parts.append(f"…and {rest} more reason{'' if rest == 1 else 's'}")
    return "; ".join(parts)


def to_wire(
    rejections: Iterable[NodeRejection],
    *,
    max_groups: int = MAX_WIRE_GROUPS,
    max_nodes: int = MAX_NODES_PER_GROUP,
) -> list[dict[str, Any]]:
    """The groups as the API carries them (models/node_rejections.RejectionGroup), most common first.

    Beyond `max_groups`, the remaining groups fold into one Other group counting all their nodes.
    """
    groups = _groups(rejections, keep_nodes=max_nodes)
    wire = [group.to_model().to_wire() for group in groups[:max_groups]]
    rest = groups[max_groups:]
    if rest:
        nodes = [n for group in rest for n in group.nodes][:max_nodes]
        folded = RejectionGroup(
            Kind=RejectionKind.OTHER.value,
            Reason=f"{len(rest)} more reason{'' if len(rest) == 1 else 's'}",
            Count=sum(group.count for group in rest),
            Nodes=nodes,
        )
        wire.append(folded.to_wire())
    return wire


def to_details(rejections: Iterable[NodeRejection]) -> dict[str, str]:
    """`{"NodeRejections": <to_wire as JSON>}` for a job state's Details; {} when nothing was rejected."""
    wire = to_wire(rejections)
    if not wire:
        return {}
    return {DETAIL_NODE_REJECTIONS: json.dumps(wire, separators=(",", ":"))}


@dataclass
class _Group:
    """Rejections sharing kind, detail and (for resources) the set of resources that fall short."""

    kind: RejectionKind
    detail: str
    shortfalls: tuple[RejectionKind, ...]
    # How many node IDs to keep as examples.
    keep_nodes: int = MAX_NODES_PER_GROUP
    count: int = 0
    nodes: list[str] = field(default_factory=list)
    need: Resources | None = None
    # The most any node of the group offers, per resource (each maximum may come from a different node).
    offered: Resources | None = None

    def add(self, rejection: NodeRejection) -> None:
        self.count += 1
        if len(self.nodes) < self.keep_nodes:
            self.nodes.append(rejection.node_id)
        if rejection.needed is not None and self.need is None:
            self.need = rejection.needed
        offer = rejection.offered
        if offer is not None:
            if self.offered is None:
                self.offered = Resources(cpu=offer.cpu, memory=offer.memory, disk=offer.disk, gpu=offer.gpu)
            else:
                best = self.offered
                best.cpu, best.memory = max(best.cpu, offer.cpu), max(best.memory, offer.memory)
                best.disk, best.gpu = max(best.disk, offer.disk), max(best.gpu, offer.gpu)

    def sort_key(self) -> tuple[int, int, str, tuple[int, ...]]:
        return (-self.count, _KIND_ORDER[self.kind], self.detail, tuple(_KIND_ORDER[k] for k in self.shortfalls))

    def counted(self, *, first: bool) -> str:
        """The reason with its count: `3 nodes lack label zone=eu` first, `3 lack ...` after."""
        noun = "node" if self.count == 1 else "nodes"
        text = self.reason(plural=self.count != 1)
        if self.kind is RejectionKind.OTHER:
            return f"{self.count} {noun}: {text}"  # free text is not a verb phrase
        return f"{self.count} {noun} {text}" if first else f"{self.count} {text}"

    def reason(self, *, plural: bool) -> str:
        """The reason as a verb phrase for one node (`lacks label zone=eu`) or several (`lack ...`)."""
        d = one_line(self.detail, max_chars=MAX_DETAIL_CHARS)

        def verb(one: str, many: str) -> str:
            return many if plural else one

        match self.kind:
            case RejectionKind.NOT_APPROVED:
                if d.upper() == "REJECTED":
                    return f"{verb('is', 'are')} rejected from the cluster"
                return f"{verb('is', 'are')} not approved"
            case RejectionKind.DISCONNECTED:
                return f"{verb('is', 'are')} disconnected"
            case RejectionKind.NO_COMPUTE:
                return f"{verb('does', 'do')} not run compute"
            case RejectionKind.ENGINE_UNSUPPORTED:
                return f"{verb('has', 'have')} no {d} engine"
            case RejectionKind.PUBLISHER_UNSUPPORTED:
                return f"{verb('has', 'have')} no {d} publisher"
            case RejectionKind.INPUT_SOURCE_UNSUPPORTED:
                return f"cannot read {d} inputs"
            case RejectionKind.CONSTRAINT_NOT_MATCHED:
                # `zone!=eu`, `zone notin (..)` and `!gpu` fail because of a label the node has.
                if d.startswith("!") or "!=" in d or " notin " in d:
                    return f"{verb('does', 'do')} not match {d}"
                return f"{verb('lacks', 'lack')} label {d}"
            case RejectionKind.BID_REJECTED:
                return f"refused the job: {d}" if d else "refused the job"
            case RejectionKind.ALREADY_RUNS_JOB:
                return f"already {verb('runs', 'run')} an execution of this job"
            case RejectionKind.ALREADY_FAILED:
                return f"already failed partition {d} of this job" if d else "already failed this job"
            case RejectionKind.SHUTTING_DOWN:
                return f"{verb('is', 'are')} shutting down"
            case RejectionKind.CORDONED:
                return f"{verb('is', 'are')} cordoned (drained by an operator)"
            case RejectionKind.OTHER:
                return d
        return f"{verb('has', 'have')} too little {self._resources()}"

    def _resources(self) -> str:
        """`memory (need 8.0 GB, largest offers 4.0 GB)`, or several: `CPU and memory (need 4 CPU, ...)`."""
        words = [_RESOURCE_WORD[k][0] for k in self.shortfalls]
        named = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
        if self.need is None or self.offered is None:
            return named
        several = len(self.shortfalls) > 1
        need = ", ".join(_amount(k, self.need, with_noun=several) for k in self.shortfalls)
        offer = ", ".join(_amount(k, self.offered, with_noun=several) for k in self.shortfalls)
        offers = "offers" if self.count == 1 else "largest offers"
        sep = "; " if several else ", "
        return f"{named} (need {need}{sep}{offers} {offer})"

    def to_model(self) -> RejectionGroup:
        detail = self.detail
        need: dict[str, int | float] = {}
        offered: dict[str, int | float] = {}
        if self.shortfalls:
            detail = ",".join(_RESOURCE_WORD[k][0].lower() for k in self.shortfalls)
            for k in self.shortfalls:
                key = _RESOURCE_WORD[k][1]
                if self.need is not None:
                    need[key] = _figure(k, self.need)
                if self.offered is not None:
                    offered[key] = _figure(k, self.offered)
        return RejectionGroup(
            Kind=self.kind.value,
            Reason=self.reason(plural=False),
            Detail=one_line(detail, max_chars=MAX_DETAIL_CHARS),
            Count=self.count,
            Nodes=self.nodes,
            Need=need,
            LargestOffered=offered,
        )


def _group_of(rejection: NodeRejection) -> _Group:
    group = _Group(rejection.kind, _detail_key(rejection), rejection.shortfalls)
    group.add(rejection)
    return group


def _detail_key(rejection: NodeRejection) -> str:
    # Free text has no detail of its own: its text is what tells its groups apart.
    if rejection.kind is RejectionKind.OTHER and not rejection.detail:
        return rejection._reason
    return rejection.detail


def _groups(rejections: Iterable[NodeRejection], *, keep_nodes: int = MAX_NODES_PER_GROUP) -> list[_Group]:
    by_key: dict[tuple[RejectionKind, str, tuple[RejectionKind, ...]], _Group] = {}
    for rejection in rejections:
        key = (rejection.kind, _detail_key(rejection), rejection.shortfalls)
        group = by_key.get(key)
        if group is None:
            group = by_key[key] = _Group(*key, keep_nodes=keep_nodes)
        group.add(rejection)
    return sorted(by_key.values(), key=_Group.sort_key)


def _figure(kind: RejectionKind, resources: Resources) -> int | float:
    match kind:
        case RejectionKind.NOT_ENOUGH_CPU:
            return resources.cpu
        case RejectionKind.NOT_ENOUGH_MEMORY:
            return resources.memory
        case RejectionKind.NOT_ENOUGH_DISK:
            return resources.disk
    return resources.gpu


def _amount(kind: RejectionKind, resources: Resources, *, with_noun: bool) -> str:
    value = _figure(kind, resources)
    match kind:
        case RejectionKind.NOT_ENOUGH_CPU:
            return f"{value:g} CPU"
        case RejectionKind.NOT_ENOUGH_GPU:
            return f"{value} GPU"
    text = format_bytes(int(value))
    return f"{text} {_RESOURCE_WORD[kind][0]}" if with_noun else text
