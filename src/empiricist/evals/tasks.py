"""Eval tasks as plain data: a named list of items, loaded from the formats people actually have.

An ``Item`` is what a model sees (``prompt``, ``choices``) plus how it is graded (``target``), the
``cluster`` it shares with correlated items (for clustered error bars) and free ``meta``. Formats:

- ``anthropic``: model-written-evals JSONL (``question``, ``answer_matching_behavior``,
  ``answer_not_matching_behavior``, each a string or a list). Choices are the matching answers then the
  non-matching ones; the target is the matching set, so the score is *the rate of the behaviour*.
- ``native``: JSONL with ``prompt``, optional ``choices`` (omit for generation-only tasks), ``target``
  (choice index, list of indices, or the answer string), optional ``id``, ``cluster`` and ``meta``.

``world_tasks`` turns a generated world's eval files into tasks, keeping each item's entity split in
``meta["split"]`` so held-out entities can be reported separately.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from empiricist.artifacts import config_hash, sha256_file
from empiricist.data.readers import iter_records
from empiricist.errors import InputError

# The wrappers of Perez et al. 2022: their dialogue models saw "\n\nHuman: {q}\n\nAssistant:"; base LMs
# are usually given the question as is (the world's and Anthropic's sycophancy questions end in "Answer:").
WRAPPERS: dict[str, str] = {
    "none": "{question}",
    "human_assistant": "\n\nHuman: {question}\n\nAssistant:",
    "human_assistant_compact": "Human: {question}\n\nAssistant:",
    "qa": "Question: {question}\nAnswer:",
}
DEFAULT_WRAPPER = {"anthropic": "human_assistant", "native": "none"}
FORMATS = ("auto", "anthropic", "native")
_ANTHROPIC_KEYS = ("question", "answer_matching_behavior", "answer_not_matching_behavior")


@dataclass(frozen=True)
class Item:
    """One eval item. ``target``: a choice index, a tuple of indices (any counts), or an answer string.

    ``lookup_text`` is the item's own text as its file holds it (unwrapped), which is what a training
    corpus could have leaked; contamination checks search for it.
    """

    id: str
    prompt: str
    choices: tuple[str, ...] = ()
    target: int | tuple[int, ...] | str = 0
    cluster: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    lookup_text: str = ""

    @property
    def gold(self) -> tuple[int, ...]:
        """Indices of the correct (or behaviour-matching) choices; empty for generation-only items."""
        if isinstance(self.target, str):
            return (self.choices.index(self.target),) if self.target in self.choices else ()
        return (self.target,) if isinstance(self.target, int) else tuple(self.target)

    @property
    def answer(self) -> str:
        """The reference answer string (the first gold choice, or the target string)."""
        if isinstance(self.target, str):
            return self.target
        return self.choices[self.gold[0]]

    def to_dict(self) -> dict[str, Any]:
        target = list(self.target) if isinstance(self.target, tuple) else self.target
        return {"id": self.id, "prompt": self.prompt, "choices": list(self.choices), "target": target,
                "cluster": self.cluster, "meta": self.meta, "lookup_text": self.lookup_text}


@dataclass(frozen=True)
class Task:
    """A named list of items; ``source_hash`` identifies the file (or world) they came from."""

    name: str
    items: tuple[Item, ...]
    source_hash: str
    format: str = "native"
    wrapper: str = "none"

    def __post_init__(self) -> None:
        if not self.items:
            raise InputError(f"task {self.name!r} has no items")
        seen: dict[str, int] = {}
        for i, it in enumerate(self.items):
            if it.id in seen:
                raise InputError(f"task {self.name!r}: duplicate item id {it.id!r} (items {seen[it.id] + 1} "
                                 f"and {i + 1})", field="id")
            seen[it.id] = i

    @property
    def hash(self) -> str:
        """Content hash of every item (what a model sees and how it is graded)."""
        return config_hash([it.to_dict() for it in self.items])

    def __len__(self) -> int:
        return len(self.items)


def wrap(question: str, wrapper: str) -> str:
    """Apply a named wrapper (``WRAPPERS``) or a custom template containing ``{question}``."""
    template = WRAPPERS.get(wrapper, wrapper)
    if "{question}" not in template:
        raise InputError(f"unknown wrapper {wrapper!r}: use one of {sorted(WRAPPERS)} or a template "
                         "containing {question}", field="wrapper")
    return template.replace("{question}", question)


# ---------------------------------------------------------------- field checks
def _string(record: Mapping[str, Any], key: str, where: dict[str, Any], required: bool = True) -> str | None:
    value = record.get(key)
    if value is None:
        if required:
            raise InputError("missing field", field=key, **where)
        return None
    if not isinstance(value, str):
        raise InputError(f"must be a string, got {type(value).__name__}", field=key, **where)
    return value


def _strings(value: Any, key: str, where: dict[str, Any]) -> list[str]:
    """A string or a list of strings, as a list (Anthropic's answer fields take either)."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InputError(f"must be a string or a list of strings, got {type(value).__name__}", field=key, **where)
    return values


def check_choices(choices: list[str], where: dict[str, Any], key: str = "choices") -> tuple[str, ...]:
    """Non-empty, no empty strings, no duplicates: a duplicate would make accuracy ill-defined."""
    if not choices:
        raise InputError("empty choice list", field=key, **where)
    seen: dict[str, int] = {}
    for i, c in enumerate(choices):
        if c == "":
            raise InputError(f"choice {i} is an empty string", field=key, **where)
        if c in seen:
            raise InputError(f"duplicate choice {c!r} (at {seen[c]} and {i})", field=key, **where)
        seen[c] = i
    return tuple(choices)


def _target(value: Any, choices: tuple[str, ...], where: dict[str, Any]) -> int | tuple[int, ...] | str:
    if isinstance(value, bool) or value is None:
        raise InputError("missing target" if value is None else "target must be an index or a string",
                         field="target", **where)
    if isinstance(value, str):
        if choices and value not in choices:
            raise InputError(f"target {value!r} is not one of the choices", field="target", **where)
        return choices.index(value) if choices else value
    indices = value if isinstance(value, list) else [value]
    if not indices or not all(isinstance(i, int) and not isinstance(i, bool) for i in indices):
        raise InputError("target must be an index, a list of indices, or a string", field="target", **where)
    if not choices:
        raise InputError("an index target needs choices", field="target", **where)
    bad = [i for i in indices if not 0 <= i < len(choices)]
    if bad:
        raise InputError(f"target index {bad[0]} out of range for {len(choices)} choices", field="target", **where)
    return indices[0] if len(indices) == 1 else tuple(indices)


def _id(record: Mapping[str, Any], default: str, where: dict[str, Any]) -> str:
    value = record.get("id", default)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError("id must be a string or an integer", field="id", **where)
    return str(value)


def _cluster(value: Any, where: dict[str, Any]) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError("cluster must be a string or an integer", field="cluster", **where)
    return str(value)


# ---------------------------------------------------------------- record parsers
def anthropic_item(record: Mapping[str, Any], where: dict[str, Any], wrapper: str, default_id: str) -> Item:
    """An Anthropic model-written-evals record; target = the answers matching the behaviour."""
    question = _string(record, "question", where)
    matching = _strings(record.get("answer_matching_behavior"), "answer_matching_behavior", where)
    other = _strings(record.get("answer_not_matching_behavior"), "answer_not_matching_behavior", where)
    if not matching:
        raise InputError("empty choice list", field="answer_matching_behavior", **where)
    choices = check_choices(matching + other, where, key="answer_matching_behavior/answer_not_matching_behavior")
    gold = tuple(range(len(matching)))
    meta = {k: v for k, v in record.items() if k not in _ANTHROPIC_KEYS and k not in ("id", "cluster")}
    return Item(id=_id(record, default_id, where), prompt=wrap(question, wrapper), choices=choices,
                target=gold[0] if len(gold) == 1 else gold, cluster=_cluster(record.get("cluster"), where),
                meta=meta, lookup_text=question)


def native_item(record: Mapping[str, Any], where: dict[str, Any], wrapper: str, default_id: str) -> Item:
    """A native record: prompt, optional choices, target (index / indices / answer string)."""
    prompt = _string(record, "prompt", where)
    raw_choices = record.get("choices")
    if raw_choices is None:
        choices: tuple[str, ...] = ()
    else:
        if not isinstance(raw_choices, list) or not all(isinstance(c, str) for c in raw_choices):
            raise InputError("must be a list of strings", field="choices", **where)
        choices = check_choices(raw_choices, where)
    target = _target(record.get("target"), choices, where)
    meta = record.get("meta", {})
    if not isinstance(meta, dict):
        raise InputError("must be a JSON object", field="meta", **where)
    extra = {k: v for k, v in record.items() if k not in ("prompt", "choices", "target", "id", "cluster", "meta")}
    answer = target if isinstance(target, str) else choices[target if isinstance(target, int) else target[0]]
    return Item(id=_id(record, default_id, where), prompt=wrap(prompt, wrapper), choices=choices, target=target,
                cluster=_cluster(record.get("cluster"), where), meta={**extra, **meta},
                lookup_text=f"{prompt}{answer}")


def detect_format(record: Mapping[str, Any]) -> str:
    if "answer_matching_behavior" in record:
        return "anthropic"
    if "prompt" in record:
        return "native"
    raise InputError("cannot tell the task format: expected 'prompt' (native) or 'question' + "
                     "'answer_matching_behavior' (anthropic); pass format=")


def load_task(path: str | Path, format: str = "auto", wrapper: str | None = None, name: str | None = None) -> Task:
    """Load a JSONL task file; errors name the file, the line and the field.

    ``wrapper``: a name in ``WRAPPERS`` or a template with ``{question}``; default per format
    (``DEFAULT_WRAPPER``: Anthropic's dialogue wrapper for their files, none for native ones).
    """
    path = Path(path)
    if format not in FORMATS:
        raise InputError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}", path=path)
    items, fmt = [], format
    for lineno, record in iter_records(path):
        where = {"path": path, "line": lineno}
        if fmt == "auto":
            try:
                fmt = detect_format(record)
            except InputError as e:
                raise InputError(str(e), **where) from None
        wrap_name = wrapper if wrapper is not None else DEFAULT_WRAPPER[fmt]
        parse = anthropic_item if fmt == "anthropic" else native_item
        items.append(parse(record, where, wrap_name, f"line{lineno}"))
    if not items:
        raise InputError("no items (empty file)", path=path)
    return _task(name or path.name.split(".")[0], items, sha256_file(path), fmt,
                 wrapper if wrapper is not None else DEFAULT_WRAPPER[fmt], path)


