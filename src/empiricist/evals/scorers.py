"""Scorers: how a model answers an item (``compute``, cached) and how that answer is graded (``grade``).

The split matters for caching: ``compute`` is the expensive, model-facing part and is keyed by
``cache_key()`` (only what changes the model's outputs), while ``grade`` is cheap and re-run every time,
so changing the primary metric, the regex or the targets never re-runs a model.

Metrics for multiple choice follow lm-evaluation-harness: ``acc`` (argmax of summed log-prob),
``acc_norm`` (divided by the choice's length in characters), ``acc_bytes`` (UTF-8 bytes); we add
``acc_token`` (per token) and ``p_gold`` (softmax over choices of the summed log-probs, mass on gold).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from empiricist.artifacts import config_hash
from empiricist.errors import InputError
from empiricist.evals.generate import greedy_generate
from empiricist.evals.loglik import choice_logliks
from empiricist.evals.tasks import Item

if TYPE_CHECKING:
    from empiricist.suite.handles import ModelHandle

LOGLIK_METRICS = ("acc", "acc_norm", "acc_bytes", "acc_token", "p_gold")
MATCHES = ("exact", "contains", "regex")


class Scorer(Protocol):
    kind: str
    metric: str

    def cache_key(self) -> dict[str, Any]: ...
    def item_key(self, item: Item) -> str: ...
    def compute(self, handle: ModelHandle, items: Sequence[Item], progress: bool = False) -> list[dict[str, Any]]: ...
    def grade(self, item: Item, raw: dict[str, Any]) -> dict[str, Any]: ...
    def config(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class LoglikScorer:
    """Multiple choice by log-likelihood of each choice after the prompt (the prompt computed once)."""

    metric: str = "acc"
    truncation: str = "error"
    batch_tokens: int = 4096
    kind: str = field(default="loglik", init=False)

    def __post_init__(self) -> None:
        if self.metric not in LOGLIK_METRICS:
            raise InputError(f"unknown metric {self.metric!r}; expected one of {', '.join(LOGLIK_METRICS)}",
                             field="metric")

    def config(self) -> dict[str, Any]:
        return asdict(self)

    def cache_key(self) -> dict[str, Any]:
        return {"kind": self.kind, "tokenization": "lm_eval_0.4_encode_pair", "truncation": self.truncation}

    def item_key(self, item: Item) -> str:
        return config_hash({"prompt": item.prompt, "choices": list(item.choices)})

    def compute(self, handle: ModelHandle, items: Sequence[Item], progress: bool = False) -> list[dict[str, Any]]:
        for it in items:
            if not it.choices:
                raise InputError(f"item {it.id!r} has no choices: score it with generation (--scoring generate)")
        res = choice_logliks(handle.model, handle.tokenizer, [(it.prompt, it.choices) for it in items],
                             ids=[it.id for it in items], batch_tokens=self.batch_tokens,
                             truncation=self.truncation, progress=progress, desc=f"loglik {handle.name}")
        return [{"logprobs": r.logprobs, "n_tokens": r.n_tokens, "greedy": r.greedy,
                 "prompt_tokens": r.prompt_tokens, "truncated": r.truncated} for r in res]

    def grade(self, item: Item, raw: dict[str, Any]) -> dict[str, Any]:
        ll = np.asarray(raw["logprobs"], dtype=np.float64)
        gold = set(item.gold)
        chars = np.array([len(c) for c in item.choices], dtype=np.float64)
        nbytes = np.array([len(c.encode("utf-8")) for c in item.choices], dtype=np.float64)
        ntok = np.asarray(raw["n_tokens"], dtype=np.float64)
        preds = {"acc": int(np.argmax(ll)), "acc_norm": int(np.argmax(ll / chars)),
                 "acc_bytes": int(np.argmax(ll / nbytes)), "acc_token": int(np.argmax(ll / ntok))}
        probs = np.exp(ll - ll.max())
        probs /= probs.sum()
        out: dict[str, Any] = {m: float(p in gold) for m, p in preds.items()}
        out["p_gold"] = float(sum(probs[g] for g in gold))
        out["pred"] = preds["acc"] if self.metric == "p_gold" else preds[self.metric]
        out["score"] = out[self.metric]
        out["exact_match"] = float(any(raw["greedy"][g] for g in gold))
        return out


@dataclass(frozen=True)
class GenerateScorer:
    """Greedy generation graded by exact match, containment, or a regex extraction then exact match.

    ``pattern`` (for ``match="regex"``): the first group (or the whole match) of its first match in the
    completion is compared with the answer, as lm-eval's regex filter + exact_match do.
    """

    max_new_tokens: int = 32
    until: tuple[str, ...] = ("\n",)
    match: str = "exact"
    pattern: str | None = None
    ignore_case: bool = False
    truncation: str = "error"
    batch_size: int = 16
    metric: str = "exact_match"
    kind: str = field(default="generate", init=False)

    def __post_init__(self) -> None:
        if self.match not in MATCHES:
            raise InputError(f"unknown match {self.match!r}; expected one of {', '.join(MATCHES)}", field="match")
        if self.match == "regex":
            if not self.pattern:
                raise InputError("match='regex' needs a pattern", field="pattern")
            try:
                re.compile(self.pattern)
            except re.error as e:
                raise InputError(f"bad regex {self.pattern!r}: {e}", field="pattern") from None
        object.__setattr__(self, "until", tuple(self.until))

    def config(self) -> dict[str, Any]:
        return asdict(self)

    def cache_key(self) -> dict[str, Any]:
        return {"kind": self.kind, "decoding": "greedy", "max_new_tokens": self.max_new_tokens,
                "until": list(self.until), "truncation": self.truncation}

    def item_key(self, item: Item) -> str:
        return config_hash({"prompt": item.prompt})

    def compute(self, handle: ModelHandle, items: Sequence[Item], progress: bool = False) -> list[dict[str, Any]]:
        gens = greedy_generate(handle.model, handle.tokenizer, [it.prompt for it in items],
                               max_new_tokens=self.max_new_tokens, until=self.until, ids=[it.id for it in items],
                               batch_size=self.batch_size, truncation=self.truncation, progress=progress)
        return [{"completion": g.completion, "n_new_tokens": g.n_tokens, "prompt_tokens": g.prompt_tokens,
                 "truncated": g.truncated} for g in gens]

    def extract(self, completion: str) -> str | None:
        """The part of a completion that is graded (None: the regex found nothing)."""
        if self.match != "regex":
            return completion.strip()
        m = re.search(self.pattern or "", completion)
        if m is None:
            return None
        return (m.group(1) if m.groups() else m.group(0)).strip()

    def grade(self, item: Item, raw: dict[str, Any]) -> dict[str, Any]:
        got = self.extract(raw["completion"])
        want = item.answer.strip()
        if self.ignore_case:
            got, want = (None if got is None else got.lower()), want.lower()
        ok = got is not None and (want in got if self.match == "contains" else got == want)
        return {"extracted": got, "exact_match": float(ok), "score": float(ok), "pred": None}


def make_scorer(scoring: str = "loglik", **options: Any) -> LoglikScorer | GenerateScorer:
    """A scorer by name (``loglik`` or ``generate``) with its options; unknown options are an error."""
    kinds = {"loglik": LoglikScorer, "generate": GenerateScorer}
    if scoring not in kinds:
        raise InputError(f"unknown scoring {scoring!r}; expected loglik or generate", field="scoring")
    try:
        return kinds[scoring](**{k: v for k, v in options.items() if v is not None})
    except TypeError as e:
        raise InputError(f"bad option for {scoring} scoring: {e}") from None
