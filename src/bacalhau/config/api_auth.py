"""`API.Auth`: who may call the API and what they may do (Bacalhau v1.9's `types.AuthConfig`).

Keys, shapes and defaults are Bacalhau's (pkg/config/types/auth.go): `Users` with a Username and
Password (plain, or a bcrypt hash from `bacalhau auth hash-password`) or an APIKey, each with
`Capabilities: [{Actions: [read:job, write:node, read:*, *, ...]}]`; `Methods` and `AccessPolicyPath`
for Bacalhau's older policy-based flow; `Oauth2` for SSO. The rules are bacalhau/auth's.
"""

from __future__ import annotations

from pydantic import Field

from bacalhau.models.wire import WireModel


class AuthMethodConfig(WireModel):
    """One of `API.Auth.Methods` (only Bacalhau's `challenge` type is supported)."""

    type: str = Field("", alias="Type")
    policy_path: str = Field("", alias="PolicyPath")


class UserCapability(WireModel):
    """What a user may do: actions such as read:job, write:*, *."""

    actions: list[str] = Field(default_factory=list, alias="Actions")


class AuthUser(WireModel):
    """One `API.Auth.Users` entry: Username + Password, or an APIKey, and its Capabilities."""

    alias: str = Field("", alias="Alias")
    username: str = Field("", alias="Username")
    password: str = Field("", alias="Password")
    api_key: str = Field("", alias="APIKey")
    capabilities: list[UserCapability] = Field(default_factory=list, alias="Capabilities")


class Oauth2Config(WireModel):
    """`API.Auth.Oauth2` (SSO): tokens checked by auth/sso.py; served by /api/v1/agent/authconfig."""

    provider_id: str = Field("", alias="ProviderID")
    provider_name: str = Field("", alias="ProviderName")
    token_endpoint: str = Field("", alias="TokenEndpoint")
    jwks_uri: str = Field("", alias="JWKSUri")
    issuer: str = Field("", alias="Issuer")
    device_client_id: str = Field("", alias="DeviceClientID")
    audience: str = Field("", alias="Audience")
    scopes: list[str] = Field(default_factory=list, alias="Scopes")
    device_authorization_endpoint: str = Field("", alias="DeviceAuthorizationEndpoint")
    polling_interval: int = Field(0, alias="PollingInterval")


def _default_methods() -> dict[str, AuthMethodConfig]:
    return {"ClientKey": AuthMethodConfig(Type="challenge")}


class AuthConfig(WireModel):
    """`API.Auth`: the users, and Bacalhau's older methods and policy path."""

    methods: dict[str, AuthMethodConfig] = Field(default_factory=_default_methods, alias="Methods")
    access_policy_path: str = Field("", alias="AccessPolicyPath")
    users: list[AuthUser] = Field(default_factory=list, alias="Users")
    oauth2: Oauth2Config = Field(default_factory=Oauth2Config, alias="Oauth2")

    @property
    def enforced(self) -> bool:
        """Whether requests are checked (Bacalhau: users configured, or an OAuth2 provider)."""
        return bool(self.users) or bool(self.oauth2.provider_id)
