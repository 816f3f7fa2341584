"""Reading TOML for specs: syntax errors that name the line, and typed field getters that name the field.

``Fields`` wraps one table of a parsed document: each getter checks the type (and range) of a key and
raises an ``InputError`` whose field is the dotted path of that key; ``done()`` rejects unknown keys.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

from empiricist.data.readers import read_toml as _read_toml
from empiricist.errors import InputError

ID = re.compile(r"^[A-Za-z_][\w.\-]*$")


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file as JSON-able data; unreadable, not UTF-8, malformed or too deeply nested is one
    InputError naming the file and line (``data.readers.read_toml``)."""
    return plain(_read_toml(path))


def plain(obj: Any) -> Any:
    """TOML values as JSON-able data (dates become ISO strings), for hashing and diffing."""
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    if isinstance(obj, (dt.date, dt.time)):
        return obj.isoformat()
    return obj


class Fields:
    """A table being read: typed getters that name the field on error, and a check for unknown keys."""

    def __init__(self, data: Any, where: str, path: Path | None) -> None:
        self.where, self.path = where, path
        if not isinstance(data, dict):
            self.fail(f"must be a table, got {type(data).__name__}")
        self.data, self.used = data, set()

    def name(self, key: str | None = None) -> str:
        return self.where if key is None else f"{self.where}.{key}" if self.where else key

    def fail(self, message: str, key: str | None = None) -> None:
        raise InputError(message, path=self.path, field=self.name(key))

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., what: str = "") -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                self.fail("missing (required)", key)
            return default
        value = self.data[key]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            self.fail(f"must be {what or _kinds(kind)}, got a boolean", key)
        if not isinstance(value, kind):
            self.fail(f"must be {what or _kinds(kind)}, got {type(value).__name__}", key)
        return value

    def text(self, key: str, default: Any = ...) -> str:
        value = self.get(key, str, default)
        if default is ... and not value.strip():
            self.fail("must not be empty", key)
        return value

    def ident(self, key: str, default: Any = ...) -> str:
        value = self.get(key, str, default)
        if value is not None and not ID.match(value):
            self.fail(f"{value!r} is not an identifier (letters, digits, _ . -; not starting with a digit)", key)
        return value

    def number(self, key: str, default: Any = ..., lo: float = -math.inf, hi: float = math.inf,
               integer: bool = False) -> Any:
        value = self.get(key, int if integer else (int, float), default, "an integer" if integer else "a number")
        if value is not None and not (lo <= value <= hi):
            self.fail(f"must be in [{lo}, {hi}], got {value}", key)
        return value

    def choice(self, key: str, options: tuple[str, ...], default: Any = ...) -> str:
        value = self.get(key, str, default)
        if value not in options:
            self.fail(f"unknown {key} {value!r}; expected one of {', '.join(options)}", key)
        return value

    def strings(self, key: str, default: Any = ...) -> tuple[str, ...]:
        value = self.get(key, list, default, "a list of strings")
        if not all(isinstance(v, str) for v in value):
            self.fail("must be a list of strings", key)
        return tuple(value)

    def table(self, key: str, default: Any = ...) -> dict[str, Any]:
        return self.get(key, dict, default, "a table")

    def done(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            self.fail(f"unknown key {extra[0]!r}; allowed here: {', '.join(sorted(self.used))}", extra[0])


def _kinds(kind: type | tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table", bool: "true/false"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)
