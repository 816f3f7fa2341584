"""Tables and lines that print a study's results: shared by ``study run`` and ``empiricist run`` (the main
job), kept apart from both command modules so neither imports the other."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def experiment_table(results: dict[str, Any]) -> Table:
    """Verdicts of an experiment study: controls, each party's predictions with their numbers, the parties."""
    from empiricist.studies.experiment_report import part_text

    table = Table(title=f"study {results['study']}: {results['status']} (experiment {results['experiment']}, "
                        f"config {results['config_hash']})")
    for col in ("party", "prediction", "cell", "mean [95% CI over runs] (rule)", "verdict"):
        table.add_column(col)
    for c in results["controls"]:
        table.add_row("control", c["id"], c["cell"], "\n".join(part_text(p) for p in c["parts"]), c["verdict"])
    for p in results["predictions"]:
        table.add_row(p["party"], f"{p['id']} ({p['test']})", p["cell"], "\n".join(part_text(q) for q in p["parts"]),
                      p["verdict"])
    for p in results["parties"]:
        table.add_row(p["name"], f"[bold]{p['combine']}[/bold]", "", "", f"[bold]{p['final']}[/bold]")
    return table


def signatures_line(results: dict[str, Any]) -> str:
    """Whether the lock a run checked is signed by every party: printed by every command that runs a study."""
    return f"lock: {results['status']}; signatures: {results.get('signatures') or 'not locked'}"
