"""Errors meant for users: one clear message naming what was wrong and where.

The CLI prints these without a traceback; anything else is a bug in empiricist.
"""

from __future__ import annotations

from pathlib import Path


class EmpiricistError(Exception):
    """An error caused by input or state the user controls (a file, a config, a missing artifact)."""


class InputError(EmpiricistError):
    """Bad input data, located as precisely as we can: file, line or row, field."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.row = row
        self.field = field
        where = []
        if self.path is not None:
            where.append(self.path)
        if line is not None:
            where.append(f"line {line}")
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ArtifactError(EmpiricistError):
    """A missing, incomplete, corrupted or mismatched artifact."""
