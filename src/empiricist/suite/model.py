"""Build suite models: plain ``transformers.GPTNeoXForCausalLM`` (the Pythia architecture).

Using the stock HF class (not a reimplementation) means every checkpoint we save opens with
``AutoModelForCausalLM.from_pretrained`` and works with every tool that knows Pythia.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from empiricist.suite.config import ModelSize


def quiet_transformers() -> None:
    """Our own bars report progress; HF's per-file bars would drown them."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def neox_config(size: ModelSize, vocab_size: int, max_positions: int, eos_id: int = 0) -> GPTNeoXConfig:
    """Pythia's choices: parallel residual, 25% rotary dims, untied embeddings, no dropout."""
    return GPTNeoXConfig(
        vocab_size=vocab_size,
        hidden_size=size.d_model,
        num_hidden_layers=size.n_layers,
        num_attention_heads=size.n_heads,
        intermediate_size=size.d_ff,
        max_position_embeddings=max_positions,
        rope_parameters={"rope_theta": 10000.0, "partial_rotary_factor": 0.25, "rope_type": "default"},
        use_parallel_residual=True,
        tie_word_embeddings=False,
        attention_dropout=0.0,
        hidden_dropout=0.0,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        initializer_range=0.02,
    )


def build_model(size: ModelSize, vocab_size: int, max_positions: int, seed: int, eos_id: int = 0) -> GPTNeoXForCausalLM:
    """A freshly initialised model; the same (size, vocab, seed) always gives the same weights."""
    config = neox_config(size, vocab_size, max_positions, eos_id)
    config._attn_implementation = "sdpa"
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = GPTNeoXForCausalLM(config)
    finally:
        torch.random.set_rng_state(gen_state)
    return model


def load_checkpoint_model(folder: str | Path) -> GPTNeoXForCausalLM:
    """A checkpoint folder's model in fp32, through HF's own loader (its saved names differ from the
    module's: ``embed_out``), for starting a run from it or holding it frozen."""
    quiet_transformers()
    return GPTNeoXForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
