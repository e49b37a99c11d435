"""A request's `Authorization` header -> a decision, as Bacalhau v1.9's users authorizer makes it
(pkg/authz/entry_point_authorizer.go):

    open path (capabilities.OPEN)           approved, whatever the header
    no header                               401  "Missing Authorization header"
    Basic base64(user:password)             the user, if the password matches (username case-insensitive)
    Bearer <API key>                        the user with that key
    Bearer <JWT> (three base64url parts)    an SSO token (auth/sso.py): its `sub`, with its `permissions`
    anything else                           401  "unsupported authentication method"
    identified, capability missing          403  "user '<name>' does not have the required capability 'write:job'"

`Decision.token_valid` is what tells 401 (who are you?) from 403 (not allowed). Without users and without
an SSO provider (ProviderID) Bacalhau allows everything (its default policy), and so does AllowAll here.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Protocol

from bacalhau.auth.capabilities import OPEN, REVEAL_ENV, grants, required_capability
from bacalhau.auth.sso import TokenVerifier
from bacalhau.auth.users import User, UserTable
from bacalhau.config.api_auth import AuthConfig
from bacalhau.models.errors import ConfigurationError


@dataclass(frozen=True)
class Decision:
    """The authorizer's answer: approved, or why not (token_valid tells 403 from 401)."""

    approved: bool
    token_valid: bool = False
    reason: str = ""
    # Who was identified ('' when nobody): for the server's log of refusals and the audit log.
    principal: str = ""
    # What they may see beyond the route itself: job Env values (capabilities.REVEAL_ENV).
    reveal_env: bool = True


APPROVED = Decision(approved=True, token_valid=True)


class Authorizer(Protocol):
    """Decides each API request (the plug point: AllowAll without users, UsersAuthorizer with them)."""

    @property
    def enforced(self) -> bool:
        """Whether any request can be refused."""
        ...

    def authorize(self, method: str, path: str, authorization: str | None) -> Decision:
        """The decision for `method` on `path` with this Authorization header (None: no header)."""
        ...

    def is_slow(self, authorization: str | None) -> bool:
        """Whether checking this header may take long (a password hash): run it off the event loop."""
        ...


class AllowAll:
    """Bacalhau's default when no users are configured: every request is approved."""

    enforced = False

    def is_slow(self, authorization: str | None) -> bool:
        return False

    def authorize(self, method: str, path: str, authorization: str | None) -> Decision:
        return APPROVED


class UsersAuthorizer:
    """`API.Auth.Users` and SSO tokens enforced (see the module docstring)."""

    enforced = True

    def __init__(self, config: AuthConfig) -> None:
        self._users = UserTable(config.users)
        self._tokens = TokenVerifier(config.oauth2)

    def is_slow(self, authorization: str | None) -> bool:
        """A password hash, or a token whose provider keys may have to be fetched."""
        if authorization is None:
            return False
        return authorization.startswith("Basic ") or (
            authorization.startswith("Bearer ") and _looks_like_jwt(authorization.removeprefix("Bearer ").strip())
        )

    def authorize(self, method: str, path: str, authorization: str | None) -> Decision:
        required = required_capability(method, path)
        if required == OPEN:
            return APPROVED
        if not authorization:
            return Decision(False, reason="Missing Authorization header")
        if authorization.startswith("Basic "):
            credentials = _basic(authorization.removeprefix("Basic "))
            if isinstance(credentials, str):
                return Decision(False, reason=credentials)
            user = self._users.by_basic(*credentials)
            if user is None:
                return Decision(False, reason="invalid basic auth credentials")
        elif authorization.startswith("Bearer "):
            token = authorization.removeprefix("Bearer ").strip()
            if _looks_like_jwt(token):
                found = self._tokens.verify(token)
                if isinstance(found, str):
                    return Decision(False, reason=found)
                user = User(found.name, found.actions)
            elif not token:
                return Decision(False, reason="empty API key provided")
            else:
                by_key = self._users.by_key(token)
                if by_key is None:
                    return Decision(False, reason="invalid API key")
                user = by_key
        else:
            return Decision(False, reason="unsupported authentication method")
        if grants(user.actions, required):
            return Decision(True, token_valid=True, principal=user.name, reveal_env=grants(user.actions, REVEAL_ENV))
        return Decision(
            False, token_valid=True, principal=user.name,
            reason=f"user '{user.name}' does not have the required capability '{required}'",
        )


def build_authorizer(config: AuthConfig) -> Authorizer:
    """The node's authorizer. ConfigurationError for users that break the rules, an incomplete SSO setup,
    and what this node cannot enforce (Rego policies): a security setting is never silently ignored."""
    if config.access_policy_path:
        raise ConfigurationError(
            "API.Auth.AccessPolicyPath (Rego policies) is not supported by bacalhau-py: the policy would not be applied",
            hint="use API.Auth.Users with Capabilities instead",
        )
    for name, method in config.methods.items():
        if method.type.strip().lower() != "challenge":
            raise ConfigurationError(
                f"API.Auth.Methods.{name}: authentication type {method.type!r} is not supported by bacalhau-py",
                hint="keep Bacalhau's default (ClientKey: challenge), or use API.Auth.Users",
            )
    # Bacalhau's switch: users, or an SSO provider (ProviderID). JWT settings without either are not
    # even checked for consistency there, and are not here (they switch nothing on).
    return UsersAuthorizer(config) if config.enforced else AllowAll()


def _basic(encoded: str) -> tuple[str, str] | str:
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "failed to decode basic auth credentials"
    username, sep, password = decoded.partition(":")
    if not sep:
        return "invalid basic auth credentials format"
    return username, password


def _looks_like_jwt(token: str) -> bool:
    parts = token.split(".")
    if len(parts) != 3:
        return False
    for part in parts[:2]:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):  # [[[[... nests past the limit
            return False
        if not isinstance(decoded, dict):
            return False
    return True
