"""Options every command module shares, apart from any command (importing them must not import rich:
``count`` prints one number)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from empiricist.artifacts import Workspace

if TYPE_CHECKING:
    from empiricist.execute import Executor


def _workspace(value: Path | None) -> Workspace:
    """The one place ``$EMPIRICIST_HOME`` is read: ``--workspace``, else the variable, else ./empiricist-work."""
    return Workspace.from_env(value)


# Every command's ``--workspace``: typer parses a path and the callback turns it (or its absence) into the
# Workspace value the library takes, so commands receive a Workspace, never None.
WorkspaceOpt = Annotated[Workspace | None, typer.Option(
    "--workspace", "-w", parser=Path, callback=_workspace, metavar="PATH",
    help="workspace folder (default $EMPIRICIST_HOME or ./empiricist-work)")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="replace whatever is at --out (without it, only a new or "
                                         "empty folder, or an artifact of the same kind, is written)")]
ExecutorOpt = Annotated[str | None, typer.Option("--executor", help="where independent units run: local (this "
                                                "machine, the default) or ray ($EMPIRICIST_EXECUTOR)")]
AddressOpt = Annotated[str | None, typer.Option("--address", help="the Ray cluster: auto or HOST:PORT "
                                             "($EMPIRICIST_RAY_ADDRESS); implies --executor ray")]


def units_executor(name: str | None, address: str | None) -> Executor | None:
    """For work that runs in this process unless told otherwise (evaluations, embedding): None unless an
    executor is named, by flag or environment; then the work runs as units on it (``--executor local``:
    this machine's cores, side by side)."""
    from empiricist.execute import executor_from

    chosen = executor_from(name, address)
    return None if chosen.name == "local" and name is None else chosen
