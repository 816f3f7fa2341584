"""The study spec: one TOML file that says, before any data are seen, what would count as what.

Parsed with ``tomllib`` into frozen dataclasses and checked strictly: an unknown key is an error (a typo
in a pre-registration must not silently drop a prediction), and every error names the field as
``parties.skeptic.predictions[0].threshold``, the same path a lock diff uses. See docs/studies.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from empiricist.errors import InputError
from empiricist.studies import logic
from empiricist.studies.fields import ID, Fields
from empiricist.studies.hidden import PUBLIC
from empiricist.studies.protocol import StudyBase, parse_controls, parse_parties, unused_predictions

METRICS = {"accuracy": (1, 1), "difference": (2, 2), "slope": (2, None), "monotonic": (2, None)}
COMPARATORS = (">", "<", "between", "equivalent")
CORRECTIONS = ("holm", "bh", "bonferroni", "none")
INTERVALS = ("auto", "clustered", "clt")
INCONCLUSIVE_RULES = ("ci_straddles",)
STOPPING = ("fixed",)
DERIVED = ("shuffled",)  # shuffled:<task alias>: the same items with uniformly random gold labels
# Scores are in [0, 1], so these are the values a metric can possibly take (None: unbounded).
RANGE = {"accuracy": (0.0, 1.0), "difference": (-1.0, 1.0), "monotonic": (-1.0, 1.0), "slope": None}


@dataclass(frozen=True)
class Prediction:
    """One machine-checkable prediction (or control): ``metric`` of ``models`` on ``task`` vs a threshold.

    ``threshold``: a number, ``"chance"`` (accuracy only), or (low, high) for ``between``; for
    ``equivalent`` it is the centre (default 0) and ``margin`` the half-width.
    """

    id: str
    metric: str
    task: str
    models: tuple[str, ...]
    comparator: str
    threshold: float | str | tuple[float, float]
    margin: float | None = None
    direction: str = "increasing"
    description: str = ""
    kind: str = ""  # "positive" / "negative" for controls
    where: str = ""  # the field path, for messages


@dataclass(frozen=True)
class Party:
    name: str
    position: str
    predictions: tuple[Prediction, ...]
    combine: logic.Tree
    expected: dict[str, dict[str, float]]  # task alias -> model alias -> predicted mean score


@dataclass(frozen=True)
class Sampling:
    models: dict[str, str]
    tasks: dict[str, str]
    suite: str | None = None
    n_items: int | None = None
    item_seed: int = 0
    seeds: tuple[int, ...] = (0,)
    stopping: str = "fixed"
    scoring: str = "loglik"
    metric: str | None = None
    params: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Analysis:
    alpha: float = 0.05
    correction: str = "holm"
    interval: str = "auto"
    inconclusive: str = "ci_straddles"
    power_target: float = 0.8


@dataclass(frozen=True)
class PowerPlan:
    n_sims: int = 2000
    seed: int = 0
    icc: float = 0.1
    model_correlation: float = 0.5
    cluster_size: int = 4
    chance: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Study(StudyBase[Party, Prediction]):
    """An eval study: models and tasks to sample, the analysis and power plans."""

    kind: ClassVar[str] = "eval"
    sampling: Sampling
    analysis: Analysis
    power: PowerPlan

    def base_task(self, alias: str) -> str:
        """The task a derived one is made from (``shuffled:fact_qa`` -> ``fact_qa``); itself otherwise."""
        kind, _, base = self.sampling.tasks[alias].partition(":")
        return base if kind in DERIVED else alias

    def files(self) -> tuple[str, ...]:
        """Task files named by a relative path travel with the spec; of a hidden task, its public
        commitment only (the items never do)."""
        plain = [source for source in self.sampling.tasks.values() if ":" not in source]
        hidden = [f"{source.partition(':')[2].rstrip('/')}/{PUBLIC}" for source in self.sampling.tasks.values()
                  if source.startswith("hidden:")]
        return tuple(plain + hidden)


__all__ = ["Analysis", "Party", "PowerPlan", "Prediction", "Sampling", "Study", "parse_eval_study"]


# ---------------------------------------------------------------- the spec
def parse_eval_study(top: Fields, header: dict[str, Any], path: Path | None) -> Study:
    """The body of an eval study spec (sampling, analysis, power, parties, controls)."""
    sampling = _sampling(Fields(top.table("sampling"), "sampling", path))
    analysis = _analysis(Fields(top.table("analysis", {}), "analysis", path))
    power = _power(Fields(top.table("power", {}), "power", path), sampling)
    parties = parse_parties(top, path, lambda d, w: _prediction(d, w, sampling, path),
                            lambda f, name, position, preds, tree: Party(
                                name=name, position=position, predictions=preds, combine=tree,
                                expected=_expected(f, sampling)))
    controls = parse_controls(top, lambda d, w: _prediction(d, w, sampling, path, control=True), lambda c: c.kind,
                              {"positive": "the largest model beats chance",
                               "negative": "a shuffled-label task stays at chance"})
    return Study(**header, sampling=sampling, analysis=analysis, power=power, parties=parties, controls=controls,
                 warnings=unused_predictions(parties))


def _sampling(f: Fields) -> Sampling:
    suite = f.get("suite", str, None)
    models = dict(f.table("models", {}))
    sizes = f.strings("sizes", ())
    checkpoint = f.get("checkpoint", (str, int), "last")
    if checkpoint != "last" and (isinstance(checkpoint, str) or checkpoint < 0):
        f.fail(f"must be \"last\" or a step number, got {checkpoint!r}", "checkpoint")
    if sizes:
        if suite is None:
            f.fail("sizes need a suite (sampling.suite)", "sizes")
        at = "" if checkpoint == "last" else f"@step{checkpoint}"
        for s in sizes:
            models.setdefault(s, f"suite:{suite}/{s}{at}")
    if not models:
        f.fail("no models: give sampling.models = {alias = \"spec\"} or sampling.sizes with a suite", "models")
    for alias, spec in models.items():
        if not ID.match(alias) or not isinstance(spec, str) or not spec:
            f.fail(f"model {alias!r} must map an identifier to a model spec string", f"models.{alias}")
    tasks = f.table("tasks")
    if not tasks:
        f.fail("no tasks", "tasks")
    for alias, source in tasks.items():
        if not ID.match(alias) or not isinstance(source, str) or not source:
            f.fail(f"task {alias!r} must map an identifier to a source string", f"tasks.{alias}")
        kind, _, base = source.partition(":")
        if kind in DERIVED and (base not in tasks or tasks[base].partition(":")[0] in DERIVED):
            f.fail(f"{source!r}: {kind}:<task> must name another (non-derived) task of sampling.tasks",
                   f"tasks.{alias}")
    params = f.table("params", {})
    for alias, n in params.items():
        if alias not in models or isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            f.fail("must map model aliases to positive parameter counts", f"params.{alias}")
    seeds = f.get("seeds", list, [0], "a list of integers")
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        f.fail("must be a non-empty list of integers", "seeds")
    out = Sampling(models=models, tasks=dict(tasks), suite=suite,
                   n_items=f.number("n_items", None, lo=2, integer=True),
                   item_seed=f.number("item_seed", 0, integer=True), seeds=tuple(seeds),
                   stopping=f.choice("stopping", STOPPING, "fixed"),
                   scoring=f.choice("scoring", ("loglik", "generate"), "loglik"),
                   metric=f.get("metric", str, None), params=dict(params))
    try:
        from empiricist.evals import make_scorer

        make_scorer(out.scoring, **({"metric": out.metric} if out.metric else {}))
    except InputError as e:
        f.fail(str(e).split(": ", 1)[-1], "metric")
    f.done()
    return out


def _analysis(f: Fields) -> Analysis:
    out = Analysis(alpha=f.number("alpha", 0.05, lo=1e-6, hi=0.25),
                   correction=f.choice("correction", CORRECTIONS, "holm"),
                   interval=f.choice("interval", INTERVALS, "auto"),
                   inconclusive=f.choice("inconclusive", INCONCLUSIVE_RULES, "ci_straddles"),
                   power_target=f.number("power_target", 0.8, lo=0.05, hi=0.999))
    f.done()
    return out


def _power(f: Fields, sampling: Sampling) -> PowerPlan:
    raw_chance = f.get("chance", (int, float, dict), {}, "a number or a table of task -> number")
    chance = {t: raw_chance for t in sampling.tasks} if not isinstance(raw_chance, dict) else dict(raw_chance)
    for t, c in chance.items():
        if t not in sampling.tasks or isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 < c < 1:
            f.fail("must be a chance accuracy in (0, 1) per task alias of sampling.tasks", f"chance.{t}")
    icc = f.number("icc", 0.1, lo=0.0, hi=0.99)
    out = PowerPlan(n_sims=f.number("n_sims", 2000, lo=100, hi=200_000, integer=True),
                    seed=f.number("seed", 0, integer=True), icc=icc,
                    model_correlation=f.number("model_correlation", 0.5, lo=icc, hi=0.99),
                    cluster_size=f.number("cluster_size", 4, lo=1, hi=10_000, integer=True), chance=chance)
    f.done()
    return out


def _expected(f: Fields, sampling: Sampling) -> dict[str, dict[str, float]]:
    """Predicted mean scores per task and model: the party's world, which ``study check`` simulates."""
    raw = f.table("expected", {})
    plain_tasks = [t for t in sampling.tasks if sampling.tasks[t].partition(":")[0] not in DERIVED]
    if raw and all(not isinstance(v, dict) for v in raw.values()):
        if len(plain_tasks) != 1:
            f.fail(f"with several tasks, write expected = {{<task> = {{<model> = p}}}} (tasks: {plain_tasks})",
                   "expected")
        raw = {plain_tasks[0]: raw}
    out: dict[str, dict[str, float]] = {}
    for task, table in raw.items():
        if task not in sampling.tasks or not isinstance(table, dict):
            f.fail(f"unknown task {task!r}; tasks: {list(sampling.tasks)}", f"expected.{task}")
        for model, p in table.items():
            where = f"expected.{task}.{model}"
            if model not in sampling.models:
                f.fail(f"unknown model {model!r}; models: {list(sampling.models)}", where)
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
                f.fail(f"must be a predicted mean score in [0, 1], got {p!r}", where)
        out[task] = {m: float(p) for m, p in table.items()}
    return out


