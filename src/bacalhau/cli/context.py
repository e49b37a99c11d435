"""What every verb needs from the root command: the API address, data dir and config overrides.

Flags beat env (`BACALHAU_API_HOST`/`BACALHAU_API_PORT`, handled by click), which beat the config file
and `-c Key=value` (`API.Host`/`API.Port`), which beat the defaults. The config is only read when no
flag or env var settled the address, so the common path stays fast. An address left at its defaults
gives way to the selected profile (`--profile`, `BACALHAU_PROFILE`, `profile select`; see
cli/profile/loader.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from bacalhau.cli.output import echo

if TYPE_CHECKING:
    from bacalhau.cli.profile.loader import ApiTarget
    from bacalhau.client import Client
    from bacalhau.config.types import BacalhauConfig
    from bacalhau.models.limits import JobLimits


@dataclass
class CliContext:
    """Global settings shared by every verb (the root group's flags)."""

    api_host: str | None = None
    api_port: int | None = None
    data_dir: str | None = None
    config_args: tuple[str, ...] = ()
    log_level: str | None = None  # --log-level / LOG_LEVEL; None leaves it to Logging.Level
    profile: str | None = None  # --profile (BACALHAU_PROFILE is read when a profile is looked up)
    _config: Any = field(default=None, repr=False)

    def config(self) -> BacalhauConfig:
        """The effective config (defaults < file < env < -c), loaded once."""
        if self._config is None:
            from bacalhau.config.loader import load_config

            self._config = load_config(self.config_args, data_dir=self.data_dir)
        return self._config  # type: ignore[no-any-return]

    def address(self) -> tuple[str | None, int | None]:
        """Host and port to reach, or None to let the client apply its defaults."""
        host, port = self.api_host, self.api_port
        if (host is None or port is None) and self._config_matters():
            api = self.config().api
            host = host if host is not None else api.host
            port = port if port is not None else api.port
        return host, port

    def client(self, *, timeout_s: float | None = None, authenticated: bool = True) -> Client:
        """A sync API client aimed at the configured node (or the selected profile's endpoint).

        `timeout_s` overrides the request timeout (else the profile's, else 30 s). `authenticated=False`
        sends no credentials and never reads them (Bacalhau's unauthenticated client: version, agent
        alive and version, auth info work whatever the environment's credentials are).
        """
        from bacalhau.client import Client

        target = self.api_target()
        base_url, use_tls, insecure, ca_file = target.base_url, False, False, ""
        if base_url is None and self._tls_matters():
            # No profile: API.TLS.UseTLS / Insecure / CAFile (a profile says https:// and insecure itself).
            tls = self.config().api.tls
            use_tls, insecure, ca_file = tls.use_tls, tls.insecure, tls.ca_file
        from bacalhau.client.address import resolve_base_url

        if use_tls:
            base_url = "https://" + resolve_base_url(host=target.host, port=target.port).split("://", 1)[1]
        headers = target.headers if authenticated else {}
        if authenticated and not headers:
            # Bacalhau's last resort: the token `auth sso login` (or an older login) saved for this URL.
            from bacalhau.cli.auth.tokens import saved_token

            url = resolve_base_url(base_url=base_url, host=target.host, port=target.port)
            if token := saved_token(self.data_path(), url):
                headers = {"Authorization": f"Bearer {token}"}
        return Client(
            base_url=base_url,
            host=target.host,
            port=target.port,
            timeout_s=target.timeout_s if timeout_s is None else timeout_s,
            headers=headers,
            verify_tls=target.verify_tls and not insecure,
            ca_file=ca_file,
            env_credentials=authenticated,
        )

    def api_target(self) -> ApiTarget:
        """Where the API is: an address set away from the defaults, else the selected profile, else defaults."""
        from bacalhau.cli.profile.loader import ENV_PROFILE, ApiTarget, explicitly_set, load_selected, profile_target

        host, port = self.address()
        if explicitly_set(host, port):
            return ApiTarget(host=host, port=port)
        from bacalhau.cli.profile.store import ProfileStore
        from bacalhau.models.errors import BacalhauError

        store = ProfileStore.in_data_dir(self.data_path())
        try:
            selected = load_selected(store, flag=self.profile or "", env=os.environ.get(ENV_PROFILE, ""))
        except BacalhauError as exc:
            # Bacalhau carries on with the defaults here; say so rather than silently reaching elsewhere.
            echo(f"Warning: {exc.message}; using the default API address", err=True)
            selected = None
        if selected is None:
            return ApiTarget(host=host, port=port)
        return profile_target(*selected)

    def data_path(self) -> str:
        """The data directory: --data-dir, else BACALHAU_DIR, else ~/.bacalhau."""
        return self.data_dir or os.environ.get("BACALHAU_DIR") or os.path.expanduser("~/.bacalhau")

    def job_limits(self) -> JobLimits:
        """The job spec bounds checked before sending (`JobAdmissionControl.Limits` of the CLI's config).

        The config is read only when something could set them (see job_limits_configured); otherwise
        the defaults, which are the server's too.
        """
        from bacalhau.models.limits import DEFAULT_LIMITS

        return self.config().job_admission_control.limits.to_limits() if self.job_limits_configured() else DEFAULT_LIMITS

    def job_limits_configured(self) -> bool:
        """Whether the CLI's own config could set job limits: a config file, `-c`, or a
        BACALHAU_JOBADMISSIONCONTROL_* variable. (Cheap: nothing is read.)"""
        return (
            any(arg.lower().startswith("jobadmissioncontrol.") or "=" not in arg for arg in self.config_args)
            or any(name.upper().startswith("BACALHAU_JOBADMISSIONCONTROL_") for name in os.environ)
            or os.path.exists(os.path.join(self.data_path(), "config.yaml"))
        )

    def _tls_matters(self) -> bool:
        """Whether API.TLS could be set anywhere the CLI reads (else the config is not read for it)."""
        return (
            any(arg.lower().startswith("api.tls.") or "=" not in arg for arg in self.config_args)
            or any(name.upper().startswith("BACALHAU_API_TLS_") for name in os.environ)
            or os.path.exists(os.path.join(self.data_path(), "config.yaml"))
        )

    def _config_matters(self) -> bool:
        if any(arg.lower().startswith("api.") or "=" not in arg for arg in self.config_args):
            return True
        return os.path.exists(os.path.join(self.data_path(), "config.yaml"))


pass_cli = click.make_pass_decorator(CliContext, ensure=True)
