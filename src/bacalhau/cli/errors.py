"""How errors reach the user: a blank line, `Error: <message>`, `Hint:  <hint>`, exit code 1.

Bacalhau's CLI prints errors this way on stderr (CONTRACT.md section 4.0). Usage errors keep click's
own rendering and exit code 2.
"""

from __future__ import annotations

from typing import IO, Any

import click

from bacalhau.models.printable import escape_controls


class CliError(click.ClickException):
    """A failure rendered the Bacalhau way; built from a BacalhauError or from a message and hint."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    @classmethod
    def from_exception(cls, exc: Any) -> CliError:
        """Wrap a BacalhauError (anything with .message/.hint)."""
        message = getattr(exc, "message", "") or str(exc)
        return cls(message, hint=getattr(exc, "hint", "") or "")

    def show(self, file: IO[Any] | None = None) -> None:
        # Messages quote servers, nodes and registries: their control characters are shown, not obeyed.
        text = f"\nError: {escape_controls(self.message)}\n"
        if self.hint:
            text += f"Hint:  {escape_controls(self.hint)}\n"
        click.echo(text, file=file, err=file is None, nl=False)
