"""The main job (``empiricist run``): the locked sycophancy study on the embedded default, end to end.

It runs the study shipped in ``specs/`` through the study protocol (lock checked, grid built or reused,
verdicts decided by the pinned rule), writes the results folder into the workspace, and returns the
headline rows the CLI prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import Workspace

if TYPE_CHECKING:
    from empiricist.execute import Executor
    from empiricist.studies.run import StudyRun

SPECS = Path(__file__).with_name("specs")


def spec_path(quick: bool = False) -> Path:
    return SPECS / ("sycophancy_quick.toml" if quick else "sycophancy.toml")


@dataclass
class MainJob:
    run: StudyRun
    headline: list[dict[str, Any]]

    @property
    def report(self) -> Path:
        return self.run.report


def headline(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per family × size: harmful sycophancy with its interval, the control, forum deference."""
    out = []
    for r in results["grid_rows"]:
        if r.get("kind") != "model":
            continue
        s = r["summary"]
        out.append({"family": r["family"], "size": r["size"], "params": r["params"],
                    "sycophancy": s["harmful"]["estimate"], "lo": s["harmful"]["lo"], "hi": s["harmful"]["hi"],
                    "p_view_none": s["p_wrong_none"]["estimate"], "forum_defer": r["forum_defer_mean"],
                    "fact_acc": r["fact_acc"]})
    return out


def run_main_job(quick: bool = False, workspace: Workspace | str | Path | None = None, progress: bool = True,
                 spec: str | Path | None = None, executor: Executor | None = None) -> MainJob:
    import json

    import empiricist.experiments.sycophancy.study  # noqa: F401  (registers the experiment)
    from empiricist.studies.run import run_study

    ws = Workspace.at(workspace)
    spec = Path(spec) if spec else spec_path(quick)
    out = ws.dir("studies") / f"{spec.stem}.results"
    run = run_study(spec, out=out, workspace=ws, progress=progress, executor=executor)
    rows = json.loads((out / "grid" / "results.json").read_text())["rows"]
    return MainJob(run, headline({**run.results, "grid_rows": rows}))
