"""Forecast intervals against simulation: nominal coverage when the scaling line holds, far less when a
planted jump breaks it; item predictability on items with a known overlap; the discontinuity verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from empiricist.stats._validate import StatsInputError
from empiricist.stats.forecast import Forecast, discontinuity, forecast_next, item_predictability

X = np.array([1e5, 3e5, 1e6, 3e6])  # four earlier models, log-spaced; the forecast is for 1e7


def _coverage(jump: float, n_sims: int = 2000, seed: int = 0) -> float:
    """Models' true means on a line in log10(x) with model-to-model scatter; each mean is measured on 200
    items (its SE known); the new model sits ``jump`` above the line."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_sims):
        true = 0.2 + 0.1 * np.log10(np.append(X, 1e7)) - 0.5 + rng.normal(0, 0.02, 5)
        true[-1] += jump
        se = np.sqrt(true * (1 - true) / 200)
        measured = true + rng.normal(0, se)
        f = forecast_next(X, measured[:-1], 1e7)
        hits += f.covers(float(measured[-1]))
    return hits / n_sims


def test_the_interval_covers_at_its_level_when_the_line_holds():
    assert 0.93 <= _coverage(0.0) <= 0.975


def test_a_planted_jump_is_caught_far_more_often_than_the_level_allows():
    assert _coverage(0.3, n_sims=500) < 0.5


def test_forecasts_refuse_too_few_points_and_bad_scales():
    with pytest.raises(StatsInputError, match="at least 3"):
        forecast_next([1, 2], [0.1, 0.2], 3)
    with pytest.raises(StatsInputError, match="positive"):
        forecast_next([0, 1, 2], [0.1, 0.2, 0.3], 3)


def test_item_predictability_on_known_overlap():
    small = np.array([1] * 30 + [0] * 70)
    large = np.array([1] * 20 + [0] * 10 + [1] * 30 + [0] * 40)  # 20 of the small's 30, plus 30 new
    p = item_predictability(small, large)
    assert p["precision"]["estimate"] == pytest.approx(20 / 30) and p["recall"]["estimate"] == pytest.approx(20 / 50)
    assert p["base_rate"]["estimate"] == pytest.approx(0.5)
    assert p["precision"]["lo"] < 20 / 30 < p["precision"]["hi"]


def test_discontinuity_tells_an_artefact_from_a_jump():
    acc = Forecast(1e7, 0.3, 0.25, 0.35, 0.95, 4, 0.1)
    logp = Forecast(1e7, -1.0, -1.2, -0.8, 0.95, 4, 0.2)
    assert discontinuity(acc, 0.3, logp, -1.0) == "smooth"
    assert discontinuity(acc, 0.6, logp, -0.9) == "artefact"  # accuracy jumped, the log-prob did not
    assert discontinuity(acc, 0.6, logp, -0.2) == "jump"
