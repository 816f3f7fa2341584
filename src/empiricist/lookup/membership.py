"""Membership inference: does a model behave as if it trained on a text? Three reference-free scores.

From one forward pass per text (every token scored, the first conditioned on BOS/EOS):

* ``min_k``: Min-K% Prob (Shi et al. 2023): the mean log-probability of the k% least likely tokens
  (``k=0.2``; at least one token). A seen text has few very surprising tokens.
* ``loss``: minus the mean per-token loss (Yeom et al. 2018's loss attack).
* ``zlib``: minus loss / zlib-compressed length in bytes (Carlini et al. 2021): loss relative to how
  compressible, i.e. how predictable by a generic model, the text is anyway.

Convention: every score is oriented so that **higher means more likely a member**; the raw quantities
(``loss``, ``zlib_ratio``) are kept alongside. ``roc_auc`` evaluates a score against known membership.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy.stats import mannwhitneyu
from tqdm.auto import tqdm

from empiricist.errors import InputError
from empiricist.lookup.contamination import DEFAULT_FIELDS, id_of, item_text

if TYPE_CHECKING:
    from empiricist.suite.handles import ModelHandle

SCORES = ("min_k", "loss", "zlib")


@dataclass(frozen=True)
class MembershipScore:
    """One item's membership statistics under one model (see the module doc for the sign convention)."""

    item_id: str
    n_tokens: int
    loss: float  # mean negative log-likelihood per token, nats
    min_k_prob: float  # mean log-prob of the k% least likely tokens
    zlib_ratio: float  # loss / zlib-compressed length (bytes)
    k: float

    def scores(self) -> dict[str, float]:
        """The three scores, each oriented so that higher = more likely a training member."""
        return {"min_k": self.min_k_prob, "loss": -self.loss, "zlib": -self.zlib_ratio}

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "n_tokens": self.n_tokens, "loss": self.loss,
                "min_k_prob": self.min_k_prob, "zlib_ratio": self.zlib_ratio, "k": self.k, **self.scores()}


@torch.inference_mode()
def token_logprobs(model: Any, tokenizer: Any, texts: Sequence[str], *, batch_tokens: int = 2048,
                   progress: bool = False, truncate: bool = False) -> list[np.ndarray]:
    """Per text, log p(token_i | BOS, tokens_<i) of every token (right-padded, length-sorted batches).

    A text longer than the model's context is an error, or with ``truncate`` only its first
    context-length tokens are scored (the caller sees it in the length of the returned array).
    """
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if start is None:
        raise InputError("the tokenizer has neither a BOS nor an EOS token to condition the first token on")
    max_len = getattr(model.config, "max_position_embeddings", None)
    encoded = []
    for i, text in enumerate(texts):
        ids = [start] + list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if len(ids) < 2:
            raise InputError(f"text {i} has no tokens")
        if max_len and len(ids) > max_len and truncate:
            ids = ids[:max_len]
        elif max_len and len(ids) > max_len:
            raise InputError(f"text {i} has {len(ids) - 1} tokens; the model's context is {max_len}")
        encoded.append(ids)
    out: list[np.ndarray] = [np.empty(0)] * len(encoded)
    order = np.argsort([-len(ids) for ids in encoded], kind="stable")
    bar = tqdm(total=len(encoded), desc="membership", unit="text", disable=not progress)
    a = 0
    while a < len(order):
        width = len(encoded[order[a]])
        rows = order[a:a + max(1, batch_tokens // width)]
        x = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, j in enumerate(rows):
            x[r, :len(encoded[j])] = torch.tensor(encoded[j])
            mask[r, :len(encoded[j])] = 1
        logits = model(input_ids=x, attention_mask=mask).logits.float()
        picked = logits[:, :-1].gather(-1, x[:, 1:, None])[..., 0] - torch.logsumexp(logits[:, :-1], dim=-1)
        for r, j in enumerate(rows):
            out[j] = picked[r, :len(encoded[j]) - 1].double().numpy()
        a += len(rows)
        bar.update(len(rows))
    bar.close()
    return out


def min_k_prob(logprobs: np.ndarray, k: float = 0.2) -> float:
    """Mean of the ``max(1, floor(k * n))`` smallest token log-probs."""
    m = max(1, int(k * len(logprobs)))
    return float(np.sort(logprobs)[:m].mean())


def membership_scores(handle: ModelHandle, items: Iterable[Any], *, k: float = 0.2,
                      fields: Sequence[str] = DEFAULT_FIELDS, id_field: str = "id", batch_tokens: int = 2048,
                      progress: bool = False) -> list[MembershipScore]:
    """Min-K% Prob, loss and zlib ratio of each item's text under ``handle`` (a ModelHandle).

    ``items``: eval items (their ``fields`` joined, as for contamination) or plain texts. Texts longer than
    the model's context are scored on their first context-length tokens (``n_tokens`` says how many); the
    zlib reference is then taken over the same prefix.
    """
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 < k <= 1:
        raise InputError(f"k must be a fraction in (0, 1], got {k!r}")
    items = list(items)
    ids = [id_of(it, i, id_field) for i, it in enumerate(items)]
    texts = [item_text(it, fields, where=f"item {iid!r}") for iid, it in zip(ids, items)]
    tok = handle.tokenizer
    lps = token_logprobs(handle.model, tok, texts, batch_tokens=batch_tokens, progress=progress, truncate=True)
    out = []
    for iid, text, lp in zip(ids, texts, lps):
        full = tok(text, add_special_tokens=False)["input_ids"]
        if len(lp) < len(full):
            text = tok.decode(full[:len(lp)])
        loss = float(-lp.mean())
        out.append(MembershipScore(iid, len(lp), loss, min_k_prob(lp, k),
                                   loss / len(zlib.compress(text.encode("utf-8"))), float(k)))
    return out


def roc_auc(member_scores: Sequence[float], nonmember_scores: Sequence[float]) -> float:
    """P(score of a random member > that of a random non-member), ties half: Mann-Whitney U / (n1 n0)."""
    pos = np.asarray(member_scores, dtype=float)
    neg = np.asarray(nonmember_scores, dtype=float)
    if not pos.size or not neg.size:
        return float("nan")
    u = mannwhitneyu(pos, neg, alternative="two-sided").statistic
    return float(u / (pos.size * neg.size))
