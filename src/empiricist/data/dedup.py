"""Exact-duplicate detection by text hash.

Duplicated training documents inflate memorisation and confound attribution (two ids, one text), so we
find them before anything is trained. Only a 16-byte digest (and an id) per distinct text is kept in memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from empiricist.data.readers import Document


def text_key(text: str, normalize_whitespace: bool = False) -> bytes:
    """Digest identifying a text; with ``normalize_whitespace`` runs of whitespace count as one space."""
    if normalize_whitespace:
        text = " ".join(text.split())
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class DuplicateFilter:
    """Remembers the first id seen for each text, so later copies can be dropped while streaming."""

    def __init__(self, normalize_whitespace: bool = False) -> None:
        self.normalize_whitespace = normalize_whitespace
        self._first: dict[bytes, str] = {}

    def first_copy(self, doc: Document) -> str | None:
        """The id of an earlier document with the same text, or None (and remember this one)."""
        key = text_key(doc.text, self.normalize_whitespace)
        first = self._first.setdefault(key, doc.id)
        return None if first == doc.id else first


def find_duplicates(docs: Iterable[Document], normalize_whitespace: bool = False) -> list[list[str]]:
    """Groups (two or more ids) of documents with identical text, in order of first appearance."""
    groups: dict[bytes, list[str]] = {}
    for doc in docs:
        groups.setdefault(text_key(doc.text, normalize_whitespace), []).append(doc.id)
    return [ids for ids in groups.values() if len(ids) > 1]
