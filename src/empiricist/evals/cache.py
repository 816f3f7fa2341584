"""Per-item result cache: (model hash, scoring config, item hash) -> the model's raw outputs.

One folder per model and scoring config; each finished chunk of items is one JSONL file written
atomically, so an interrupted run keeps every finished chunk and a re-run computes only what is missing.
A half-written chunk never exists (it is renamed into place complete), and a chunk that fails to parse
(a disk error, a hand edit) is ignored with its items recomputed rather than trusted.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from empiricist.artifacts import Workspace, atomic_write_json, atomic_write_text, canonical_json, config_hash


class ResultCache:
    """Raw outputs of one model under one scoring config, keyed by item hash."""

    def __init__(self, model_hash: str, scoring_key: Mapping[str, Any], workspace: Workspace | str | Path | None = None) -> None:
        self.key = config_hash(dict(scoring_key))
        self.folder = Workspace.at(workspace).evals / "cache" / model_hash[:32] / self.key
        self.scoring_key = dict(scoring_key)
        self._entries: dict[str, dict[str, Any]] | None = None

    def load(self) -> dict[str, dict[str, Any]]:
        """Every cached item: item hash -> raw output (read once, then kept up to date in memory)."""
        if self._entries is None:
            self._entries = {}
            for chunk in sorted(self.folder.glob("chunk-*.jsonl")) if self.folder.exists() else []:
                try:
                    rows = [json.loads(line) for line in chunk.read_text(encoding="utf-8").splitlines() if line]
                    self._entries.update({r["item_hash"]: r["raw"] for r in rows})
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
        return self._entries

    def missing(self, item_hashes: list[str]) -> list[str]:
        have = self.load()
        return [h for h in item_hashes if h not in have]

    def add(self, raws: Mapping[str, dict[str, Any]]) -> Path | None:
        """Persist one chunk (item hash -> raw) atomically."""
        if not raws:
            return None
        if not (self.folder / "scoring.json").exists():
            atomic_write_json(self.folder / "scoring.json", self.scoring_key)
        name = f"chunk-{time.time_ns():020d}-{os.getpid()}.jsonl"
        text = "".join(canonical_json({"item_hash": h, "raw": r}) + "\n" for h, r in raws.items())
        path = atomic_write_text(self.folder / name, text)
        self.load().update(raws)
        return path
