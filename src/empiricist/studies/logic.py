"""Three-valued verdicts and the and/or/not expressions that combine a party's predictions.

A prediction is corroborated (+1), falsified (-1) or inconclusive (0). Combining them is Kleene's strong
three-valued logic, which on this ordering F < I < C is just ``and = min``, ``or = max``, ``not = -x``:
``a and b`` is falsified as soon as either part is, corroborated only when both are; ``not`` swaps
corroborated and falsified and leaves inconclusive alone. The same arithmetic runs on numpy arrays, so
the power simulation evaluates the exact rule of the real analysis on thousands of datasets at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from empiricist.errors import InputError

CORROBORATED, INCONCLUSIVE, FALSIFIED = 1, 0, -1
VERDICTS = {CORROBORATED: "corroborated", INCONCLUSIVE: "inconclusive", FALSIFIED: "falsified"}

# A tree: ("ref", id) | ("not", tree) | ("and", [trees]) | ("or", [trees])
Tree = tuple[str, Any]
_TOKEN = re.compile(r"\s*(?:(\()|(\))|(&&?|\|\|?|!)|([A-Za-z_][\w.\-]*))")
_SYMBOLS = {"&": "and", "&&": "and", "|": "or", "||": "or", "!": "not"}


def verdict_name(code: int) -> str:
    return VERDICTS[int(code)]


def parse_expression(text: str, known: list[str], field: str) -> Tree:
    """Parse ``"monotone and (big_gain or not flat)"``; every name must be one of ``known``."""
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise InputError(f"cannot parse {text!r} at character {pos + 1}: expected a prediction id, "
                             "and/or/not or parentheses", field=field)
        tok = next(g for g in m.groups() if g is not None)
        tokens.append(_SYMBOLS.get(tok, tok.lower() if tok.lower() in ("and", "or", "not") else tok))
        pos = m.end()
    if not tokens:
        raise InputError("empty expression", field=field)
    parser = _Parser(tokens, known, field)
    tree = parser.parse_or()
    if parser.i != len(tokens):
        raise InputError(f"unexpected {tokens[parser.i]!r} in {text!r}", field=field)
    return tree


class _Parser:
    """Recursive descent: or < and < not < atom (parentheses or a prediction id)."""

    def __init__(self, tokens: list[str], known: list[str], field: str) -> None:
        self.tokens, self.known, self.field, self.i = tokens, known, field, 0

    def _peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _binary(self, op: str, sub: Any) -> Tree:
        parts = [sub()]
        while self._peek() == op:
            self.i += 1
            parts.append(sub())
        return parts[0] if len(parts) == 1 else (op, parts)

    def parse_or(self) -> Tree:
        return self._binary("or", self.parse_and)

    def parse_and(self) -> Tree:
        return self._binary("and", self.parse_not)

    def parse_not(self) -> Tree:
        if self._peek() == "not":
            self.i += 1
            return ("not", self.parse_not())
        return self.parse_atom()

    def parse_atom(self) -> Tree:
        tok = self._peek()
        if tok is None:
            raise InputError("expression ends too early", field=self.field)
        self.i += 1
        if tok == "(":
            tree = self.parse_or()
            if self._peek() != ")":
                raise InputError("missing ')'", field=self.field)
            self.i += 1
            return tree
        if tok in ("and", "or", ")"):
            raise InputError(f"unexpected {tok!r}", field=self.field)
        if tok not in self.known:
            raise InputError(f"unknown prediction {tok!r}; this party's predictions: {self.known}", field=self.field)
        return ("ref", tok)


def refs(tree: Tree) -> set[str]:
    """Prediction ids an expression uses."""
    op, arg = tree
    if op == "ref":
        return {arg}
    if op == "not":
        return refs(arg)
    return set().union(*(refs(t) for t in arg))


def evaluate(tree: Tree, verdicts: Mapping[str, Any]) -> Any:
    """Kleene evaluation; works on ints or on numpy arrays of verdict codes (same shape)."""
    op, arg = tree
    if op == "ref":
        return verdicts[arg]
    if op == "not":
        return -evaluate(arg, verdicts)
    values = [evaluate(t, verdicts) for t in arg]
    out = values[0]
    for v in values[1:]:
        out = np.minimum(out, v) if op == "and" else np.maximum(out, v)
    return out


def to_text(tree: Tree) -> str:
    """The expression written back out, fully parenthesised where it matters."""
    op, arg = tree
    if op == "ref":
        return arg
    if op == "not":
        inner = to_text(arg)
        return f"not {inner}" if arg[0] in ("ref", "not") else f"not ({inner})"
    return f" {op} ".join(to_text(t) if t[0] in ("ref", "not") else f"({to_text(t)})" for t in arg)
