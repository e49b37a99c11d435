"""SSO tokens (`API.Auth.Oauth2`): a bearer JWT from the identity provider, checked as Bacalhau v1.9's
JWT authorizer checks it (pkg/authz/jwt_authorizer.go):

    config: JWKSUri, Issuer, Audience, DeviceClientID all set, or none of them; the JWKS URI an
            absolute URL ("missing required OAuth2 fields for JWT authorization: ..." otherwise)
    token:  RS256 only, signed by a key of the provider's JWKS (fetched on first use, cached 5 min,
            fetched again for a key id it does not know, at most every 5 s: the provider may rotate
            keys), `iss` == Issuer,
            `aud` contains Audience, `exp` present and not past, `iat` not in the future
    user:   `sub`; capabilities: the `permissions` claim (Auth0's RBAC style: ["read:job", ...])

Any failure is 401 `invalid JWT token` (the detail goes to the node's log only). SSO switched on
(ProviderID) with none of the four keys set: every JWT is 401 `OAuth2 authentication not configured
on server`, as in Bacalhau. Nothing here talks to the provider but the JWKS fetch, which takes up to
JWKS_TIMEOUT_S and is made off the event loop (the authorizer says such a check is slow).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import jwt

from bacalhau.config.api_auth import Oauth2Config
from bacalhau.models.errors import ConfigurationError

log = logging.getLogger(__name__)

JWKS_TIMEOUT_S = 5.0
JWKS_LIFESPAN_S = 300.0
# A token naming a key id the cached set lacks fetches the set again, at most this often: a rotated key
# is picked up at once, and a flood of made-up key ids costs the provider one request per period.
JWKS_REFRESH_COOLDOWN_S = 5.0
NOT_CONFIGURED = "OAuth2 authentication not configured on server"
INVALID = "invalid JWT token"


@dataclass(frozen=True)
class TokenUser:
    """Who a valid token names, and what it lets them do."""

    name: str
    actions: tuple[str, ...]


def check_oauth2(config: Oauth2Config) -> bool:
    """True when JWT checking is configured; False when none of its keys are set. ConfigurationError,
    in Bacalhau's words, when only some are or the JWKS URI is no URL."""
    fields = {
        "JWKSUri": config.jwks_uri, "Issuer": config.issuer,
        "Audience": config.audience, "DeviceClientID": config.device_client_id,
    }
    if not any(fields.values()):
        return False
    missing = [name for name, value in fields.items() if not value]
    if missing:
        raise ConfigurationError(
            f"missing required OAuth2 fields for JWT authorization: {', '.join(missing)}",
            hint="set all of API.Auth.Oauth2.JWKSUri, Issuer, Audience and DeviceClientID, or none",
        )
    parts = urlsplit(config.jwks_uri)
    if not parts.scheme or not parts.netloc:
        raise ConfigurationError(f"invalid JWKS URL format: {config.jwks_uri}", hint="API.Auth.Oauth2.JWKSUri")
    return True


class TokenVerifier:
    """Checks SSO bearer tokens against the provider's keys (thread-safe: PyJWKClient locks its cache)."""

    def __init__(self, config: Oauth2Config) -> None:
        self._configured = check_oauth2(config)
        self._issuer = config.issuer
        self._audience = config.audience
        self._keys = (
            jwt.PyJWKClient(
                config.jwks_uri, cache_keys=True, lifespan=JWKS_LIFESPAN_S, timeout=JWKS_TIMEOUT_S,
                cooldown_duration=JWKS_REFRESH_COOLDOWN_S,
            )
            if self._configured else None
        )

    def verify(self, token: str) -> TokenUser | str:
        """The token's user, or the reason it is refused (NOT_CONFIGURED or INVALID)."""
        if self._keys is None:
            return NOT_CONFIGURED
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp"]},
            )
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            log.error("JWT validation failed: %s", exc)
            return INVALID
        subject = claims.get("sub")
        permissions = claims.get("permissions") or []
        if not isinstance(subject, str) or not isinstance(permissions, list):
            log.error("JWT validation failed: sub must be a string and permissions a list")
            return INVALID
        return TokenUser(subject, tuple(str(p) for p in permissions))
