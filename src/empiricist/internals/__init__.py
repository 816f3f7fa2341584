"""empiricist.internals: activation capture and linear probes with control tasks (tools, not experiments).

Activations (``activations``)
    capture_activations(handle, texts, out_dir, sites="resid", positions="last", chunk_rows=65536) -> Path
    ActivationSet(path).sites / .n_rows / .iter_chunks(site) / .load(site) / .rows()
    collect_activations(model, tokenizer, texts, sites, positions) -> ActBatch (in memory)
    iter_activations(...) -> batches; resolve_sites(model, sites); find_blocks(model)
Probes (``probes``)
    cross_validate(X, y, kind="logistic"|"ridge", k=5, regs=..., inner_k=3) -> CVResult
    cross_validate_mlp(X, y, k=5, hidden=64) -> CVResult
    control_labels(types, labels, seed) ; probe_with_control(X, labels, types) -> rows with selectivity
Datasets (``datasets``)
    world_probe_dataset(world, property="birthplace", template="prefix") ; world_statement_dataset(world)
Layers × checkpoints (``sweep``)
    probe_model(handle, dataset, sites) ; run_probe(specs, dataset, out_dir) -> (path, rows) ;
    checkpoint_specs(suite, size) ; plot_heatmap(rows, path, title)
The probe-evasion experiment that uses them is ``empiricist.experiments.probe_evasion``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from empiricist._lazy import lazy_exports

if TYPE_CHECKING:
    from empiricist.internals.activations import (
        ActBatch,
        ActivationSet,
        capture_activations,
        collect_activations,
        find_blocks,
        iter_activations,
        resolve_sites,
    )
    from empiricist.internals.datasets import ProbeDataset, world_probe_dataset, world_statement_dataset
    from empiricist.internals.probes import (
        CVResult,
        control_labels,
        cross_validate,
        cross_validate_mlp,
        probe_with_control,
    )
    from empiricist.internals.sweep import checkpoint_specs, plot_heatmap, probe_model, run_probe

_EXPORTS = {
    "ActBatch": "activations",
    "ActivationSet": "activations",
    "capture_activations": "activations",
    "collect_activations": "activations",
    "find_blocks": "activations",
    "iter_activations": "activations",
    "resolve_sites": "activations",
    "ProbeDataset": "datasets",
    "world_probe_dataset": "datasets",
    "world_statement_dataset": "datasets",
    "CVResult": "probes",
    "control_labels": "probes",
    "cross_validate": "probes",
    "cross_validate_mlp": "probes",
    "probe_with_control": "probes",
    "checkpoint_specs": "sweep",
    "plot_heatmap": "sweep",
    "probe_model": "sweep",
    "run_probe": "sweep",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "ActBatch",
    "ActivationSet",
    "CVResult",
    "ProbeDataset",
    "capture_activations",
    "checkpoint_specs",
    "collect_activations",
    "control_labels",
    "cross_validate",
    "cross_validate_mlp",
    "find_blocks",
    "iter_activations",
    "plot_heatmap",
    "probe_model",
    "probe_with_control",
    "resolve_sites",
    "run_probe",
    "world_probe_dataset",
    "world_statement_dataset",
]
