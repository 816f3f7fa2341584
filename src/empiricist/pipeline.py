"""The main job: world → tokenizer → token store → suite → fact accuracy per size (through the eval runner).

Each stage is a content-addressed artifact in the workspace, so a re-run skips finished work and a killed
run resumes where it stopped (the trainer resumes mid-model from its last snapshot).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from empiricist.artifacts import (
    Workspace,
    artifact_lock,
    building,
    config_hash,
    is_complete,
    read_manifest,
    write_manifest,
)
from empiricist.errors import EmpiricistError
from empiricist.suite.config import SuiteConfig, get_preset

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from empiricist.execute import Executor
    from empiricist.suite.handles import ModelHandle
    from empiricist.world import WorldConfig

# Which world each suite preset trains on by default.
WORLD_FOR_SUITE = {"tiny": "tiny", "micro": "micro"}


@dataclass
class Prepared:
    world: Path
    tokenizer: Path
    store: Path


def prepare_tokenizer(world_path: Path, vocab_size: int, workspace: Workspace | str | Path | None = None) -> Path:
    """Train (or reuse) a byte-level BPE on a world's documents; returns the tokenizer.json path."""
    from empiricist.data.tokenizer import train_bpe
    from empiricist.world import World

    world_hash = read_manifest(world_path, kind="world")["config_hash"]
    folder = Workspace.at(workspace).tokenizers / f"bpe{vocab_size}-{config_hash({'world': world_hash, 'v': vocab_size})}"
    with artifact_lock(folder):
        if is_complete(folder):
            return folder / "tokenizer.json"
        with building(folder, overwrite=True, kind="tokenizer") as tmp:
            texts = (d["text"] for d in World.open(world_path).iter_docs())
            train_bpe(texts, vocab_size, tmp / "tokenizer.json")
            write_manifest(tmp, kind="tokenizer", config={"vocab_size": vocab_size, "type": "byte_level_bpe"},
                           inputs={"world": world_hash})
    return folder / "tokenizer.json"


def prepare_store(world_path: Path, tokenizer_path: Path, workspace: Workspace | str | Path | None = None,
                  progress: bool = True) -> Path:
    """Tokenize a world into a token store (reused when the same world and tokenizer made one)."""
    from empiricist.artifacts import sha256_file
    from empiricist.data.readers import iter_documents
    from empiricist.data.store import build_store

    world_hash = read_manifest(world_path, kind="world")["config_hash"]
    key = config_hash({"world": world_hash, "tokenizer": sha256_file(tokenizer_path)})
    folder = Workspace.at(workspace).stores / f"store-{key}"
    with artifact_lock(folder):
        if not is_complete(folder):
            build_store(iter_documents(world_path), tokenizer_path, folder, progress=progress,
                        source={"world": world_path.name, "world_hash": world_hash})
    return folder


def prepare(world_config: WorldConfig, vocab_size: int, workspace: Workspace | str | Path | None = None,
            progress: bool = True) -> Prepared:
    from empiricist.world import generate_world

    ws = Workspace.at(workspace)
    world = Path(generate_world(world_config, workspace=ws, progress=progress))
    tok = prepare_tokenizer(world, vocab_size, ws)
    return Prepared(world, tok, prepare_store(world, tok, ws, progress))


def _preset_world(config: SuiteConfig, world_preset: str | None = None) -> str:
    name = world_preset or WORLD_FOR_SUITE.get(config.name)
    if name is None:
        raise EmpiricistError(f"no default world for suite {config.name!r}; pass world_preset")
    return name


def prepare_preset(preset: str, workspace: Workspace | str | Path | None = None, progress: bool = False,
                   world: Callable[[WorldConfig], WorldConfig] | None = None) -> Prepared:
    """The world, tokenizer and token store a suite preset trains on (built, or reused from the workspace);
    ``world`` changes the preset's world config first (a subset switched on, a parameter moved)."""
    from empiricist.world import WorldConfig

    config = get_preset(preset)
    cfg = WorldConfig.preset(_preset_world(config))
    return prepare(world(cfg) if world else cfg, config.vocab_size, workspace, progress)


def prepare_suite(preset: str, workspace: Workspace | str | Path | None = None, progress: bool = False) -> Path:
    """``prepare_preset`` plus the trained suite (resumed if interrupted, reused if finished); its folder."""
    from empiricist.data.store import TokenStore
    from empiricist.suite.suite import train_suite

    prep = prepare_preset(preset, workspace, progress)
    return Path(train_suite(get_preset(preset), TokenStore.open(prep.store), workspace=workspace, progress=progress))


@dataclass(frozen=True)
class Family:
    """One suite of a family of suites: the same world seed and recipe, one dose of a subset's parameter."""

    dose: float
    world: Path
    store: Path
    suite: Path

    def handle_spec(self, size: str) -> str:
        return f"suite:{self.suite}/{size}"


