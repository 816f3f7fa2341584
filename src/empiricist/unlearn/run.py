"""One unlearning run: a method's objective, from a checkpoint, on a forget store, through the shared trainer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from empiricist.errors import InputError

if TYPE_CHECKING:
    from empiricist.data.store import TokenStore
    from empiricist.suite.config import ModelSize, TrainConfig
    from empiricist.suite.objective import Objective


def method_objective(forget: TokenStore, cfg: TrainConfig, method: str, start: str | Path, *,
                     retain: TokenStore | str | None = None, **options: Any) -> Objective:
    """``method``'s objective (``METHODS``) from the model at ``start``; ``retain`` (a store or its folder),
    if given, is walked in the forget order's batch shape with the same seed. Also the factory a
    training unit names (``suite.units``): it is built where the unit trains."""
    from empiricist.data.order import TrainingOrder
    from empiricist.data.store import TokenStore
    from empiricist.unlearn.methods import METHODS

    if method not in METHODS:
        raise InputError(f"unknown unlearning method {method!r}; choose from {', '.join(METHODS)}", field="method")
    if isinstance(retain, (str, Path)):
        retain = TokenStore.open(retain)
    retain_order = None if retain is None else TrainingOrder(retain, cfg.seq_len, cfg.batch_size, cfg.seed)
    return METHODS[method](retain=retain_order, start=str(start), **options)


def unlearn(start: Path, size: ModelSize, cfg: TrainConfig, forget: TokenStore, out: Path, method: str, *,
            retain: TokenStore | None = None, progress: bool = False, **options: Any) -> Path:
    """Unlearn ``forget`` from the model at checkpoint ``start`` with ``method`` (``METHODS``), for
    ``cfg.steps`` steps at ``cfg.lr``. The model folder has checkpoints along the way, like any trainer run."""
    from empiricist.data.order import TrainingOrder
    from empiricist.suite.train import train_model

    objective = method_objective(forget, cfg, method, start, retain=retain, **options)
    order = TrainingOrder(forget, cfg.seq_len, cfg.batch_size, cfg.seed)
    return train_model(out, size, cfg, order, forget.vocab_size, tokenizer_path=Path(forget.tokenizer_path),
                       progress=progress, init_from=Path(start), objective=objective,
                       info={"unlearning": method})
