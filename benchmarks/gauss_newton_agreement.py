"""How close kronfluence's curvature approximations come to the exact Gauss–Newton influence
(docs/attribution.md, "What the exact check found").

On the audit tests' tiny GPT-NeoX (the ``planted`` model of tests/test_attribution.py, rebuilt here
with its own seed), each strategy's scores against the exact (G/N + λI)⁻¹ solve, for 12 and 24
documents and two dampings. Prints one line per (documents, damping, strategy) and writes JSON.

    python benchmarks/gauss_newton_agreement.py --out gauss_newton_agreement.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__":
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import test_attribution

    from empiricist.attribution.audit import gauss_newton
    from empiricist.suite.handles import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("gauss_newton_agreement.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)

    class _Tmp:  # what the fixture asks pytest for
        def mktemp(self, name: str) -> Path:
            return Path(tempfile.mkdtemp(prefix=name))

    folder, docs, _ = test_attribution.planted.__wrapped__(_Tmp())  # the fixture's own function
    handle = load_model(str(folder))
    rows = []
    for n_docs, scale in ((12, 0.1), (12, 1.0), (24, 0.1)):
        t = time.perf_counter()
        found = gauss_newton(handle, docs, list(range(0, 3 * n_docs, 3)), damping_scale=scale,
                             strategies=("ekfac", "kfac", "diagonal", "identity"))
        for f in found:
            rows.append({"documents": n_docs, "damping_scale": scale, "check": f.check, "rho": f.value,
                         "ok": f.ok, "seconds": round(time.perf_counter() - t, 1)})
            print(n_docs, scale, f.check, f"ρ {f.value:.3f}", "ok" if f.ok else "FAIL", flush=True)
    args.out.write_text(json.dumps(rows, indent=1))
