"""Activation capture: equals a direct ``output_hidden_states`` forward, streams in chunks, finds other layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from empiricist.artifacts import read_manifest, verify
from empiricist.errors import InputError
from empiricist.internals.activations import (
    ActivationSet,
    capture_activations,
    collect_activations,
    resolve_sites,
)
from empiricist.suite.config import ModelSize
from empiricist.suite.handles import load_model
from empiricist.suite.model import build_model

TEXTS = ["Bidres Korkru was born in Vieva.", "alpha", "the city of river lisbon paris works as a teacher",
         "gamma delta epsilon", "and plays violin near harbour", "beta beta beta beta beta beta beta", "x y"]


@pytest.fixture(scope="module")
def handle(small_store, tmp_path_factory):
    from empiricist.data.store import TokenStore
    from empiricist.data.tokenizer import save_hf_tokenizer

    store = TokenStore.open(small_store)
    folder = tmp_path_factory.mktemp("model") / "m"
    build_model(ModelSize("x", 32, 3, 2), store.vocab_size, 64, seed=0).save_pretrained(folder)
    save_hf_tokenizer(store.tokenizer_path, folder)
    return load_model(str(folder))


def hidden_states(model, tokenizer, text: str) -> tuple:
    enc = tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        return model(**enc, output_hidden_states=True).hidden_states


def test_capture_matches_hidden_states_and_streams_in_chunks(handle, tmp_path: Path):
    sites = ["resid.0", "resid.1", "resid.2", "final", "attn.1", "mlp.1"]
    path = capture_activations(handle, iter(TEXTS), tmp_path / "acts", sites, "all", batch_size=2, chunk_rows=20)
    acts = ActivationSet(path)
    assert verify(path) == [] and acts.sites == sites
    m = read_manifest(path, kind="activations")
    assert m["inputs"]["model"] == handle.model_hash and len(m["inputs"]["dataset"]) == 16
    # chunked: several files, none much bigger than chunk_rows (a chunk closes at a batch boundary)
    sizes = [c["rows"] for c in acts.chunks]
    assert len(sizes) >= 3 and sum(sizes) == acts.n_rows and max(sizes) < 20 + 2 * 40
    rows = acts.rows()
    resid = {s: acts.load(s) for s in sites}
    for i, text in enumerate(TEXTS):
        hs = hidden_states(handle.model, handle.tokenizer, text)
        mine = rows[:, 0] == i
        assert np.array_equal(rows[mine, 1], np.arange(hs[0].shape[1]))
        for layer in range(3):
            np.testing.assert_allclose(resid[f"resid.{layer}"][mine], hs[layer][0].numpy(), atol=1e-5)
        np.testing.assert_allclose(resid["final"][mine], hs[-1][0].numpy(), atol=1e-5)  # HF's last is post-norm
    # GPT-NeoX's parallel residual: resid.2 = resid.1 + attn.1 + mlp.1
    np.testing.assert_allclose(resid["resid.2"], resid["resid.1"] + resid["attn.1"] + resid["mlp.1"], atol=1e-5)


def test_positions_last_and_given_indices(handle):
    last = collect_activations(handle.model, handle.tokenizer, TEXTS, "resid.2", "last", batch_size=3)
    for i, text in enumerate(TEXTS):
        hs = hidden_states(handle.model, handle.tokenizer, text)
        np.testing.assert_allclose(last.acts["resid.2"][i], hs[2][0, -1].numpy(), atol=1e-5)
        assert last.position[i] == hs[0].shape[1] - 1
    picked = collect_activations(handle.model, handle.tokenizer, TEXTS[:3], ["resid.1"], [0, [0, -1], [1]])
    assert picked.text_index.tolist() == [0, 1, 1, 2] and picked.position[:2].tolist() == [0, 0]
    with pytest.raises(InputError, match="outside the text"):
        collect_activations(handle.model, handle.tokenizer, ["x y"], "resid.1", [[40]])
    with pytest.raises(InputError, match="unknown site"):
        resolve_sites(handle.model, ["resid.1", "embed"])
    with pytest.raises(InputError, match="has 3 blocks"):
        resolve_sites(handle.model, ["mlp.3"])


def test_other_layouts_llama(handle):
    """``model.model.layers`` (Llama and most decoder-only HF models) is found and matches HF."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=len(handle.tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2)).eval()
    got = collect_activations(llama, handle.tokenizer, TEXTS[:2], ["resid.1", "final", "attn.0"], "all")
    for i, text in enumerate(TEXTS[:2]):
        hs = hidden_states(llama, handle.tokenizer, text)
        mine = got.text_index == i
        np.testing.assert_allclose(got.acts["resid.1"][mine], hs[1][0].numpy(), atol=1e-5)
        np.testing.assert_allclose(got.acts["final"][mine], hs[2][0].numpy(), atol=1e-5)