def _prediction(data: Any, where: str, sampling: Sampling, path: Path | None, control: bool = False) -> Prediction:
    f = Fields(data, where, path)
    metric = f.get("metric", str)
    if metric not in METRICS:
        f.fail(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}", "metric")
    task = f.get("task", str)
    if task not in sampling.tasks:
        f.fail(f"unknown task {task!r}; sampling.tasks has {list(sampling.tasks)}", "task")
    models = f.strings("models")
    for m in models:
        if m not in sampling.models:
            f.fail(f"unknown model {m!r}; sampling.models has {list(sampling.models)}", "models")
    lo_n, hi_n = METRICS[metric]
    if len(models) < lo_n or (hi_n is not None and len(models) > hi_n) or len(set(models)) != len(models):
        want = f"exactly {lo_n}" if lo_n == hi_n else f"at least {lo_n}"
        f.fail(f"{metric} takes {want} distinct model(s), got {list(models)}", "models")
    if metric == "slope" and not sampling.suite and any(m not in sampling.params for m in models):
        f.fail("slope needs parameter counts: name a suite preset (sampling.suite) or give sampling.params", "models")
    default_cmp: Any = ">" if metric == "monotonic" else ...
    comparator = f.get("comparator", str, default_cmp)
    if comparator not in COMPARATORS:
        f.fail(f"unknown comparator {comparator!r}; expected one of {', '.join(COMPARATORS)}", "comparator")
    threshold, margin = _threshold(f, metric, comparator)
    direction = f.choice("direction", ("increasing", "decreasing"), "increasing")
    if direction != "increasing" and metric != "monotonic":
        f.fail("direction applies to the monotonic metric only", "direction")
    kind = f.choice("kind", ("positive", "negative")) if control else ""
    pid = f.ident("id")
    out = Prediction(id=pid, metric=metric, task=task, models=models, comparator=comparator,
                     threshold=threshold, margin=margin, direction=direction,
                     description=f.get("description", str, ""), kind=kind, where=where)
    f.done()
    return out


