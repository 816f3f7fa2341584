"""The batched per-example gradient engine equals one forward/backward per example.

TRAK, TracIn and TrackStar all read their gradients from ``per_example_grads``; the batched path (hooks
on every nn.Linear, one padded batch) must give each row's own gradient, for rows of different lengths
and for both objectives the methods use, and must fall back to the exact loop where its trick does not
hold (an output layer tied to the input embedding).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from empiricist.attribution.data import Rows, summed_nll
from empiricist.attribution.grads import linear_params, per_example_grads
from empiricist.attribution.trak import margin


def _rows(vocab: int, n: int = 7, seed: int = 0) -> Rows:
    rng = np.random.default_rng(seed)
    ids, masks = [], []
    for _ in range(n):
        length = int(rng.integers(5, 30))
        ids.append(rng.integers(1, vocab, length).astype(np.int64))
        m = np.ones(length, dtype=np.float32)
        m[: length // 3] = 0  # a prompt part that is not counted, as queries have
        masks.append(m)
    return Rows(ids, masks, np.arange(n), np.ones(n, np.float32))


def _neox(tie: bool = False) -> torch.nn.Module:
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(0)
    cfg = GPTNeoXConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, tie_word_embeddings=tie,
                        attn_implementation="eager")
    return GPTNeoXForCausalLM(cfg).eval()


def _llama_tied() -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
                      tie_word_embeddings=True, attn_implementation="eager")
    return LlamaForCausalLM(cfg).eval()


@pytest.mark.parametrize("fn", [summed_nll, margin], ids=["nll", "margin"])
def test_batched_equals_one_example_at_a_time(fn) -> None:
    model = _neox()
    rows = _rows(97)
    batched = per_example_grads(model, rows, range(len(rows.ids)), fn=fn)
    loop = per_example_grads(model, rows, range(len(rows.ids)), fn=fn, batched=False)
    assert batched.shape == loop.shape == (7, sum(p.numel() for _, p in linear_params(model)))
    assert loop.abs().max() > 0
    torch.testing.assert_close(batched, loop, rtol=1e-4, atol=1e-5 * float(loop.abs().max()))
    # each row is its own: swapping two rows swaps their gradients
    swapped = per_example_grads(model, rows, [1, 0], fn=fn)
    torch.testing.assert_close(swapped[0], batched[1], rtol=1e-4, atol=1e-5 * float(loop.abs().max()))


def test_tied_output_layer_falls_back_to_the_exact_loop() -> None:
    model = _llama_tied()
    assert model.lm_head.weight is model.model.embed_tokens.weight
    rows = _rows(97, n=4)
    batched = per_example_grads(model, rows, range(4))
    loop = per_example_grads(model, rows, range(4), batched=False)
    assert torch.equal(batched, loop)  # the embedding path's gradient is in the tied weight: only the loop has it


def test_a_subset_of_parameters_in_their_given_order() -> None:
    model = _neox()
    rows = _rows(97, n=3)
    named = linear_params(model)
    params = [named[-1][1], named[0][1]]  # the output layer, then the first attention projection
    got = per_example_grads(model, rows, range(3), params=params)
    ref = per_example_grads(model, rows, range(3), params=params, batched=False)
    assert got.shape == (3, params[0].numel() + params[1].numel())
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))
