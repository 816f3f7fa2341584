"""The compute–Elo experiment's part of the study report: the curves, the slopes, every rated network,
expert iteration's iterations, and the ladder. Every string is escaped (``html_table`` escapes cells)."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from empiricist.experiments.compute_elo import rule
from empiricist.experiments.compute_elo.config import ComputeEloConfig
from empiricist.report.html import html_table, png_figure

CAPTIONS = {
    "curves.png": "Elo against compute per cap: every imitation network and checkpoint (colour: width), the "
                  "imitation frontier (black), networks asked to play above the cap (grey), expert iteration from "
                  "the best imitation network (red), and the cap (dashed). Bars: intervals conditional on the ladder.",
    "ladder.png": "The ladder: OpenSpiel's MCTS with 2^k random-rollout simulations, rated by maximum likelihood "
                  "(random = 0); crosses: the control's re-ratings on fresh games.",
}


def config_of(d: dict[str, Any]) -> ComputeEloConfig:
    return ComputeEloConfig(**{**d, "caps": tuple(d["caps"]), "widths": tuple(d["widths"]),
                               "log2_steps": tuple(d["log2_steps"])})


def _e(r: dict[str, Any]) -> str:
    return f"{r['elo']:.0f} ± {r['se']:.0f}"


def slopes_table(rows: list[dict[str, Any]], cfg: ComputeEloConfig) -> str:
    body = []
    for cap in cfg.caps:
        q = rule.ratio(rows, cap, cfg)
        r = "–" if q["estimate"] is None else f"{q['estimate']:.2f}"
        ci = "–" if q["lo"] is None else f"[{q['lo']:.2f}, {q['hi']:.2f}]"
        cost = "–" if q["cost_ratio"] is None else f"{q['cost_ratio']:.2f}"
        body.append([cap, f"{q['imitation_slope']:.0f}", f"{q['networks']} / {q['iterations']}", f"{q['exit_slope']:.0f}", r, ci, cost])
    return html_table(["cap", "imitation frontier (Elo/decade)", "networks / iterations", "expert iteration (Elo/decade)",
                       "r = ExIt ÷ imitation", f"{cfg.level:g} interval", "compute per Elo above ÷ below (1/r)"], body)


def networks_table(rows: list[dict[str, Any]]) -> str:
    body = [[r["cap"], r["condition"], r["width"], r["params"], r["step"], f"{r['compute']:.3g}", f"{r['loss']:.3f}",
             _e(r)] for r in rows if r["kind"] == "imitation"]
    body += [[r["cap"], f"{r['condition']} (confirmed)", r["width"], "", r["step"], f"{r['compute']:.3g}", "",
              f"{_e(r)} (selected at {r['selected_elo']:.0f})"] for r in rows if r["kind"] == "confirm"]
    return html_table(["cap", "condition", "width", "parameters", "step", "compute", "last batch loss", "Elo"], body)


def exit_table(rows: list[dict[str, Any]]) -> str:
    body = [[r["cap"], r["iteration"], f"{r['compute']:.3g}", r["evaluations"], r["positions"], _e(r)]
            for r in rows if r["kind"] == "exit"]
    return html_table(["cap", "iteration", "compute", "network evaluations", "positions trained on", "Elo"], body)


def ladder_table(rows: list[dict[str, Any]]) -> str:
    again = {r["agent"]: r for r in rows if r["kind"] == "rerate"}
    body = [[r["agent"], _e(r), f"{r['games']:.0f}", _e(again[r["agent"]]) if r["agent"] in again else ""]
            for r in sorted((r for r in rows if r["kind"] == "ladder"), key=lambda r: r["elo"])]
    return html_table(["agent", "Elo", "games", "re-rated (control)"], body)


def data_table(rows: list[dict[str, Any]]) -> str:
    body = [[r["cap"], f"{r['cap_elo']:.0f}", ", ".join(f"{k} ({v:.0f})" for k, v in r["players"].items()),
             r["n_games"], r["n_moves"], _e(r["top_in_data"]) if r["top_in_data"] else "–"]
            for r in rows if r["kind"] == "data"]
    return html_table(["cap", "cap Elo", "players (ladder Elo)", "games", "positions",
                       "strongest player rated from the data's own games"], body)


def section(results: dict[str, Any], grid: Path) -> str:
    data = json.loads((grid / "results.json").read_text()) if (grid / "results.json").is_file() else {}
    if not data:
        return ""
    cfg = config_of(data["config"])
    rows = data["rows"]
    return "".join([
        '<h2 id="curves">Compute–Elo curves below and above the cap</h2>',
        png_figure(grid / "curves.png", CAPTIONS["curves.png"]), slopes_table(rows, cfg),
        '<h2 id="data">The capped data</h2>', data_table(rows),
        '<h2 id="networks">Every rated network</h2>', networks_table(rows),
        '<h2 id="exit">Expert iteration</h2>', exit_table(rows),
        '<h2 id="ladder">The ladder</h2>', png_figure(grid / "ladder.png", CAPTIONS["ladder.png"]), ladder_table(rows),
        (f'<p class="note">grid built in {escape(str(data.get("runtime_s", "?")))} s (per cap: '
         f'{escape(str(data.get("timings", {})))}).</p>')])
