"""The API's users (`API.Auth.Users`): checked at start-up with Bacalhau's rules and messages, then found
by username (case-insensitive) or API key, passwords compared in constant time.

A stored password that looks like a bcrypt hash (`$2a$`, `$2b$`, `$2y$`, at least 60 characters) is
checked with bcrypt; any other is compared as plain text, as Bacalhau does (pkg/credsecurity).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
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
# Right Basic credentials remembered this long (a CLI command makes several calls), at most this many.
CACHE_S = 300.0
CACHE_ENTRIES = 1024
# Checked against for an unknown username, so that it costs what a known one does (a bcrypt of "x").
_DUMMY_HASH = "$2b$10$" + "N9qo8uLOickgx2ZMRZoMye" + "IjZAgcfl7p92ldGxad68LJZdL17lhWy"


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
        self._verified: dict[bytes, tuple[User, float]] = {}
        self._lock = threading.Lock()
        aliases: dict[str, str] = {}
        usernames: dict[str, str] = {}
        for configured in users:
            name = user_id(configured)
            problem = _problem(configured, name) or _duplicate(configured, name, aliases, usernames, self.by_api_key)
            if problem:
                raise _invalid(problem)
            actions = tuple(a for cap in configured.capabilities for a in cap.actions)
            if configured.api_key:
                self.by_api_key[configured.api_key] = User(name=name, actions=actions)
            else:
                user = User(name=name, actions=actions, password=configured.password)
                self.by_username[configured.username.lower()] = user

    def by_basic(self, username: str, password: str) -> User | None:
        """The user these credentials name, if the password is right. A bcrypt check costs ~70 ms, so a
        right answer is remembered (by a SHA-256 of the credentials, for CACHE_S) and an unknown username
        costs a check too (its timing must not tell which usernames exist)."""
        digest = hashlib.sha256(f"{username.lower()}\0{password}".encode()).digest()
        now = time.monotonic()
        with self._lock:  # checks run in a few threads at once (authz.py)
            cached = self._verified.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        user = self.by_username.get(username.lower())
        if user is None:
            check_password(_DUMMY_HASH, password)
            return None
        if not check_password(user.password, password):
            return None
        with self._lock:
            self._verified[digest] = (user, now + CACHE_S)
            while len(self._verified) > CACHE_ENTRIES:
                self._verified.pop(next(iter(self._verified)))
        return user

    def by_key(self, api_key: str) -> User | None:
        """The user with this API key (compared with every key in constant time)."""
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
    """Bacalhau's validateUser (pkg/authz/entry_point_authorizer.go), check for check and word for word."""
    has_basic = bool(user.username) and bool(user.password)
    if has_basic and user.api_key:
        return f"user '{name}' has both username/password and API key, must have only one authentication method"
    if not has_basic and not user.api_key:
        return f"user '{name}' has neither username/password nor API key, must have one authentication method"
    if user.username:
        username = user.username.strip()
        if len(username) > MAX_USERNAME:
            return f"username for user '{name}' exceeds maximum length of {MAX_USERNAME} characters"
        if not username:
            return f"username for user '{name}' should not be empty"
        if not _USERNAME_RE.match(user.username):
            return f"username for user '{name}' must contain only alphanumeric characters (a-z, A-Z, 0-9)"
    if user.password:
        if len(user.password) < MIN_PASSWORD:
            return f"password for user '{name}' is too short, minimum length is {MIN_PASSWORD} characters"
        if len(user.password) > MAX_PASSWORD:
            return f"password for user '{name}' exceeds maximum length of {MAX_PASSWORD} characters"
    if user.api_key:
        if len(user.api_key) < MIN_API_KEY:
            return f"API key for user '{name}' is too short, minimum length is {MIN_API_KEY} characters"
        if len(user.api_key) > MAX_API_KEY:
            return f"API key for user '{name}' exceeds maximum length of {MAX_API_KEY} characters"
    if not user.capabilities:
        return f"user '{name}' has no capabilities defined, must have at least one capability"
    return ""


def _duplicate(
    user: AuthUser, name: str, aliases: dict[str, str], usernames: dict[str, str], keys: dict[str, User]
) -> str:
    """Bacalhau's checkForDuplicates: aliases and usernames case-insensitively, API keys exactly."""
    if user.alias:
        seen = aliases.get(user.alias.lower())
        if seen is not None:
            return f"duplicate alias detected: '{seen}' and '{user.alias}' (aliases are case-insensitive)"
        aliases[user.alias.lower()] = user.alias
    if user.username:
        seen = usernames.get(user.username.lower())
        if seen is not None:
            return f"duplicate username detected: '{seen}' and '{user.username}' (usernames are case-insensitive)"
        usernames[user.username.lower()] = user.username
    if user.api_key and user.api_key in keys:
        return f"duplicate API key detected for user '{name}'"
    return ""


def _invalid(problem: str) -> ConfigurationError:
    return ConfigurationError(
        f"error initializing users: {problem}", hint="fix API.Auth.Users in the node's config"
    )
