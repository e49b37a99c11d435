"""The API's users (`API.Auth.Users`): checked at start-up with Bacalhau's rules and messages, then found
by username (case-insensitive) or API key, passwords compared in constant time.

A stored password that looks like a bcrypt hash (`$2a$`, `$2b$`, `$2y$`, at least 60 characters) is
checked with bcrypt; any other is compared as plain text, as Bacalhau does (pkg/credsecurity).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from bacalhau.config.api_auth import AuthUser
from bacalhau.models.errors import ConfigurationError

_USERNAME_RE = re.compile(r"^[a-zA-Z0-9]+$")
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
MIN_PASSWORD, MAX_PASSWORD = 10, 255
MIN_API_KEY, MAX_API_KEY = 20, 255
MAX_USERNAME = 100
# Bacalhau hashes with Go's bcrypt.DefaultCost.
BCRYPT_COST = 10


@dataclass(frozen=True)
class User:
    """A configured user as the authorizer uses it: who (for messages) and what they may do."""

    name: str
    actions: tuple[str, ...]
    password: str = ""


def user_id(user: AuthUser) -> str:
    """How a user is named in messages: its alias, its username, or the end of its API key."""
    if user.alias.strip():
        return user.alias.strip()
    if user.username.strip():
        return user.username.strip()
    return f"API key ending in ...{user.api_key[-5:]}"


class UserTable:
    """The users by lowercased username and by API key. ConfigurationError (Bacalhau's wording, under
    `error initializing users:`) when one breaks a rule."""

    def __init__(self, users: list[AuthUser]) -> None:
        self.by_username: dict[str, User] = {}
        self.by_api_key: dict[str, User] = {}
        aliases: dict[str, str] = {}
        for configured in users:
            name = user_id(configured)
            problem = _problem(configured, name)
            if problem:
                raise _invalid(problem)
            actions = tuple(a for cap in configured.capabilities for a in cap.actions)
            alias = configured.alias.strip().lower()
            if alias:
                if alias in aliases:
                    raise _invalid(f"duplicate alias detected: '{aliases[alias]}' and '{configured.alias}' (aliases are case-insensitive)")
                aliases[alias] = configured.alias
            if configured.api_key:
                if configured.api_key in self.by_api_key:
                    raise _invalid(f"duplicate API key detected for user '{name}'")
                self.by_api_key[configured.api_key] = User(name=name, actions=actions)
            else:
                key = configured.username.strip().lower()
                if key in self.by_username:
                    raise _invalid(
                        f"duplicate username detected: '{self.by_username[key].name}' and '{configured.username}' "
                        "(usernames are case-insensitive)"
                    )
                self.by_username[key] = User(name=name, actions=actions, password=configured.password)

    def by_basic(self, username: str, password: str) -> User | None:
        """The user these credentials name, if the password is right."""
        user = self.by_username.get(username.strip().lower())
        if user is None or not check_password(user.password, password):
            return None
        return user

    def by_key(self, api_key: str) -> User | None:
        # Constant time against each key: which key is close must not show in the timing.
        found = None
        for key, user in self.by_api_key.items():
            if hmac.compare_digest(key.encode(), api_key.encode()):
                found = user
        return found


def check_password(stored: str, given: str) -> bool:
    """bcrypt for a stored hash, else a constant-time comparison of the plain texts."""
    if stored.startswith(_BCRYPT_PREFIXES) and len(stored) >= 60:
        import bcrypt  # only nodes with hashed passwords pay for the import

        try:
            return bool(bcrypt.checkpw(given.encode(), stored.encode()))
        except ValueError:  # a malformed hash: it matches nothing
            return False
    return hmac.compare_digest(stored.encode(), given.encode())


def hash_password(password: str) -> str:
    """A bcrypt hash as Bacalhau's `auth hash-password` prints it (`$2a$10$...`)."""
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()
    # Go writes the $2a$ prefix; for passwords bcrypt accepts, $2a$ and $2b$ hash alike.
    return "$2a$" + hashed.removeprefix("$2b$")


def _problem(user: AuthUser, name: str) -> str:
    has_basic = bool(user.username or user.password)
    if has_basic and user.api_key:
        return f"user '{name}' has both username/password and API key, must have only one authentication method"
    if not has_basic and not user.api_key:
        return f"user '{name}' has neither username/password nor API key, must have one authentication method"
    if has_basic:
        username = user.username.strip()
        if not username:
            return f"user '{name}' has an empty username"
        if len(username) > MAX_USERNAME:
            return f"user '{name}' has a username longer than {MAX_USERNAME} characters"
        if not _USERNAME_RE.match(username):
            return f"user '{name}' has an invalid username: must contain only alphanumeric characters (a-z, A-Z, 0-9)"
        if len(user.password) < MIN_PASSWORD:
            return f"user '{name}' has a password that is too short, minimum length is {MIN_PASSWORD} characters"
        if len(user.password) > MAX_PASSWORD:
            return f"user '{name}' has a password that is too long, maximum length is {MAX_PASSWORD} characters"
    else:
        if len(user.api_key) < MIN_API_KEY:
            return f"user '{name}' has an API key that is too short, minimum length is {MIN_API_KEY} characters"
        if len(user.api_key) > MAX_API_KEY:
            return f"user '{name}' has an API key that is too long, maximum length is {MAX_API_KEY} characters"
    if not any(cap.actions for cap in user.capabilities):
        return f"user '{name}' has no capabilities defined, must have at least one capability"
    return ""


def _invalid(problem: str) -> ConfigurationError:
    return ConfigurationError(
        f"error initializing users: {problem}", hint="fix API.Auth.Users in the node's config"
    )
