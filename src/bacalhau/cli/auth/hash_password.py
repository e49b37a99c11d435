"""`bacalhau auth hash-password`: a bcrypt hash to put in API.Auth.Users[].Password instead of the password.

As Bacalhau's: on a terminal it asks without echo; otherwise it reads one line from stdin. Prints
`$2a$10$...`.
"""

from __future__ import annotations

import sys

import click

from bacalhau.cli.command import BacalhauCommand
from bacalhau.cli.errors import CliError

MAX_PASSWORD_CHARS = 100
MAX_BCRYPT_BYTES = 72


@click.command("hash-password", cls=BacalhauCommand)
def hash_password() -> None:
    """Hash a password (read from the terminal, or one line of stdin) for API.Auth.Users."""
    from bacalhau.auth.users import hash_password as make_hash

    if sys.stdin.isatty():
        password = click.prompt("Enter password", hide_input=True, default="", show_default=False)
    else:
        password = sys.stdin.readline()
    password = password.strip()
    if not password:
        raise CliError("password cannot be empty")
    if len(password) > MAX_PASSWORD_CHARS:
        raise CliError(f"password exceeds maximum length of {MAX_PASSWORD_CHARS} characters")
    if len(password.encode()) > MAX_BCRYPT_BYTES:  # bcrypt reads no further: Go's bcrypt refuses, so do we
        raise CliError(f"failed to hash password: bcrypt: password length exceeds {MAX_BCRYPT_BYTES} bytes")
    click.echo(make_hash(password))
