"""`bacalhau completion bash|zsh|fish|powershell`: print a shell completion script, as cobra's verb does.

The scripts are click's own: when the shell asks for completions they run
`_BACALHAU_COMPLETE=<shell>_complete bacalhau` with the words typed so far (COMP_WORDS/COMP_CWORD),
and `bacalhau` answers from its command tree (click handles that variable before any verb runs).
`--no-descriptions` makes the script ask for bare names (bash never shows descriptions anyway).
`bacalhau completion` alone prints this help, as cobra does.
"""

from __future__ import annotations

import click

from bacalhau.cli.command import NO_DESCRIPTIONS_ENV, BacalhauCommand, BacalhauGroup
from bacalhau.cli.errors import CliError

PROG_NAME = "bacalhau"
COMPLETE_VAR = "_BACALHAU_COMPLETE"  # click's name for it: _<PROG_NAME>_COMPLETE, upper case

_LOAD = {
    "bash": """Generate the autocompletion script for the bash shell.

The script needs bash 4.4 or newer.

To load completions in your current shell session:

    source <(bacalhau completion bash)

To load completions for every new session, execute once:

\b
    bacalhau completion bash > /etc/bash_completion.d/bacalhau   (Linux)
    bacalhau completion bash > $(brew --prefix)/etc/bash_completion.d/bacalhau   (macOS)

You will need to start a new shell for this setup to take effect.""",
    "zsh": """Generate the autocompletion script for the zsh shell.

If shell completion is not already enabled in your environment you will need
to enable it.  You can execute the following once:

    echo "autoload -U compinit; compinit" >> ~/.zshrc

To load completions in your current shell session:

    source <(bacalhau completion zsh)

To load completions for every new session, execute once:

    bacalhau completion zsh > "${fpath[1]}/_bacalhau"

You will need to start a new shell for this setup to take effect.""",
    "fish": """Generate the autocompletion script for the fish shell.

To load completions in your current shell session:

    bacalhau completion fish | source

To load completions for every new session, execute once:

    bacalhau completion fish > ~/.config/fish/completions/bacalhau.fish

You will need to start a new shell for this setup to take effect.""",
    "powershell": """Generate the autocompletion script for powershell.

To load completions in your current shell session:

    bacalhau completion powershell | Out-String | Invoke-Expression

To load completions for every new session, add the output of the above command
to your powershell profile.""",
}

# Where each script names the completion variable: prefixing it there with our variable makes the
# script ask for completions without descriptions.
_NO_DESC_AT = {
    "zsh": f"{COMPLETE_VAR}=zsh_complete",
    "fish": f"{COMPLETE_VAR}=fish_complete",
    "powershell": f"$env:{COMPLETE_VAR} = 'powershell_complete'",
}


def completion_script(shell: str, root: click.Command, *, descriptions: bool = True) -> str:
    """The completion script of `shell` for the `bacalhau` executable."""
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    if completer is None:
        raise CliError(f"shell completion for {shell} is not available with this click version",
                       hint="upgrade click (powershell needs click 8.5 or newer), or use bash, zsh or fish")
    script = completer(root, {}, PROG_NAME, COMPLETE_VAR).source()
    marker = _NO_DESC_AT.get(shell)
    if not descriptions and marker and marker in script:
        prefix = f"$env:{NO_DESCRIPTIONS_ENV} = '1'; " if shell == "powershell" else f"{NO_DESCRIPTIONS_ENV}=1 "
        script = script.replace(marker, prefix + marker)
    return script


def _shell_command(shell: str) -> click.Command:
    @click.command(shell, cls=BacalhauCommand, help=_LOAD[shell],
                   short_help=f"Generate the autocompletion script for {shell}.")
    @click.option("--no-descriptions", is_flag=True, help="Disable completion descriptions.")
    @click.pass_context
    def generate(ctx: click.Context, no_descriptions: bool) -> None:
        script = completion_script(shell, ctx.find_root().command, descriptions=not no_descriptions)
        click.echo(script, nl=not script.endswith("\n"))

    return generate


@click.group("completion", cls=BacalhauGroup, invoke_without_command=True)
@click.pass_context
def completion(ctx: click.Context) -> None:
    """Generate the autocompletion script for bacalhau for the specified shell.

    See each sub-command's help for details on how to use the generated script.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


for _shell in _LOAD:
    completion.add_command(_shell_command(_shell))
