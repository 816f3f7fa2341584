"""Evaluate every checkpoint of a suite as it lands, check the locked thresholds, act on a crossing.

``Watcher.poll`` finds the suite's complete checkpoints (a checkpoint folder gets its manifest last, so
a half-written one is never read) that ``metrics.jsonl`` does not hold yet, and evaluates them on the
policy's tasks in one ordinary eval run (the same runner, cache, run folder and report as ``empiricist
eval``; a watcher killed and restarted, or started after training, computes only what is new). Their
metrics (one row per checkpoint × task × confidence) are appended to ``metrics.jsonl``. The first
checkpoint of a size where a threshold is crossed becomes an alert in ``alerts.jsonl``: the policy's
hash, the threshold, the checkpoint, the interval, and the evidence (the eval run folder that keeps
every transcript, and the items that scored). ``stop`` writes ``STOP`` into every unfinished size's
folder; the trainer stops before its next step and keeps a snapshot (suite/train.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import Workspace, artifact_lock, atomic_write_json, atomic_write_text, is_complete
from empiricist.suite.train import STOP_FILE

if TYPE_CHECKING:
    from empiricist.evals.results import Results
    from empiricist.evals.tasks import Task
    from empiricist.monitor.policy import Policy, Threshold

MAX_EVIDENCE = 20  # items quoted in an alert (all of them stay in the eval run)


def checkpoints(suite: Path) -> list[tuple[str, int, Path]]:
    """(size, step, folder) of every complete checkpoint, by size then step."""
    out = []
    for folder in sorted((suite / "models").glob("*/checkpoints/step*")):
        if folder.name[4:].isdigit() and is_complete(folder):
            out.append((folder.parent.parent.name, int(folder.name[4:]), folder))
    return sorted(out, key=lambda c: (c[0], c[1]))


def suite_done(suite: Path) -> bool:
    """Every size finished, or stopped by a policy."""
    models = [m for m in (suite / "models").glob("*") if m.is_dir()]
    return bool(models) and all(is_complete(m) or (m / "stopped.json").is_file() or (m / STOP_FILE).is_file()
                                for m in models)


@dataclass
class Watcher:
    """One suite watched under one policy; its files live in ``folder`` (one per suite and policy hash)."""

    suite: Path
    policy: Policy
    workspace: Workspace
    lock: dict[str, Any] | None = None
    say: Callable[[str], None] = print
    folder: Path = field(init=False)
    _tasks: list[Task] = field(init=False, repr=False)
    _names: dict[str, str] = field(init=False, repr=False)  # policy task spec -> the task's name
    _ckpt_steps: set[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from empiricist.evals.runner import resolve_tasks
        from empiricist.suite.suite import Suite

        self.suite = Path(self.suite)
        self.folder = self.workspace.dir("monitor") / f"{self.suite.name}-{self.policy.id}-{self.policy.sha256[:12]}"
        self.folder.mkdir(parents=True, exist_ok=True)
        # a bare world task ("fact_qa" or "world:fact_qa") is the suite's own world's
        world = None
        specs = []
        for t in self.policy.tasks:
            name = t.removeprefix("world:")
            if ":" not in name and not name.endswith((".jsonl", ".json")) and "/" not in name:
                world = world or _suite_world(self.suite, t)
                specs.append(f"world:{world}:{name}")
            else:
                specs.append(t)
        self._tasks = resolve_tasks(specs, workspace=self.workspace)
        self._names = dict(zip(self.policy.tasks, (t.name for t in self._tasks), strict=True))
        self._ckpt_steps = set(Suite(self.suite).config.train.checkpoint_steps())

    def task_name(self, spec: str) -> str:
        """The evaluated task's name for a task as the policy names it."""
        return self._names[spec]

    def on_step(self, step: int, loss: float) -> None:
        """A trainer callback (``train_suite(on_step=...)``): poll when a new checkpoint has landed, so the
        checkpoint is judged before the next step runs (and a stop takes effect on that step)."""
        if self.landed(step):
            self.poll()

    def landed(self, step: int) -> bool:
        """Was ``step`` a checkpoint step with something not yet evaluated? (Cheap on other steps.)"""
        if step not in self._ckpt_steps:
            return False
        return len(checkpoints(self.suite)) > len(self.metrics_keys())

    def metrics_keys(self) -> set[tuple[str, int]]:
        return {(m["size"], m["step"]) for m in self.metrics()}

    def alerts(self) -> list[dict[str, Any]]:
        path = self.folder / "alerts.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

    def metrics(self) -> list[dict[str, Any]]:
        path = self.folder / "metrics.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

    def pending(self) -> list[tuple[str, int, Path]]:
        """The complete checkpoints not evaluated yet."""
        seen = self.metrics_keys()
        return [c for c in checkpoints(self.suite) if (c[0], c[1]) not in seen]

    def poll(self, newest_only: bool = False) -> dict[str, Any]:
        """Evaluate the checkpoints that are new (one ordinary eval run of just those; ``newest_only``: only
        the latest of them, the rest wait), record their metrics, raise the first alert per threshold and size.
        Two watchers of one suite and policy (the training's and ``empiricist monitor``) take turns."""
        with artifact_lock(self.folder / "metrics.jsonl"):
            return self._poll(newest_only)

    def _poll(self, newest_only: bool) -> dict[str, Any]:
        from empiricist.evals import run_eval
        from empiricist.evals.analysis import estimate
        from empiricist.report import write_run_report

        new = self.pending()
        if newest_only and new:
            new = [max(new, key=lambda c: c[2].stat().st_mtime)]
        if not new:
            return {"new": [], "alerts": []}
        specs = [f"suite:{self.suite}/{size}@step{step}" for size, step, _ in new]
        run = run_eval(self._tasks, specs, workspace=self.workspace, contamination=False, progress=False,
                       title=f"monitor {self.suite.name}: {self.policy.id}", render=write_run_report)
        rows = []
        for task in self._tasks:
            for (size, step, _), spec in zip(new, specs, strict=True):
                items = _items(run.results, task.name, spec)
                for conf in self.policy.confidences:
                    est = estimate([r["score"] for r in items], [r["cluster"] for r in items], alpha=1 - conf)
                    rows.append({"size": size, "step": step, "task": task.name, "metric": items[0]["metric"],
                                 "confidence": conf, **est, "spec": spec, "eval_run": str(run.folder)})
        old = self.metrics()
        atomic_write_text(self.folder / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in old + rows))
        raised = self._check(sorted(rows, key=lambda r: (r["size"], r["step"])), run.results)
        return {"new": [(s, k) for s, k, _ in new], "alerts": raised, "eval_run": str(run.folder)}

    def _check(self, rows: list[dict[str, Any]], results: Results) -> list[dict[str, Any]]:
        old = self.alerts()
        done = {(a["threshold"]["id"], a["size"]) for a in old}  # one alert per threshold and size: the first crossing
        raised = []
        for th in self.policy.thresholds:
            for r in rows:
                if r["task"] != self._names[th.task] or r["confidence"] != th.confidence or (th.id, r["size"]) in done:
                    continue
                if th.metric is not None and r["metric"] != th.metric or not th.crossed(r):
                    continue
                raised.append(self._alert(th, r, results))
                done.add((th.id, r["size"]))
        if raised:
            atomic_write_text(self.folder / "alerts.jsonl", "".join(json.dumps(a) + "\n" for a in old + raised))
            for a in raised:
                self.say(f"ALERT {a['threshold']['id']} ({a['threshold']['when']} at {a['confidence']:.0%}) on "
                         f"{a['size']}@step{a['step']}: {a['mean']:.3f} [{a['lo']:.3f}, {a['hi']:.3f}] "
                         f"-> {a['threshold']['action']} (policy {self.policy.id} sha256 {self.policy.sha256[:12]})")
                if a["threshold"]["action"] == "stop":
                    self._stop(a)
        return raised

    def _alert(self, th: Threshold, row: dict[str, Any], results: Results) -> dict[str, Any]:
        items = _items(results, row["task"], row["spec"])
        scoring = sorted(items, key=lambda r: -float(r["score"]))[:MAX_EVIDENCE]
        return {"policy": {"id": self.policy.id, "sha256": self.policy.sha256, "path": str(self.policy.path),
                           "locked": None if self.lock is None else self.lock.get("locked")},
                "threshold": {"id": th.id, "task": th.task, "when": th.when, "confidence": th.confidence,
                              "action": th.action},
                "size": row["size"], "step": row["step"], "model": row["spec"], "confidence": row["confidence"],
                "mean": row["mean"], "lo": row["lo"], "hi": row["hi"], "n": row["n"], "method": row["method"],
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "evidence": {"eval_run": row["eval_run"],
                             "items": [{"item_id": r["item_id"], "score": r["score"], "prompt": r.get("prompt"),
                                        "answer": r.get("completion") or r.get("answer")} for r in scoring]}}

    def _stop(self, alert: dict[str, Any]) -> None:
        """STOP into every size's folder not yet finished (sizes not started yet stop before their first step)."""
        from empiricist.suite.suite import Suite

        for size in Suite(self.suite).sizes:
            model = self.suite / "models" / size
            if not is_complete(model):
                model.mkdir(parents=True, exist_ok=True)
                atomic_write_json(model / STOP_FILE, alert)
                self.say(f"STOP written to {model}")


