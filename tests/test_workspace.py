"""The Workspace value: one value passed down; $EMPIRICIST_HOME read once at the CLI's edge, never written."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from empiricist.artifacts import WORKSPACE_MARKER, Workspace
from empiricist.cli.options import WorkspaceOpt

SRC = Path(__file__).resolve().parents[1] / "src" / "empiricist"


def test_at_and_from_env() -> None:
    assert Workspace.at(None).root == Path("empiricist-work")
    ws = Workspace.at("some/where")
    assert Workspace.at(ws) is ws and ws.root == Path("some/where")
    assert Workspace.from_env(None, environ={"EMPIRICIST_HOME": "/x"}).root == Path("/x")
    assert Workspace.from_env("flag", environ={"EMPIRICIST_HOME": "/x"}).root == Path("flag")
    assert Workspace.from_env(None, environ={}).root == Path("empiricist-work")


def test_folders_are_made_with_the_marker(tmp_path: Path) -> None:
    ws = Workspace.at(tmp_path / "ws")
    assert ws.stores == tmp_path / "ws" / "stores" and ws.stores.is_dir()
    assert (tmp_path / "ws" / WORKSPACE_MARKER).is_file()
    assert ws.cache("eval-cache").is_dir()


def test_containing_walks_up_to_the_marker(tmp_path: Path) -> None:
    ws = Workspace.at(tmp_path / "ws")
    deep = ws.dir("evals") / "runs" / "r1" / "inner"
    deep.mkdir(parents=True)
    assert Workspace.containing(deep) == Workspace(ws.root.resolve())
    # an index built for that store goes beside it, whatever default the caller names
    assert Workspace.of(deep, default=tmp_path / "other").root == ws.root.resolve()


def test_unmarked_layout_and_outside(tmp_path: Path) -> None:
    old = tmp_path / "old-ws" / "stores" / "store-abc"  # built before workspaces were marked
    old.mkdir(parents=True)
    assert Workspace.containing(old) == Workspace((tmp_path / "old-ws").resolve())
    loose = tmp_path / "loose" / "store"
    loose.mkdir(parents=True)
    assert Workspace.containing(loose) is None
    assert Workspace.of(loose, default=tmp_path / "d").root == tmp_path / "d"


def test_cli_option_reads_the_environment_once_and_never_writes_it(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import typer
    from typer.testing import CliRunner

    seen: list[Workspace] = []
    app = typer.Typer()

    @app.command()
    def show(workspace: WorkspaceOpt = None) -> None:
        seen.append(workspace)

    @app.command()
    def other(workspace: WorkspaceOpt = None) -> None:
        seen.append(workspace)

    monkeypatch.setenv("EMPIRICIST_HOME", str(tmp_path / "env"))
    assert CliRunner().invoke(app, ["show"]).exit_code == 0
    assert CliRunner().invoke(app, ["other", "--workspace", str(tmp_path / "flag")]).exit_code == 0
    assert seen == [Workspace(tmp_path / "env"), Workspace(tmp_path / "flag")]
    assert os.environ["EMPIRICIST_HOME"] == str(tmp_path / "env")


def _environ_writes(tree: ast.AST) -> list[int]:
    """Lines assigning to ``os.environ[...]`` (or calling ``os.environ.pop``/``update``)."""
    lines = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AugAssign) else []
        for t in targets:
            if isinstance(t, ast.Subscript) and ast.unparse(t.value) == "os.environ":
                lines.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and ast.unparse(node.func.value) == "os.environ" and node.func.attr in ("pop", "update", "clear"):
            lines.append(node.lineno)
    return lines


def test_no_library_or_cli_module_writes_the_environment() -> None:
    found = {str(p.relative_to(SRC)): lines for p in sorted(SRC.rglob("*.py"))
             if (lines := _environ_writes(ast.parse(p.read_text())))}
    assert found == {}
    planted = ast.parse("import os\nos.environ['EMPIRICIST_HOME'] = 'x'\nos.environ.pop('A', None)\n")
    assert _environ_writes(planted) == [2, 3]  # the check itself can fail
