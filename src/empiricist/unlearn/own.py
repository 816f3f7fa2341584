"""Unlearning a user's own model: an HF causal LM folder and a JSONL of forget documents, no world, no gold.

``unlearn_own`` tokenizes the forget (and retain) documents with the model's own tokenizer, runs a method
through the shared trainer from the model's weights (a GPT-NeoX folder of the Pythia layout, which is what
the trainer builds: partial rotary, parallel residual, untied embeddings), and measures the model before
and after with ``evaluate_own``. Without a gold or held-out documents the metrics that need them are
``None`` and ``absent`` says why, so a report never shows a number that could not be computed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.artifacts import atomic_write_json
from empiricist.errors import InputError
from empiricist.unlearn.evaluate import evaluate_own, read_documents

if TYPE_CHECKING:
    from empiricist.artifacts import Workspace
    from empiricist.suite.config import ModelSize


def _neox_size(model: Path) -> tuple[ModelSize, Path]:
    """The trainer's shape of a local GPT-NeoX folder, and its ``tokenizer.json`` (a clear error otherwise)."""
    from empiricist.suite.config import ModelSize

    cfg_path, tok = model / "config.json", model / "tokenizer.json"
    if not cfg_path.is_file() or not tok.is_file():
        raise InputError(f"{model} needs config.json and tokenizer.json: unlearning trains a local HF folder "
                         "(--model); for a hub id, download it first", field="model")
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("model_type") != "gpt_neox":
        raise InputError(f"{cfg_path}: model_type {cfg.get('model_type')!r}; the trainer unlearns GPT-NeoX "
                         "(Pythia-layout) models. Other models can still be measured: `empiricist unlearn eval`",
                         field="model")
    return ModelSize("own", cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"],
                     cfg.get("intermediate_size", 0)), tok


def unlearn_own(model: str | Path, forget: Path, method: str, out: Path, *, retain: Path | None = None,
                holdout: Path | None = None, gold: str | None = None, steps: int = 32, lr: float = 3e-4,
                batch_size: int = 8, seq_len: int = 128, seed: int = 0, workspace: Workspace | None = None,
                progress: bool = True, **options: Any) -> dict[str, Any]:
    """Unlearn ``forget`` from ``model`` with ``method`` into ``out``; the metrics before and after."""
    from empiricist.artifacts import Workspace as _Workspace
    from empiricist.data.small import finetune_store
    from empiricist.data.store import TokenStore
    from empiricist.suite.config import TrainConfig
    from empiricist.unlearn.run import unlearn

    model = Path(model)
    size, tok = _neox_size(model)
    ws = _Workspace.at(workspace)

    def store(path: Path, what: str) -> TokenStore:  # repeated to fill two batches: a forget set may be tiny
        texts = read_documents(path, what)
        return TokenStore.open(finetune_store(ws.stores / f"unlearn-{what}", what, texts, tok, batch_size, seq_len))

    cfg = TrainConfig(seq_len=seq_len, batch_size=batch_size, steps=steps, lr=lr, warmup_steps=0, seed=seed)
    folder = unlearn(model, size, cfg, store(forget, "forget"), out, method,
                     retain=None if retain is None else store(retain, "retain"), progress=progress, **options)
    after = folder / "checkpoints" / f"step{steps}"
    result = {"method": method, "model": str(model), "unlearned": str(after), "forget": str(forget),
              "before": evaluate_own(str(model), forget, holdout=holdout, gold=gold, workspace=ws),
              "after": evaluate_own(str(after), forget, holdout=holdout, gold=gold, workspace=ws)}
    atomic_write_json(folder / "unlearning.json", result)
    return result
