"""Log-likelihood of continuations: the primitive behind multiple-choice scoring.

Context and continuation are tokenised separately and concatenated (as lm-evaluation-harness does), so
a continuation's tokens are the same whatever the context. Rows are sorted by length and right-padded
so a batch wastes little compute on padding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from empiricist.errors import EmpiricistError


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


@torch.inference_mode()
def continuation_logprobs(
    model,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    *,
    batch_tokens: int = 16384,
    progress: bool = False,
    desc: str = "loglik",
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of log p(continuation | context) and continuation length in tokens, for each (context, cont) pair."""
    encoded = []
    max_len = getattr(model.config, "max_position_embeddings", None)
    for i, (ctx, cont) in enumerate(pairs):
        c, k = _encode(tokenizer, ctx), _encode(tokenizer, cont)
        if not k:
            raise EmpiricistError(f"pair {i}: empty continuation {cont!r}")
        if not c:
            c = [tokenizer.eos_token_id]  # condition on EOS, as lm-eval does for an empty context
        ids = c + k
        if max_len and len(ids) > max_len:
            raise EmpiricistError(f"pair {i}: {len(ids)} tokens exceed the model's context of {max_len}")
        encoded.append((ids, len(k)))
    order = np.argsort([-len(ids) for ids, _ in encoded], kind="stable")
    sums = np.zeros(len(pairs), dtype=np.float64)
    lens = np.array([k for _, k in encoded], dtype=np.int64)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    bar = tqdm(total=len(pairs), desc=desc, disable=not progress, unit="seq")
    start = 0
    while start < len(order):
        width = len(encoded[order[start]][0])
        n = max(1, batch_tokens // width)
        idx = order[start : start + n]
        x = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, j in enumerate(idx):
            ids = encoded[j][0]
            x[r, : len(ids)] = torch.tensor(ids)
            mask[r, : len(ids)] = 1
        logp = torch.log_softmax(model(input_ids=x, attention_mask=mask).logits.float(), dim=-1)
        for r, j in enumerate(idx):
            ids, k = encoded[j]
            pos = torch.arange(len(ids) - k - 1, len(ids) - 1)
            sums[j] = float(logp[r, pos, torch.tensor(ids[-k:])].sum())
        start += len(idx)
        bar.update(len(idx))
    bar.close()
    return sums, lens


def choice_accuracy(
    model, tokenizer, prompts: Sequence[str], choices: Sequence[Sequence[str]], targets: Sequence[int],
    *, progress: bool = False, desc: str = "choices",
) -> np.ndarray:
    """Per item 1.0 if the target choice has the highest summed log-prob, else 0.0."""
    pairs = [(p, c) for p, cs in zip(prompts, choices, strict=True) for c in cs]
    sums, _ = continuation_logprobs(model, tokenizer, pairs, progress=progress, desc=desc)
    out, k = np.zeros(len(prompts)), 0
    for i, cs in enumerate(choices):
        out[i] = float(int(np.argmax(sums[k : k + len(cs)])) == targets[i])
        k += len(cs)
    return out
