"""EK-FAC influence through kronfluence: our causal-LM ``Task`` and the cache layout.

kronfluence keeps its factors on disk (``<cache>/kronfluence/<model hash>/factors_<name>``), so a second
query set against the same documents reuses them and pays only for the scores. Training-side gradients
are recomputed per query set — that is kronfluence's design (preconditioned train gradients would be
P floats per document). Factors are fitted on the documents being scored, with the true Fisher
(targets sampled from the model), kronfluence's default.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import torch

from empiricist.artifacts import config_hash
from empiricist.attribution.data import Rows, combine_rows, pad_batch, summed_nll


class _RowDataset(torch.utils.data.Dataset):
    """Fixed-width rows so that kronfluence's default collate can stack them."""

    def __init__(self, rows: Rows, width: int) -> None:
        self.rows, self.width = rows, width

    def __len__(self) -> int:
        return len(self.rows.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        batch = pad_batch([self.rows.ids[i]], [self.rows.masks[i]], width=self.width)
        return {k: v[0] for k, v in batch.items()}


def _task() -> Any:
    from kronfluence.task import Task

    class CausalLMTask(Task):
        """Train loss: summed token NLL of a document. Measurement: summed NLL of the query's target."""

        def compute_train_loss(self, batch: Any, model: torch.nn.Module, sample: bool = False) -> torch.Tensor:
            return summed_nll(model, batch, sample=sample).sum()

        def compute_measurement(self, batch: Any, model: torch.nn.Module) -> torch.Tensor:
            return summed_nll(model, batch).sum()

        def get_attention_mask(self, batch: Any) -> torch.Tensor:
            return batch["attention_mask"]

    return CausalLMTask()


def kronfluence_scores(ctx: Any, *, strategy: str = "ekfac", damping: float | None = None,
                       batch_size: int = 32) -> np.ndarray:
    """Pairwise influence scores [n_queries, n_docs] (positive: the document lowers the query's NLL)."""
    import copy
    import tempfile

    try:
        from kronfluence.analyzer import Analyzer, prepare_model
        from kronfluence.arguments import FactorArguments, ScoreArguments
    except ImportError:
        from empiricist.errors import EmpiricistError

        raise EmpiricistError("EK-FAC needs kronfluence: pip install --no-deps -r requirements-nodeps.txt "
                              "(--no-deps: its metadata would pull torchvision and a CUDA torch)") from None

    for name in ("kronfluence", "accelerate"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*GradScaler.*", category=FutureWarning)  # kronfluence 1.0.1, CPU
    qrows, drows = ctx.query_rows(), ctx.doc_rows()
    width = max(max(len(r) for r in drows.ids), max(len(r) for r in qrows.ids))
    task = _task()
    model = prepare_model(copy.deepcopy(ctx.handle.model).eval(), task)
    out_dir = ctx.cache / "kronfluence" if ctx.cache else tempfile.mkdtemp(prefix="empiricist-kron-")
    analyzer = Analyzer(analysis_name=ctx.handle.model_hash[:16], model=model, task=task, cpu=True,
                        output_dir=str(out_dir), disable_tqdm=not ctx.progress, disable_model_save=True)
    factors = f"{strategy}-{ctx.docs.fingerprint()}"
    with torch.random.fork_rng(devices=[]):  # the true Fisher samples targets: the same factors every run
        torch.manual_seed(0)
        analyzer.fit_all_factors(factors_name=factors, dataset=_RowDataset(drows, width),
                                 factor_args=FactorArguments(strategy=strategy), per_device_batch_size=batch_size,
                                 overwrite_output_dir=False)
    scores_name = "s-" + config_hash({"q": [r.tolist() for r in qrows.ids], "d": ctx.docs.fingerprint(),
                                      "damping": damping, "f": factors})
    analyzer.compute_pairwise_scores(scores_name=scores_name, factors_name=factors,
                                     query_dataset=_RowDataset(qrows, width), train_dataset=_RowDataset(drows, width),
                                     per_device_query_batch_size=min(len(qrows.ids), 64),
                                     per_device_train_batch_size=batch_size,
                                     score_args=ScoreArguments(damping_factor=damping), overwrite_output_dir=False)
    s = analyzer.load_pairwise_scores(scores_name)["all_modules"].double().numpy()
    return combine_rows(s, qrows, len(ctx.queries))
