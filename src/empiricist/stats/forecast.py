"""Forecasts with prediction intervals, and how to score them: the statistics of testing gradualism.

Gradualism is the assumption under every responsible-scaling check: small and early models warn about
large and late ones. It is testable: forecast the next model's measured score from the earlier ones and
see whether it lands inside the interval as often as the interval's level says.

- ``forecast_next``: a least-squares line of earlier models' mean scores against log scale (parameters
  or steps), and the prediction interval for the *measured* mean of a new model at ``x_new``: the
  line's own uncertainty and the scatter of measured means about the line (the residual variance,
  which holds both model-to-model scatter and each measurement's item noise; few points give a wide
  t interval, as they should). statsmodels' OLS (``get_prediction(...).se_obs``, the t quantile on the
  residual degrees of freedom): exact when the scatter is normal and alike across models.
- ``item_predictability``: do the items a small/early model gets right predict those a large/late one
  gets right? Precision P(large | small), recall P(small | large) and the base rate P(large), with
  Wilson intervals (EleutherAI's memorisation-prediction framing).
- ``discontinuity``: an accuracy outside its interval is a *jump*; if the continuous log-probability of
  the right answer stays inside its own, the jump is an artefact of a discontinuous metric (Schaeffer et
  al. 2023), else a real one.

Validated by simulation in tests/test_forecast.py (coverage at the nominal level when the line holds;
below it when a planted jump breaks it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

from empiricist.stats._validate import StatsInputError


@dataclass(frozen=True)
class Forecast:
    """A prediction for one new model's measured mean, and the interval it should land in."""

    x_new: float
    mean: float
    lo: float
    hi: float
    level: float
    n_points: int
    slope: float
    se: float = float("nan")  # the SD of the new model's measured mean about the forecast

    def z(self, value: float) -> float:
        """How many SDs ``value`` lies from the forecast."""
        return (value - self.mean) / self.se

    def covers(self, value: float) -> bool:
        return self.lo <= value <= self.hi

    def to_json(self) -> dict[str, float]:
        return {"x_new": self.x_new, "mean": self.mean, "lo": self.lo, "hi": self.hi, "level": self.level,
                "n_points": self.n_points, "slope": self.slope, "se": self.se}


def forecast_next(x: ArrayLike, means: ArrayLike, x_new: float, *, level: float = 0.95,
                  log_x: bool = True) -> Forecast:
    """Prediction interval for a new model's measured mean at ``x_new`` from earlier models' measured
    means (at least three: one residual degree of freedom)."""
    import statsmodels.api as sm

    xs, ys = np.asarray(x, dtype=float), np.asarray(means, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise StatsInputError("x and means must be 1-d and the same length", field="x")
    if xs.size < 3:
        raise StatsInputError(f"a forecast needs at least 3 earlier points (got {xs.size})", field="x")
    if not 0 < level < 1:
        raise StatsInputError("level must be in (0, 1)", field="level")
    if log_x and ((xs <= 0).any() or x_new <= 0):
        raise StatsInputError("x must be positive with log_x", field="x")
    t, t_new = (np.log10(xs), np.log10(x_new)) if log_x else (xs, float(x_new))
    fit = sm.OLS(ys, sm.add_constant(t)).fit()
    pred = fit.get_prediction(np.array([[1.0, t_new]]))
    se = float(pred.se_obs[0])
    q = float(sps.t.ppf(0.5 + level / 2, fit.df_resid))
    mean = float(pred.predicted_mean[0])
    return Forecast(float(x_new), mean, mean - q * se, mean + q * se, level, int(xs.size), float(fit.params[1]), se)


def _wilson(k: int, n: int, level: float) -> tuple[float | None, float | None, float | None]:
    if n == 0:
        return None, None, None
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(k, n, alpha=1 - level, method="wilson")
    return k / n, float(lo), float(hi)


def item_predictability(small: ArrayLike, large: ArrayLike, level: float = 0.95) -> dict[str, object]:
    """Precision, recall and base rate of "the small/early model gets it right" for the large/late one."""
    a, b = np.asarray(small, dtype=bool), np.asarray(large, dtype=bool)
    if a.shape != b.shape:
        raise StatsInputError("small and large must score the same items", field="small")
    both = int((a & b).sum())
    out: dict[str, object] = {"n_items": int(a.size), "small_right": int(a.sum()), "large_right": int(b.sum())}
    for name, k, n in (("precision", both, int(a.sum())), ("recall", both, int(b.sum())),
                       ("base_rate", int(b.sum()), int(b.size))):
        m, lo, hi = _wilson(k, n, level)
        out[name] = {"estimate": m, "lo": lo, "hi": hi, "n": n}
    return out


def discontinuity(acc_forecast: Forecast, acc: float, logp_forecast: Forecast, logp: float) -> str:
    """``smooth`` (accuracy inside its interval), ``artefact`` (accuracy jumps, log p(right) does not) or
    ``jump`` (both outside their intervals)."""
    if acc_forecast.covers(acc):
        return "smooth"
    return "artefact" if logp_forecast.covers(logp) else "jump"
