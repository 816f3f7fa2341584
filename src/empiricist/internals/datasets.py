"""Ready probe datasets from a generated world: (text, label, type) triples with known ground truth.

The world's entities carry their true attributes, so "does layer i of this checkpoint linearly encode
where a person was born?" has an exact answer key. The *type* of each example is its entity (or fact),
which is what the control task fixes a random label to.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from empiricist.artifacts import config_hash
from empiricist.errors import InputError

TEMPLATES = ("name", "prefix", "paraphrases")


@dataclass
class ProbeDataset:
    """Texts to run, one label and one type per text, and where they came from."""

    name: str
    texts: list[str]
    labels: np.ndarray
    types: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (len(self.texts) == len(self.labels) == len(self.types)):
            raise InputError(f"dataset {self.name}: {len(self.texts)} texts, {len(self.labels)} labels, "
                             f"{len(self.types)} types")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def hash(self) -> str:
        return config_hash({"texts": self.texts, "labels": [str(x) for x in self.labels],
                            "types": [str(t) for t in self.types]})


def _open(world: Any) -> Any:
    from empiricist.world.load import World

    return world if isinstance(world, World) else World.open(Path(world))


def _prefixes(relation: Any, template: str) -> list[str]:
    """Format strings (with ``{s}``) to put the subject in, for one relation and template choice."""
    if template == "name":
        return ["{s}"]
    if template == "prefix":
        return [relation.prompt_template]
    if template == "paraphrases":
        forms = (relation.canonical, *relation.paraphrases)
        return [f.split("{v}")[0].rstrip() for f in forms if f.index("{s}") < f.index("{v}")]
    if "{s}" not in template:
        raise InputError(f"template {template!r}: use one of {TEMPLATES} or a format string containing {{s}}")
    return [template]


def world_probe_dataset(world: Any, property: str = "birthplace", template: str = "prefix",
                        min_per_class: int = 5) -> ProbeDataset:
    """Entity → attribute value examples: e.g. text "Bidres Korkru was born in", label "Vieva".

    ``property`` is a relation name (birthplace, profession, instrument, country, industry...) or
    ``"type"`` (person/org/city/country from the bare name). ``template``: ``name`` (the bare name),
    ``prefix`` (the canonical sentence up to the value), ``paraphrases`` (every corpus phrasing that
    names the subject before the value: several texts per entity, so the control task can memorise), or a
    format string with ``{s}``. Classes with fewer than ``min_per_class`` entities are dropped.
    """
    from empiricist.world.relations import RELATIONS_BY_NAME

    w = _open(world)
    rows: list[tuple[str, str, str]] = []
    if property == "type":
        fmt = ["{s}"] if template in ("name", "prefix", "paraphrases") else _prefixes(None, template)
        rows = [(f.format(s=e["name"]), e["type"], e["id"]) for e in w.entities for f in fmt]
    else:
        rel = RELATIONS_BY_NAME.get(property)
        if rel is None:
            raise InputError(f"unknown property {property!r}; choose from {sorted(RELATIONS_BY_NAME)} or 'type'")
        fmts = _prefixes(rel, template)
        rows = [(f.format(s=e["name"]), e["attributes"][property], e["id"])
                for e in w.entities if property in e["attributes"] for f in fmts]
    per_class = Counter(label for _, label, _ in {(r[1], r[2]): r for r in rows}.values())
    kept = [r for r in rows if per_class[r[1]] >= min_per_class]
    if len({r[1] for r in kept}) < 2:
        raise InputError(f"property {property!r}: fewer than two values with ≥{min_per_class} entities in {w.path}")
    return ProbeDataset(
        name=f"{property}/{template}",
        texts=[r[0] for r in kept], labels=np.array([r[1] for r in kept]), types=np.array([r[2] for r in kept]),
        meta={"world": str(w.path), "world_hash": w.manifest.get("config_hash"), "property": property,
              "template": template, "dropped_rows": len(rows) - len(kept), "n_classes": len({r[1] for r in kept})},
    )


def world_statement_dataset(world: Any, relations: list[str] | None = None, seed: int = 0) -> ProbeDataset:
    """True/false statements: each fact's canonical sentence with its true value and with a wrong one.

    The wrong value is another value of the same relation that occurs in the world, so a probe cannot
    tell true from false by the value's form alone. Type = the fact, shared by its true and false forms.
    """
    from empiricist.world.relations import RELATIONS_BY_NAME

    w = _open(world)
    rng = random.Random(seed)
    facts = [f for f in w.facts if relations is None or f["relation"] in relations]
    values: dict[str, list[str]] = {}
    for f in facts:
        values.setdefault(f["relation"], []).append(f["value"])
    texts, labels, types = [], [], []
    for f in facts:
        others = sorted(set(values[f["relation"]]) - {f["value"]})
        if not others:
            continue
        canon = RELATIONS_BY_NAME[f["relation"]].canonical
        for value, truth in ((f["value"], "true"), (rng.choice(others), "false")):
            texts.append(canon.format(s=f["entity_name"], v=value))
            labels.append(truth)
            types.append(f["id"])
    if not texts:
        raise InputError(f"no facts for relations {relations} in {w.path}")
    return ProbeDataset(name="statements", texts=texts, labels=np.array(labels), types=np.array(types),
                        meta={"world": str(w.path), "world_hash": w.manifest.get("config_hash"),
                              "relations": relations, "seed": seed})
