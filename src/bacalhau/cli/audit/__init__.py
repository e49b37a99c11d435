"""`bacalhau audit ...` (ours): who did what through the API."""

from __future__ import annotations

from bacalhau.cli.command import BacalhauGroup

audit = BacalhauGroup(
    name="audit",
    help="Who did what through the API (ours).",
    lazy={"list": ("bacalhau.cli.audit.list:list_entries", "List the audit log, newest first.")},
)