def _threshold(f: Fields, metric: str, comparator: str) -> tuple[Any, float | None]:
    """Read and sanity-check the threshold: a prediction no possible data could corroborate is an error."""
    rng = RANGE[metric]
    default: Any = 0.0 if (comparator == "equivalent" and metric != "accuracy") or metric == "monotonic" else ...
    value = f.get("threshold", (int, float, str, list), default, "a number, \"chance\" or [low, high]")
    if isinstance(value, str) and (value != "chance" or metric != "accuracy"):
        f.fail("the only named threshold is \"chance\", for the accuracy metric", "threshold")
    margin = None
    if comparator == "between":
        if not (isinstance(value, list) and len(value) == 2 and all(_num(v) for v in value) and value[0] < value[1]):
            f.fail("between needs threshold = [low, high] with low < high", "threshold")
        value = (float(value[0]), float(value[1]))
        if rng and (value[1] <= rng[0] or value[0] >= rng[1]):
            f.fail(f"[{value[0]}, {value[1]}] lies outside the possible range {list(rng)} of {metric}", "threshold")
    elif isinstance(value, list):
        f.fail("a list threshold is only for comparator = \"between\"", "threshold")
    elif not isinstance(value, str):
        value = float(value)
        if rng and comparator == ">" and value >= rng[1]:
            f.fail(f"{metric} can never exceed {rng[1]}: the prediction '> {value}' is impossible", "threshold")
        if rng and comparator == "<" and value <= rng[0]:
            f.fail(f"{metric} can never be below {rng[0]}: the prediction '< {value}' is impossible", "threshold")
        if rng and comparator == "equivalent" and not rng[0] <= value <= rng[1]:
            f.fail(f"centre {value} lies outside the possible range {list(rng)} of {metric}", "threshold")
    if comparator == "equivalent":
        margin = float(f.number("margin", lo=1e-9))
        if margin <= 0:
            f.fail("must be positive", "margin")
    else:
        f.used.add("margin")
        if "margin" in f.data:
            f.fail("margin is only for comparator = \"equivalent\"", "margin")
    return value, margin


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
