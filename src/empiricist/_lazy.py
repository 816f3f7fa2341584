"""Package namespaces that import a module only when one of its names is first used.

``empiricist count`` and ``empiricist --help`` must not pay for torch, scipy and transformers (≈ 2.6 s)
because a package's ``__init__`` re-exported everything. A package lists ``name -> submodule`` and gets a
module ``__getattr__`` (PEP 562); ``from empiricist.lookup import trace_text`` still works, and so does
every type checker (the ``__init__`` imports the names under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose ``exports`` map a public name to its submodule."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(exports) | set(vars(sys.modules[package])))

    return __getattr__, __dir__
