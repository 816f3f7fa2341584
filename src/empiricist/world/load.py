"""Reading a generated world back: config, ground truth, documents (streamed) and eval items."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from empiricist import artifacts
from empiricist.errors import ArtifactError, InputError
from empiricist.world.config import WorldConfig
from empiricist.world.evalitems import EVAL_FILES, FACT_QA, SYCOPHANCY

WORLD_FILES = ("docs.jsonl", "entities.jsonl", "facts.jsonl", FACT_QA, SYCOPHANCY, "planted.jsonl", "config.json")


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file; a broken line is reported as a corrupted artifact, with its line number."""
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise ArtifactError(f"{path} line {i}: corrupted JSON ({e})") from None


class World:
    """A complete world artifact folder. Open with ``World.open(path)``."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest

    @classmethod
    def open(cls, path: str | Path) -> World:
        path = Path(path)
        manifest = artifacts.read_manifest(path, kind="world")
        missing = [name for name in WORLD_FILES if not (path / name).is_file()]
        if missing:
            raise ArtifactError(f"{path} is not a complete world: missing {missing}")
        return cls(path, manifest)

    @cached_property
    def config(self) -> WorldConfig:
        return WorldConfig.from_dict(self.manifest["config"])

    @property
    def stats(self) -> dict[str, Any]:
        return self.manifest.get("stats", {})

    @cached_property
    def entities(self) -> list[dict[str, Any]]:
        return list(iter_jsonl(self.path / "entities.jsonl"))

    @cached_property
    def facts(self) -> list[dict[str, Any]]:
        return list(iter_jsonl(self.path / "facts.jsonl"))

    @cached_property
    def planted(self) -> list[dict[str, Any]]:
        return list(iter_jsonl(self.path / "planted.jsonl"))

    def iter_docs(self, subset: str | None = None) -> Iterator[dict[str, Any]]:
        """Stream documents (never all in memory), optionally only those of one subset."""
        for doc in iter_jsonl(self.path / "docs.jsonl"):
            if subset is None or doc["subset"] == subset:
                yield doc

    def eval_items(self, name: str) -> list[dict[str, Any]]:
        """Items of an eval file: ``"fact_qa"`` or ``"sycophancy"``."""
        if name not in EVAL_FILES:
            raise InputError(f"unknown eval {name!r}; this world has {sorted(EVAL_FILES)}")
        return list(iter_jsonl(self.path / EVAL_FILES[name]))

    def __repr__(self) -> str:
        return f"World({str(self.path)!r})"
