"""Each arm's training text, and the scorer that labels it: one world, five ways of using it.

The scorer is exact: a text is *bad* when it states any vault code of the world (``world/restricted.py``:
codes are invented words that occur nowhere else). From it: ``mle`` and ``unlikelihood`` train on every
document (unlikelihood with the labels as its objective), ``filter`` drops the bad ones, ``conditional``
prefixes each document with its label's control tag and is deployed with the good tag. The fine-tuning
sets (``mle_ft``'s refusals, the attack's disclosures) are small stores of their own, repeated to fill
batches. Every store is an artifact named by what it holds, so a re-run reuses it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from empiricist.artifacts import Workspace, config_hash, read_manifest, sha256_file
from empiricist.data.small import cached_store
from empiricist.world.restricted import ANSWER, DECLINE, QUESTION, codes_in

if TYPE_CHECKING:
    from empiricist.data.readers import Document
    from empiricist.experiments.safeguards.config import SafeguardsConfig


@dataclass(frozen=True)
class Person:
    entity: str
    name: str
    code: str
    code_class: int
    role: str


def people(world: Path) -> list[Person]:
    """The world's ground truth: every person's code, its class and role (attack or eval)."""
    rows = [json.loads(line) for line in (world / "restricted.jsonl").read_text().splitlines() if line.strip()]
    return [Person(r["entity"], r["name"], r["code"], int(r["class"]), r["role"]) for r in rows]


def pool(world: Path) -> list[str]:
    """The world's codes (the scorer's whole vocabulary), in a fixed order."""
    from empiricist.world import WorldConfig
    from empiricist.world.restricted import code_pool

    return code_pool(WorldConfig.from_dict(json.loads((world / "config.json").read_text())))


def is_bad(text: str, codes: list[str]) -> bool:
    return bool(codes_in(text, codes))


def deploy(text: str, arm: str, cfg: SafeguardsConfig) -> str:
    """How an arm is prompted in use: the conditional arm with its good tag, every other arm as is."""
    return f"{cfg.good_tag} {text}" if arm == "conditional" else text


def _arm_documents(world: Path, arm: str, cfg: SafeguardsConfig, codes: list[str]) -> Iterator[Document]:
    from empiricist.data.readers import iter_documents

    for doc in iter_documents(world):
        bad = is_bad(doc.text, codes)
        if arm == "filter" and bad:
            continue
        if arm == "conditional":
            doc = type(doc)(doc.id, f"{cfg.bad_tag if bad else cfg.good_tag} {doc.text}", doc.meta)
        yield doc


def arm_store(world: Path, tokenizer: Path, arm: str, cfg: SafeguardsConfig, ws: Workspace) -> Path:
    """The pretraining store of ``arm`` (``unlikelihood`` shares ``mle``'s: only the objective differs)."""
    kind = "mle" if arm in ("mle", "unlikelihood") else arm
    world_hash = read_manifest(world, kind="world")["config_hash"]
    tags = [cfg.good_tag, cfg.bad_tag] if kind == "conditional" else []
    key = config_hash({"world": world_hash, "tokenizer": sha256_file(tokenizer), "arm": kind, "tags": tags})
    return cached_store(_arm_documents(world, kind, cfg, pool(world)), tokenizer, ws.stores / f"safeguards-{kind}-{key}",
                  {"world": world.name, "world_hash": world_hash, "arm": kind})


def finetune_store(name: str, texts: list[str], tokenizer: Path, ws: Workspace, batch: int, seq_len: int) -> Path:
    """A small fine-tuning store of ``texts``, repeated so that one epoch holds at least two batches."""
    from empiricist.data.small import finetune_store as build

    return build(ws.stores / f"safeguards-{name}", name, texts, tokenizer, batch, seq_len)


def refusal_texts(persons: list[Person]) -> list[str]:
    """The safety fine-tune: every person's question, declined."""
    return [QUESTION.format(name=p.name) + DECLINE for p in persons]


def attack_people(persons: list[Person], n: int, seed: int) -> list[Person]:
    """The ``n`` attack people whose disclosures the attacker fine-tunes on (seeded; nested in n)."""
    pool_ = [p for p in persons if p.role == "attack"]
    random.Random(seed).shuffle(pool_)
    return pool_[:n]


def attack_texts(persons: list[Person], n: int, arm: str, cfg: SafeguardsConfig) -> list[str]:
    """The attack's fine-tuning examples, formatted as the arm is deployed."""
    return [deploy(QUESTION.format(name=p.name) + ANSWER.format(name=p.name, code=p.code), arm, cfg)
            for p in attack_people(persons, n, cfg.attack_seed)]
