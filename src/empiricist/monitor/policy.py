"""Pre-committed thresholds: a policy file, locked by its hash before training, checked on every checkpoint.

A policy is TOML:

```toml
[policy]
id = "micro-watch"
tasks = ["fact_qa"]                  # what every checkpoint is evaluated on (as `empiricist eval` names tasks)

[[thresholds]]
id = "knows-too-much"
task = "fact_qa"
when = "lower > 0.3"                 # which end of the interval (lower, upper or mean), which side, the value
confidence = 0.95                    # the interval's level
action = "stop"                      # record | alert | stop
```

``lock_policy`` writes ``<policy>.lock.json`` (the sha256 of the policy's canonical form, who locked it
and when); ``load_policy`` refuses a policy that changed since its lock, and every alert carries the
hash, so an alert names the exact commitment it was checked against. A threshold is crossed when the
chosen end of a checkpoint's interval is past the value: "lower > 0.3" is the responsible-scaling form
"we are 95% confident the score exceeds 0.3".
"""

from __future__ import annotations

import json
import operator
import re
import time
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from empiricist.artifacts import atomic_write_json, sha256_bytes
from empiricist.errors import InputError

ACTIONS = ("record", "alert", "stop")
BOUNDS = ("lower", "upper", "mean")
OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_WHEN = re.compile(r"^\s*(lower|upper|mean)\s*(>=|<=|>|<)\s*(-?[0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*$")


@dataclass(frozen=True)
class Threshold:
    id: str
    task: str
    bound: str
    op: str
    value: float
    confidence: float = 0.95
    action: str = "alert"
    metric: str | None = None  # the task's own metric when None

    @property
    def when(self) -> str:
        return f"{self.bound} {self.op} {self.value:g}"

    def crossed(self, est: dict[str, Any]) -> bool:
        """Is the estimate (``mean``, ``lo``, ``hi`` at this threshold's confidence) past the value?"""
        x = est.get({"lower": "lo", "upper": "hi", "mean": "mean"}[self.bound])
        return x is not None and OPS[self.op](float(x), self.value)


@dataclass(frozen=True)
class Policy:
    id: str
    tasks: tuple[str, ...]
    thresholds: tuple[Threshold, ...]
    path: Path
    title: str = ""

    def canonical(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "tasks": list(self.tasks),
                "thresholds": [asdict(t) for t in self.thresholds]}

    @property
    def sha256(self) -> str:
        return sha256_bytes(json.dumps(self.canonical(), sort_keys=True).encode("utf-8"))

    @property
    def confidences(self) -> tuple[float, ...]:
        return tuple(sorted({t.confidence for t in self.thresholds}))


def lock_path(policy: Path) -> Path:
    return policy.with_name(policy.stem + ".lock.json")


def _threshold(raw: Any, i: int, path: Path, tasks: tuple[str, ...]) -> Threshold:
    where = f"{path}: thresholds[{i}]"
    if not isinstance(raw, dict):
        raise InputError(f"{where} must be a table ([[thresholds]])", field="thresholds")
    for key in ("id", "task", "when"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise InputError(f"{where}.{key} is required (a string)", field=f"thresholds.{key}")
    m = _WHEN.match(raw["when"])
    if m is None:
        raise InputError(f"{where}.when = {raw['when']!r}: write '<lower|upper|mean> <op> <number>', e.g. "
                         "'lower > 0.3'", field="thresholds.when")
    if raw["task"] not in tasks:
        raise InputError(f"{where}.task = {raw['task']!r} is not one of the policy's tasks {list(tasks)}",
                         field="thresholds.task")
    action = raw.get("action", "alert")
    if action not in ACTIONS:
        raise InputError(f"{where}.action = {action!r}: choose from {', '.join(ACTIONS)}", field="thresholds.action")
    confidence = raw.get("confidence", 0.95)
    if not isinstance(confidence, (int, float)) or not 0.5 <= float(confidence) < 1:
        raise InputError(f"{where}.confidence = {confidence!r}: a level in [0.5, 1), e.g. 0.95",
                         field="thresholds.confidence")
    unknown = set(raw) - {"id", "task", "when", "confidence", "action", "metric"}
    if unknown:
        raise InputError(f"{where}: unknown keys {sorted(unknown)}", field="thresholds")
    return Threshold(raw["id"], raw["task"], m.group(1), m.group(2), float(m.group(3)), float(confidence), action,
                     raw.get("metric"))


def read_policy(path: str | Path) -> Policy:
    """Parse a policy file; every mistake is one error naming the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such policy file (--policy)", field="policy")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not valid TOML ({e})", field="policy") from None
    head = raw.get("policy")
    if not isinstance(head, dict) or not isinstance(head.get("id"), str):
        raise InputError(f"{path}: needs a [policy] table with an id", field="policy.id")
    tasks = head.get("tasks")
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) for t in tasks):
        raise InputError(f"{path}: policy.tasks must be a non-empty list of task names", field="policy.tasks")
    rows = raw.get("thresholds", [])
    if not isinstance(rows, list) or not rows:
        raise InputError(f"{path}: at least one [[thresholds]] table is needed", field="thresholds")
    ths = tuple(_threshold(r, i, path, tuple(tasks)) for i, r in enumerate(rows))
    ids = [t.id for t in ths]
    if len(set(ids)) != len(ids):
        raise InputError(f"{path}: threshold ids repeat: {ids}", field="thresholds.id")
    return Policy(head["id"], tuple(tasks), ths, path, str(head.get("title", "")))


def lock_policy(path: str | Path, signer: str) -> Path:
    """Commit to the policy: write its lock (hash, signer, time). Re-locking an unchanged policy is a no-op."""
    policy = read_policy(path)
    out = lock_path(policy.path)
    if out.is_file():
        old = json.loads(out.read_text())
        if old.get("sha256") == policy.sha256:
            return out
        raise InputError(f"{out} locks another version of {policy.path.name} (sha256 {old.get('sha256', '?')[:12]}); "
                         "a locked policy is not edited: write a new policy file with a new id", field="policy")
    atomic_write_json(out, {"policy": policy.canonical(), "sha256": policy.sha256, "signer": signer,
                            "locked": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return out


def load_policy(path: str | Path, *, require_lock: bool = True) -> tuple[Policy, dict[str, Any] | None]:
    """The policy and its lock; a policy edited after its lock (or, by default, never locked) is refused."""
    policy = read_policy(path)
    lp = lock_path(policy.path)
    if not lp.is_file():
        if require_lock:
            raise InputError(f"{policy.path} is not locked: `empiricist policy lock {policy.path} --signer NAME` "
                             "commits to it before training (or pass --unlocked for an exploratory watch)",
                             field="policy")
        return policy, None
    lock = json.loads(lp.read_text())
    if lock.get("sha256") != policy.sha256:
        raise InputError(f"{policy.path} changed since it was locked ({lp.name}: sha256 {lock.get('sha256', '?')[:12]}, "
                         f"now {policy.sha256[:12]}): a threshold must not move after the commitment", field="policy")
    return policy, lock
