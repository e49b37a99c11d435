"""Host firewall rules that keep job containers off the node's own services.

A container on a bridge reaches every address of its host: packets for the bridge's gateway address,
for docker0's, for the host's public address all arrive on the host's INPUT path, where the node's
API, its NATS server and anything bound to 0.0.0.0 answer. Docker's own rules only govern forwarding
(FORWARD), never INPUT. So each job network's bridge gets a chain of ours, jumped to from INPUT for
packets coming in on that bridge:

    -A INPUT -i <bridge> -j BACALHAU-<id>                   (inserted first, so nothing accepts before it)
    -A BACALHAU-<id> -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT   (answers to the host's own
                                                            connections: published ports, the proxy's)
    -A BACALHAU-<id> -p tcp -d <gateway> --dport <proxy port> -j ACCEPT     (HTTP network only)
    -A BACALHAU-<id> -p tcp -j REJECT --reject-with tcp-reset               (refused at once, no hang)
    -A BACALHAU-<id> -j REJECT

The same chain goes into ip6tables when it is there (a container of a network without IPv6 has none,
but a link-local address must not become the way around). The rules are made with the `iptables`
command, as Docker makes its own, so they land in whichever backend (nf_tables or legacy) Docker uses.
Rules already in place are left untouched (no window where the chain is empty); they stay when the
node stops with containers still running, so a container taken back after a restart was never
unguarded.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

_TIMEOUT_S = 30.0


class FirewallError(Exception):
    """An iptables command failed; the message says which and why."""


@dataclass(frozen=True)
class Guard:
    """The rules for one job bridge."""

    chain: str
    interface: str
    allow_tcp: tuple[str, int] | None = None  # (gateway address, proxy port): the one way in, if any

    def rules(self, ipv6: bool) -> list[list[str]]:
        """The chain's rules, in order, as iptables arguments after `-A <chain>`."""
        rules = [["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"]]
        if self.allow_tcp is not None and not ipv6:
            address, port = self.allow_tcp
            rules.append(["-p", "tcp", "-d", address, "--dport", str(port), "-j", "ACCEPT"])
        rules.append(["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"])
        rules.append(["-j", "REJECT"])
        return rules


class HostFirewall:
    """Installs and removes Guards with the iptables commands (root only)."""

    def __init__(self, *, iptables: str = "iptables", ip6tables: str | None = "ip6tables") -> None:
        self._tools = [iptables] + ([ip6tables] if ip6tables and shutil.which(ip6tables) else [])

    def unavailable(self) -> str | None:
        """Why rules cannot be made here (no iptables, not root), or None."""
        if shutil.which(self._tools[0]) is None:
            return f"the `{self._tools[0]}` command is not installed"
        try:
            self._run(self._tools[0], ["-S", "INPUT"])
        except FirewallError as exc:
            return str(exc)
        return None

    def guard(self, guard: Guard) -> None:
        """Make sure the guard's chain holds its rules and INPUT jumps to it. Raises FirewallError."""
        for tool in self._tools:
            ipv6 = tool != self._tools[0]
            rules = guard.rules(ipv6)
            if not self._in_place(tool, guard, rules):
                if not self._ok(tool, ["-n", "-L", guard.chain]):
                    self._run(tool, ["-N", guard.chain])
                self._run(tool, ["-F", guard.chain])
                for rule in rules:
                    self._run(tool, ["-A", guard.chain, *rule])
            if not self._ok(tool, ["-C", "INPUT", "-i", guard.interface, "-j", guard.chain]):
                self._run(tool, ["-I", "INPUT", "1", "-i", guard.interface, "-j", guard.chain])

    def remove(self, guard: Guard) -> None:
        """Take the guard out (its bridge is gone). Idempotent; errors are ignored."""
        for tool in self._tools:
            for _ in range(16):  # every copy of the jump, bounded
                if not self._ok(tool, ["-D", "INPUT", "-i", guard.interface, "-j", guard.chain]):
                    break
            self._ok(tool, ["-F", guard.chain])
            self._ok(tool, ["-X", guard.chain])

    def _in_place(self, tool: str, guard: Guard, rules: list[list[str]]) -> bool:
        try:
            listed = self._run(tool, ["-S", guard.chain]).splitlines()
        except FirewallError:
            return False
        # `-S` prints "-N chain" then one "-A" line per rule.
        if sum(1 for line in listed if line.startswith("-A ")) != len(rules):
            return False
        return all(self._ok(tool, ["-C", guard.chain, *rule]) for rule in rules)

    def _ok(self, tool: str, args: Sequence[str]) -> bool:
        try:
            self._run(tool, args)
        except FirewallError:
            return False
        return True

    @staticmethod
    def _run(tool: str, args: Sequence[str]) -> str:
        command = [tool, "-w", "10", *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FirewallError(f"`{' '.join(command)}` could not run: {exc}") from exc
        if done.returncode != 0:
            reason = (done.stderr or done.stdout).strip().splitlines()
            raise FirewallError(f"`{' '.join(command)}` failed: {reason[0] if reason else f'exit {done.returncode}'}")
        return done.stdout
