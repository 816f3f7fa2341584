"""Report numbers (CIs, paired comparisons, scaling) and the escaping of untrusted text."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from empiricist.evals import Results, analysis
from empiricist.report import render_report
from empiricist.report.html import script_json
from empiricist.stats import adjust_pvalues, mcnemar_exact, mean_ci, paired_difference

EVIL = "<script>window.pwned=1</script>"
EVIL_IMG = '<img src=x onerror="window.pwned=2">'  # runs if anything ever goes through innerHTML


def fake_results(n: int = 40, models: tuple[tuple[str, int, float], ...] = (("small", 1000, 0.3),
                                                                           ("large", 10000, 0.7)),
                 clusters: bool = True, evil: bool = False, seed: int = 0) -> Results:
    """Synthetic rows: model m answers item i correctly with probability p_m (same items for all)."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, n_params, p in models:
        for i in range(n):
            ok = float(rng.random() < p)
            rows.append({"task": "t", "item_id": f"i{i}", "item_index": i, "cluster": f"c{i // 4}" if clusters else None,
                         "split": "heldout" if i % 2 else "train", "meta": "{}", "model": name,
                         "model_spec": name, "model_hash": "h" + name, "n_params": n_params, "scorer": "loglik",
                         "scoring": "{}", "metric": "acc", "seed": 0, "prompt": f"prompt {i}" + (EVIL + EVIL_IMG if evil else ""),
                         "choices": [" a", EVIL if evil else " b"], "gold": [0], "answer": " a",
                         "logprobs": [-1.0, -2.0], "n_tokens": [1, 1], "greedy": [True, False], "truncated": 0,
                         "completion": EVIL if evil else None, "pred": 0 if ok else 1, "acc": ok, "score": ok,
                         "contaminated": bool(i % 5 == 0)})
    return Results.from_rows(rows)


def test_estimates_use_clusters_and_never_claim_certainty():
    res = fake_results()
    summary = analysis.summary_rows(res)
    _, scores, cl = res.scores("t", "small")
    want = mean_ci(scores, clusters=cl, method="clustered")
    assert summary[0]["method"] == "clustered" and summary[0]["n_clusters"] == 10
    assert summary[0]["mean"] == pytest.approx(want.mean) and summary[0]["lo"] == pytest.approx(max(want.lo, 0))
    flat = analysis.summary_rows(fake_results(clusters=False))
    assert flat[0]["method"] == "wilson"
    zero = analysis.estimate(np.zeros(30), [f"c{i % 5}" for i in range(30)])
    assert zero["method"] == "wilson (no variation)" and zero["hi"] > 0.05
    assert analysis.estimate(np.array([1.0]))["lo"] is None  # one item: no interval, not a fake one
    few = analysis.estimate(np.array([0, 1, 1, 0, 1.0]), ["a", "a", "b", "b", "b"])
    assert 0.0 <= few["lo"] <= few["hi"] <= 1.0  # a t interval on 2 clusters is clipped to what is possible


def test_comparisons_are_paired_and_holm_adjusted():
    res = fake_results(models=(("a", 10, 0.2), ("b", 100, 0.5), ("c", 1000, 0.8)), clusters=False)
    cmp = analysis.comparisons(res, "t")
    assert [(c["a"], c["b"]) for c in cmp] == [("a", "b"), ("a", "c"), ("b", "c")]
    xa, xc = res.scores("t", "a")[1], res.scores("t", "c")[1]
    assert cmp[1]["diff"] == pytest.approx(paired_difference(xa, xc).diff)
    assert cmp[1]["mcnemar_p"] == pytest.approx(mcnemar_exact(xa, xc).p_value)
    adj, _ = adjust_pvalues([c["p"] for c in cmp], method="holm")
    assert [c["p_holm"] for c in cmp] == pytest.approx(list(adj))


def test_scaling_and_breakdowns():
    res = fake_results(models=(("a", 10, 0.2), ("b", 100, 0.5), ("c", 1000, 0.8)))
    fit = analysis.scaling(res, "t")
    assert fit["fit"].slope > 0 and [p["n_params"] for p in fit["points"]] == [10, 100, 1000]
    split = analysis.breakdown(res, "t", "split")
    assert {r["split"] for r in split} == {"train", "heldout"} and sum(r["n"] for r in split) == 3 * 40
    dirty = analysis.breakdown(res, "t", "contaminated")
    assert {r["contaminated"] for r in dirty} == {True, False}


def test_untrusted_text_is_escaped_and_data_round_trips():
    res = fake_results(evil=True, models=(("<b>m</b>", 10, 0.5), ("n", 20, 0.5)))
    html = render_report(res, title="<i>title</i>")
    assert "window.pwned" in html  # the text is there ...
    assert "<script>window" not in html and "<b>m</b>" not in html and "<i>title" not in html  # ... never as markup
    assert "&lt;b&gt;m&lt;/b&gt;" in html
    block = re.search(r'<script type="application/json" id="transcripts-data">(.*?)</script>', html, re.DOTALL).group(1)
    assert "<" not in block and ">" not in block
    data = json.loads(block)
    assert data[0]["o"] == EVIL and data[0]["c"][1][0] == EVIL and data[0]["m"] == "<b>m</b>"
    assert "innerHTML" not in html
    assert json.loads(script_json({"x": "a</script><!--&\u2028"})) == {"x": "a</script><!--&\u2028"}
