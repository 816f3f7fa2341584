"""What attribution works on: queries (a prompt + the continuation being explained) and documents.

A query's *measurement* is the summed negative log-likelihood of its target tokens given the prompt
(lower = the model believes the target more), or, with ``contrast``, NLL(target) − NLL(contrast) —
i.e. minus the log-odds log p(target) − log p(contrast). Every method scores so that **positive means
"training on this document lowers the measurement"** (makes the target more likely, or more likely than
the contrast). Gradient-based scores are linear in the query gradient, so a contrast query is scored as
two rows (target with sign +1, contrast with sign −1) and the rows are combined by ``signs``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from empiricist.errors import InputError

if TYPE_CHECKING:
    from empiricist.data.store import TokenStore
    from empiricist.suite.handles import ModelHandle


@dataclass(frozen=True)
class Query:
    """``prompt`` + ``target`` continuation (with its leading space, as the model would write it)."""

    prompt: str
    target: str
    contrast: str | None = None
    id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "prompt": self.prompt, "target": self.target, "contrast": self.contrast}


def load_queries(path: str | Path) -> list[Query]:
    """Queries from JSONL: ``{"prompt": ..., "target": ..., "contrast"?: ..., "id"?: ...}`` per line."""
    from empiricist.data.readers import iter_records

    path = Path(path)
    out: list[Query] = []
    for n, row in iter_records(path):
        for key in ("prompt", "target"):
            if not isinstance(row.get(key), str) or not row[key]:
                raise InputError("needs a non-empty string", path=path, line=n, field=key)
        contrast = row.get("contrast")
        if contrast is not None and not isinstance(contrast, str):
            raise InputError("must be a string", path=path, line=n, field="contrast")
        out.append(Query(row["prompt"], row["target"], contrast, str(row.get("id", f"q{n}"))))
    if not out:
        raise InputError("no queries in the file", path=path)
    return out


def fact_queries(items: Sequence[dict[str, Any]]) -> list[Query]:
    """World ``fact_qa`` items as queries: the cloze prompt and the true value's continuation."""
    return [Query(it["prompt"], it["choices"][it["target"]], None, it["id"]) for it in items]


