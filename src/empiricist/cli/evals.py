"""CLI for evaluations: ``eval`` (tasks × models → results, transcripts, report) and ``view``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from empiricist.cli.options import AddressOpt, ExecutorOpt, Overwrite, Quiet, WorkspaceOpt, units_executor

console = Console()


def summary_table(summary: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for col in ("task", "model", "metric", "n", "mean", "95% CI", "interval", "truncated"):
        table.add_column(col, justify="right" if col in ("n", "mean", "truncated") else "left")
    for r in summary:
        ci = "-" if r["lo"] is None else f"[{r['lo']:.3f}, {r['hi']:.3f}]"
        method = f"{r['method']} ({r['n_clusters']} clusters)" if r["method"] == "clustered" else r["method"]
        table.add_row(r["task"], r["model"], r["metric"], str(r["n"]), f"{r['mean']:.3f}", ci, method,
                      str(r["truncated_items"]))
    return table


def _limit(tasks: list[Any], limit: int | None) -> list[Any]:
    import dataclasses

    return tasks if limit is None else [dataclasses.replace(t, items=t.items[:limit]) for t in tasks]


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        task: Annotated[list[str], typer.Option("--task", help="JSONL task file (native or Anthropic format), "
                                                "world:fact_qa, world:sycophancy, or world:<path>:<eval>")],
        model: Annotated[list[str] | None, typer.Option("--model", help="model spec: suite:<suite>/<size>@step<N>, "
                                                        "an HF model folder, or a hub id (repeatable)")] = None,
        suite: Annotated[str | None, typer.Option(help="evaluate this suite's models")] = None,
        all_sizes: Annotated[bool, typer.Option("--all-sizes", help="every size of --suite")] = False,
        size: Annotated[list[str] | None, typer.Option("--size", help="these sizes of --suite")] = None,
        checkpoints: Annotated[str, typer.Option(help="steps of --suite models: e.g. 0,64,last or all")] = "last",
        scoring: Annotated[str, typer.Option(help="loglik (multiple choice) or generate (greedy)")] = "loglik",
        metric: Annotated[str | None, typer.Option(help="loglik: acc, acc_norm, acc_bytes, acc_token, p_gold")] = None,
        wrapper: Annotated[str | None, typer.Option(help="prompt wrapper: none, human_assistant, "
                                                    "human_assistant_compact, qa, or a template with {question}")] = None,
        task_format: Annotated[str, typer.Option("--format", help="auto, anthropic or native")] = "auto",
        max_new_tokens: Annotated[int | None, typer.Option(help="generate: new tokens")] = None,
        until: Annotated[list[str] | None, typer.Option(help="generate: stop strings (default newline)")] = None,
        match: Annotated[str | None, typer.Option(help="generate: exact, contains or regex")] = None,
        pattern: Annotated[str | None, typer.Option(help="generate: regex whose first group is graded")] = None,
        truncation: Annotated[str, typer.Option(help="prompt longer than the context: error or left")] = "error",
        limit: Annotated[int | None, typer.Option(help="only the first N items of each task")] = None,
        contamination: Annotated[bool, typer.Option(help="split scores by training-data contamination "
                                                    "(suite models with an n-gram index)")] = True,
        out: Annotated[Path | None, typer.Option(help="run folder (default: in the workspace)")] = None,
        seed: Annotated[int, typer.Option(help="recorded seed (decoding is greedy)")] = 0,
        executor: ExecutorOpt = None,
        address: AddressOpt = None,
        shard_items: Annotated[int | None, typer.Option(
            min=1, help="items per unit of work with --executor (default: 4 chunks)")] = None,
        overwrite: Overwrite = False,
        workspace: WorkspaceOpt = None,
        quiet: Quiet = False,
    ) -> None:
        """Evaluate models on tasks; print scores with CIs and write results, transcripts and a report."""
        from empiricist.artifacts import check_replaceable
        from empiricist.errors import InputError
        from empiricist.evals import expand_models, make_scorer, resolve_tasks, run_eval
        from empiricist.evals.runner import KIND
        from empiricist.report import write_run_report

        if out is not None:
            check_replaceable(out, KIND, overwrite)  # before any model is loaded

        if suite and not (all_sizes or size):
            raise InputError("with --suite, choose --all-sizes or one or more --size")
        if (all_sizes or size) and not suite:
            raise InputError("--all-sizes/--size need --suite")
        options: dict[str, Any] = {"truncation": truncation}
        if scoring == "loglik":
            options["metric"] = metric
        else:
            options.update(max_new_tokens=max_new_tokens, until=tuple(until) if until else None, match=match,
                           pattern=pattern)
        scorer = make_scorer(scoring, **options)
        tasks = _limit(resolve_tasks(task, wrapper=wrapper, format=task_format, workspace=workspace), limit)
        models = expand_models(model or [], suite=suite, sizes=None if all_sizes else size,
                               checkpoints=checkpoints.split(",") if suite else None, workspace=workspace)
        if not models:
            raise InputError("no models: give --model and/or --suite")
        run = run_eval(tasks, models, scorer, out=out, workspace=workspace, progress=not quiet,
                       contamination="auto" if contamination else False, render=write_run_report, overwrite=overwrite,
                       executor=units_executor(executor, address), shard_items=shard_items)
        console.print(summary_table(run.summary, f"{scoring} scores ({len(models)} models)"))
        console.print(f"run: {run.folder}\nreport: {run.report}")

    @app.command("view")
    def view_cmd(
        path: Annotated[Path, typer.Argument(help="report.html, a run folder, or a folder of runs")],
        port: Annotated[int, typer.Option(help="port on 127.0.0.1 (0: any free port)")] = 8765,
        listing: Annotated[bool, typer.Option("--list", help="allow directory listings")] = False,
    ) -> None:
        """Serve a report on 127.0.0.1 (for SSH tunnels; reports also open straight from disk)."""
        from empiricist.report import serve

        server, url = serve(path, port=port, background=False, listing=listing)
        console.print(f"serving {url} (127.0.0.1 only; Ctrl-C to stop)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
