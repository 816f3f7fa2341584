"""How far to trust each attribution method, measured against retraining on a world with known facts.

One run (``validate(...)``, CLI ``empiricist attribute-validate``):

1. **Corpus and queries.** From a world's token store take ``n_facts`` facts (stated verbatim somewhere),
   ``docs_per_fact`` documents stating each, and ``n_random_docs`` random documents. Two kinds of query:
   *fact* queries are the facts' cloze prompts with the true value as target (``"Trelne Hana was born
   in" → " Gieor"``): a few documents carry them; *text* queries are ``n_text_queries`` held-out documents
   (not in the corpus), the second half given the first — generic language modelling, the setting of
   the published LDS figures (dattri's nanoGPT/Shakespeare, kronfluence's GPT-2/WikiText).
2. **Base model.** A small GPT-NeoX trained on all of them (checkpoints saved for TracIn); every method
   attributes the queries' NLL to the documents with this model.
3. **LDS** (Park et al. 2023). ``n_subsets`` random subsets (``fraction`` of the documents), each retrained
   with every seed in ``seeds``; the actual measurement is the query NLL averaged over seeds. Per query,
   LDS = Spearman(Σ_{d∈S} score[q, d], −NLL_S[q]) over subsets; the table shows the mean over queries with
   a bootstrap 95% CI over queries.
4. **Fact tracing.** recall@10 and MRR of the documents that state the query's fact (the world's truth).
5. **Counterfactual.** Queries in ``cf_groups`` groups; per method and group, remove the union of each
   query's top-``cf_k`` documents and retrain (first seed). Effect = NLL after removal − NLL of the base
   model (same seed), per query; "random" removes as many random documents.

Every retraining result is saved as soon as it exists (``progress.json``-free: one ``.npy`` per run),
so a killed validation resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from empiricist.artifacts import atomic_path, atomic_write_json, check_replaceable, config_hash
from empiricist.attribution.data import Documents, Query, Rows, fact_queries, query_rows
from empiricist.attribution.retrain import measure, train_on_docs
from empiricist.errors import EmpiricistError
from empiricist.suite.config import ModelSize, TrainConfig

if TYPE_CHECKING:
    from empiricist.data.store import TokenStore
    from empiricist.execute import Executor, Job
    from empiricist.suite.handles import ModelHandle


@dataclass(frozen=True)
class ValidationConfig:
    name: str = "micro"
    n_facts: int = 48
    docs_per_fact: int = 8
    n_random_docs: int = 2600
    n_text_queries: int = 48
    size: ModelSize = field(default_factory=lambda: ModelSize("v1", 48, 2, 4))  # micro's m1 shape
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        seq_len=128, batch_size=16, steps=150, lr=3e-3, warmup_steps=15, threads=1, precision="fp32"))
    n_subsets: int = 32
    fraction: float = 0.5
    seeds: tuple[int, ...] = (0, 1)
    methods: tuple[str, ...] = ("magic", "ekfac", "trak", "trackstar", "tracin", "bm25", "minilm")
    tracin_checkpoints: int = 4
    cf_k: int = 10
    cf_groups: int = 4
    seed: int = 0
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_MICRO = ValidationConfig()

VALIDATION_PRESETS: dict[str, ValidationConfig] = {
    "micro": _MICRO,
    # Harder settings (issue 22), each changing one thing from micro. "m3": the micro suite's m3 shape
    # (160 wide, 3 layers; ≈4.4× the compute per step), same corpus and schedule; 16 + 16 queries and two
    # counterfactual groups so that magic (cost ∝ queries × steps × model) fits in about an hour.
    "m3": ValidationConfig(name="m3", n_facts=16, n_text_queries=16, size=ModelSize("v3", 160, 3, 4),
                           n_subsets=16, cf_groups=2),
    # "epochs": micro's model and schedule on a quarter-sized corpus, so the 150 steps are ≈7.7 passes over
    # it instead of 1.8 (documents seen many times: memorisation, a less linear response to removal).
    "epochs": ValidationConfig(name="epochs", n_facts=24, n_random_docs=500, n_text_queries=24),
    # Amendment (added after micro, epochs and m3 had run; docs/attribution.md): micro's corpus with a third
    # of the learning rate, the recipe at which magic's metasmoothness probe (benchmarks/bench_magic.py
    # --lr 1e-3) found small reweightings predicted at r 0.99 — the test of "≥ 0.95 where training is
    # smooth". Sized like m3 (16 + 16 queries, 16 subsets, 2 counterfactual groups).
    "smooth": ValidationConfig(name="smooth", n_facts=16, n_text_queries=16, n_subsets=16, cf_groups=2,
                               train=dataclasses.replace(_MICRO.train, lr=1e-3)),
    # CI-sized: seconds per retrain, a handful of subsets; the numbers are for testing the plumbing only.
    "tiny": ValidationConfig(name="tiny", n_facts=6, docs_per_fact=4, n_random_docs=60, n_text_queries=4,
                             size=ModelSize("v0", 16, 1, 2),
                             train=TrainConfig(seq_len=64, batch_size=8, steps=12, lr=3e-3, warmup_steps=2, threads=1,
                                               precision="fp32"),
                             n_subsets=6, seeds=(0,), tracin_checkpoints=2, cf_k=3, cf_groups=2,
                             options={"trak": {"proj_dim": 32}, "tracin": {"proj_dim": 64},
                                      "trackstar": {"proj_dim": 64}}),
}


# ---------------------------------------------------------------- corpus
def choose_corpus(world: Any, store: TokenStore, cfg: ValidationConfig) -> tuple[list[int], list[dict[str, Any]], list[int]]:
    """Store indices of the documents, the fact_qa items used as queries, and the held-out documents used
    as text queries (all deterministic in cfg.seed)."""
    rng = np.random.default_rng(cfg.seed)
    facts = {f["id"]: f for f in world.facts}
    items = [it for it in world.eval_items("fact_qa")
             if not it.get("paraphrase_only") and len(facts[f"{it['entity']}.{it['relation']}"]["doc_ids"])
             >= cfg.docs_per_fact]
    if len(items) < cfg.n_facts:
        raise EmpiricistError(f"the world has only {len(items)} usable facts; n_facts={cfg.n_facts}")
    items = [items[i] for i in sorted(rng.choice(len(items), cfg.n_facts, replace=False))]
    chosen: set[int] = set()
    for it in items:
        ids = facts[f"{it['entity']}.{it['relation']}"]["doc_ids"]
        for d in rng.choice(len(ids), cfg.docs_per_fact, replace=False):
            chosen.add(store.doc_index(ids[int(d)]))
    rest = np.setdiff1d(np.arange(len(store)), np.fromiter(chosen, dtype=np.int64))
    pick = rng.choice(rest, min(cfg.n_random_docs + cfg.n_text_queries, len(rest)), replace=False).tolist()
    chosen |= set(pick[:cfg.n_random_docs])
    return sorted(chosen), items, sorted(pick[cfg.n_random_docs:])


def text_queries(store: TokenStore, held_out: list[int], max_tokens: int) -> list[Query]:
    """A held-out document as a query: its second half given its first half (EOS dropped; at most
    ``max_tokens`` tokens, leaving room for re-tokenisation at the seam)."""
    tok = store.tokenizer()
    out = []
    for i in held_out:
        t = [int(x) for x in store.doc_tokens(i)][:-1][:max_tokens]
        h = max(1, len(t) // 2)
        out.append(Query(tok.decode(t[:h]), tok.decode(t[h:]), None, f"text:{store.doc_id(i)}"))
    return out


def relevant_rows(world: Any, docs: Documents, items: list[dict[str, Any]]) -> list[set[int]]:
    facts = {f["id"]: f for f in world.facts}
    row = {d: i for i, d in enumerate(docs.ids)}
    return [{row[d] for d in facts[f"{it['entity']}.{it['relation']}"]["doc_ids"] if d in row} for it in items]


# ---------------------------------------------------------------- memory
class PeakRSS:
    """Peak resident memory (MB) of this process while the block runs, sampled every 20 ms from /proc."""

    def __enter__(self) -> Self:
        self.peak = self.start = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def _rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# ---------------------------------------------------------------- the run
class Validation:
    """State of one validation folder; each expensive piece is computed once and saved."""

    def __init__(self, world: Any, store: TokenStore, cfg: ValidationConfig, out: Path, progress: bool = True,
                 overwrite: bool = False, executor: Executor | None = None) -> None:
        self.world, self.store, self.cfg, self.out, self.progress = world, store, cfg, Path(out), progress
        self.executor = executor  # where the retrainings and score jobs run (None: this machine)
        # a folder of ours (config.json) resumes; someone else's files are never written into
        check_replaceable(self.out, "attribution_validation", overwrite, resumable="config.json")
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out / "config.json", {"config": cfg.to_dict(), "store": store.fingerprint})
        idx, self.items, held_out = choose_corpus(world, store, cfg)
        self.docs = Documents.from_store(store, idx)
        self.queries: list[Query] = fact_queries(self.items) + text_queries(store, held_out, cfg.train.seq_len - 8)
        self.kind = np.array(["fact"] * len(self.items) + ["text"] * len(held_out))
        self.vocab = int(store.tokenizer().get_vocab_size())
        self.rows = query_rows(self.queries, _hf_tokenizer(store), cfg.train.seq_len)

    # -- retraining, cached per (subset, seed); independent runs go through the scheduler side by side
    def _jobs(self, runs: list[tuple[str, np.ndarray, int]]) -> tuple[list[Path], list[Job]]:
        """The (name, kept-documents mask, seed) retrainings' result paths, and jobs for those not saved yet."""
        from empiricist.execute import Job

        paths = [self.out / "runs" / f"{name}-seed{seed}.npy" for name, _, seed in runs]
        jobs = [Job(path.stem, _retrain_and_measure, {
            "docs": [self.docs.tokens[i] for i in np.flatnonzero(keep)], "size": self.cfg.size,
            "train": self.cfg.train, "vocab": self.vocab, "seed": seed, "rows": self.rows, "path": path},
            self.cfg.train.threads_for(self.cfg.size))
            for (_, keep, seed), path in zip(runs, paths, strict=True) if not path.exists()]
        return paths, jobs

    def _run_many(self, runs: list[tuple[str, np.ndarray, int]], desc: str) -> list[np.ndarray]:
        """NLLs of each (name, kept-documents mask, seed) retraining; each saved as soon as it exists."""
        from empiricist.execute import run_jobs

        paths, jobs = self._jobs(runs)
        run_jobs(jobs, progress=self.progress, desc=desc, executor=self.executor)
        return [np.load(p) for p in paths]

    def run_ahead(self, methods: tuple[str, ...]) -> None:
        """Everything that needs only the base model, in one batch of scheduler jobs: each method's scores
        (one job per method, longest first) side by side with the full, LDS and random-removal retrainings.
        Methods used to run one after another in this process while the cores retrained nothing."""
        from empiricist.execute import Job, run_jobs

        runs = [self.full_run(), *self._lds_runs(), *self._cf_runs("random", self._random_keeps())]
        scoring = [Job(f"scores-{m}", _score_method, {
            "model": self.checkpoints[-1][0], "queries": self.queries, "docs": self.docs, "method": m,
            "cache": self.out / "cache", "options": self._method_options(m), "path": self._score_path(m)}, 1)
            for m in sorted(methods, key=lambda m: SCORE_ORDER.get(m, 0)) if not self._scored(m)]
        run_jobs(scoring + self._jobs(runs)[1], progress=self.progress, desc="scores and retraining",
                 executor=self.executor)

    def base_model(self) -> Any:
        """The base model (all documents, first seed) as a ModelHandle, with TracIn checkpoints."""
        from empiricist.data.tokenizer import save_hf_tokenizer
        from empiricist.suite.handles import load_model

        cfg = self.cfg
        folder = self.out / "base"
        steps = sorted({max(1, round(cfg.train.steps * (i + 1) / cfg.tracin_checkpoints))
                        for i in range(cfg.tracin_checkpoints)})
        paths = {s: folder / f"step{s}" for s in steps}
        if not all((p / "model.safetensors").exists() for p in paths.values()):
            train_on_docs(self.docs.tokens, cfg.size, cfg.train, self.vocab, seed=cfg.seeds[0], save_at=paths,
                          on_save=lambda p: save_hf_tokenizer(self.store.tokenizer_path, p))
        self.checkpoints = [(str(paths[s]), cfg.train.lr_at(s - 1)) for s in steps]  # the last is the final model
        return load_model(self.checkpoints[-1][0])

    def metasmoothness(self, scores: np.ndarray) -> list[dict[str, float]]:
        """``magic.metasmoothness`` on the base run (cached in metasmoothness.json): how linear the
        query losses are in the document weights, up to LDS's own perturbation."""
        from empiricist.attribution.magic import Replay, metasmoothness, read_run

        path = self.out / "metasmoothness.json"
        if not path.exists():
            replay = Replay(self.docs.tokens, **read_run(Path(self.checkpoints[-1][0]), self.docs))
            atomic_write_json(path, metasmoothness(replay, self.rows, len(self.queries), -scores,
                                                   fraction=self.cfg.fraction, seed=self.cfg.seed))
        return json.loads(path.read_text())

    def _score_path(self, method: str) -> Path:
        return self.out / "scores" / f"{method}.npy"

    def _scored(self, method: str) -> bool:
        path = self._score_path(method)
        return path.exists() and path.with_suffix(".json").exists()

    def _method_options(self, method: str) -> dict[str, Any]:
        opts = dict(self.cfg.options.get(method, {}))
        if method in ("tracin", "trak"):
            opts["checkpoints_list"] = self.checkpoints
        return opts

    def scores(self, handle: ModelHandle, method: str) -> tuple[np.ndarray, dict[str, float]]:
        path = self._score_path(method)
        if not self._scored(method):
            _score_method(handle, self.queries, self.docs, method, self.out / "cache",
                          self._method_options(method), path, progress=self.progress)
        return np.load(path), json.loads(path.with_suffix(".json").read_text())

    def subsets(self) -> np.ndarray:
        rng = np.random.default_rng([self.cfg.seed, 1])
        n = len(self.docs)
        masks = np.zeros((self.cfg.n_subsets, n), dtype=bool)
        for j in range(self.cfg.n_subsets):
            masks[j, rng.choice(n, round(self.cfg.fraction * n), replace=False)] = True
        return masks

    def full_run(self) -> tuple[str, np.ndarray, int]:
        """The retraining on every document (first seed): the counterfactuals' reference."""
        return "full", np.ones(len(self.docs), dtype=bool), self.cfg.seeds[0]

    def _lds_runs(self) -> list[tuple[str, np.ndarray, int]]:
        masks = self.subsets()
        return [(f"lds{j:03d}", masks[j], s) for j in range(len(masks)) for s in self.cfg.seeds]

    def _cf_runs(self, method: str, keeps: list[np.ndarray]) -> list[tuple[str, np.ndarray, int]]:
        return [(f"cf-{method}-g{g}", keep, self.cfg.seeds[0]) for g, keep in enumerate(keeps)]

    def lds_actual(self) -> np.ndarray:
        """[subset, seed, query] NLL of the retrained models."""
        nlls = self._run_many(self._lds_runs(), "LDS retraining")  # subset-major, then seed
        return np.stack(nlls).reshape(self.cfg.n_subsets, len(self.cfg.seeds), len(self.queries))

    def cf_keeps(self, scores: np.ndarray | None) -> list[np.ndarray]:
        """Each group's kept documents: all but the union of its queries' top-k (None: the random baseline)."""
        if scores is None:
            return self._random_keeps()
        keeps = []
        for qs in self._cf_groups():
            removed: set[int] = set()
            for q in qs:
                removed |= set(np.argsort(-scores[q], kind="stable")[:self.cfg.cf_k].tolist())
            keeps.append(_keep_all_but(len(self.docs), removed))
        return keeps

    def counterfactuals(self, scores: dict[str, np.ndarray | None], base_nll: np.ndarray) -> dict[str, np.ndarray]:
        """Per method, the per-query NLL change after removing its group's top-k (or random) documents.
        Every method's retrainings go to the scheduler in one batch: one pool start-up, not one a method
        (worker start-up was most of a CI-sized validation's time)."""
        runs = {m: self._cf_runs(m, self.cf_keeps(s)) for m, s in scores.items()}
        nlls = iter(self._run_many([r for rs in runs.values() for r in rs], "counterfactual retraining"))
        out = {}
        for m in runs:
            delta = np.full(len(self.queries), np.nan)
            for qs in self._cf_groups():
                delta[qs] = next(nlls)[qs] - base_nll[qs]
            out[m] = delta
        return out

    def _cf_groups(self) -> list[np.ndarray]:
        return np.array_split(np.flatnonzero(self.kind == "fact"), self.cfg.cf_groups)

    def _random_keeps(self) -> list[np.ndarray]:
        """The random baseline's kept documents per group: as many removed as a method removes at most."""
        rng = np.random.default_rng([self.cfg.seed, 2])
        return [_keep_all_but(len(self.docs), set(rng.choice(len(self.docs), len(qs) * self.cfg.cf_k,
                                                            replace=False).tolist()))
                for qs in self._cf_groups()]


