"""`API.*`: where and how the node serves its API (Bacalhau's keys, plus ours: CORS, AllowedHosts, RateLimit)."""

from __future__ import annotations

from pydantic import Field

from bacalhau.config.api_auth import AuthConfig
from bacalhau.models.wire import WireModel


class TLSConfig(WireModel):
    """`API.TLS` (Bacalhau v1.9's `types.TLS`). Server: CertFile + KeyFile, or SelfSigned (AutoCert is
    refused: ACME needs a public name and port 443). Client: UseTLS, Insecure, CAFile."""

    cert_file: str = Field("", alias="CertFile")
    key_file: str = Field("", alias="KeyFile")
    ca_file: str = Field("", alias="CAFile")
    use_tls: bool = Field(False, alias="UseTLS")
    insecure: bool = Field(False, alias="Insecure")
    self_signed: bool = Field(False, alias="SelfSigned")
    auto_cert: str = Field("", alias="AutoCert")
    auto_cert_cache_path: str = Field("", alias="AutoCertCachePath")


class CORSConfig(WireModel):
    """`API.CORS` (ours): the web origins (`https://dash.example.org`) whose pages may call the API from a
    browser. Empty (the default): no page may; Bacalhau answers every origin (`*`)."""

    allowed_origins: list[str] = Field(default_factory=list, alias="AllowedOrigins")


class RateLimitConfig(WireModel):
    """`API.RateLimit` (ours): requests per second per client address (0: no limit), the burst allowed at
    once, and whether loopback clients are limited too (by default they are not)."""

    rate: float = Field(100.0, ge=0, alias="Rate")
    burst: int = Field(200, ge=1, alias="Burst")
    loopback: bool = Field(False, alias="Loopback")


class APIConfig(WireModel):
    """`API`: where the node serves its API, and who may use it how."""

    host: str = Field("0.0.0.0", alias="Host")
    port: int = Field(1234, alias="Port")
    tls: TLSConfig = Field(default_factory=TLSConfig, alias="TLS")
    auth: AuthConfig = Field(default_factory=AuthConfig, alias="Auth")
    cors: CORSConfig = Field(default_factory=CORSConfig, alias="CORS")
    # Ours: the Host headers the API answers (`api.example.org`, `*.example.org`); empty: any. Refuses DNS
    # rebinding (a page on evil.example resolving its name to this node's address).
    allowed_hosts: list[str] = Field(default_factory=list, alias="AllowedHosts")
    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig, alias="RateLimit")
