"""`bacalhau profile ...`: named API endpoints (with timeout, TLS and token settings) to switch between.

Profiles live in `$BACALHAU_DIR/profiles/` (store.py); which one a client command uses, and when
explicit API settings win over it, is loader.py.
"""

from __future__ import annotations

from bacalhau.cli.command import BacalhauGroup

_P = "bacalhau.cli.profile."
profile = BacalhauGroup(
    name="profile",
    help="Manage CLI connection profiles for Bacalhau clusters.",
    lazy={
        "delete": (_P + "delete:delete", "Delete a profile."),
        "list": (_P + "list:list_profiles", "List all CLI profiles."),
        "save": (_P + "save:save", "Create or update a profile."),
        "select": (_P + "select:select", "Set a profile as current."),
        "show": (_P + "show:show", "Show profile details."),
    },
)