# the slowest methods first, so that the short ones and the retrainings fill the cores behind them
SCORE_ORDER = {"magic": -1, "ekfac": 0, "tracin": 1, "trak": 2, "trackstar": 3, "minilm": 4, "bm25": 5}


def _keep_all_but(n: int, removed: set[int]) -> np.ndarray:
    keep = np.ones(n, dtype=bool)
    keep[list(removed)] = False
    return keep


def _score_method(model: ModelHandle | str, queries: list[Query], docs: Documents, method: str, cache: Path,
                  options: dict[str, Any], path: Path, progress: bool = False) -> None:
    """One method's scores (a scheduler job, or inline): scores/<method>.npy and its cost beside it."""
    import torch

    from empiricist.attribution.api import attribute
    from empiricist.suite.handles import load_model

    handle = load_model(model) if isinstance(model, str) else model
    with PeakRSS() as mem:
        res = attribute(handle, queries, docs, method, cache=cache, options=options, progress=progress)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, res.scores)
    atomic_write_json(path.with_suffix(".json"), {
        "seconds": round(res.seconds, 2), "peak_rss_mb": round(mem.peak, 1),
        "rss_increase_mb": round(mem.peak - mem.start, 1), "threads": torch.get_num_threads()})


def _retrain_and_measure(docs: list[np.ndarray], size: ModelSize, train: TrainConfig, vocab: int, seed: int,
                         rows: Rows, path: Path) -> None:
    """One retraining (a scheduler job): train, measure the queries, save the NLLs atomically."""
    nll = measure(train_on_docs(docs, size, train, vocab, seed=seed), rows)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, nll)