def build_families(worlds: Sequence[tuple[float, WorldConfig]], preset: str,
                   workspace: Workspace | str | Path | None = None, progress: bool = True,
                   executor: Executor | None = None) -> list[Family]:
    """Generate, tokenize and train one suite per (dose, world config), each stage reused or resumed from
    the workspace. One tokenizer, trained on the first world, tokenizes every family, so token ids mean the
    same thing across families and a dose cannot change the vocabulary."""
    from empiricist.data.store import TokenStore
    from empiricist.suite.suite import train_suite
    from empiricist.world import generate_world

    ws = Workspace.at(workspace)
    suite_cfg = get_preset(preset)
    paths = [(d, Path(generate_world(w, workspace=ws, progress=progress))) for d, w in worlds]
    tokenizer = prepare_tokenizer(paths[0][1], suite_cfg.vocab_size, ws)
    out = []
    for d, world in paths:
        store = prepare_store(world, tokenizer, ws, progress)
        if progress:
            print(f"family dose {d:g}: training {', '.join(s.name for s in suite_cfg.sizes)}", flush=True)
        suite = Path(train_suite(suite_cfg, TokenStore.open(store), workspace=ws, progress=progress,
                                 executor=executor))
        out.append(Family(d, world, store, suite))
    return out


def fact_accuracy(handle: ModelHandle, world_path: Path, max_items: int | None = None, progress: bool = False,
                  workspace: Workspace | str | Path | None = None) -> dict[str, Any]:
    """Fact accuracy through the eval runner: the world's ``fact_qa`` task (multiple choice over every value
    of the relation, log-likelihood scorer, cached in the workspace) with the runner's interval (clustered
    by entity), and the same split into verbatim / paraphrase-only facts from the items' metadata."""
    import dataclasses

    from empiricist.evals import LoglikScorer, run_eval, world_tasks
    from empiricist.evals.analysis import estimate

    task = world_tasks(world_path, ["fact_qa"])["fact_qa"]
    if max_items is not None and len(task.items) > max_items:
        keep = sorted(np.random.default_rng(0).choice(len(task.items), max_items, replace=False))
        task = dataclasses.replace(task, items=tuple(task.items[i] for i in keep))
    run = run_eval(task, [handle], LoglikScorer(), workspace=workspace, contamination=False, write=False,
                   progress=progress)
    (overall,) = run.summary
    rows = run.results.rows()
    scores = np.array([r["score"] for r in rows], dtype=float)
    clusters = np.array([r["cluster"] for r in rows], dtype=object)
    para = np.array([bool(it.meta.get("paraphrase_only")) for it in task.items])
    out: dict[str, Any] = {"fact_acc": overall["mean"], "fact_acc_ci": [overall["lo"], overall["hi"]],
                           "fact_acc_interval": overall["method"], "n_items": len(rows),
                           "chance": float(np.mean([1 / len(it.choices) for it in task.items]))}
    for name, mask in (("verbatim", ~para), ("paraphrase_only", para)):
        part = estimate(scores[mask], list(clusters[mask])) if mask.any() else None
        out[f"fact_acc_{name}"] = part["mean"] if part else None
        out[f"fact_acc_{name}_ci"] = [part["lo"], part["hi"]] if part else [None, None]
    return out


def run_main(
    suite: str | SuiteConfig = "micro",
    world_preset: str | None = None,
    workspace: Workspace | str | Path | None = None,
    progress: bool = True,
    max_fact_items: int | None = None,
) -> list[dict[str, Any]]:
    """Generate the world, train the suite, and return one summary row per size."""
    from empiricist.data.store import TokenStore
    from empiricist.suite.handles import load_model
    from empiricist.suite.suite import Suite, train_suite
    from empiricist.world import WorldConfig

    config = get_preset(suite) if isinstance(suite, str) else suite
    t0 = time.perf_counter()
    prep = prepare(WorldConfig.preset(_preset_world(config, world_preset)), config.vocab_size, workspace, progress)
    store = TokenStore.open(prep.store)
    suite_dir = train_suite(config, store, workspace=workspace, progress=progress)
    s = Suite(suite_dir)
    rows = []
    for size in s.sizes:
        handle = load_model(f"suite:{suite_dir}/{size}")
        man = s.model_manifest(size)
        rows.append({"size": size, "params": man["info"]["n_params"],
                     "non_embedding_params": man["info"]["n_non_embedding_params"], "tokens": man["tokens"],
                     "final_loss": man["final_loss"],
                     **fact_accuracy(handle, prep.world, max_items=max_fact_items, progress=progress,
                                    workspace=workspace)})
    from empiricist.artifacts import portable_path

    summary = {"suite": portable_path(suite_dir, suite_dir), "world": portable_path(prep.world, suite_dir),
               "store": portable_path(prep.store, suite_dir),
               "store_tokens": store.num_tokens, "rows": rows, "elapsed_s": round(time.perf_counter() - t0, 1)}
    from empiricist.artifacts import atomic_write_json

    # beside the suite, not inside it: the suite's manifest (written when its last model finished) lists
    # every file in the folder, so a file added afterwards would fail `empiricist verify`
    atomic_write_json(Path(suite_dir).with_name(f"{Path(suite_dir).name}.summary.json"), summary)
    return rows

