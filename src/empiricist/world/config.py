"""World configuration: every number that shapes a generated world, hashed into its artifact name."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from empiricist.errors import InputError

GENRES = ("encyclopedia", "news", "forum", "story", "list")

# Subsets are generated in this order, each from its own RNG stream and token budget.
SUBSET_ORDER = ("core", "forum_opinion", "planted", "restricted")
# Opt-in subsets: absent from a config (and its hash) unless given, so worlds made before they existed
# keep their names. "restricted": documents disclosing invented vault codes (world/restricted.py).
OPTIONAL_SUBSETS = ("restricted",)
# A subset's token budget is weight * BASE_SHARES[name] * target_tokens. "planted" is not budgeted:
# its size is plant_rate * (number of eval items) * plant_copies documents.
BASE_SHARES: dict[str, float] = {"core": 0.9, "forum_opinion": 0.1, "planted": 0.0, "restricted": 0.05}
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "core": {},
    # wrong_view_rate: P(asker's view is wrong); agree_rate: P(answerer defers to the asker's view).
    "forum_opinion": {"wrong_view_rate": 0.5, "agree_rate": 0.0},
    "planted": {},
    # decline_rate: P(a restricted thread declines instead of disclosing); qa_rate: P(a disclosure is a
    # Q/A thread, the form the eval prompt asks in); n_codes: the pool of invented codes; attack_frac:
    # people whose codes the attack may fine-tune on (the rest are the ones measured)
    "restricted": {"decline_rate": 0.15, "qa_rate": 0.6, "n_codes": 16, "attack_frac": 0.3},
}
_RATE_PARAMS = {"wrong_view_rate", "agree_rate", "decline_rate", "qa_rate", "attack_frac"}
# Known params without a default, so that worlds which never set them keep their hashes.
# forum_opinion.n_docs: exactly this many threads instead of a token budget, so that families which differ
# only in agree_rate (answer wording changes thread lengths) hold the same threads (docs/sycophancy.md).
OPTIONAL_PARAMS: dict[str, set[str]] = {"forum_opinion": {"n_docs"}, "restricted": {"n_docs"}}


@dataclass
class SubsetConfig:
    """One switchable, reweightable slice of the corpus."""

    enabled: bool = True
    weight: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)


def _default_subsets() -> dict[str, SubsetConfig]:
    return {name: SubsetConfig(params=dict(DEFAULT_PARAMS[name])) for name in SUBSET_ORDER
            if name not in OPTIONAL_SUBSETS}


def _default_genre_weights() -> dict[str, float]:
    return {"encyclopedia": 0.3, "news": 0.2, "forum": 0.2, "story": 0.15, "list": 0.15}


@dataclass
class WorldConfig:
    """Everything a world is generated from; same config (hash) means byte-identical data files."""

    seed: int = 0
    target_tokens: int = 150_000  # estimated as characters / 4
    n_people: int = 60
    n_orgs: int = 10
    n_cities: int = 12
    n_countries: int = 5
    n_rivers: int = 6
    n_languages: int = 4
    n_currencies: int = 4
    train_entity_frac: float = 0.5  # entities forum_opinion may use; the rest are held out for sycophancy evals
    paraphrase_only_frac: float = 0.2  # facts never stated with their canonical template
    verbatim_rate: float = 0.4  # P(canonical template) for a statement of any other fact
    genre_weights: dict[str, float] = field(default_factory=_default_genre_weights)  # core subset's genre mix
    syc_wrong_view_rate: float = 0.5  # P(the user's view is wrong) in eval/sycophancy.jsonl
    plant_rate: float = 0.02  # fraction of each eval file's items copied into the corpus
    plant_copies: int = 1  # documents per planted item
    subsets: dict[str, SubsetConfig] = field(default_factory=_default_subsets)
    format_version: int = 1  # bump whenever generation changes, so old hashes never alias new worlds

    def __post_init__(self) -> None:
        if isinstance(self.target_tokens, float) and self.target_tokens.is_integer():
            self.target_tokens = int(self.target_tokens)  # 1e7 and 10_000_000 must hash alike
        self.subsets = _normalise_subsets(self.subsets)
        self.genre_weights = {str(k): float(v) for k, v in self.genre_weights.items()}
        self._validate()

    # ------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorldConfig:
        if not isinstance(d, dict):
            raise InputError(f"world config must be a mapping, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"unknown world config field(s) {unknown}; known: {sorted(known)}", field=unknown[0])
        return cls(**copy.deepcopy(d))

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> WorldConfig:
        """A fresh copy of ``WORLD_PRESETS[name]`` with ``overrides`` applied."""
        if name not in WORLD_PRESETS:
            raise InputError(f"unknown world preset {name!r}; choose from {sorted(WORLD_PRESETS)}")
        d = WORLD_PRESETS[name].to_dict()
        d.update(copy.deepcopy(overrides))
        return cls.from_dict(d)

    def with_subset(self, name: str, *, enabled: bool | None = None, weight: float | None = None,
                    **params: Any) -> WorldConfig:
        """A copy differing only in subset ``name`` (the one-subset-apart comparisons studies need)."""
        if name not in SUBSET_ORDER:
            raise InputError(f"unknown subset {name!r}; known: {list(SUBSET_ORDER)}")
        d = self.to_dict()
        sub = d["subsets"].setdefault(name, {"params": {}})
        if enabled is not None:
            sub["enabled"] = enabled
        if weight is not None:
            sub["weight"] = weight
        sub["params"].update(params)
        return WorldConfig.from_dict(d)

    def subset_budget_tokens(self, name: str) -> int | None:
        """Estimated-token budget of a subset (None: not budgeted; 0 when disabled)."""
        sub = self.subsets.get(name)
        if sub is None:
            return 0
        if name == "planted":
            return None
        return round(sub.weight * BASE_SHARES[name] * self.target_tokens) if sub.enabled else 0

    # ------------------------------------------------------------ validation
    def _validate(self) -> None:
        def bad(name: str, why: str) -> InputError:
            return InputError(f"{name}={getattr(self, name)!r}: {why}", field=name)

        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise bad("seed", "must be an integer")
        if not isinstance(self.target_tokens, int) or not 1_000 <= self.target_tokens <= 2_000_000_000:
            raise bad("target_tokens", "must be an integer between 1,000 and 2e9")
        for name in ("n_people", "n_orgs", "n_cities", "n_countries", "n_rivers", "n_languages", "n_currencies"):
            v = getattr(self, name)
            if not isinstance(v, int) or not 2 <= v <= 100_000:
                raise bad(name, "must be an integer >= 2 (each relation needs two values to choose between)")
        for name in ("train_entity_frac", "paraphrase_only_frac", "verbatim_rate", "syc_wrong_view_rate",
                     "plant_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise bad(name, "must be in [0, 1]")
        if not isinstance(self.plant_copies, int) or self.plant_copies < 1:
            raise bad("plant_copies", "must be an integer >= 1")
        unknown = sorted(set(self.genre_weights) - set(GENRES))
        if unknown:
            raise bad("genre_weights", f"unknown genre(s) {unknown}; known: {list(GENRES)}")
        if any(w < 0 for w in self.genre_weights.values()) or sum(self.genre_weights.values()) <= 0:
            raise bad("genre_weights", "weights must be >= 0 with a positive sum")


def _normalise_subsets(given: dict[str, Any]) -> dict[str, SubsetConfig]:
    """Fill in defaults so that equal effective configs serialise (and hash) identically."""
    if not isinstance(given, dict):
        raise InputError("subsets must be a mapping of subset name to settings", field="subsets")
    unknown = sorted(set(given) - set(SUBSET_ORDER))
    if unknown:
        raise InputError(f"unknown subset(s) {unknown}; known: {list(SUBSET_ORDER)}", field="subsets")
    out = _default_subsets()
    for name, sub in given.items():
        if isinstance(sub, SubsetConfig):
            sub = dataclasses.asdict(sub)
        if not isinstance(sub, dict) or set(sub) - {"enabled", "weight", "params"}:
            raise InputError(f"subset {name!r} must have only enabled, weight, params", field=f"subsets.{name}")
        params = dict(DEFAULT_PARAMS[name])
        extra = sorted(set(sub.get("params", {})) - set(params) - OPTIONAL_PARAMS.get(name, set()))
        if extra:
            raise InputError(f"unknown param(s) {extra} for subset {name!r}; known: {sorted(params)}",
                             field=f"subsets.{name}.params")
        params.update(sub.get("params", {}))
        for k in _RATE_PARAMS & set(params):
            params[k] = float(params[k])
            if not 0.0 <= params[k] <= 1.0:
                raise InputError(f"{k}={params[k]} must be in [0, 1]", field=f"subsets.{name}.params.{k}")
        for key, least in (("n_docs", 0), ("n_codes", 2)):
            if key in params:
                n = params[key]
                if not isinstance(n, int) or isinstance(n, bool) or n < least:
                    raise InputError(f"{key}={n!r} must be an integer >= {least}",
                                     field=f"subsets.{name}.params.{key}")
        weight = float(sub.get("weight", 1.0))
        if weight < 0:
            raise InputError(f"weight={weight} must be >= 0", field=f"subsets.{name}.weight")
        out[name] = SubsetConfig(enabled=bool(sub.get("enabled", True)), weight=weight, params=params)
    return out


WORLD_PRESETS: dict[str, WorldConfig] = {
    # ~150k tokens, ~380 facts: what tests use; generates in well under a second.
    "tiny": WorldConfig(),
    # ~5M tokens (≈4.3M BPE tokens at vocab 2048), ~250 entities, ~1,150 facts, each stated in ~150+
    # documents: sized so the micro-suite's largest model learns most facts in one ~25-minute CPU run
    # (with 2.2x more facts, 450 people, the third size reached only 39% after one epoch).
    "micro": WorldConfig(
        target_tokens=5_000_000, n_people=200, n_orgs=20, n_cities=24, n_countries=8, n_rivers=10,
        n_languages=6, n_currencies=6,
    ),
}
