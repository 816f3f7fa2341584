"""External evidence in the claims ledger: published results (and failed replications) we did not run.

One TOML file per entry, with an ``[external]`` table (see ``studies/ledger/external/``)::

    [external]
    id = "perez2022-syco-scaling"          # what a study's replicates/challenges name
    claim = "sycophancy-grows-with-size"    # the claim id it bears on (the ledger groups by it)
    summary = "one line: what was found"
    challenges = []                         # or replicates = [...]: other entries or studies it answers
    [external.source]
    title = "..."; authors = ["..."]; year = 2022; url = "https://..."
    [external.setting]                      # free-form strings: models, eval, prompt format, ...
    models = "..."
    [[external.numbers]]                    # numbers AS PUBLISHED; "unconfirmed" where not checked
    quantity = "..."; value = "unconfirmed"; note = "..."

Numbers are strings or numbers; a value we could not confirm against the source says "unconfirmed".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from empiricist.studies.fields import Fields, read_toml

TABLE = "external"


def parse_external(doc: dict[str, Any], path: Path | None = None) -> dict[str, Any]:
    """One external entry from a parsed TOML document (an InputError naming the field when malformed)."""
    top = Fields(doc, "", path)
    head = Fields(top.table(TABLE), TABLE, path)
    src = Fields(head.table("source"), f"{TABLE}.source", path)
    source = {"title": src.text("title"), "authors": list(src.strings("authors")),
              "year": src.number("year", lo=1900, hi=2100, integer=True), "url": src.text("url")}
    if not source["url"].startswith(("https://", "http://")):
        src.fail("must be an http(s) URL", "url")
    if not source["authors"]:
        src.fail("must name at least one author", "authors")
    src.done()
    setting = head.table("setting", {})
    for k, v in setting.items():
        if not isinstance(v, str):
            head.fail("must be a string", f"setting.{k}")
    numbers = []
    for i, row in enumerate(head.get("numbers", list, [], "a list of [[external.numbers]] tables")):
        f = Fields(row, f"{TABLE}.numbers[{i}]", path)
        value = f.get("value", (str, int, float), what="a number or a string (\"unconfirmed\")")
        numbers.append({"quantity": f.text("quantity"), "value": value, "note": f.text("note", "")})
        f.done()
    entry = {"id": head.ident("id"), "claim": head.ident("claim"), "summary": head.text("summary"),
             "replicates": list(head.strings("replicates", ())), "challenges": list(head.strings("challenges", ())),
             "source": source, "setting": dict(setting), "numbers": numbers, "kind": "external",
             "spec": str(path) if path is not None else ""}
    head.done()
    extra = sorted(set(doc) - {TABLE})
    if extra:
        top.fail(f"unknown table {extra[0]!r} beside [external]", extra[0])
    return entry


def load_external(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    return parse_external(read_toml(path), path)


def is_external(doc: dict[str, Any]) -> bool:
    return TABLE in doc and "study" not in doc
