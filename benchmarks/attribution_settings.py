"""Re-score a finished attribution validation with other method settings (no retraining).

    python benchmarks/attribution_settings.py --suite micro --out <folder of `empiricist attribute-validate`>

Uses the validation's base model, documents, queries and its 64 retrained models' measurements, so only
the attribution is recomputed; prints one JSON line per setting (LDS by query kind, seconds).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from empiricist.attribution import attribute
from empiricist.attribution.validate import VALIDATION_PRESETS, Validation, spearman_lds
from empiricist.suite.handles import resolve_suite
from empiricist.suite.suite import Suite
from empiricist.world.load import World

SETTINGS = [("trak", {"damping": 0.1}), ("trak", {"damping": 10.0}), ("trak", {"damping": 1.0, "checkpoints": 4}),
            ("ekfac", {"strategy": "identity"})]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="micro")
    ap.add_argument("--preset", default="micro")
    ap.add_argument("--out", required=True, help="the validation's output folder")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    store = Suite(resolve_suite(args.suite)).store()
    v = Validation(World.open(store.world_path()), store, VALIDATION_PRESETS[args.preset], args.out, progress=False)
    handle = v.base_model()
    masks = v.subsets().astype(float)
    actual = v.lds_actual().mean(1)  # reads the saved retraining results
    for method, opts in SETTINGS:
        options = dict(opts, checkpoints_list=v.checkpoints) if method == "trak" else dict(opts)
        res = attribute(handle, v.queries, v.docs, method, cache=f"{args.out}/cache", options=options, progress=False)
        lds = spearman_lds(masks @ res.scores.T, actual)
        print(json.dumps({"method": method, **opts, "lds_fact": round(float(np.nanmean(lds[v.kind == "fact"])), 3),
                          "lds_text": round(float(np.nanmean(lds[v.kind == "text"])), 3),
                          "seconds": round(res.seconds, 1)}), flush=True)


if __name__ == "__main__":
    main()
