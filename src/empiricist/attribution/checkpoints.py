"""Checkpoints of a suite model for the methods that average over training (TracIn, TRAK ensembles).

Their own module so that the methods (``methods``) and TRAK's featurizer (``trak``) share them without
importing each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from empiricist.suite.handles import ModelHandle


def checkpoint_weights(handle: ModelHandle, n: int, given: list[tuple[str, float]] | None = None) -> list[tuple[str, float]]:
    """The last ``n`` checkpoints up to the handle's own (suite models) with their learning rates;
    a plain HF folder is its own single checkpoint with weight 1; ``given`` (path, lr) pairs win."""
    if given:
        return [(str(p), float(lr)) for p, lr in given][-n:]
    prov = handle.provenance
    if prov.get("source") != "suite" or n <= 1:
        return [(str(prov.get("path", "")), 1.0)]
    from empiricist.suite.suite import Suite

    suite = Suite(prov["suite"])
    steps = [s for s in suite.checkpoints(prov["size"]) if 0 < s <= prov["step"]][-n:]
    return [(str(suite.checkpoint_path(prov["size"], s)), suite.config.train.lr_at(max(s - 1, 0))) for s in steps]


def load_state(path: str, handle: ModelHandle) -> dict[str, torch.Tensor]:
    """The weights of checkpoint ``path`` as a full state dict of ``handle``'s model (the handle's own
    weights when ``path`` is where it was loaded from)."""
    if path == str(handle.provenance.get("path", "")):
        return {k: v.detach().clone() for k, v in handle.model.state_dict().items()}
    from safetensors.torch import load_file

    state = load_file(str(Path(path) / "model.safetensors"))
    own = handle.model.state_dict()
    return {k: state.get(k, own[k]) for k in own}  # tied/buffer entries missing from the file keep ours


@contextmanager
def with_weights(handle: ModelHandle, path: str) -> Iterator[torch.nn.Module]:
    """Load checkpoint ``path`` into the handle's model for the block, and restore its weights afterwards."""
    original = {k: v.detach().clone() for k, v in handle.model.state_dict().items()}
    handle.model.load_state_dict(load_state(path, handle))
    try:
        yield handle.model
    finally:
        handle.model.load_state_dict(original)