def _hf_tokenizer(store: TokenStore) -> Any:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_file=str(store.tokenizer_path))


def spearman_lds(pred: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Per query: Spearman over subsets between predicted goodness and −actual NLL ([subset, query])."""
    from scipy.stats import spearmanr

    out = np.full(pred.shape[1], np.nan)
    for q in range(pred.shape[1]):
        if np.ptp(pred[:, q]) > 0 and np.ptp(actual[:, q]) > 0:
            out[q] = spearmanr(pred[:, q], -actual[:, q]).statistic
    return out


def nats_per_unit(kept_score: np.ndarray, actual: np.ndarray) -> float:
    """Calibration: the least-squares slope of the actual NLL change on the predicted one, pooled over
    queries after centring each over subsets. Keeping subset S predicts NLL_S = const − Σ_{d∈S} score, so
    the slope of NLL_S on −kept_score is 1 when scores are in nats (``magic``), a conversion factor else."""
    p = -(kept_score - kept_score.mean(0))
    a = actual - actual.mean(0)
    return float((p * a).sum() / max(float((p * p).sum()), 1e-300))


def _interval(name: str, values: np.ndarray) -> dict[str, float]:
    """Mean with a bootstrap 95% CI over queries (NaN-free values only); NaN when fewer than 2."""
    from empiricist.stats import mean_ci

    ok = values[~np.isnan(values)]
    if len(ok) < 2:
        return {name: float("nan"), f"{name}_lo": float("nan"), f"{name}_hi": float("nan"), f"{name}_n": len(ok)}
    est = mean_ci(ok, method="bootstrap", seed=0)
    return {name: float(est.mean), f"{name}_lo": float(est.lo), f"{name}_hi": float(est.hi), f"{name}_n": len(ok)}


def _seed_agreement(v: Validation, act: np.ndarray) -> dict[str, float]:
    """How reproducible the ground truth is: per query, the correlation over subsets between two seeds'
    retrained NLLs (the ceiling any attribution's LDS is read against), averaged per query kind."""
    if len(v.cfg.seeds) < 2:
        return {}
    r = np.array([spearman_lds(-act[:, 0, [q]], act[:, 1, [q]])[0] for q in range(act.shape[2])])
    return {kind: float(np.nanmean(r[v.kind == kind])) for kind in ("fact", "text")}


def validate(world: Any, store: TokenStore, cfg: ValidationConfig, out: str | Path, *, progress: bool = True,
             methods: tuple[str, ...] | None = None, overwrite: bool = False,
             executor: Executor | None = None) -> dict[str, Any]:
    """Run (or resume) the whole validation; returns {"rows": table rows, ...} and writes results.json.
    ``executor``: where retrainings and score jobs run (default: this machine; a ``RayExecutor``: a cluster)."""
    from empiricist.lookup.groundtruth import rank_metrics

    t0 = time.perf_counter()
    v = Validation(world, store, cfg, Path(out), progress, overwrite, executor)
    handle = v.base_model()
    v.run_ahead(methods or cfg.methods)
    base_nll = v._run_many([v.full_run()], "full retraining")[0]
    per_seed = v.lds_actual()
    actual = per_seed.mean(1)  # average over seeds
    masks = v.subsets().astype(np.float64)
    relevant = relevant_rows(world, v.docs, v.items)
    facts = np.flatnonzero(v.kind == "fact")
    scored = {m: v.scores(handle, m) for m in methods or cfg.methods}
    cfs = v.counterfactuals({"random": None, **{m: scores for m, (scores, _) in scored.items()}}, base_nll)
    random_cf = cfs["random"]
    rows = []
    for m, (scores, meta) in scored.items():
        lds = spearman_lds(masks @ scores.T, actual)
        row: dict[str, Any] = {"method": m}
        for kind in ("fact", "text"):
            row.update(_interval(f"lds_{kind}", lds[v.kind == kind]))
        ranks = [rank_metrics([str(i) for i in np.argsort(-scores[q], kind="stable")[:10]],
                              {str(i) for i in relevant[q]}, 10) for q in facts]
        cf = cfs[m]
        row.update({"recall@10": float(np.mean([r["recall"] for r in ranks])),
                    "mrr": float(np.mean([r["rr"] for r in ranks])), "cf_delta_nll": float(np.mean(cf[facts]))})
        row.update(_interval("cf_vs_random", cf[facts] - random_cf[facts]))
        for kind in ("fact", "text"):
            row[f"nats_per_unit_{kind}"] = nats_per_unit(masks @ scores[v.kind == kind].T, actual[:, v.kind == kind])
        rows.append({**row, **meta})
    result = {"config": cfg.to_dict(), "n_docs": len(v.docs), "n_fact_queries": len(facts),
              "n_text_queries": int((v.kind == "text").sum()), "random_cf_delta_nll": float(np.mean(random_cf[facts])),
              "seed_agreement": _seed_agreement(v, per_seed), "rows": rows,
              "metasmoothness": v.metasmoothness(scored["magic"][0]) if "magic" in scored else None,
              "elapsed_s": round(time.perf_counter() - t0, 1), "config_hash": config_hash(cfg.to_dict())}
    atomic_write_json(Path(out) / "results.json", result)
    from empiricist.attribution.plot import plot_validation

    plot_validation(result, Path(out) / "validation.png")
    return result
