"""The ``empiricist`` command: a thin layer over the library API.

Each capability registers its commands from its own module here; errors meant for users
(``EmpiricistError``) print as one line and exit with status 2, never as a traceback.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import TYPE_CHECKING

import typer

from empiricist.errors import EmpiricistError

if TYPE_CHECKING:
    from typer.models import CommandInfo

_SETTINGS = {"name": "empiricist", "help": "Open models, open data, honest evaluations and pre-registered studies.",
             "no_args_is_help": True, "pretty_exceptions_enable": False, "add_completion": False}
_app = typer.Typer(**_SETTINGS)


# Which module registers which top-level command: ``empiricist count`` builds only the lookup commands
# (typer evaluates every command's signature when it builds the app; that was most of a 1-second ``count``).
# tests/test_cli_fast.py checks this table against what the modules really register.
COMMANDS: dict[str, tuple[str, ...]] = {
    "foundation": ("run", "verify", "world", "data", "suite", "model"),
    "evals": ("eval", "view"),
    "studies": ("ledger", "study"),
    "internals": ("probe", "activations", "stego"),
    "lookup": ("count", "docs", "next", "trace", "search", "contamination", "lookup-validate", "index"),
    "attribution": ("attribute", "attribute-audit", "attribute-validate"),
    "unlearning": ("unlearn",),
    "monitor": ("monitor", "policy", "gradualism"),
}


_registered: set[str] = set()


def _register(argv: list[str] | None = None) -> typer.Typer:
    """Register the commands of every module (``argv=None``), or only of the one owning ``argv``'s command."""
    import importlib

    first = _first_command(argv) if argv is not None else None
    owners = [m for m, cmds in COMMANDS.items() if first in cmds] or list(COMMANDS)
    for name in owners:
        if name in _registered:
            continue
        module = importlib.import_module(f"empiricist.cli.{name}")
        module.register(_app)
        if name == "lookup":
            module.register_validate(_app)
        _registered.add(name)
    return _app


def __getattr__(name: str) -> typer.Typer:
    """``from empiricist.cli import app``: the whole app, every command registered (tests, embedding)."""
    if name == "app":
        return _register()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Entry point: run the app and turn user errors into one clear line."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if sys.argv[1:] == ["--help"]:
        _top_help()
        return
    app = _only(_register(sys.argv[1:]), sys.argv[1:])
    try:
        rc = app(standalone_mode=False)  # click returns (not raises) a command's Exit code in this mode
    except EmpiricistError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted (finished artifacts are kept; re-run to resume)", err=True)
        sys.exit(130)
    except Exception as e:  # typer bundles its own click: recognise its exceptions by shape, not class
        if hasattr(e, "show") and hasattr(e, "exit_code"):  # usage errors: message + usage, exit 2
            e.show()
            _dash_hint(e)
            sys.exit(e.exit_code)
        if type(e).__name__ == "Exit":
            sys.exit(getattr(e, "exit_code", 0))
        if type(e).__name__ == "Abort":
            sys.exit(1)
        raise
    if isinstance(rc, int) and rc:
        sys.exit(rc)


def _first_command(argv: list[str]) -> str | None:
    """The command a command line names: its first word that is not an option."""
    return next((a for a in argv if not a.startswith("-")), None)


def _command_name(command: CommandInfo) -> str:
    """A registered command's name as typed (typer's rule: the function's name with dashes)."""
    return command.name or command.callback.__name__.replace("_", "-")


def _only(app: typer.Typer, argv: list[str]) -> typer.Typer:
    """An app holding just the command ``argv`` names, when it names one: typer builds a click command for
    every registered command before it runs any (lookup registers eight; building them was ≈ 0.1 s of a
    ``count``). A no-op callback keeps ``empiricist COMMAND ...`` a subcommand, as in the whole app."""
    first = _first_command(argv)
    cmds = [c for c in app.registered_commands if _command_name(c) == first]
    groups = [g for g in app.registered_groups if g.name == first]
    if not cmds and not groups:
        return app  # an unknown command: the whole app says which exist
    one = typer.Typer(**_SETTINGS)
    one.callback()(lambda: None)
    one.registered_commands, one.registered_groups = cmds, groups
    return one


def _dash_hint(e: Exception) -> None:
    """A query that starts with '-' reads as an option: say how to pass it as text."""
    name = getattr(e, "option_name", None)
    if type(e).__name__ != "NoSuchOption" or not name:
        return
    ctx = getattr(e, "ctx", None)
    path = getattr(ctx, "command_path", "empiricist COMMAND")
    typer.echo(f"to pass a text that starts with '-' (not an option), end the options with --: "
               f"{path} [OPTIONS] -- {shlex.quote(name)}", err=True)


def _top_help() -> None:
    """``empiricist --help`` from the registered commands' docstrings, in the layout typer prints.

    Typer builds a click command (every option's annotation evaluated) for all ~40 commands before it
    can print the top-level help; that was half of a 0.5-second ``--help``. ``empiricist COMMAND --help``
    is typer's own."""
    import inspect

    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    app = _register()

    def first_line(text: str | None) -> str:
        return (text or "").strip().split("\n\n")[0].replace("\n", " ")

    rows = [(_command_name(c), first_line(c.help or inspect.getdoc(c.callback)))
            for c in app.registered_commands if not c.hidden]
    rows += [(g.name, first_line(g.help or g.typer_instance.info.help)) for g in app.registered_groups]
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for name, text in rows:
        table.add_row(name, text)
    out = Console()
    out.print(f"\n Usage: empiricist [OPTIONS] COMMAND [ARGS]...\n\n {first_line(app.info.help)}\n")
    out.print(Panel("[bold cyan]--help[/]  Show this message and exit.", title="Options", title_align="left",
                    border_style="dim"))
    out.print(Panel(table, title="Commands", title_align="left", border_style="dim"))
    out.print(" [dim]empiricist COMMAND --help for a command's options[/dim]\n")
