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

app = typer.Typer(
    name="empiricist",
    help="Open models, open data, honest evaluations and pre-registered studies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    from empiricist.cli import attribution, evals, foundation, internals, lookup, studies

    foundation.register(app)
    evals.register(app)
    studies.register(app)
    internals.register(app)
    lookup.register(app)
    lookup.register_validate(app)
    attribution.register(app)


_register()


def main() -> None:
    """Entry point: run the app and turn user errors into one clear line."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
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
