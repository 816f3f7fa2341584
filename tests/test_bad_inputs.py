"""Every bad input the issue lists is one clear line: exit 2, names the file (and line), no traceback.

Each case builds the broken file, runs the real CLI entry point in-process, and checks the message.
Also: a huge document is tokenized in bounded memory, with the same ids as the whole text.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from test_reliability import cli

from empiricist.errors import InputError

Case = Callable[[Path], tuple[list[object], list[str]]]  # tmp -> (CLI args, substrings the error must hold)


def _gz_not_gzip(tmp: Path):
    f = tmp / "corpus.jsonl.gz"
    f.write_text('{"id": "a", "text": "plain text, not gzip"}\n')
    return ["data", "dupes", f], [str(f), "not gzip"]


def _gz_truncated(tmp: Path):
    f = tmp / "corpus.jsonl.gz"
    data = gzip.compress("".join(f'{{"id": "d{i}", "text": "t {i}"}}\n' for i in range(5000)).encode())
    f.write_bytes(data[: len(data) // 2])
    return ["data", "dupes", f], [str(f), "truncated"]


def _lone_surrogate(tmp: Path):
    f = tmp / "corpus.jsonl"
    f.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": "bad \\ud800 here"}\n')
    return ["data", "dupes", f], [str(f), "line 2", "surrogate"]


def _non_utf8_deep(tmp: Path):
    """The bad byte sits far past the first read block: the line must still be right."""
    f = tmp / "corpus.jsonl"
    lines = [json.dumps({"id": f"d{i}", "text": "x" * 80}).encode() for i in range(299)]
    f.write_bytes(b"\n".join([*lines, b'{"id": "bad", "text": "caf\xe9"}']) + b"\n")
    return ["data", "dupes", f], [str(f), "line 300", "UTF-8"]


def _non_utf8_task(tmp: Path):
    f = tmp / "task.jsonl"
    good = json.dumps({"question": "q", "answer_matching_behavior": " (A)",
                       "answer_not_matching_behavior": " (B)"}).encode()
    f.write_bytes(b"\n".join([good] * 200 + [b'{"question": "\xff", "answer_matching_behavior": " (A)"}']) + b"\n")
    return ["eval", "--task", f, "--model", "no-such-model"], [str(f), "line 201", "UTF-8"]


def _corrupt_parquet(tmp: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp / "corpus.parquet"
    table = pa.table({"id": [f"d{i}" for i in range(20000)], "text": [f"text number {i} " * 5 for i in range(20000)]})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", row_group_size=5000)
    data = bytearray(buf.getvalue())
    for i in range(len(data) // 3, len(data) // 3 + 4000):  # garble pages, keep the footer readable
        data[i] = (data[i] * 7 + 13) % 256
    f.write_bytes(bytes(data))
    return ["data", "dupes", f], [str(f), "Parquet"]


def _model_folder(tmp: Path) -> Path:
    from empiricist.data import train_bpe
    from empiricist.data.tokenizer import save_hf_tokenizer
    from empiricist.suite.config import get_preset
    from empiricist.suite.model import build_model

    folder = tmp / "model"
    size = get_preset("tiny").sizes[0]
    build_model(size, 300, 32, seed=0).save_pretrained(folder, safe_serialization=True)
    save_hf_tokenizer(train_bpe(["alpha beta gamma delta"] * 20, 300, tmp / "tok"), folder)
    return folder


def _broken(name: str, mangle: Callable[[bytes], bytes], expect: str) -> Case:
    def case(tmp: Path):
        folder = _model_folder(tmp)
        f = folder / name
        f.write_bytes(mangle(f.read_bytes()))
        return ["model", "info", folder], [expect]
    return case


def _pickle_only(tmp: Path):
    folder = _model_folder(tmp)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04\x95 pickle that must never be loaded")
    return ["model", "info", folder], [str(folder), "pytorch_model.bin", "never unpickles"]


def _tarball_corpus(tmp: Path):
    import tarfile

    f = tmp / "corpus.tar.gz"
    payload = tmp / "payload.txt"
    payload.write_text("x")
    with tarfile.open(f, "w:gz") as t:
        t.add(payload, arcname="../../escape.txt")
    return ["data", "dupes", f], [str(f)]


CASES: dict[str, Case] = {
    "jsonl.gz that is not gzip": _gz_not_gzip,
    "truncated jsonl.gz": _gz_truncated,
    "lone surrogate in JSON": _lone_surrogate,
    "non-UTF-8 corpus, line 300": _non_utf8_deep,
    "non-UTF-8 task file": _non_utf8_task,
    "corrupt Parquet pages": _corrupt_parquet,
    "truncated safetensors": _broken("model.safetensors", lambda b: b[: len(b) // 2], "model.safetensors"),
    "garbage safetensors header": _broken("model.safetensors", lambda b: b"\xff" * 16 + b[16:], "model.safetensors"),
    "empty safetensors": _broken("model.safetensors", lambda b: b"", "model.safetensors"),
    "garbage config.json": _broken("config.json", lambda b: b"{not json", "config"),
    "garbage tokenizer.json": _broken("tokenizer.json", lambda b: b"{\"model\": 12", "tokenizer"),
    "truncated tokenizer.json": _broken("tokenizer.json", lambda b: b[: len(b) // 3], "tokenizer"),
    "garbage tokenizer_config.json": _broken("tokenizer_config.json", lambda b: b"\x00\xff[", "tokenizer"),
    "pickle-only pytorch_model.bin": _pickle_only,
    "../ tarball as a corpus": _tarball_corpus,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_clear_line(name: str, tmp_path: Path, capsys) -> None:
    args, expect = CASES[name](tmp_path)
    code, _, err = cli(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for word in expect:
        assert word in lines[0], (word, lines[0])
    assert not (tmp_path.parent / "escape.txt").exists()


def test_toml_reader_names_file_and_line(tmp_path: Path) -> None:
    from empiricist.data.readers import read_toml

    f = tmp_path / "spec.toml"
    f.write_bytes(b'a = 1\nb = "ok"\n\n# comment\nc = "caf\xe9"\n')
    with pytest.raises(InputError, match=r"spec.toml, line 5: not UTF-8"):
        read_toml(f)
    f.write_text("x = " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(InputError, match="nested too deeply|malformed"):
        read_toml(f)
    f.write_text('a = 1\nb = = 2\n')
    with pytest.raises(InputError, match="line 2: malformed TOML"):
        read_toml(f)
    f.write_text('[t]\nk = "v"\n')
    assert read_toml(f) == {"t": {"k": "v"}}


def test_split_pieces_tokenize_exactly_like_the_whole_text(tmp_path: Path) -> None:
    import random

    import numpy as np

    from empiricist.data import train_bpe
    from empiricist.data.build import encode_bounded, split_text
    from empiricist.data.tokenizer import load_tokenizer

    rng = random.Random(0)
    words = ["alpha", "beta", "gamma", "  spaced", "x.", "\n\nnew", "tab\tbed", "'s", "42"]
    text = " ".join(rng.choice(words) for _ in range(60_000))
    tok = load_tokenizer(train_bpe([text[:20000]], 300, tmp_path / "tok"))
    pieces = split_text(text, piece=4096)
    assert len(pieces) > 10 and "".join(pieces) == text and max(map(len, pieces)) <= 4096
    whole = tok.encode(text, add_special_tokens=False).ids
    from empiricist.data import build

    old = build.PIECE_CHARS
    build.PIECE_CHARS = 4096
    try:
        bounded = encode_bounded(tok, [text, "short"], np.dtype(np.uint16))
    finally:
        build.PIECE_CHARS = old
    assert bounded[0].tolist() == whole
    assert bounded[1].tolist() == tok.encode("short", add_special_tokens=False).ids


MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from empiricist.data import Document, build_store, train_bpe
    root = Path(sys.argv[1])
    words = "alpha beta gamma delta epsilon born in the city of".split()
    tok = train_bpe([" ".join(words)] * 50, 300, root / "tok")
    huge = " ".join(words[i % len(words)] + str(i % 7) for i in range(1_000_000))  # ~6 MB, one document
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    build_store([Document("huge", huge), Document("small", "alpha beta")], tok, root / "store", progress=False)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) // 1024)
""")


def test_huge_document_is_tokenized_in_bounded_memory(tmp_path: Path) -> None:
    """A 6 MB document: tokenizing it whole would take ~600 MB (about 100 bytes per character)."""
    r = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr
    growth_mb = int(r.stdout.strip().splitlines()[-1])
    assert growth_mb < 300, f"peak RSS grew by {growth_mb} MB"
    from empiricist.data.store import TokenStore

    s = TokenStore.open(tmp_path / "store")
    assert s.num_docs == 2 and len(s.doc_text(0)) > 6_000_000
