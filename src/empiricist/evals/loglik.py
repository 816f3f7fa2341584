"""Log-likelihood of continuations, computing each shared prompt once.

Tokenisation follows lm-evaluation-harness 0.4 (``_encode_pair``): trailing whitespace moves from the
context to the continuation, the context is encoded alone and the continuation is what encoding
``context + continuation`` adds after the context's tokens; an empty context is the EOS token. So every
choice of an item shares the same context tokens, and the log-probs match lm-eval's.

How the prompt is shared (the reason this module exists): items are batched, their prompts left-padded
and run once with ``use_cache=True`` (``logits_to_keep=1``: only the next-token distribution after the
prompt is needed); the KV cache is then gathered to one row per choice with
``DynamicCache.batch_select_indices`` and the choices longer than one token run as one right-padded batch
with a 2-D mask (prompt padding + choice padding) and explicit ``position_ids`` (a one-token choice is
scored from the prompt's next-token distribution alone). This is the path ``generate()`` itself
takes (left-padded prefill, then more tokens against the cache): it works with sdpa and eager attention
(tested) and relies on no version-specific mask convention. Packing prompt + choices into one row with a custom 4-D mask
would save the cache copy but depends on how a given version treats user 4-D masks (bool vs additive,
"used as is" or re-derived), which changed between transformers 4.x and 5.x. In fp32 the result equals
one forward pass per (prompt + choice) within 1e-4 (tests/test_evals_loglik.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from empiricist.errors import EmpiricistError

TRUNCATION = ("error", "left")


@dataclass(frozen=True)
class Encoded:
    """One item's tokens: the shared context and each choice's continuation."""

    context: list[int]
    continuations: list[list[int]]
    truncated: int = 0  # context tokens dropped from the left to fit the model's window


@dataclass(frozen=True)
class ChoiceLoglik:
    """Per choice: summed log-prob, token count, and whether greedy decoding would produce it."""

    logprobs: list[float]
    n_tokens: list[int]
    greedy: list[bool]
    prompt_tokens: int
    truncated: int = 0


def _encode_many(tokenizer, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    return [list(x) for x in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def context_window(model) -> int | None:
    """The model's maximum number of positions (None when the config does not say)."""
    return getattr(model.config, "max_position_embeddings", None)


def encode_items(
    tokenizer, requests: Sequence[tuple[str, Sequence[str]]], *, max_len: int | None = None,
    truncation: str = "error", ids: Sequence[str] | None = None,
) -> list[Encoded]:
    """lm-eval-style encoding of (context, choices) items, checked against the window ``max_len``."""
    if truncation not in TRUNCATION:
        raise EmpiricistError(f"truncation must be one of {TRUNCATION}, got {truncation!r}")
    contexts, wholes = [], []
    for ctx, conts in requests:
        n = len(ctx) - len(ctx.rstrip())
        head, tail = (ctx[:-n], ctx[-n:]) if n else (ctx, "")
        contexts.append(head)
        wholes.extend((head + tail + c, head, tail + c) for c in conts)
    ctx_ids = _encode_many(tokenizer, [c for c in contexts if c])
    whole_ids = _encode_many(tokenizer, [w for w, head, _ in wholes if head])
    bare_ids = _encode_many(tokenizer, [c for _, head, c in wholes if not head])
    eos = tokenizer.eos_token_id
    ci, wi, bi = iter(ctx_ids), iter(whole_ids), iter(bare_ids)
    out = []
    for i, (head, (_, conts)) in enumerate(zip(contexts, requests, strict=True)):
        name = ids[i] if ids is not None else str(i)
        context = next(ci) if head else [eos]
        cont_ids = []
        for c in conts:
            cont = next(wi)[len(context):] if head else next(bi)
            if not cont:
                raise EmpiricistError(f"item {name}: choice {c!r} encodes to no tokens after the prompt")
            cont_ids.append(cont)
        out.append(_fit(name, context, cont_ids, max_len, truncation))
    return out


def _fit(name: str, context: list[int], conts: list[list[int]], max_len: int | None, truncation: str) -> Encoded:
    """Inputs are context + all but the last continuation token; they must fit ``max_len`` positions."""
    longest = max(len(c) for c in conts)
    if max_len is None or len(context) + longest - 1 <= max_len:
        return Encoded(context, conts)
    room = max_len - longest + 1
    if truncation == "error" or room < 1:
        raise EmpiricistError(
            f"item {name}: prompt ({len(context)} tokens) plus its longest choice ({longest}) exceeds the "
            f"model's context of {max_len} tokens" + ("; pass truncation='left' (CLI: --truncation left) to drop the prompt's start "
                                                      "(flagged in the results)" if room >= 1 else ""))
    return Encoded(context[-room:], conts, truncated=len(context) - room)


