"""The public view of hidden-item results, and the scan that proves it holds nothing of the items.

``redact_rows`` keeps an eval row's numbers (but the lengths of the item's texts) and the identity of the
model, task and scorer, and replaces the item by its commitment: an allowlist, so a field added to eval rows later stays private until
someone decides it is safe. ``scan`` reads every file of a folder (text, JSON string values, HTML with
entities decoded) for any word n-gram of any hidden text (the items' prompts, choices and answers, and
the models' outputs on them), and for every hidden string too short to have an n-gram, for the whole
string.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# eval-row fields that name what was run, not what was asked or answered (evals/runner.py)
IDENTITY = ("task", "task_hash", "model", "model_spec", "model_hash", "source", "suite", "size", "step",
            "n_params", "tokens_seen", "scorer", "scoring", "scoring_hash", "metric", "seed")
# a hidden string of fewer words and characters than these ("A", "yes", a category) is not scanned for:
# it is in every file. Anything longer is, whole, when it has no n-gram (false alarms are cheap here)
MIN_WORDS, MIN_CHARS = 3, 12
# numbers measured on the item's text rather than the model's answer: the token lengths of the prompt and
# of each choice are a side channel on hidden text, so they stay private too
TEXT_NUMBERS = ("n_tokens", "prompt_tokens", "truncated", "gold")


def _numeric(v: Any) -> bool:
    if isinstance(v, bool | int | float) or v is None:
        return True
    return isinstance(v, list) and all(isinstance(x, bool | int | float) or x is None for x in v)


def redact_rows(rows: Iterable[Mapping[str, Any]], leaves: Sequence[str], public: Sequence[str] = ()
                ) -> list[dict[str, Any]]:
    """Each row with its item replaced by that item's commitment (``leaves[item_index]``): identity
    fields, numeric fields, and the declared ``public`` fields kept; every other field dropped."""
    out = []
    for r in rows:
        keep = {k: v for k, v in r.items() if k in IDENTITY or k in public or
                (_numeric(v) and k not in TEXT_NUMBERS)}
        keep["item"] = leaves[int(r["item_index"])]
        # how many choices and gold answers (counts only: what a chance level and a re-decision need)
        keep["n_choices"], keep["n_gold"] = len(r.get("choices") or ()), len(r.get("gold") or ())
        out.append(keep)
    return out


def hidden_texts(items: Iterable[Mapping[str, Any]], rows: Iterable[Mapping[str, Any]] = (),
                 output_fields: Sequence[str] = ("output", "completion", "response"), public: Sequence[str] = ()
                 ) -> list[str]:
    """Every string a public file must not contain: each item's string values (and lists of strings)
    but those of its declared ``public`` fields, and each row's model output."""
    texts: list[str] = []

    def add(v: Any) -> None:
        if isinstance(v, str):
            texts.append(v)
        elif isinstance(v, list | tuple):
            for x in v:
                add(x)
        elif isinstance(v, Mapping):
            for x in v.values():
                add(x)

    for it in items:
        add({k: v for k, v in it.items() if k not in public})
    for r in rows:
        for f in output_fields:
            add(r.get(f))
    return texts


def _norm(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _grams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def _strings(obj: Any) -> Iterable[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, list):
        for x in obj:
            yield from _strings(x)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _strings(v)


def _file_text(path: Path) -> str:
    raw = path.read_bytes().decode("utf-8", errors="ignore")
    parts = [raw, html.unescape(raw)]
    if path.suffix in (".json", ".jsonl"):
        for line in (raw.splitlines() if path.suffix == ".jsonl" else [raw]):
            try:
                parts.extend(_strings(json.loads(line)))
            except json.JSONDecodeError:
                pass
    return "\n".join(parts)


@dataclass(frozen=True)
class Leak:
    file: str
    text: int  # index into the hidden texts
    found: str  # the n-gram (or short string) that appeared


def scan(folder: str | Path, texts: Sequence[str], n: int = 8) -> list[Leak]:
    """Each (file, hidden text) pair where one of the text's word n-grams (case-folded) or, for a text
    too short to have one, the whole text appears in a file under ``folder``; the first such n-gram."""
    grams: dict[tuple[str, ...], list[int]] = {}
    short: dict[str, list[int]] = {}
    for i, t in enumerate(texts):
        words = _norm(t)
        if len(words) >= n:
            for g in _grams(words, n):
                grams.setdefault(g, []).append(i)
        elif len(words) >= MIN_WORDS or len(" ".join(words)) >= MIN_CHARS:
            short.setdefault(" ".join(words), []).append(i)
    leaks: dict[tuple[str, int], Leak] = {}
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        words = _norm(_file_text(path))
        rel = str(path.relative_to(folder))
        hits = [(" ".join(g), grams[g]) for g in sorted(_grams(words, n) & grams.keys())]
        if short:
            joined = " " + " ".join(words) + " "
            hits += [(s, ids) for s, ids in short.items() if f" {s} " in joined]
        for found, ids in hits:
            for i in ids:
                leaks.setdefault((rel, i), Leak(rel, i, found))
    return list(leaks.values())