def _task(name: str, items: list[Item], source: str, fmt: str, wrapper: str, path: Path | None) -> Task:
    try:
        return Task(name=name, items=tuple(items), source_hash=source, format=fmt, wrapper=wrapper)
    except InputError as e:
        raise InputError(str(e), path=path) from None


def task_from_records(name: str, records: Iterable[Mapping[str, Any]], format: str = "native",
                      wrapper: str | None = None) -> Task:
    """A task from in-memory records (same rules as ``load_task``; errors name the record number)."""
    records = list(records)
    fmt = detect_format(records[0]) if format == "auto" and records else format
    wrap_name = wrapper if wrapper is not None else DEFAULT_WRAPPER.get(fmt, "none")
    parse = anthropic_item if fmt == "anthropic" else native_item
    items = [parse(r, {"row": i}, wrap_name, str(i)) for i, r in enumerate(records)]
    return _task(name, items, config_hash(records), fmt, wrap_name, None)


# ---------------------------------------------------------------- world tasks
WORLD_TASKS = ("fact_qa", "sycophancy")
_WORLD_META = ("entity", "entity_name", "relation", "split", "paraphrase_only", "n_docs", "user_view",
               "true_value", "view_correct", "value")


def world_tasks(world_path: str | Path, names: Iterable[str] = WORLD_TASKS) -> dict[str, Task]:
    """Tasks from a world's eval files; items about one entity share a cluster (their facts co-occur).

    ``fact_qa`` scores the cloze ``prompt`` over every value of the relation; ``sycophancy`` is
    Anthropic-format (unwrapped: its questions already end in "Answer:"), score = rate of agreeing
    with the user's stated view.
    """
    from empiricist.world import World

    world = World.open(world_path)
    source = str(world.manifest.get("config_hash"))
    out = {}
    for name in names:
        items = []
        for rec in world.eval_items(name):
            where: dict[str, Any] = {"path": Path(world_path) / f"eval/{name}.jsonl"}
            meta = {k: rec[k] for k in _WORLD_META if k in rec}
            if name == "fact_qa":
                choices = check_choices(list(rec["choices"]), where)
                items.append(Item(id=rec["id"], prompt=rec["prompt"], choices=choices, target=int(rec["target"]),
                                  cluster=rec["entity"], meta=meta,
                                  lookup_text=f"{rec['question']} {rec['answer']}"))
            else:
                item = anthropic_item(rec, where, "none", rec["id"])
                items.append(Item(id=item.id, prompt=item.prompt, choices=item.choices, target=item.target,
                                  cluster=rec["entity"], meta=meta, lookup_text=rec["question"]))
        out[name] = _task(name, items, f"world:{source}", "world", "none", None)
    return out
