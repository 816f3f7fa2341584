"""CLI for machine unlearning on a user's own model: ``unlearn eval`` (any HF causal LM) and ``unlearn run``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from empiricist.cli.options import Quiet, WorkspaceOpt

console = Console()
METRICS = ("verbatim", "membership_auc", "privacy_leakage", "heldout_loss", "knowledge_forget", "utility",
           "truth_ratio_forget", "forget_quality")


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, dict):
        return f"p = {v['p_value']:.3g}"
    return f"{v:.4f}"


def _table(columns: dict[str, dict[str, Any]]) -> Table:
    t = Table(show_header=True)
    t.add_column("metric")
    for name in columns:
        t.add_column(name, justify="right")
    t.add_column("why absent")
    for m in METRICS:
        why = next((c["absent"][m] for c in columns.values() if m in c.get("absent", {})), "")
        t.add_row(m, *(_fmt(c.get(m)) for c in columns.values()), why)
    return t


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Machine unlearning on your own model and forget set (docs/unlearning.md).",
                        no_args_is_help=True)
    app.add_typer(group, name="unlearn")

    @group.command("eval")
    def eval_cmd(
        model: Annotated[str, typer.Option(help="model spec: a local HF folder, suite:<suite>/<size>, a hub id")],
        forget: Annotated[Path, typer.Option(help="JSONL of forget documents, one {\"text\": ...} per line")],
        holdout: Annotated[Path | None, typer.Option(help="JSONL of documents no model trained on "
                                                     "(membership AUC, held-out loss)")] = None,
        gold: Annotated[str | None, typer.Option(help="the model retrained without the forget set, if you have it")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
        workspace: WorkspaceOpt = None,
    ) -> None:
        """Every unlearning metric your inputs allow; the others are named, with what they would need."""
        from empiricist.unlearn.evaluate import evaluate_own

        out = evaluate_own(model, forget, holdout=holdout, gold=gold, workspace=workspace)
        if as_json:
            typer.echo(json.dumps(out, indent=2))
            return
        console.print(_table({"model": out}))

    @group.command("run")
    def run_cmd(
        model: Annotated[Path, typer.Option(help="a local GPT-NeoX (Pythia-layout) HF folder to start from")],
        forget: Annotated[Path, typer.Option(help="JSONL of forget documents, one {\"text\": ...} per line")],
        out: Annotated[Path, typer.Option(help="model folder to write (checkpoints along the way)")],
        method: Annotated[str, typer.Option(help="gradient_ascent, gradient_difference, npo, rmu")] = "npo",
        retain: Annotated[Path | None, typer.Option(help="JSONL of documents to keep (gradient_difference, npo, "
                                                    "rmu)")] = None,
        holdout: Annotated[Path | None, typer.Option(help="JSONL of documents no model trained on")] = None,
        gold: Annotated[str | None, typer.Option(help="the model retrained without the forget set, if any")] = None,
        steps: Annotated[int, typer.Option(help="unlearning steps")] = 32,
        lr: Annotated[float, typer.Option(help="learning rate")] = 3e-4,
        batch_size: Annotated[int, typer.Option(help="sequences per step")] = 8,
        seq_len: Annotated[int, typer.Option(help="tokens per sequence")] = 128,
        seed: Annotated[int, typer.Option(help="data order and RMU direction seed")] = 0,
        workspace: WorkspaceOpt = None, quiet: Quiet = False,
    ) -> None:
        """Unlearn the forget documents from your model, then measure it before and after."""
        from empiricist.unlearn.own import unlearn_own

        res = unlearn_own(model, forget, method, out, retain=retain, holdout=holdout, gold=gold, steps=steps, lr=lr,
                          batch_size=batch_size, seq_len=seq_len, seed=seed, workspace=workspace, progress=not quiet)
        console.print(_table({"before": res["before"], f"after {method}": res["after"]}))
        console.print(f"unlearned model: {res['unlearned']}  (metrics in {Path(res['unlearned']).parents[1] / 'unlearning.json'})")
