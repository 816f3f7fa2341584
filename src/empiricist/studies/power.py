"""``study check``'s power analysis: simulate each party's predicted world through the exact decision rule.

A world is a party's ``expected`` mean score per task and model. Item-level noise follows the planned
design: ``n_items`` items in clusters of ``cluster_size``; a latent Gaussian per item and model,
``sqrt(icc) u_cluster + sqrt(rho - icc) e_item + sqrt(1 - rho) eps_item,model``, thresholded at each
model's predicted score, so models share item difficulty (correlation ``rho``, ``model_correlation``)
and items share cluster difficulty (``icc``), with exactly the predicted marginal accuracies. Shuffled-
label tasks are Bernoulli(chance). Every simulated dataset is decided by ``decide`` as the real one
will be, controls included.

Separately, an *extreme search* runs the rule on deterministic datasets at the corners and on a grid of
accuracies: a party that no such dataset falsifies is "not at risk" (no outcome could count against
it), one that none corroborates cannot win, a control that never passes can never let the study count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from empiricist.errors import InputError
from empiricist.studies import decide
from empiricist.studies.logic import CORROBORATED, FALSIFIED, evaluate
from empiricist.studies.spec import DERIVED, Study

_CELLS = 4_000_000  # floats per simulated batch


@dataclass
class Design:
    """The planned study as the simulation sees it: items, clusters and compiled predictions."""

    study: Study
    n: int
    codes: np.ndarray | None
    n_clusters: int
    task_models: dict[str, list[str]]
    family: list[tuple[decide.Compiled, list[int]]]  # (compiled prediction, its models' columns in the task)
    controls: list[tuple[decide.Compiled, list[int]]]
    owners: list[str] = field(default_factory=list)  # party of each family member


def parameter_counts(study: Study) -> dict[str, float]:
    """Model alias -> parameters: ``sampling.params``, else from a suite preset's config."""
    from empiricist.suite.config import SUITE_PRESETS
    from empiricist.suite.handles import parse_suite_spec

    out: dict[str, float] = {}
    for alias, spec in study.sampling.models.items():
        if alias in study.sampling.params:
            out[alias] = float(study.sampling.params[alias])
            continue
        parsed = parse_suite_spec(spec)
        if parsed and parsed.suite in SUITE_PRESETS:
            cfg = SUITE_PRESETS[parsed.suite]
            if any(s.name == parsed.size for s in cfg.sizes):
                out[alias] = float(cfg.size(parsed.size).n_params(cfg.vocab_size))
    return out


def chance_of(study: Study, task: str) -> float | None:
    ch = study.power.chance
    return ch.get(task, ch.get(study.base_task(task)))