def _suite_world(suite: Path, task: str) -> Path:
    from empiricist.errors import ArtifactError, InputError
    from empiricist.suite.suite import Suite

    try:
        return Suite(suite).world_path()
    except ArtifactError as e:
        raise InputError(f"policy task {task!r} is a world task, but {e}: name the world in the policy, "
                         f"e.g. world:<world folder>:{task}", field="policy.tasks") from None


def _items(results: Results, task: str, spec: str) -> list[dict[str, Any]]:
    rows = [r for r in results.rows() if r["task"] == task and r["model_spec"] == spec]
    return sorted(rows, key=lambda r: r["item_index"])


class TrainingWatch:
    """A trainer callback that evaluates each checkpoint as it lands (``train_suite(on_step=...)``).

    The evaluation runs in the training process between steps, so it costs training time; ``share``
    bounds that cost: while the evaluation time so far exceeds ``share`` × the training time so far, a
    checkpoint that lands waits; within budget, only the newest waiting checkpoint is evaluated (the rest
    wait for ``finish``), so the slow-down is at most ``share`` plus one checkpoint's evaluation. ``share=None``: every checkpoint is judged before the next
    step (a stop then acts at once). The watcher is made on the first step, once the suite folder holds
    its ``suite.json``. ``finish`` evaluates whatever is left after training and returns the watcher.
    """

    def __init__(self, suite: Path, policy: Policy, workspace: Workspace, lock: dict[str, Any] | None = None,
                 say: Callable[[str], None] = print, share: float | None = None) -> None:
        self.suite, self.policy, self.workspace, self.lock, self.say = Path(suite), policy, workspace, lock, say
        self.share = share
        self.watcher: Watcher | None = None
        self.eval_s = 0.0
        self.deferred = 0
        self._t0: float | None = None

    def _get(self) -> Watcher:
        if self.watcher is None:
            self.watcher = Watcher(self.suite, self.policy, self.workspace, lock=self.lock, say=self.say)
        return self.watcher

    def __call__(self, step: int, loss: float) -> None:
        now = time.perf_counter()
        self._t0 = now if self._t0 is None else self._t0
        w = self._get()
        if not w.landed(step):
            return
        if self.share is not None and self.eval_s > self.share * (now - self._t0 - self.eval_s):
            self.deferred += 1
            return
        w.poll(newest_only=self.share is not None)  # within a budget: one checkpoint per poll, the newest
        self.eval_s += time.perf_counter() - now

    def finish(self) -> Watcher:
        w = self._get()
        w.poll()
        return w
