"""Shared-prompt batched log-likelihood equals the naive computation; scorers grade as lm-eval does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_evals_common import *  # shared fixtures: conftest.py belongs to the lead

from empiricist.errors import EmpiricistError
from empiricist.evals import (
    GenerateScorer,
    Item,
    LoglikScorer,
    choice_logliks,
    reference_logprob,
    world_tasks,
)
from empiricist.evals.generate import cut_at_stops, greedy_generate
from empiricist.evals.loglik import encode_items

REQUESTS = [
    ("Bidres Korkru was born in", [" Paris", " the city of Lisbon", " a"]),
    ("x", [" y"]),
    ("", [" alpha beta", "gamma"]),  # empty context: conditioned on EOS, as lm-eval does
    ("A longer prompt with trailing space ", ["word", " two words", "\nnew line"]),
    ("The river flows near the harbour and the city", [" of", " and the teacher plays violin"]),
]


def naive(h, requests):
    return [[reference_logprob(h.model, h.tokenizer, p, c) for c in cs] for p, cs in requests]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_batched_shared_prompt_equals_naive_fp32(model_dirs, eval_world, attn):
    from transformers import AutoModelForCausalLM

    from empiricist.suite.handles import load_model

    h = load_model(str(model_dirs[1]))
    h.model = AutoModelForCausalLM.from_pretrained(model_dirs[1], dtype=torch.float32, attn_implementation=attn).eval()
    qa = world_tasks(eval_world, ["fact_qa"])["fact_qa"].items[:6]
    requests = REQUESTS + [(it.prompt, list(it.choices)) for it in qa]
    want = naive(h, requests)
    for budget in (64, 100_000):  # many small batches (mixed prompt lengths per batch) and one big one
        got = choice_logliks(h.model, h.tokenizer, requests, batch_tokens=budget)
        diff = max(abs(a - b) for g, w in zip(got, want, strict=True) for a, b in zip(g.logprobs, w, strict=True))
        assert diff < 1e-4
    lengths = [n for r in got for n in r.n_tokens]
    assert min(lengths) == 1 and max(lengths) > 3  # one-token choices skip the second pass
    assert all(r.truncated == 0 for r in got)


def test_encoding_follows_lm_eval(handle):
    tok = handle.tokenizer
    (enc,) = encode_items(tok, [("Question: x ", ["y", " z"])])
    assert enc.context == tok("Question: x", add_special_tokens=False)["input_ids"]  # trailing space moved
    whole = tok("Question: x y", add_special_tokens=False)["input_ids"]
    assert enc.continuations[0] == whole[len(enc.context):]
    (empty,) = encode_items(tok, [("", ["hello"])])
    assert empty.context == [tok.eos_token_id]
    with pytest.raises(EmpiricistError, match="encodes to no tokens"):
        encode_items(tok, [("abc", [""])])


def test_prompt_longer_than_context_errors_or_is_flagged(handle):
    long_prompt = " ".join(["alpha beta gamma"] * 200)
    with pytest.raises(EmpiricistError, match=r"item 0: prompt \(\d+ tokens\).*context of 256.*truncation='left'"):
        choice_logliks(handle.model, handle.tokenizer, [(long_prompt, [" delta"])])
    (res,) = choice_logliks(handle.model, handle.tokenizer, [(long_prompt, [" delta", " delta epsilon"])],
                            truncation="left")
    assert res.truncated > 0 and res.prompt_tokens + max(res.n_tokens) - 1 == 256
    ids = encode_items(handle.tokenizer, [(long_prompt, [" delta"])])[0].context[res.truncated:]
    text = handle.tokenizer.decode(ids)
    assert abs(res.logprobs[0] - reference_logprob(handle.model, handle.tokenizer, text, " delta")) < 1e-3


def test_loglik_grading_matches_lm_eval_definitions():
    item = Item(id="i", prompt="p", choices=(" a", " bbbbbbbb"), target=1)
    raw = {"logprobs": [-2.0, -3.0], "n_tokens": [1, 4], "greedy": [True, False], "prompt_tokens": 1,
           "truncated": 0}
    g = LoglikScorer().grade(item, raw)
    assert g["acc"] == 0.0 and g["pred"] == 0           # raw sum prefers the short choice
    assert g["acc_norm"] == 1.0 and g["acc_bytes"] == 1.0 and g["acc_token"] == 1.0  # per char/byte/token
    assert g["p_gold"] == pytest.approx(1 / (1 + np.e)) and g["exact_match"] == 0.0
    assert LoglikScorer(metric="acc_norm").grade(item, raw)["score"] == 1.0
    with pytest.raises(Exception, match="unknown metric"):
        LoglikScorer(metric="f1")


def test_generation_regex_and_exact_grading(handle):
    assert cut_at_stops("42\nmore", ["\n"]) == "42" and cut_at_stops("abc", []) == "abc"
    item = Item(id="g", prompt="Q", target="42")
    rx = GenerateScorer(match="regex", pattern=r"answer is (\d+)")
    assert rx.grade(item, {"completion": "the answer is 42."})["score"] == 1.0
    assert rx.grade(item, {"completion": "no idea"})["extracted"] is None
    assert GenerateScorer().grade(item, {"completion": " 42 "})["score"] == 1.0
    assert GenerateScorer(match="contains").grade(item, {"completion": "it is 42!"})["score"] == 1.0
    with pytest.raises(Exception, match="bad regex"):
        GenerateScorer(match="regex", pattern="(")
    gens = greedy_generate(handle.model, handle.tokenizer, ["alpha beta", "the city of"], max_new_tokens=4,
                           until=())
    again = greedy_generate(handle.model, handle.tokenizer, ["the city of"], max_new_tokens=4, until=())
    assert gens[1].completion == again[0].completion and gens[0].n_tokens <= 4
    # greedy: one new token is the argmax after the prompt
    ids = handle.tokenizer("the city of", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        first = int(handle.model(torch.tensor([ids])).logits[0, -1].argmax())
    (one,) = greedy_generate(handle.model, handle.tokenizer, ["the city of"], max_new_tokens=1, until=())
    assert one.completion == ("" if first == handle.tokenizer.eos_token_id else handle.tokenizer.decode([first]))


def test_continue_text_is_the_greedy_continuation_and_starts_empty_prompts_from_eos(handle):
    from empiricist.evals.generate import continue_text

    (ref,) = greedy_generate(handle.model, handle.tokenizer, ["the city of"], max_new_tokens=5, until=())
    assert continue_text(handle, "the city of", 5) == ref.completion
    eos = handle.tokenizer.eos_token_id
    with torch.inference_mode():
        first = int(handle.model(torch.tensor([[eos]])).logits[0, -1].argmax())
    empty = continue_text(handle, "", 1)
    assert empty == ("" if first == eos else handle.tokenizer.decode([first]))
    with pytest.raises(Exception, match="empty prompt"):
        greedy_generate(handle.model, handle.tokenizer, [""], max_new_tokens=1)
