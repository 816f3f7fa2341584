"""CLI for model internals: ``probe``, ``activations capture`` and ``stego run``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from empiricist.artifacts import Workspace
from empiricist.cli.options import AddressOpt, ExecutorOpt, Overwrite, Quiet, WorkspaceOpt

console = Console()


def probe_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=f"{title}; chance {rows[0]['chance']:.3f}")
    for col in ("model", "layer", "acc", "95% CI", "control", "select."):
        table.add_column(col, justify="right", no_wrap=col != "model")
    for r in rows:
        model = f"step {r['step']}" if r["step"] is not None else str(r["model"])
        table.add_row(model, r["site"], f"{r['acc']:.3f}", f"{r['acc_lo']:.3f}–{r['acc_hi']:.3f}",
                      f"{r['control_acc']:.3f}", f"{r['selectivity']:+.3f}")
    return table


def register(app: typer.Typer) -> None:
    acts = typer.Typer(help="Capture activations of any causal LM to disk.", no_args_is_help=True)
    stego = typer.Typer(help="The probe-evasion (steganographic representations) experiment.", no_args_is_help=True)
    app.add_typer(acts, name="activations")
    app.add_typer(stego, name="stego")

    @app.command("probe")
    def probe_cmd(
        model: Annotated[list[str] | None, typer.Option("--model", help="model spec (repeatable)")] = None,
        suite: Annotated[str | None, typer.Option(help="suite name or folder (with --all-checkpoints)")] = None,
        size: Annotated[str | None, typer.Option(help="suite size (default: the largest)")] = None,
        all_checkpoints: Annotated[bool, typer.Option("--all-checkpoints", help="every checkpoint of the size")] = False,
        world: Annotated[Path | None, typer.Option(help="world folder (default: the suite's)")] = None,
        prop: Annotated[str, typer.Option("--property", help="relation (birthplace, profession...), 'type', "
                                          "or 'statements' (true/false facts)")] = "birthplace",
        template: Annotated[str, typer.Option(help="name, prefix, paraphrases, or a format string with {s}")] = "prefix",
        layers: Annotated[str, typer.Option(help="'all' or comma-separated residual layers")] = "all",
        kind: Annotated[str, typer.Option(help="logistic or ridge")] = "logistic",
        folds: Annotated[int, typer.Option(help="cross-validation folds")] = 5,
        seed: Annotated[int, typer.Option()] = 0,
        out: Annotated[Path | None, typer.Option(help="output folder (default: in the workspace)")] = None,
        overwrite: Overwrite = False,
        workspace: WorkspaceOpt = None,
        quiet: Quiet = False,
    ) -> None:
        """Linear probes for a world property across layers (and checkpoints), with a control task."""
        from empiricist.artifacts import config_hash
        from empiricist.internals.datasets import world_probe_dataset, world_statement_dataset
        from empiricist.internals.sweep import model_world, parse_layers, probe_specs, run_probe

        if out is not None:
            from empiricist.artifacts import check_replaceable

            check_replaceable(out, "probe", overwrite)
        specs = probe_specs(model or [], suite, size, all_checkpoints, workspace)
        world = world or model_world(specs[0], workspace)
        data = (world_statement_dataset(world) if prop == "statements"
                else world_probe_dataset(world, prop, template))
        folder = out or Workspace.at(workspace).dir("probes") / f"{prop}-{config_hash([specs, data.hash, layers, kind, folds, seed])}"
        path, rows = run_probe(specs, data, folder, parse_layers(layers), kind=kind, k=folds, seed=seed,
                               progress=not quiet, workspace=workspace, force=overwrite)
        console.print(probe_table(rows, f"{data.name}: {len(data)} examples, {data.meta.get('n_classes', 2)} classes"))
        console.print(f"results: [bold]{path}[/bold] (heatmap.png, heatmap.svg, results.csv)")

    @acts.command("capture")
    def capture_cmd(
        spec: Annotated[str, typer.Argument(help="model spec")],
        texts: Annotated[Path, typer.Option(help="texts: a .txt file (one per line) or JSONL with a 'text' field")],
        out: Annotated[Path, typer.Option(help="output folder")],
        sites: Annotated[str, typer.Option(help="comma-separated: resid.<i>, attn.<i>, mlp.<i>, final, all")] = "resid",
        positions: Annotated[str, typer.Option(help="last or all")] = "last",
        chunk_rows: Annotated[int, typer.Option(help="rows per chunk file")] = 65536,
        batch_size: Annotated[int, typer.Option()] = 16,
        max_length: Annotated[int | None, typer.Option(help="truncate texts to this many tokens")] = None,
        dtype: Annotated[str, typer.Option(help="float32 or float16")] = "float32",
        overwrite: Overwrite = False,
        workspace: WorkspaceOpt = None,
        quiet: Quiet = False,
    ) -> None:
        """Stream activations at the chosen sites and positions to chunked .npy files with a manifest."""
        import json

        from empiricist.artifacts import check_replaceable
        from empiricist.internals.activations import ActivationSet, capture_activations
        from empiricist.suite.handles import load_model

        check_replaceable(out, "activations", overwrite)  # before loading anything

        def read() -> Any:
            with open(texts, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        yield json.loads(line)["text"] if texts.suffix == ".jsonl" else line.rstrip("\n")

        handle = load_model(spec, workspace=workspace)
        path = capture_activations(handle, read(), out, sites.split(","), positions, batch_size=batch_size,
                                   max_length=max_length, chunk_rows=chunk_rows, dtype=dtype, progress=not quiet,
                                   overwrite=overwrite)
        a = ActivationSet(path)
        console.print(f"activations: [bold]{path}[/bold]  rows={a.n_rows:,} chunks={len(a.chunks)} sites={a.sites}")

    @stego.command("run")
    def stego_run(
        grid: Annotated[str, typer.Option(help="default (≤30 min on 2 cores) or reduced (< 1 min)")] = "default",
        out: Annotated[Path | None, typer.Option(help="output folder (default: in the workspace)")] = None,
        seeds: Annotated[int | None, typer.Option(help="override the number of seeds")] = None,
        steps: Annotated[int | None, typer.Option(help="override the step budget")] = None,
        threads: Annotated[int | None, typer.Option(help="torch threads (0 = all cores)")] = None,
        overwrite: Overwrite = False,
        executor: ExecutorOpt = None,
        address: AddressOpt = None,
        workspace: WorkspaceOpt = None,
        quiet: Quiet = False,
    ) -> None:
        """Train the λ × training-fraction grid (adversarial and frozen probe), probe afresh, write the report."""
        import sys

        from empiricist.artifacts import check_replaceable
        from empiricist.experiments.probe_evasion import get_grid
        from empiricist.experiments.probe_evasion.run import run_stego_grid

        if out is not None:  # before the grid trains: a folder of the user's files is never replaced
            check_replaceable(out, "stego_grid", overwrite)

        overrides = {k: v for k, v in (("seeds", seeds), ("steps", steps), ("threads", threads)) if v is not None}
        cfg = get_grid(grid, **overrides)
        from empiricist.execute import executor_from

        res = run_stego_grid(cfg, out, progress=not quiet, overwrite=overwrite, workspace=workspace,
                             command="empiricist " + " ".join(sys.argv[1:]), executor=executor_from(executor, address))
        table = Table(title=f"stego grid {cfg.name}: verdicts ({res.runtime_s / 60:.1f} min)")
        for col in ("variant", "λ", f"fresh probe {cfg.probe_layer}", "chance", "Δ gen. step", "Δ held-out acc",
                    "P1", "supports"):
            table.add_column(col, justify="right")
        for v in res.verdicts:
            table.add_row(v["variant"], f"{v['lam']:g}", "{:.3f} [{:.3f}, {:.3f}]".format(*v["fresh_probe"]),
                          f"{v['chance']:.3f}", "{:+.0f} [{:+.0f}, {:+.0f}]".format(*v["delta_gen_step"]),
                          "{:+.3f} [{:+.3f}, {:+.3f}]".format(*v["delta_test_acc"]), v["verdicts"]["P1"],
                          v["supports"])
        console.print(table)
        console.print(f"results: [bold]{res.path}[/bold] (summary.html, summary.md, results.json)")
