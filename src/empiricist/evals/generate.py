"""Greedy generation for a batch of prompts, cut at stop strings (lm-eval's ``until``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from empiricist.errors import EmpiricistError
from empiricist.evals.loglik import TRUNCATION, context_window

if TYPE_CHECKING:
    from empiricist.suite.handles import ModelHandle


@dataclass(frozen=True)
class Generation:
    completion: str
    n_tokens: int
    prompt_tokens: int
    truncated: int = 0


def cut_at_stops(text: str, until: Sequence[str]) -> str:
    """The text up to (not including) the first stop string."""
    cut = min((i for s in until if s and (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


def _fit(ids: list[int], name: str, max_new: int, max_len: int | None, truncation: str) -> tuple[list[int], int]:
    if not ids:
        raise EmpiricistError(f"item {name}: empty prompt")
    if max_len is None or len(ids) + max_new <= max_len:
        return ids, 0
    room = max_len - max_new
    if truncation == "error" or room < 1:
        raise EmpiricistError(f"item {name}: prompt ({len(ids)} tokens) plus {max_new} new tokens exceeds the "
                              f"model's context of {max_len}" + ("; pass truncation='left' (CLI: --truncation left)" if room >= 1 else ""))
    return ids[-room:], len(ids) - room


@torch.inference_mode()
def greedy_generate(
    model, tokenizer, prompts: Sequence[str], *, max_new_tokens: int = 32, until: Sequence[str] = ("\n",),
    ids: Sequence[str] | None = None, batch_size: int = 16, truncation: str = "error", progress: bool = False,
    empty_from_eos: bool = False,
) -> list[Generation]:
    """Greedy completions (left-padded batches, as ``generate`` expects), cut at the first stop string.

    ``empty_from_eos``: an empty prompt starts from the end-of-text token (an unconditional sample) instead
    of being an error.
    """
    if truncation not in TRUNCATION:
        raise EmpiricistError(f"truncation must be one of {TRUNCATION}, got {truncation!r}")
    max_len = context_window(model)
    start = [tokenizer.eos_token_id] if empty_from_eos else []
    encoded = [_fit(list(x) or start, ids[i] if ids else str(i), max_new_tokens, max_len, truncation)
               for i, x in enumerate(tokenizer(list(prompts), add_special_tokens=False)["input_ids"])]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]))
    out: list[Generation | None] = [None] * len(encoded)
    for start in tqdm(range(0, len(order), batch_size), disable=not progress, desc="generate"):
        batch = order[start:start + batch_size]
        width = max(len(encoded[i][0]) for i in batch)
        x = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros_like(x)
        for r, i in enumerate(batch):
            seq = encoded[i][0]
            x[r, width - len(seq):], mask[r, width - len(seq):] = torch.tensor(seq), 1
        gen = model.generate(input_ids=x, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
        for r, i in enumerate(batch):
            new = gen[r, width:].tolist()
            if tokenizer.eos_token_id in new:
                new = new[: new.index(tokenizer.eos_token_id)]
            text = cut_at_stops(tokenizer.decode(new, skip_special_tokens=True), until)
            out[i] = Generation(text, len(new), len(encoded[i][0]), encoded[i][1])
    return out  # type: ignore[return-value]


def continue_text(handle: ModelHandle, prompt: str, max_new_tokens: int) -> str:
    """Greedy continuation of one prompt, no stop strings (deterministic, so a trace can be re-run); an
    empty prompt continues from the end-of-text token."""
    return greedy_generate(handle.model, handle.tokenizer, [prompt], max_new_tokens=max_new_tokens, until=(),
                           empty_from_eos=True)[0].completion