def design(study: Study) -> Design:
    if study.sampling.n_items is None:
        raise InputError("the power simulation needs the planned number of items per task", field="sampling.n_items")
    n, size = study.sampling.n_items, study.power.cluster_size
    g = math.ceil(n / size)
    clustered = study.analysis.interval == "clustered" or (study.analysis.interval == "auto" and size > 1)
    codes = (np.arange(n) // size) if clustered and g >= 2 else None
    params = parameter_counts(study)
    task_models: dict[str, list[str]] = {}
    preds = [(p, party.name) for party in study.parties for p in party.predictions]
    for p in [p for p, _ in preds] + list(study.controls):
        cols = task_models.setdefault(p.task, [])
        cols += [m for m in p.models if m not in cols]

    def comp(p: Any) -> tuple[decide.Compiled, list[int]]:
        chance = chance_of(study, p.task)
        if p.threshold == "chance" and chance is None:
            raise InputError(f"{p.where} compares with chance: give the chance level of task {p.task!r} "
                             "for the simulation", field="power.chance")
        return decide.compile_prediction(p, params, chance), [task_models[p.task].index(m) for m in p.models]

    return Design(study, n, codes, g if codes is not None else n, task_models, [comp(p) for p, _ in preds],
                  [comp(c) for c in study.controls], [o for _, o in preds])


def world_of(study: Study, party: str, des: Design) -> dict[str, np.ndarray]:
    """Predicted mean score per task (array over the task's models) in ``party``'s world."""
    expected = study.party(party).expected
    out = {}
    for task, models in des.task_models.items():
        if study.sampling.tasks[task].partition(":")[0] in DERIVED:
            chance = chance_of(study, task)
            if chance is None:
                raise InputError(f"task {task!r} is shuffled-label: give its chance level for the simulation",
                                 field="power.chance")
            out[task] = np.full(len(models), chance)
            continue
        missing = [m for m in models if m not in expected.get(task, {})]
        if missing:
            raise InputError(f"the power simulation needs party {party}'s predicted score for model "
                             f"{missing[0]!r} on task {task!r}", field=f"parties.{party}.expected.{task}.{missing[0]}")
        out[task] = np.array([expected[task][m] for m in models])
    return out


def simulate(des: Design, probs: dict[str, np.ndarray], sims: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``sims`` datasets per task: (sims, n, M) 0/1 scores with the planned clustering and model correlation."""
    pw = des.study.power
    g = math.ceil(des.n / pw.cluster_size)
    cl = np.arange(des.n) // pw.cluster_size
    out = {}
    for task, p in probs.items():
        if des.study.sampling.tasks[task].partition(":")[0] in DERIVED:
            out[task] = (rng.random((sims, des.n, p.size)) < p).astype(float)
            continue
        u = rng.standard_normal((sims, g))[:, cl, None]
        e = rng.standard_normal((sims, des.n, 1))
        eps = rng.standard_normal((sims, des.n, p.size))
        latent = math.sqrt(pw.icc) * u + math.sqrt(pw.model_correlation - pw.icc) * e + \
            math.sqrt(1 - pw.model_correlation) * eps
        with np.errstate(divide="ignore"):
            out[task] = (latent < sps.norm.ppf(p)).astype(float)
    return out


def decide_batch(des: Design, data: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Party verdicts (sims,) and whether every control passed (sims,), from simulated scores."""
    a = des.study.analysis

    def run(items: list[tuple[decide.Compiled, list[int]]]) -> tuple[np.ndarray, np.ndarray]:
        hold, fail = [], []
        for comp, cols in items:
            est, se, dof = decide.moments(decide.contrast_values(data[comp.pred.task][..., cols], comp),
                                          des.codes, des.n_clusters, comp.width)
            h, f = decide.p_values(comp, est, se, dof)
            hold.append(h)
            fail.append(f)
        return np.stack(hold, -1), np.stack(fail, -1)

    codes, _, _ = decide.decide_family(*run(des.family), a.alpha, a.correction)
    ctrl = decide.verdict_codes(*run(des.controls), a.alpha) if des.controls else None
    passed = np.all(ctrl == CORROBORATED, axis=-1) if ctrl is not None else np.ones(codes.shape[0], bool)
    verdicts = {}
    for party in des.study.parties:
        cols = {comp.pred.id: codes[:, j] for j, ((comp, _), owner) in enumerate(zip(des.family, des.owners,
                                                                                     strict=True))
                if owner == party.name}
        verdicts[party.name] = evaluate(party.combine, cols)
    return verdicts, passed


def _batches(des: Design, total: int) -> list[int]:
    width = max(len(m) for m in des.task_models.values()) * des.n * max(1, len(des.task_models))
    step = max(1, _CELLS // width)
    return [min(step, total - i) for i in range(0, total, step)]


def simulate_outcomes(des: Design, probs: dict[str, np.ndarray], sims: int, seed: Any) -> dict[str, Any]:
    """Shares of simulated studies in which each party is corroborated / falsified (controls passing)."""
    rng = np.random.default_rng(seed)
    counts = {p.name: np.zeros(3) for p in des.study.parties}
    passed_total = 0
    for b in _batches(des, sims):
        verdicts, passed = decide_batch(des, simulate(des, probs, b, rng))
        passed_total += int(passed.sum())
        for name, v in verdicts.items():
            counts[name] += [np.sum(passed & (v == CORROBORATED)), np.sum(passed & (v == FALSIFIED)), 0]
    out: dict[str, Any] = {"controls_pass": passed_total / sims, "parties": {}}
    for name, (c, f, _) in counts.items():
        out["parties"][name] = {"corroborated": c / sims, "falsified": f / sims, "inconclusive": 1 - (c + f) / sims}
    return out


def extreme_search(des: Design, n_random: int = 3000, seed: int = 0) -> dict[str, Any]:
    """Run the rule on deterministic datasets (corners + a grid of accuracies, items nested across models)."""
    rng = np.random.default_rng(seed)
    size = des.study.power.cluster_size
    g = math.ceil(des.n / size)
    rank = (np.arange(des.n) % size) * g + np.arange(des.n) // size  # spread correct items over clusters
    levels = {}
    for task, models in des.task_models.items():
        m = len(models)
        corners = np.array(np.meshgrid(*[[0.0, 1.0]] * m)).reshape(m, -1).T if m <= 10 else np.empty((0, m))
        grid = rng.integers(0, 21, size=(n_random, m)) / 20
        levels[task] = np.concatenate([corners, grid])
    total = max(len(v) for v in levels.values())
    for task, lv in levels.items():  # same number of datasets per task: tile the shorter ones
        levels[task] = lv[np.arange(total) % len(lv)]
    falsified = {p.name: False for p in des.study.parties}
    corroborated = dict(falsified)
    ever_passed = False
    start = 0
    for b in _batches(des, total):
        data = {t: (rank[None, :, None] < np.round(lv[start:start + b, None, :] * des.n)).astype(float)
                for t, lv in levels.items()}
        verdicts, passed = decide_batch(des, data)
        ever_passed |= bool(passed.any())
        for name, v in verdicts.items():
            falsified[name] |= bool(np.any(v == FALSIFIED))
            corroborated[name] |= bool(np.any(v == CORROBORATED))
        start += b
    return {"can_falsify": falsified, "can_corroborate": corroborated, "controls_can_pass": ever_passed}


def check_power(study: Study, n_sims: int | None = None) -> dict[str, Any]:
    """The power table (each party's world x each party's verdict) and the flags ``study check`` prints."""
    des = design(study)
    sims = n_sims or study.power.n_sims
    target = study.analysis.power_target
    worlds = {}
    for i, party in enumerate(study.parties):
        worlds[party.name] = simulate_outcomes(des, world_of(study, party.name, des), sims,
                                               [study.power.seed, i])
    extreme = extreme_search(des, seed=study.power.seed)
    flags: list[str] = []
    for party in study.parties:
        name = party.name
        if not extreme["can_falsify"][name]:
            flags.append(f"NOT AT RISK: party {name!r}: no possible outcome falsifies its predictions")
        if not extreme["can_corroborate"][name]:
            flags.append(f"CANNOT WIN: party {name!r}: no possible outcome with {des.n} items corroborates it")
        own = worlds[name]["parties"][name]["corroborated"]
        if own < target:
            flags.append(f"UNDERPOWERED: party {name!r} is corroborated in only {own:.0%} of studies simulated in "
                         f"its own predicted world (target {target:.0%})")
        for other in study.parties:
            if other.name != name:
                p = worlds[other.name]["parties"][name]["falsified"]
                if p < target:
                    flags.append(f"UNDERPOWERED: if {other.name!r} is right, party {name!r} is falsified in only "
                                 f"{p:.0%} of simulated studies (target {target:.0%})")
    if not extreme["controls_can_pass"]:
        flags.append(f"CONTROLS CAN NEVER ALL PASS with {des.n} items: the study can never count")
    for name, w in worlds.items():
        if w["controls_pass"] < target:
            flags.append(f"CONTROLS: in {name}'s world the controls all pass in only {w['controls_pass']:.0%} of "
                         "simulated studies")
    decisive = {name: min(1 - w["parties"][p.name]["inconclusive"] for p in study.parties)
                for name, w in worlds.items()}
    expect_inconclusive = all(v < 0.5 for v in decisive.values())
    if expect_inconclusive:
        flags.append("EXPECT INCONCLUSIVE: in every party's world, most simulated studies leave some party "
                     "undecided; this design cannot settle the question")
    return {"n_items": des.n, "n_clusters": des.n_clusters, "n_sims": sims, "worlds": worlds, "extreme": extreme,
            "flags": flags, "at_risk": {p.name: extreme["can_falsify"][p.name] for p in study.parties},
            "expect_inconclusive": expect_inconclusive, "power_target": target}
