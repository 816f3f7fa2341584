"""Seeded random streams and pronounceable, unique, prefix-free names built from syllables."""

from __future__ import annotations

import hashlib
import random

from empiricist.errors import EmpiricistError


def stream(seed: int, name: str) -> random.Random:
    """An independent RNG per (seed, purpose): changing one part of a world never shifts another's draws."""
    digest = hashlib.sha256(f"empiricist.world:{seed}:{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


_ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
           "br", "dr", "gr", "kr", "tr", "st", "sh", "th", "pl", "fl", "", "")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ou", "ie")
_CODAS = ("", "", "", "", "", "n", "r", "l", "s", "m", "k")


class NameRegistry:
    """Hands out capitalised words no two of which are equal or a prefix of one another.

    Prefix-freeness means a name found in a text can never be the start of some other name, so a
    substring match on a name is a match on that entity (tracing tools rely on it).
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words: set[str] = set()
        self.prefixes: set[str] = set()  # every proper prefix of a registered word

    def _free(self, word: str) -> bool:
        if word in self.prefixes or word in self.words:
            return False
        return not any(word[:i] in self.words for i in range(1, len(word)))

    def _register(self, word: str) -> None:
        self.words.add(word)
        self.prefixes.update(word[:i] for i in range(1, len(word)))

    def word(self, syllables: tuple[int, int] = (2, 2), suffix: str = "", max_len: int = 8) -> str:
        """A fresh word of ``syllables`` (inclusive range) syllables, plus an optional fixed suffix.

        ``suffix="demonym"`` appends a language-like ending that suits the stem ("Velnish", "Sorinese").
        """
        rng = self.rng
        for _ in range(10_000):
            n = rng.randint(*syllables)
            w = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(n))
            if not 3 <= len(w) <= max_len:
                continue
            if suffix == "demonym":
                w += rng.choice(("n", "nese", "sh") if w[-1] in "aeiou" else ("ish", "ic", "ese", "ian"))
            else:
                w += suffix
            w = w.capitalize()
            if len(w) >= 4 and self._free(w):
                self._register(w)
                return w
        raise EmpiricistError("could not generate enough unique names; the world is too large for the name space")

    def many(self, n: int, syllables: tuple[int, int] = (2, 2), suffix: str = "") -> list[str]:
        return [self.word(syllables, suffix) for _ in range(n)]
