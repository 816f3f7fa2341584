"""Input checks shared by every stats function.

Statistics on bad input fail silently (a NaN mean, a zero-width interval), so we refuse early
with a message that names the argument and what was wrong with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from empiricist.errors import InputError


class StatsInputError(InputError, ValueError):
    """Bad input to a stats function.

    Also a ``ValueError`` so numeric code can catch it the usual way, and an ``InputError`` so the
    CLI prints it without a traceback.
    """


def as_scores(x: ArrayLike, name: str = "scores", *, min_n: int = 1) -> np.ndarray:
    """A finite 1-D float array with at least ``min_n`` entries."""
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise StatsInputError(f"{name} must be numeric ({exc})", field=name) from None
    if arr.ndim != 1:
        raise StatsInputError(f"{name} must be 1-D (one score per item), got shape {arr.shape}", field=name)
    if arr.size < min_n:
        what = "is empty" if arr.size == 0 else f"has {arr.size} entries"
        raise StatsInputError(f"{name} {what}; need at least {min_n}", field=name)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise StatsInputError(
            f"{name} contains {int(bad.sum())} NaN/inf value(s) (first at index {int(np.argmax(bad))}); "
            "drop or impute them explicitly before computing statistics",
            field=name,
        )
    return arr


def as_binary(x: ArrayLike, name: str = "scores", *, min_n: int = 1) -> np.ndarray:
    """Scores that must all be 0 or 1 (Wilson, McNemar)."""
    arr = as_scores(x, name, min_n=min_n)
    if not np.isin(arr, (0.0, 1.0)).all():
        raise StatsInputError(f"{name} must contain only 0/1 scores for this method", field=name)
    return arr


def as_paired(
    a: ArrayLike, b: ArrayLike, names: tuple[str, str] = ("a", "b"), *, min_n: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Two score vectors for the SAME items, in the same order."""
    xa, xb = as_scores(a, names[0], min_n=min_n), as_scores(b, names[1], min_n=min_n)
    if xa.shape != xb.shape:
        raise StatsInputError(
            f"paired scores must have one entry per item in both: len({names[0]})={xa.size}, "
            f"len({names[1]})={xb.size}"
        )
    return xa, xb


def as_clusters(clusters: ArrayLike | None, n: int, *, min_clusters: int = 1) -> tuple[np.ndarray, int]:
    """Integer cluster codes 0..G-1 for each item, and G; ``None`` means every item is its own cluster."""
    if clusters is None:
        return np.arange(n), n
    arr = np.asarray(clusters)
    if arr.ndim != 1 or arr.size != n:
        raise StatsInputError(
            f"clusters must give one id per item: expected {n}, got shape {arr.shape}", field="clusters"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise StatsInputError("clusters contains NaN/inf ids", field="clusters")
    _, codes = np.unique(arr, return_inverse=True)
    n_clusters = int(codes.max()) + 1 if n else 0
    if n_clusters < min_clusters:
        raise StatsInputError(f"need at least {min_clusters} clusters, got {n_clusters}", field="clusters")
    return codes.reshape(-1), n_clusters


def check_alpha(alpha: float) -> float:
    """A significance level strictly between 0 and 1 (0.5 for two-sided-ness is the caller's business)."""
    if not (isinstance(alpha, (int, float, np.floating)) and 0.0 < float(alpha) < 1.0):
        raise StatsInputError(f"alpha must be in (0, 1), got {alpha!r}", field="alpha")
    return float(alpha)


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """One of a fixed set of method names."""
    if value not in choices:
        raise StatsInputError(
            f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}", field=name
        )
    return value


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """An integer count (resamples, simulations, items) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise StatsInputError(f"{name} must be an integer >= {minimum}, got {value!r}", field=name)
    return int(value)
