"""Whether a certificate and its key can be served: both load, and the key is the certificate's."""

from __future__ import annotations

import ssl

from bacalhau.models.errors import ConfigurationError


def check_pair(cert: str, key: str, *, section: str, keys: str, component: str = "") -> None:
    """ConfigurationError naming the config `section` (`API.TLS`) and `keys` (`API.TLS.CertFile and
    API.TLS.KeyFile`) unless the pair loads."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"{section}: cannot serve certificate {cert} with key {key}: {exc}",
            component=component or "Bacalhau",
            hint=f"check {keys}: both must be readable PEM files, the key the certificate's",
        ) from exc
