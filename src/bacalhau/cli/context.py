"""What every verb needs from the root command: the API address, data dir and config overrides.

Flags beat env (`BACALHAU_API_HOST`/`BACALHAU_API_PORT`, handled by click), which beat the config file
and `-c Key=value` (`API.Host`/`API.Port`), which beat the defaults. The config is only read when no
flag or env var settled the address, so the common path stays fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from bacalhau.client import Client
    from bacalhau.config.types import BacalhauConfig


@dataclass
class CliContext:
    """Global settings shared by every verb (the root group's flags)."""

    api_host: str | None = None
    api_port: int | None = None
    data_dir: str | None = None
    config_args: tuple[str, ...] = ()
    log_level: str | None = None  # --log-level / LOG_LEVEL; None leaves it to Logging.Level
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

    def client(self, *, timeout_s: float = 30.0) -> Client:
        """A sync API client aimed at the configured node."""
        from bacalhau.client import Client

        host, port = self.address()
        return Client(host=host, port=port, timeout_s=timeout_s)

    def _config_matters(self) -> bool:
        if any(arg.lower().startswith("api.") or "=" not in arg for arg in self.config_args):
            return True
        data_dir = self.data_dir or os.environ.get("BACALHAU_DIR") or os.path.expanduser("~/.bacalhau")
        return os.path.exists(os.path.join(data_dir, "config.yaml"))


pass_cli = click.make_pass_decorator(CliContext, ensure=True)
