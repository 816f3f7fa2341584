"""Elo ratings by maximum likelihood (Bradley–Terry), with intervals, on statsmodels.

P(i beats j) = 1 / (1 + 10^((R_j − R_i) / 400)) is a logistic regression of each pair's score on a
design row with +1 for i and −1 for j; statsmodels' binomial GLM gives the estimates and their
covariance. One player is the anchor (rating fixed, its column dropped), so numbers are comparable
across runs that share the anchor; the others' intervals are relative to it.

A player who wins (or loses) every game has no finite maximum-likelihood rating. As BayesElo and
Ordo do, each played pair gets ``prior_draws`` virtual drawn games (half a win each way), a weak
prior that keeps every rating finite and pulls it toward its opponents by at most that much.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from empiricist.errors import InputError

SCALE = 400 / math.log(10)  # Elo points per logit


@dataclass(frozen=True)
class Rating:
    elo: float
    se: float
    lo: float
    hi: float
    games: float

    def to_dict(self) -> dict[str, float]:
        return {"elo": self.elo, "se": self.se, "lo": self.lo, "hi": self.hi, "games": self.games}


def expected_score(r_a: float, r_b: float) -> float:
    return 1.0 / (1.0 + 10 ** ((r_b - r_a) / 400))


def _check(r: Mapping[str, float | str], a: str, b: str, wins: float, n: float) -> None:
    if a == b or n <= 0 or not 0 <= wins <= n:
        raise InputError(f"bad match result {dict(r)}: two different players, n > 0, 0 <= wins <= n",
                         field="results")


def _prior(prior_draws: float) -> None:
    if not prior_draws > 0:
        raise InputError(f"prior_draws must be > 0 (got {prior_draws}): without it a perfect record has no "
                         "finite rating", field="prior_draws")


def _pairs(results: Iterable[Mapping[str, float | str]]) -> dict[tuple[str, str], list[float]]:
    """(a, b) with a < b -> [a's score, games], summed over every match of the pair."""
    out: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in results:
        a, b, w, n = str(r["a"]), str(r["b"]), float(r["wins"]), float(r["n"])
        _check(r, a, b, w, n)
        key, score = ((a, b), w) if a < b else ((b, a), n - w)
        out[key][0] += score
        out[key][1] += n
    return out


def _z(level: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(0.5 + level / 2))


def fit_ratings(results: Iterable[Mapping[str, float | str]], anchor: str, anchor_elo: float = 0.0,
                prior_draws: float = 1.0, level: float = 0.95) -> dict[str, Rating]:
    """Every player's rating from match results (``a``, ``b``, ``wins`` of a, ``n``)."""
    import statsmodels.api as sm

    _prior(prior_draws)
    pairs = _pairs(results)
    players = sorted({p for k in pairs for p in k})
    if anchor not in players:
        raise InputError(f"anchor {anchor!r} played no game (players: {players})", field="anchor")
    free = [p for p in players if p != anchor]
    col = {p: i for i, p in enumerate(free)}
    x = np.zeros((len(pairs), len(free)))
    y, w = np.zeros(len(pairs)), np.zeros(len(pairs))
    games: dict[str, float] = defaultdict(float)
    for row, ((a, b), (score, n)) in enumerate(sorted(pairs.items())):
        if a in col:
            x[row, col[a]] = 1.0
        if b in col:
            x[row, col[b]] = -1.0
        y[row] = (score + prior_draws / 2) / (n + prior_draws)
        w[row] = n + prior_draws
        games[a] += n
        games[b] += n
    if np.linalg.matrix_rank(x) < len(free):
        raise InputError("the match graph is not connected to the anchor: some players' ratings are not "
                         "determined by the games", field="results")
    fit = sm.GLM(y, x, family=sm.families.Binomial(), var_weights=w).fit()
    z = _z(level)
    out = {anchor: Rating(anchor_elo, 0.0, anchor_elo, anchor_elo, games[anchor])}
    for p, i in col.items():
        elo, se = anchor_elo + float(fit.params[i]) * SCALE, float(fit.bse[i]) * SCALE
        out[p] = Rating(elo, se, elo - z * se, elo + z * se, games[p])
    return out


def rate_player(name: str, results: Sequence[Mapping[str, float | str]], ladder: Mapping[str, float],
                prior_draws: float = 1.0, level: float = 0.95) -> Rating:
    """One new player's rating from its games against players of fixed rating (the ladder).

    Results are summed per opponent first, so the prior's virtual draws are per opponent as in
    ``fit_ratings``, however the games were listed (one row per game or per match). The interval is
    conditional on the ladder's ratings (their own uncertainty is not added)."""
    import statsmodels.api as sm

    _prior(prior_draws)
    per: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in results:
        a, b, wins, n = str(r["a"]), str(r["b"]), float(r["wins"]), float(r["n"])
        if name not in (a, b):
            continue
        _check(r, a, b, wins, n)
        opp, score = (b, wins) if a == name else (a, n - wins)
        if opp not in ladder:
            raise InputError(f"{name} played {opp!r}, which has no ladder rating", field="results")
        per[opp][0] += score
        per[opp][1] += n
    if not per:
        raise InputError(f"{name} played no game against the ladder", field="results")
    opps = sorted(per)
    ys = np.array([(per[o][0] + prior_draws / 2) / (per[o][1] + prior_draws) for o in opps])
    ws = np.array([per[o][1] + prior_draws for o in opps])
    offs = np.array([-ladder[o] / SCALE for o in opps])
    fit = sm.GLM(ys, np.ones((len(ys), 1)), family=sm.families.Binomial(), offset=offs, var_weights=ws).fit()
    elo, se = float(fit.params[0]) * SCALE, float(fit.bse[0]) * SCALE
    z = _z(level)
    return Rating(elo, se, elo - z * se, elo + z * se, float(sum(per[o][1] for o in opps)))
