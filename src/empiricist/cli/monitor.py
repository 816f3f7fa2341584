"""CLI for evaluations during training: ``monitor`` (the live view) and ``policy`` (lock and check thresholds)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from empiricist.cli.options import WorkspaceOpt

console = Console()


def register(app: typer.Typer) -> None:
    policy_app = typer.Typer(help="Pre-committed threshold policies (docs/monitor.md).", no_args_is_help=True)
    app.add_typer(policy_app, name="policy")

    @policy_app.command("lock")
    def policy_lock(path: Annotated[Path, typer.Argument(help="policy file (TOML)")],
                    signer: Annotated[str, typer.Option(help="who commits to it")]) -> None:
        """Commit to a policy before training: its hash goes into every alert."""
        from empiricist.monitor import lock_policy

        out = lock_policy(path, signer)
        console.print(f"locked: {out}")

    @policy_app.command("check")
    def policy_check(path: Annotated[Path, typer.Argument(help="policy file (TOML)")]) -> None:
        """Parse a policy and say whether it is locked and unchanged since."""
        from empiricist.monitor import load_policy

        pol, lock = load_policy(path, require_lock=False)
        console.print(f"policy {pol.id}: tasks {', '.join(pol.tasks)}; sha256 {pol.sha256[:12]}; "
                      + (f"locked by {lock['signer']} at {lock['locked']}" if lock else "NOT locked"))
        for t in pol.thresholds:
            console.print(f"  {t.id}: {t.task} crossed when {t.when} at {t.confidence:.0%} -> {t.action}")

    @app.command("monitor")
    def monitor_cmd(
        suite: Annotated[str, typer.Argument(help="suite folder or name (a run in progress, or a finished one)")],
        policy: Annotated[Path, typer.Option(help="the threshold policy (locked, unless --unlocked)")],
        unlocked: Annotated[bool, typer.Option(help="allow a policy that is not locked (exploratory)")] = False,
        interval: Annotated[float, typer.Option(help="seconds between polls")] = 10.0,
        once: Annotated[bool, typer.Option(help="poll once and exit")] = False,
        workspace: WorkspaceOpt = None,
    ) -> None:
        """Evaluate every checkpoint as it lands; a refreshing table, and an HTML page rewritten each poll."""
        from rich.live import Live

        from empiricist.monitor import Watcher, load_policy, suite_done
        from empiricist.monitor.live import table, write_page
        from empiricist.suite.handles import resolve_suite

        pol, lock = load_policy(policy, require_lock=not unlocked)
        w = Watcher(resolve_suite(suite, workspace), pol, workspace, lock=lock, say=console.print)
        w.poll()
        page = write_page(w)
        if once:
            console.print(table(w))
            console.print(f"page: {page}")
            return
        with Live(table(w), console=console, refresh_per_second=1) as live:
            while True:
                finished = suite_done(w.suite)
                if w.poll()["new"]:
                    write_page(w)
                live.update(table(w))
                if finished:
                    break
                time.sleep(interval)
        console.print(f"page: {page}")

    @app.command("gradualism")
    def gradualism_cmd(
        suite: Annotated[str, typer.Argument(help="suite folder or name")],
        task: Annotated[list[str], typer.Option(help="task(s): a world task name (the suite's world), "
                                                "world:<path>:<name>, or a JSONL file")],
        level: Annotated[float, typer.Option(help="prediction interval level")] = 0.95,
        out: Annotated[Path | None, typer.Option(help="write the report (report.html, figures) into this folder")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
        workspace: WorkspaceOpt = None,
    ) -> None:
        """Forecast the largest size and each final checkpoint from the earlier ones; score the forecasts."""
        import json

        from rich.table import Table

        from empiricist.monitor.gradualism import suite_gradualism
        from empiricist.monitor.live import share_text

        results = suite_gradualism(suite, task, workspace=workspace, level=level)
        if as_json:
            typer.echo(json.dumps(results, indent=2))
            return
        if out is not None:
            from empiricist.monitor.live import write_gradualism_page

            console.print(f"report: {write_gradualism_page(results, out, f'gradualism: {suite}')}")
        for res in results:
            t = Table(title=f"{res['task']}: forecasts at {level:.0%} (coverage acc {res['coverage']['acc']}, "
                            f"log p {res['coverage']['logp']}, n {res['coverage']['n']})")
            for col in ("forecast", "acc: predicted [PI]", "measured", "log p(right): predicted [PI]", "measured",
                        "verdict"):
                t.add_column(col)
            for f in res["forecasts"]:
                a, lp = f["acc"], f["logp"]
                t.add_row(f["what"], f"{a['mean']:.3f} [{a['lo']:.3f}, {a['hi']:.3f}]", f"{a['actual']:.3f}",
                          f"{lp['mean']:.2f} [{lp['lo']:.2f}, {lp['hi']:.2f}]", f"{lp['actual']:.2f}", f["verdict"])
            console.print(t)
            for it in res["items"]:
                p, r = it["precision"], it["recall"]
                console.print(f"  items {it['what']}: precision {share_text(p)}, recall {share_text(r)}, "
                              f"base rate {share_text(it['base_rate'])}")
            for s in res["skipped"]:
                console.print(f"  skipped: {s}")
        console.print(f"eval run: {results[0]['eval_run']}")
