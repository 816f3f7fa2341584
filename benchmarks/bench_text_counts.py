"""Do `empiricist count` numbers equal `grep -o -F` on a real corpus? Text level against token level.

Run on demand (never in tests):
    python benchmarks/bench_text_counts.py --corpus fortunes.jsonl --store STORE --workspace DIR [--random 200]

The corpus is a JSONL file (one ``text`` per line: what the store was built from). Every phrase is
counted three ways: ``grep -o -F`` over the documents' text (one file, documents separated by newlines,
so no match crosses two documents), the text index (``empiricist count``'s default) and the n-gram index
(``--tokens``: the phrase's own tokenisation). Phrases: a fixed list of names and words, then
``--random`` seeded random substrings of the documents (3–20 characters, no newline).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import tempfile
from pathlib import Path

from empiricist.data.store import TokenStore
from empiricist.lookup.ngram import open_default_ngram
from empiricist.lookup.text import TextIndex

FIXED = ["Mark Twain", " Mark Twain", "-- Mark Twain", "computer", " computer", "computers", "the", "The",
         "love", "Murphy's Law", "God", " is ", "Oscar Wilde", "Shakespeare", "money", "Q:", "A:", "life",
         "never", "woman", "program", "Linux", "Unix", "cat", "dog", "war"]


def grep_count(phrase: str, file: Path) -> int:
    out = subprocess.run(["grep", "-o", "-F", "-e", phrase, str(file)], capture_output=True, check=False,
                         env={"LC_ALL": "C"})
    return out.stdout.count(b"\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--random", type=int, default=200)
    args = ap.parse_args()
    texts = [json.loads(line)["text"] for line in Path(args.corpus).read_text(encoding="utf-8").splitlines()]
    store = TokenStore.open(args.store)
    text = TextIndex.open(store, workspace=args.workspace, progress=False)
    ngram = open_default_ngram(store, args.workspace, progress=False)
    rng = random.Random(0)
    randoms = []
    while len(randoms) < args.random:
        t = rng.choice(texts)
        a = rng.randrange(len(t))
        q = t[a:a + rng.randint(3, 20)]
        if len(q) >= 3 and "\n" not in q:
            randoms.append(q)
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "docs.txt"
        file.write_text("\n".join(texts) + "\n", encoding="utf-8")
        print("| phrase | grep -o -F | empiricist count (text) | --tokens |\n|---|---:|---:|---:|")
        for name, phrases in (("fixed", FIXED), ("random", randoms)):
            same_text = same_tokens = overlap = unexplained = 0
            for q in phrases:
                g, c, k = grep_count(q, file), text.count(q), ngram.count(q)
                self_overlap = any(q[:i] == q[-i:] for i in range(1, len(q)))
                overlap += self_overlap
                same_text += g == c
                unexplained += g != c and not self_overlap
                same_tokens += g == k
                if name == "fixed":
                    print(f"| `{q!r}` | {g:,} | {c:,} | {k:,} |")
            print(f"\n{name} phrases: text count equals grep for {same_text} of {len(phrases)} "
                  f"({overlap} can overlap themselves, where grep counts non-overlapping matches; differences "
                  f"for phrases that cannot: {unexplained}); "
                  f"token count equals grep for {same_tokens} of {len(phrases)}\n")


if __name__ == "__main__":
    main()
