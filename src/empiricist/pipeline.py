"""The main job: world → tokenizer → token store → suite → fact accuracy per size.

Each stage is a content-addressed artifact in the workspace, so a re-run skips finished work and a killed
run resumes where it stopped (the trainer resumes mid-model from its last snapshot).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from empiricist.artifacts import (
    artifact_lock,
    building,
    config_hash,
    is_complete,
    read_manifest,
    workspace,
    write_manifest,
)
from empiricist.errors import EmpiricistError
from empiricist.suite.config import SuiteConfig, get_preset

# Which world each suite preset trains on by default.
WORLD_FOR_SUITE = {"tiny": "tiny", "micro": "micro"}


@dataclass
class Prepared:
    world: Path
    tokenizer: Path
    store: Path


def prepare_tokenizer(world_path: Path, vocab_size: int, root: str | Path | None = None) -> Path:
    """Train (or reuse) a byte-level BPE on a world's documents; returns the tokenizer.json path."""
    from empiricist.data.tokenizer import train_bpe
    from empiricist.world import World

    world_hash = read_manifest(world_path, kind="world")["config_hash"]
    folder = workspace(root) / "tokenizers" / f"bpe{vocab_size}-{config_hash({'world': world_hash, 'v': vocab_size})}"
    with artifact_lock(folder):
        if is_complete(folder):
            return folder / "tokenizer.json"
        with building(folder, overwrite=True, kind="tokenizer") as tmp:
            texts = (d["text"] for d in World.open(world_path).iter_docs())
            train_bpe(texts, vocab_size, tmp / "tokenizer.json")
            write_manifest(tmp, kind="tokenizer", config={"vocab_size": vocab_size, "type": "byte_level_bpe"},
                           inputs={"world": world_hash})
    return folder / "tokenizer.json"


def prepare_store(world_path: Path, tokenizer_path: Path, root: str | Path | None = None,
                  progress: bool = True) -> Path:
    """Tokenize a world into a token store (reused when the same world and tokenizer made one)."""
    from empiricist.artifacts import sha256_file
    from empiricist.data.readers import iter_documents
    from empiricist.data.store import build_store

    world_hash = read_manifest(world_path, kind="world")["config_hash"]
    key = config_hash({"world": world_hash, "tokenizer": sha256_file(tokenizer_path)})
    folder = workspace(root) / "stores" / f"store-{key}"
    with artifact_lock(folder):
        if not is_complete(folder):
            build_store(iter_documents(world_path), tokenizer_path, folder, progress=progress,
                        source={"world": world_path.name, "world_hash": world_hash})
    return folder


def prepare(world_config: Any, vocab_size: int, root: str | Path | None = None, progress: bool = True) -> Prepared:
    from empiricist.world import generate_world

    world = Path(generate_world(world_config, workspace=workspace(root), progress=progress))
    tok = prepare_tokenizer(world, vocab_size, root)
    return Prepared(world, tok, prepare_store(world, tok, root, progress))


def fact_accuracy(handle: Any, world_path: Path, max_items: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Multiple choice over every value of the relation, scored by log-likelihood of the cloze completion."""
    from empiricist.evals.loglik import choice_accuracy
    from empiricist.world import World

    items = list(World.open(world_path).eval_items("fact_qa"))
    if max_items is not None and len(items) > max_items:
        rng = np.random.default_rng(0)
        items = [items[i] for i in sorted(rng.choice(len(items), max_items, replace=False))]
    correct = choice_accuracy(handle.model, handle.tokenizer, [it["prompt"] for it in items],
                              [it["choices"] for it in items], [it["target"] for it in items],
                              progress=progress, desc=f"facts {handle.name}")
    para = np.array([bool(it.get("paraphrase_only")) for it in items])
    chance = float(np.mean([1 / len(it["choices"]) for it in items]))
    return {"fact_acc": float(correct.mean()), "n_items": len(items), "chance": chance,
            "fact_acc_verbatim": float(correct[~para].mean()) if (~para).any() else None,
            "fact_acc_paraphrase_only": float(correct[para].mean()) if para.any() else None}


def run_main(
    suite: str | SuiteConfig = "micro",
    world_preset: str | None = None,
    root: str | Path | None = None,
    progress: bool = True,
    max_fact_items: int | None = None,
) -> list[dict[str, Any]]:
    """Generate the world, train the suite, and return one summary row per size."""
    from empiricist.data.store import TokenStore
    from empiricist.suite.handles import load_model
    from empiricist.suite.suite import Suite, train_suite
    from empiricist.world import WorldConfig

    config = get_preset(suite) if isinstance(suite, str) else suite
    wname = world_preset or WORLD_FOR_SUITE.get(config.name)
    if wname is None:
        raise EmpiricistError(f"no default world for suite {config.name!r}; pass world_preset")
    t0 = time.perf_counter()
    prep = prepare(WorldConfig.preset(wname), config.vocab_size, root, progress)
    store = TokenStore.open(prep.store)
    suite_dir = train_suite(config, store, root=root, progress=progress)
    s = Suite(suite_dir)
    rows = []
    for size in s.sizes:
        handle = load_model(f"suite:{suite_dir}/{size}")
        man = s.model_manifest(size)
        rows.append({"size": size, "params": man["info"]["n_params"],
                     "non_embedding_params": man["info"]["n_non_embedding_params"], "tokens": man["tokens"],
                     "final_loss": man["final_loss"],
                     **fact_accuracy(handle, prep.world, max_items=max_fact_items, progress=progress)})
    from empiricist.artifacts import portable_path

    summary = {"suite": portable_path(suite_dir, suite_dir), "world": portable_path(prep.world, suite_dir),
               "store": portable_path(prep.store, suite_dir),
               "store_tokens": store.num_tokens, "rows": rows, "elapsed_s": round(time.perf_counter() - t0, 1)}
    from empiricist.artifacts import atomic_write_json

    # beside the suite, not inside it: the suite's manifest (written when its last model finished) lists
    # every file in the folder, so a file added afterwards would fail `empiricist verify`
    atomic_write_json(Path(suite_dir).with_name(f"{Path(suite_dir).name}.summary.json"), summary)
    return rows

