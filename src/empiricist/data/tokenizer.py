"""Byte-level BPE tokenizers: train one deterministically, load any ``tokenizer.json``, hand it to HF.

A token store and every model trained on it are tied to one tokenizer by the sha256 of its file, so
training must be byte-for-byte reproducible and the file is copied verbatim, never re-serialised.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from empiricist.artifacts import atomic_path, atomic_write_json, sha256_file
from empiricist.errors import InputError

EOS = "<|endoftext|>"
PAD = "<|padding|>"
DEFAULT_SPECIALS = (EOS, PAD)
# End-of-sequence spellings of common tokenizers, tried in order when there is no <|endoftext|>.
_EOS_CANDIDATES = (EOS, "</s>", "<eos>", "<|end_of_text|>", "<|im_end|>", "[SEP]")
_PAD_CANDIDATES = (PAD, "<pad>", "[PAD]", "<|pad|>")


def train_bpe(
    texts: Iterable[str],
    vocab_size: int,
    out_path: str | Path,
    special_tokens: Sequence[str] = DEFAULT_SPECIALS,
    min_frequency: int = 2,
    overwrite: bool = False,
) -> Path:
    """Train a GPT-NeoX-style byte-level BPE and save it as ``tokenizer.json``; returns the file path.

    Special tokens get the first ids (``<|endoftext|>`` = 0, as in GPT-NeoX/Pythia). The same texts give
    the same file bytes. ``out_path`` may be a folder, in which case ``tokenizer.json`` is written inside.
    """
    from empiricist.artifacts import check_replaceable

    check_replaceable(_tokenizer_file(out_path), None, overwrite)  # never overwrite someone's file unasked
    floor = len(pre_tokenizers.ByteLevel.alphabet()) + len(special_tokens)
    if vocab_size < floor:
        raise InputError(f"vocab_size {vocab_size} is below the byte alphabet plus special tokens ({floor})")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    out = _tokenizer_file(out_path)
    with atomic_path(out) as tmp:
        tok.save(str(tmp))
    return out


def _tokenizer_file(path: str | Path) -> Path:
    """``path`` itself, or ``path/tokenizer.json`` when ``path`` is a folder (or has no suffix)."""
    path = Path(path)
    return path / "tokenizer.json" if path.is_dir() or not path.suffix else path


def resolve_tokenizer_path(path: str | Path) -> Path:
    """The ``tokenizer.json`` a path refers to (the file, or one inside a model/store folder)."""
    path = Path(path)
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise InputError("no tokenizer.json here", path=file)
    return file


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load any HF ``tokenizer.json`` (ours, Pythia's, ...), or a folder holding one."""
    file = resolve_tokenizer_path(path)
    try:
        return Tokenizer.from_file(str(file))
    except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception for any bad file
        raise InputError(f"not a valid tokenizer.json ({e})", path=file) from None


def tokenizer_hash(path: str | Path) -> str:
    """sha256 of the tokenizer file: what stores and models record to refuse a mismatch."""
    return sha256_file(resolve_tokenizer_path(path))


# The parts of a tokenizer.json that decide which ids a text encodes to. Left out: "version", "truncation",
# "padding" (call-time settings) and "decoder" (ids -> text), which re-saving (save_pretrained) may rewrite.
_ENCODING_PARTS = ("normalizer", "pre_tokenizer", "model", "post_processor", "added_tokens")


def encoding_hash(path: str | Path) -> str:
    """sha256 of what a tokenizer encodes with, in canonical form (sorted keys; merges as pairs, as both the
    old ``"a b"`` and the new ``["a", "b"]`` spellings mean): equal for a file and its re-saved copy."""
    import hashlib
    import json

    file = resolve_tokenizer_path(path)
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{file}: not a readable tokenizer.json ({e})") from None
    parts = {k: doc.get(k) for k in _ENCODING_PARTS}
    model = dict(parts["model"] or {})
    if isinstance(model.get("merges"), list):
        model["merges"] = [m.split(" ", 1) if isinstance(m, str) else list(m) for m in model["merges"]]
    parts["model"] = model
    parts["added_tokens"] = sorted((t.get("id"), t.get("content"), bool(t.get("special")))
                                   for t in parts["added_tokens"] or [])
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _find_special(tok: Tokenizer, candidates: Sequence[str]) -> str | None:
    for name in candidates:
        if tok.token_to_id(name) is not None:
            return name
    return None


def eos_token(tok: Tokenizer) -> str:
    """The end-of-text token: the document separator in a token store."""
    name = _find_special(tok, _EOS_CANDIDATES)
    if name is None:
        raise InputError(f"tokenizer has no end-of-text token (looked for {', '.join(_EOS_CANDIDATES)})")
    return name


def eos_id(tok: Tokenizer) -> int:
    """Id of ``eos_token(tok)``; 0 for GPT-NeoX and for tokenizers from ``train_bpe``."""
    return tok.token_to_id(eos_token(tok))


def save_hf_tokenizer(tok_path: str | Path, out_dir: str | Path) -> Path:
    """Write a ``PreTrainedTokenizerFast`` folder so ``AutoTokenizer.from_pretrained(out_dir)`` works.

    The ``tokenizer.json`` is copied byte for byte afterwards so its sha256 still matches the store's.
    """
    from transformers import PreTrainedTokenizerFast

    src = resolve_tokenizer_path(tok_path)
    tok = load_tokenizer(src)
    eos = eos_token(tok)
    pad = _find_special(tok, _PAD_CANDIDATES)
    hf = PreTrainedTokenizerFast(tokenizer_file=str(src), eos_token=eos, bos_token=eos, unk_token=eos,
                                 pad_token=pad)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(str(out_dir))
    shutil.copyfile(src, out_dir / "tokenizer.json")
    specials = {"bos_token": eos, "eos_token": eos, "unk_token": eos} | ({"pad_token": pad} if pad else {})
    atomic_write_json(out_dir / "special_tokens_map.json", specials)  # for loaders older than transformers 5
    return out_dir