def _batches(encoded: list[Encoded], batch_tokens: int) -> list[list[int]]:
    """Items in decreasing prompt length, grouped so each batch's padded token count stays in budget.

    Cost of a batch: the left-padded prompts, plus one row per multi-token choice holding the prompt
    (as cache) and the choice's padded width.
    """
    batches: list[list[int]] = []
    cur: list[int] = []
    lp = lc = n = 0
    for i in sorted(range(len(encoded)), key=lambda i: -len(encoded[i].context)):
        e = encoded[i]
        longer = [len(c) - 1 for c in e.continuations if len(c) > 1]
        nlp, nlc, nn = max(lp, len(e.context)), max([lc, *longer]), n + len(longer)
        if cur and (len(cur) + 1) * nlp + nn * (nlp + nlc) > batch_tokens:
            batches.append(cur)
            cur, nlp, nlc, nn = [], len(e.context), max([0, *longer]), len(longer)
        cur.append(i)
        lp, lc, n = nlp, nlc, nn
    if cur:
        batches.append(cur)
    return batches


def _prefill(model, contexts: list[list[int]], pad: int):
    """Left-padded prompts through the model once; returns (cache, mask, lengths, next-token log-probs)."""
    width = max(len(c) for c in contexts)
    x = torch.full((len(contexts), width), pad, dtype=torch.long)
    mask = torch.zeros_like(x)
    for r, c in enumerate(contexts):
        x[r, width - len(c):] = torch.tensor(c)
        mask[r, width - len(c):] = 1
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    out = model(input_ids=x, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
    return out.past_key_values, mask, mask.sum(1), torch.log_softmax(out.logits[:, -1].float(), dim=-1)


def _score_batch(model, items: list[Encoded], pad: int) -> list[ChoiceLoglik]:
    cache, pmask, plen, first = _prefill(model, [e.context for e in items], pad)
    owner = [i for i, e in enumerate(items) for _ in e.continuations]
    conts = [c for e in items for c in e.continuations]
    multi = [r for r, c in enumerate(conts) if len(c) > 1]  # one-token choices are done: `first` scores them
    rest: dict[int, torch.Tensor] = {}
    if multi:  # feed all but the last token of longer choices against the cache, one right-padded batch
        width = max(len(conts[r]) for r in multi) - 1
        rows = torch.tensor([owner[r] for r in multi])
        cache.batch_select_indices(rows)
        y = torch.full((len(multi), width), pad, dtype=torch.long)
        cmask = torch.zeros_like(y)
        for k, r in enumerate(multi):
            y[k, : len(conts[r]) - 1] = torch.tensor(conts[r][:-1])
            cmask[k, : len(conts[r]) - 1] = 1
        pos = plen[rows, None] + torch.arange(width)[None, :]
        logits = model(input_ids=y, attention_mask=torch.cat([pmask[rows], cmask], 1), position_ids=pos,
                       past_key_values=cache, use_cache=True).logits
        rest = {r: torch.log_softmax(logits[k, : len(conts[r]) - 1].float(), dim=-1) for k, r in enumerate(multi)}
    sums, greedy = [], []
    for r, c in enumerate(conts):
        dist = torch.cat([first[owner[r]][None], rest[r]]) if r in rest else first[owner[r]][None]
        tok = torch.tensor(c)
        sums.append(float(dist[torch.arange(len(c)), tok].sum()))
        greedy.append(bool((dist.argmax(-1) == tok).all()))
    out, k = [], 0
    for e in items:
        m = len(e.continuations)
        out.append(ChoiceLoglik(sums[k:k + m], [len(c) for c in e.continuations], greedy[k:k + m],
                                len(e.context), e.truncated))
        k += m
    return out


@torch.inference_mode()
def choice_logliks(
    model, tokenizer, requests: Sequence[tuple[str, Sequence[str]]], *, ids: Sequence[str] | None = None,
    batch_tokens: int = 4096, truncation: str = "error", progress: bool = False, desc: str = "loglik",
) -> list[ChoiceLoglik]:
    """log p(choice | prompt) for every choice of every (prompt, choices) item, each prompt run once."""
    encoded = encode_items(tokenizer, requests, max_len=context_window(model), truncation=truncation, ids=ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    results: list[ChoiceLoglik | None] = [None] * len(encoded)
    with tqdm(total=len(encoded), desc=desc, disable=not progress, unit="item") as bar:
        for batch in _batches(encoded, batch_tokens):
            for i, res in zip(batch, _score_batch(model, [encoded[i] for i in batch], pad), strict=True):
                results[i] = res
            bar.update(len(batch))
    return results  # type: ignore[return-value]


@torch.inference_mode()
def reference_logprob(model, tokenizer, context: str, continuation: str) -> float:
    """The naive computation: one unpadded forward pass over context + continuation (tests, benchmarks)."""
    enc = encode_items(tokenizer, [(context, [continuation])])[0]
    ids = enc.context + enc.continuations[0]
    logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)
    k = len(enc.continuations[0])
    return float(logp[torch.arange(len(ids) - k - 1, len(ids) - 1), torch.tensor(ids[-k:])].sum())


