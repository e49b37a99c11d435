"""`bacalhau auth ...`: credentials for a node's API (API.Auth.Users, SSO)."""

from __future__ import annotations

from bacalhau.cli.command import BacalhauGroup

_P = "bacalhau.cli.auth."
auth = BacalhauGroup(
    name="auth",
    help="Commands related to authentication.",
    lazy={
        "hash-password": (_P + "hash_password:hash_password", "Hash a password for API.Auth.Users."),
        "info": (_P + "info:info", "Show the credentials the CLI would use, and the node's login methods."),
        "sso": (_P + "sso:sso", "Log in to the node's identity provider (OAuth2 device flow)."),
    },
)
