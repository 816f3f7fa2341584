"""Small token stores built on demand: a cached build from documents, and fine-tuning sets repeated to fill batches.

Experiments build many stores (an arm's corpus, a retain set, a few documents to fine-tune on); each is
an artifact named by what it holds, built once under a lock, so concurrent or repeated runs reuse it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from empiricist.artifacts import artifact_lock, config_hash, is_complete, sha256_file
from empiricist.data.readers import Document


def cached_store(docs: Iterable[Document], tokenizer: Path, folder: Path, source: dict[str, str]) -> Path:
    """``folder`` as a token store of ``docs`` (built unless already complete; ``docs`` is only read then)."""
    from empiricist.data.store import build_store

    with artifact_lock(folder):
        if not is_complete(folder):
            build_store(iter(docs), tokenizer, folder, progress=False, source=source)
    return folder


def repeated(texts: list[str], min_tokens: int, tokens_each: int) -> list[str]:
    """Enough copies of ``texts`` to fill ``min_tokens`` (the order shuffles them per epoch)."""
    copies = max(1, -(-min_tokens // max(1, tokens_each * len(texts))))
    return [t for _ in range(copies) for t in texts]


def finetune_store(prefix: Path, name: str, texts: list[str], tokenizer: Path, batch: int, seq_len: int) -> Path:
    """A small fine-tuning store of ``texts`` at ``{prefix}-{hash}``, repeated so that one epoch holds at
    least two batches of ``batch`` × ``seq_len`` (the trainer's order needs a full batch per epoch)."""
    from empiricist.data.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer)
    each = max(len(tok.encode(t).ids) for t in texts) + 1
    rows = repeated(texts, 2 * batch * (seq_len + 1), each)
    key = config_hash({"texts": texts, "tokenizer": sha256_file(tokenizer), "rows": len(rows)})
    docs = (Document(f"{name}-{i:06d}", t, {}) for i, t in enumerate(rows))
    return cached_store(docs, tokenizer, prefix.parent / f"{prefix.name}-{key}", {"finetune": name})
