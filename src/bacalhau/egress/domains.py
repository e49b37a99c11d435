"""Which hosts a job with network type HTTP may reach: its `Network.Domains`, read as Bacalhau reads them.

Bacalhau hands the list to squid as a `dstdomain` ACL, so the same words mean the same here:

    example.com      that host only (not www.example.com)
    .example.com     example.com and every name below it (www.example.com, a.b.example.com)
    192.0.2.7        that address only, when the job asks for it by address (a name that resolves
                     to it is a name, matched against the names)

Case does not matter, a trailing dot is ignored. Bacalhau refuses to start an HTTP job without domains
("at least one domain is required when HTTP networking is enabled"); `missing_domains_error` says the
same, so the node declines such a job at bid time instead of failing it after the pull.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

MISSING_DOMAINS = "invalid networking configuration, at least one domain is required when HTTP networking is enabled"


def _normal(name: str) -> str:
    return name.strip().lower().rstrip(".")


def _address(text: str) -> str | None:
    """The canonical text of an IP literal (brackets of an IPv6 authority removed), else None."""
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return None


@dataclass(frozen=True)
class DomainAllowList:
    """The hosts one job may reach through the egress proxy."""

    exact: frozenset[str]
    suffixes: tuple[str, ...]  # each with its leading dot: ".example.com"
    addresses: frozenset[str]

    @classmethod
    def of(cls, domains: Iterable[str]) -> DomainAllowList:
        """The allow-list for a job's `Network.Domains` (blank entries ignored)."""
        exact: set[str] = set()
        suffixes: set[str] = set()
        addresses: set[str] = set()
        for raw in domains:
            name = _normal(raw)
            if not name or name == ".":
                continue
            address = _address(name)
            if address is not None:
                addresses.add(address)
            elif name.startswith("."):
                suffixes.add(name)
            else:
                exact.add(name)
        return cls(frozenset(exact), tuple(sorted(suffixes)), frozenset(addresses))

    def __bool__(self) -> bool:
        return bool(self.exact or self.suffixes or self.addresses)

    def allows(self, host: str) -> bool:
        """True when the job may reach `host` (a name or an IP literal, as the request named it)."""
        name = _normal(host)
        address = _address(name)
        if address is not None:
            return address in self.addresses
        if name in self.exact:
            return True
        # ".example.com" covers example.com itself too (squid's dstdomain).
        return any(name == suffix[1:] or name.endswith(suffix) for suffix in self.suffixes)

    def describe(self) -> str:
        """The list as the job gave it, in a stable order, for messages."""
        return ", ".join(sorted(self.exact | set(self.suffixes) | self.addresses))
