"""An instant CLI: commands import only what they use (no timings here: benchmarks/bench_cli.py times it)."""

from __future__ import annotations

import json
import subprocess
import sys

import typer

HEAVY = ("torch", "scipy", "transformers", "sklearn", "faiss", "statsmodels", "matplotlib")


def test_the_command_table_names_exactly_what_each_module_registers():
    import importlib

    from empiricist.cli import COMMANDS

    for name, commands in COMMANDS.items():
        app = typer.Typer()
        module = importlib.import_module(f"empiricist.cli.{name}")
        module.register(app)
        if name == "lookup":
            module.register_validate(app)
        got = [c.name or c.callback.__name__ for c in app.registered_commands] + [g.name for g in app.registered_groups]
        assert sorted(got) == sorted(commands), name


def _modules_after(argv: list[str]) -> tuple[int, list[str]]:
    code = ("import sys, json\nsys.argv = ['empiricist', *json.loads(sys.argv[1])]\nfrom empiricist.cli import main\n"
            "try:\n    main()\nexcept SystemExit as e:\n    rc = e.code or 0\nelse:\n    rc = 0\n"
            "print(json.dumps([rc, sorted(m.split('.')[0] for m in sys.modules)]), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(argv)], capture_output=True, text=True, check=False)
    rc, mods = json.loads(out.stderr.strip().splitlines()[-1])
    return rc, mods


def test_help_and_count_import_none_of_the_heavy_libraries(small_store, tmp_path):
    rc, mods = _modules_after(["--help"])
    assert rc == 0 and not set(HEAVY) & set(mods)
    count = ["count", "alpha beta", "--store", str(small_store), "--workspace", str(tmp_path), "-q"]
    rc, mods = _modules_after(count)  # builds the text index first (reading the docs table: pyarrow)
    assert rc == 0 and not set(HEAVY) & set(mods), set(HEAVY) & set(mods)
    rc, mods = _modules_after(count)  # on the existing index
    assert rc == 0 and not set(HEAVY) & set(mods), set(HEAVY) & set(mods)
    # nor what a printed number does not need: the docs table's reader, the table printer, typer 0.29's
    # per-option validation (benchmarks/bench_cli.py measured each of these in a count's 0.4-0.6 s)
    assert not {"pyarrow", "rich", "pydantic"} & set(mods), {"pyarrow", "rich", "pydantic"} & set(mods)
    assert "fm_index" in mods  # it did count, with the text index


def test_the_whole_app_is_there_for_in_process_callers():
    from empiricist.cli import COMMANDS, app

    names = {c.name or c.callback.__name__ for c in app.registered_commands} | {g.name for g in app.registered_groups}
    assert names == {c for cmds in COMMANDS.values() for c in cmds}


def test_top_level_help_lists_every_command_with_its_summary(capsys):
    import inspect

    from conftest import run_cli

    from empiricist.cli import COMMANDS, app

    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "Usage: empiricist" in out
    flat = " ".join(out.replace("│", " ").split())  # rich wraps inside its box
    for name in (c for cmds in COMMANDS.values() for c in cmds):
        assert f" {name} " in flat, name
    for c in app.registered_commands:  # each command's summary is its docstring's first sentence
        first = " ".join((inspect.getdoc(c.callback) or "").split("\n\n")[0].split())
        assert first[:30] in flat, c.callback.__name__