@dataclass
class Documents:
    """Training documents as token arrays (truncated to the model context), with ids and texts."""

    ids: list[str]
    tokens: list[np.ndarray]
    texts: list[str]
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_store(cls, store: TokenStore, indices: Sequence[int] | None = None) -> Documents:
        idx = range(len(store)) if indices is None else [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < len(store)]
        if bad:
            raise InputError(f"document index {bad[0]} out of range: the store has {len(store)} documents")
        return cls([store.doc_id(i) for i in idx], [np.asarray(store.doc_tokens(i), dtype=np.int64) for i in idx],
                   [store.doc_text(i) for i in idx], source=f"store:{store.fingerprint}")

    @classmethod
    def from_texts(cls, texts: Sequence[str], tokenizer: Any, ids: Sequence[str] | None = None) -> Documents:
        ids = list(ids) if ids is not None else [f"doc{i}" for i in range(len(texts))]
        if len(ids) != len(texts):
            raise InputError(f"{len(ids)} ids for {len(texts)} texts")
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        toks = [np.asarray(tokenizer(t, add_special_tokens=False)["input_ids"] + eos, dtype=np.int64) for t in texts]
        return cls(ids, toks, list(texts), source="texts")

    def subset(self, rows: Sequence[int]) -> Documents:
        return Documents([self.ids[i] for i in rows], [self.tokens[i] for i in rows], [self.texts[i] for i in rows],
                         self.source)

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for i, t in zip(self.ids, self.tokens, strict=True):
            h.update(i.encode())
            h.update(np.ascontiguousarray(t, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]


def load_documents(handle: ModelHandle, *, docs: str | Path | None = None, store: str | Path | None = None,
                   n_docs: int | None = None, seed: int = 0) -> Documents:
    """Documents from a text/JSONL/Parquet/HF-dataset path (``docs``), a token store, or else the suite
    model's own training store; ``n_docs``: a seeded random sample of that many."""
    from empiricist.data.store import TokenStore

    if docs is not None:
        from empiricist.data.readers import iter_documents

        rows = list(iter_documents(docs))
        if n_docs is not None and n_docs < len(rows):
            keep = np.sort(np.random.default_rng(seed).choice(len(rows), n_docs, replace=False))
            rows = [rows[i] for i in keep]
        return Documents.from_texts([d.text for d in rows], handle.tokenizer, [d.id for d in rows])
    if store is not None:
        s = TokenStore.open(store)
    elif handle.provenance.get("source") == "suite":
        from empiricist.suite.suite import Suite

        s = Suite(handle.provenance["suite"]).store()
    else:
        raise InputError("give --docs FILE or --store STORE: this model is not a suite model with a store")
    model_tok = Path(handle.provenance.get("path", "")) / "tokenizer.json"
    if model_tok.exists():
        s.check_tokenizer(model_tok)  # a store tokenized differently would give meaningless scores
    idx = None
    if n_docs is not None and n_docs < len(s):
        idx = np.sort(np.random.default_rng(seed).choice(len(s), n_docs, replace=False))
    return Documents.from_store(s, idx)


def context_len(model: torch.nn.Module) -> int:
    """The model's context in tokens (2048 when its config does not say)."""
    return int(getattr(model.config, "max_position_embeddings", 0) or 2048)


# ---------------------------------------------------------------- rows the gradient machinery sees
@dataclass
class Rows:
    """Token rows with a loss mask; ``owner``/``sign`` map query rows back to queries."""

    ids: list[np.ndarray]
    masks: list[np.ndarray]  # 1 where the token at this position is predicted and counted
    owner: np.ndarray
    sign: np.ndarray


def document_rows(docs: Documents, context: int) -> Rows:
    ids = [t[:context] for t in docs.tokens]
    masks = []
    for t in ids:
        m = np.ones(len(t), dtype=np.float32)
        m[0] = 0.0  # the first token is never predicted
        masks.append(m)
    n = len(ids)
    return Rows(ids, masks, np.arange(n), np.ones(n, dtype=np.float32))


def query_rows(queries: Sequence[Query], tokenizer: Any, context: int) -> Rows:
    """Prompt + target (and prompt + contrast) rows; the mask covers the continuation's tokens only."""
    ids, masks, owner, sign = [], [], [], []
    for qi, q in enumerate(queries):
        p = tokenizer(q.prompt, add_special_tokens=False)["input_ids"]
        for cont, s in ((q.target, 1.0), (q.contrast, -1.0)):
            if cont is None:
                continue
            c = tokenizer(cont, add_special_tokens=False)["input_ids"]
            if not p or not c:
                raise InputError(f"query {q.id or qi}: prompt and continuation must both tokenize to ≥1 token")
            row = np.asarray(p + c, dtype=np.int64)
            if len(row) > context:
                raise InputError(f"query {q.id or qi}: {len(row)} tokens, over the model's context of {context}")
            m = np.zeros(len(row), dtype=np.float32)
            m[len(p):] = 1.0
            ids.append(row)
            masks.append(m)
            owner.append(qi)
            sign.append(s)
    return Rows(ids, masks, np.asarray(owner), np.asarray(sign, dtype=np.float32))


def combine_rows(row_scores: np.ndarray, rows: Rows, n_queries: int) -> np.ndarray:
    """Sum signed row scores into per-query scores (a contrast query = target row − contrast row)."""
    out = np.zeros((n_queries, row_scores.shape[1]), dtype=np.float64)
    np.add.at(out, rows.owner, row_scores * rows.sign[:, None])
    return out


def pad_batch(ids: Sequence[np.ndarray], masks: Sequence[np.ndarray], pad_id: int = 0,
              width: int | None = None) -> dict[str, torch.Tensor]:
    """Right-padded batch: ``input_ids``, ``attention_mask`` and the float ``loss_mask`` (to ``width``
    columns when given, else to the longest row)."""
    width = width or max(len(x) for x in ids)
    x = np.full((len(ids), width), pad_id, dtype=np.int64)
    a = np.zeros((len(ids), width), dtype=np.int64)
    m = np.zeros((len(ids), width), dtype=np.float32)
    for i, (t, mk) in enumerate(zip(ids, masks, strict=True)):
        x[i, :len(t)] = t
        a[i, :len(t)] = 1
        m[i, :len(t)] = mk
    return {"input_ids": torch.from_numpy(x), "attention_mask": torch.from_numpy(a), "loss_mask": torch.from_numpy(m)}


def summed_nll(model: torch.nn.Module, batch: dict[str, torch.Tensor], sample: bool = False) -> torch.Tensor:
    """Per-row summed NLL of the masked tokens, shape [B]. ``sample`` draws targets from the model
    (the true Fisher, which kronfluence asks for when fitting factors)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    logits = logits if logits.dtype == torch.float64 else logits.float()  # float64: magic's exact checks
    targets = batch["input_ids"][:, 1:]
    if sample:
        with torch.no_grad():
            targets = torch.distributions.Categorical(logits=logits.detach()).sample()
    nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return (nll * batch["loss_mask"][:, 1:]).sum(1)
