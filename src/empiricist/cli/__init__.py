"""The ``empiricist`` command: a thin layer over the library API.

Each capability registers its commands from its own module here; errors meant for users
(``EmpiricistError``) print as one line and exit with status 2, never as a traceback.
"""

from __future__ import annotations

import os
import shlex
import sys

import typer

from empiricist.errors import EmpiricistError

_app = typer.Typer(
    name="empiricist",
    help="Open models, open data, honest evaluations and pre-registered studies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


# Which module registers which top-level command: ``empiricist count`` builds only the lookup commands
# (typer evaluates every command's signature when it builds the app; that was most of a 1-second ``count``).
# tests/test_cli_fast.py checks this table against what the modules really register.
COMMANDS: dict[str, tuple[str, ...]] = {
    "foundation": ("run", "verify", "world", "data", "suite", "model"),
    "evals": ("eval", "view"),
    "studies": ("ledger", "study"),
    "internals": ("probe", "activations", "stego"),
    "lookup": ("count", "docs", "next", "trace", "search", "contamination", "lookup-validate", "index"),
    "attribution": ("attribute", "attribute-validate"),
}


_registered: set[str] = set()


def _register(argv: list[str] | None = None) -> typer.Typer:
    """Register the commands of every module (``argv=None``), or only of the one owning ``argv``'s command."""
    import importlib

    first = next((a for a in argv or [] if not a.startswith("-")), None) if argv is not None else None
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
    app = _register(sys.argv[1:])
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


def _dash_hint(e: Exception) -> None:
    """A query that starts with '-' reads as an option: say how to pass it as text."""
    name = getattr(e, "option_name", None)
    if type(e).__name__ != "NoSuchOption" or not name:
        return
    ctx = getattr(e, "ctx", None)
    path = getattr(ctx, "command_path", "empiricist COMMAND")
    typer.echo(f"to pass a text that starts with '-' (not an option), end the options with --: "
               f"{path} [OPTIONS] -- {shlex.quote(name)}", err=True)
