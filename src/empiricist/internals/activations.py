"""Capture what a causal LM computes inside: residual stream, attention-block and MLP outputs.

Why plain PyTorch forward hooks rather than nnsight or TransformerLens: neither is installed here, both
would wrap or re-implement the model, and read-only capture needs nothing more than a hook that copies
the rows we want — the forward pass is the model's own, so the numbers are exactly HF's and the overhead
is a gather per hooked module. Once every requested site has fired, a hook stops the forward pass, so
probing layer 2 of a 32-layer model costs 3 layers of compute.

Sites (``resolve_sites``)
    ``resid.<i>``, i = 0..L   the residual stream entering block i; ``resid.<L>`` leaves the last block.
                              ``resid.i`` equals HF ``hidden_states[i]`` for i < L (HF's last entry is
                              after the final norm: that is the site ``final``).
    ``attn.<i>``, ``mlp.<i>`` the attention / MLP module outputs of block i (before the residual add).
    ``final``                 the output of the final norm.
    ``resid`` / ``attn`` / ``mlp`` alone (or ``resid.*``) mean every layer; ``all`` means every site.
Positions: ``"last"`` (last real token of each text), ``"all"`` (every real token) or one index or list of
indices per text (negative counts from the end).

On disk (``capture_activations``): ``index.json`` + ``rows/<chunk>.npy`` (text index, token position) +
``acts/<site>/<chunk>.npy``, one chunk per ``chunk_rows`` rows, so memory stays bounded by a chunk
however many tokens are captured; ``ActivationSet`` reads them back (memory-mapped).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import torch
from torch import nn

from empiricist.artifacts import atomic_write_json, building, config_hash, write_manifest
from empiricist.errors import ArtifactError, InputError

if TYPE_CHECKING:
    from empiricist.suite.handles import ModelHandle

BLOCK_PATHS = ("gpt_neox.layers", "model.layers", "model.decoder.layers", "transformer.h", "transformer.layers",
               "layers")
ATTN_NAMES = ("attention", "self_attn", "attn", "self_attention")
MLP_NAMES = ("mlp", "feed_forward", "ffn")
FINAL_NORM_PATHS = ("gpt_neox.final_layer_norm", "model.norm", "model.decoder.final_layer_norm", "transformer.ln_f",
                    "transformer.norm_f", "norm")
Positions = str | Sequence[int | Sequence[int]]


class _StopForward(Exception):
    """Raised by the last hook that was needed: the rest of the forward pass would be wasted work."""


def _get(root: nn.Module, dotted: str) -> Any:
    obj: Any = root
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def find_blocks(model: nn.Module) -> nn.ModuleList:
    """The list of transformer blocks: known HF paths first, else the longest ModuleList of blocks."""
    for path in BLOCK_PATHS:
        blocks = _get(model, path)
        if isinstance(blocks, nn.ModuleList) and len(blocks):
            return blocks
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and (n is None or len(m) == n)]
    if not lists:
        raise InputError(f"cannot find the transformer blocks of {type(model).__name__}; tried {BLOCK_PATHS}")
    return max(lists, key=len)


def _child(block: nn.Module, names: Sequence[str], what: str, i: int) -> nn.Module:
    for name in names:
        m = getattr(block, name, None)
        if isinstance(m, nn.Module):
            return m
    raise InputError(f"block {i} ({type(block).__name__}) has no {what} module named any of {list(names)}")


@dataclass(frozen=True)
class Site:
    """Where to hook: a module, and whether we read its input (``resid.0``) or its output."""

    name: str
    module: nn.Module
    read_input: bool = False


def site_names(model: nn.Module) -> list[str]:
    n = len(find_blocks(model))
    return ([f"resid.{i}" for i in range(n + 1)] + [f"attn.{i}" for i in range(n)] + [f"mlp.{i}" for i in range(n)]
            + ["final"])


def resolve_sites(model: nn.Module, sites: str | Sequence[str]) -> list[Site]:
    """Turn site names (see the module docstring) into hook targets, in a stable order."""
    blocks = find_blocks(model)
    n = len(blocks)
    wanted: list[str] = []
    for s in [sites] if isinstance(sites, str) else list(sites):
        s = s.strip()
        if s == "all":
            wanted += site_names(model)
        elif s in ("resid", "resid.*", "attn", "attn.*", "mlp", "mlp.*"):
            kind = s.split(".")[0]
            wanted += [f"{kind}.{i}" for i in range(n + (kind == "resid"))]
        else:
            wanted.append(s)
    out: list[Site] = []
    for name in dict.fromkeys(wanted):
        m = re.fullmatch(r"(resid|attn|mlp)\.(-?\d+)", name)
        if name == "final":
            norm = next((x for x in (_get(model, p) for p in FINAL_NORM_PATHS) if isinstance(x, nn.Module)), None)
            if norm is None:
                raise InputError(f"{type(model).__name__} has no final norm at any of {FINAL_NORM_PATHS}")
            out.append(Site(name, norm))
            continue
        if not m:
            raise InputError(f"unknown site {name!r}: use resid.<i>, attn.<i>, mlp.<i>, final, or all")
        kind, i = m[1], int(m[2])
        top = n if kind == "resid" else n - 1
        i = i + top + 1 if i < 0 else i
        if not 0 <= i <= top:
            raise InputError(f"site {name!r}: this model has {n} blocks ({kind}.0..{kind}.{top})")
        if kind == "resid":
            out.append(Site(f"resid.{i}", blocks[0], read_input=True) if i == 0 else Site(f"resid.{i}", blocks[i - 1]))
        else:
            out.append(Site(f"{kind}.{i}", _child(blocks[i], ATTN_NAMES if kind == "attn" else MLP_NAMES, kind, i)))
    return out


class _Recorder:
    """Registers one hook per site; each copies the selected (batch, position) rows to CPU float32."""

    def __init__(self, sites: list[Site], stop_early: bool = True) -> None:
        self.sites, self.stop_early = sites, stop_early
        self.select: tuple[torch.Tensor, torch.Tensor] | None = None
        self.got: dict[str, torch.Tensor] = {}
        self.handles: list[Any] = []

    def _take(self, name: str, x: Any) -> None:
        x = x[0] if isinstance(x, tuple) else x
        bi, pi = self.select  # type: ignore[misc]
        self.got[name] = x[bi, pi].detach().to("cpu", torch.float32)
        if self.stop_early and len(self.got) == len(self.sites):
            raise _StopForward

    def __enter__(self) -> Self:
        for s in self.sites:
            if s.read_input:
                def pre(mod: nn.Module, args: tuple, kwargs: dict, name: str = s.name) -> None:
                    self._take(name, args[0] if args else kwargs["hidden_states"])
                self.handles.append(s.module.register_forward_pre_hook(pre, with_kwargs=True))
            else:
                def post(mod: nn.Module, args: tuple, out: Any, name: str = s.name) -> None:
                    self._take(name, out)
                self.handles.append(s.module.register_forward_hook(post))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self.handles:
            h.remove()


@dataclass
class ActBatch:
    """Captured rows of one batch of texts: which text and token each row is, and the vectors per site."""

    text_index: np.ndarray  # (n,) int64
    position: np.ndarray  # (n,) int64
    acts: dict[str, np.ndarray]  # site -> (n, d) float32


def _select(lengths: list[int], positions: Positions, offset: int, pos_for: list[Any]) -> tuple[list[int], list[int]]:
    bi: list[int] = []
    pi: list[int] = []
    for j, n in enumerate(lengths):
        if positions == "last":
            want: Sequence[int] = [n - 1]
        elif positions == "all":
            want = range(n)
        else:
            p = pos_for[j]
            want = [p] if isinstance(p, (int, np.integer)) else list(p)
        for p in want:
            q = p + n if p < 0 else p
            if not 0 <= q < n:
                raise InputError(f"position {p} is outside the text ({n} tokens)", row=offset + j)
            bi.append(j)
            pi.append(q)
    return bi, pi


def iter_activations(
    model: nn.Module,
    tokenizer: Any,
    texts: Iterable[str],
    sites: str | Sequence[str] = "resid",
    positions: Positions = "last",
    batch_size: int = 16,
    max_length: int | None = None,
) -> Iterator[ActBatch]:
    """Run the model over ``texts`` in batches and yield the requested rows of every site."""
    if isinstance(positions, str) and positions not in ("last", "all"):
        raise InputError(f"positions must be 'last', 'all' or indices per text, got {positions!r}")
    targets = resolve_sites(model, sites)
    device = next(model.parameters()).device
    pos_iter = None if isinstance(positions, str) else iter(positions)
    side = getattr(tokenizer, "padding_side", "right")
    tokenizer.padding_side = "right"  # real tokens first: positions count from 0 in every row
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    it, offset = iter(texts), 0
    try:
        with _Recorder(targets) as rec, torch.inference_mode():
            while batch := [t for _, t in zip(range(batch_size), it, strict=False)]:
                pos_for = [] if pos_iter is None else list(itertools.islice(pos_iter, len(batch)))
                if pos_iter is not None and len(pos_for) < len(batch):
                    raise InputError(f"positions has fewer entries than there are texts ({offset + len(pos_for)})")
                enc = tokenizer(batch, return_tensors="pt", padding=True, truncation=max_length is not None,
                                max_length=max_length)
                lengths = enc["attention_mask"].sum(1).tolist()
                if min(lengths) == 0:
                    raise InputError("a text tokenizes to no tokens", row=offset + lengths.index(0))
                bi, pi = _select(lengths, positions, offset, pos_for)
                rec.select, rec.got = (torch.tensor(bi), torch.tensor(pi)), {}
                try:
                    model(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device),
                          use_cache=False)
                except _StopForward:
                    pass
                yield ActBatch(np.asarray(bi, dtype=np.int64) + offset, np.asarray(pi, dtype=np.int64),
                               {s.name: rec.got[s.name].numpy() for s in targets})
                offset += len(batch)
    finally:
        tokenizer.padding_side = side


def collect_activations(model: nn.Module, tokenizer: Any, texts: Iterable[str], sites: str | Sequence[str] = "resid",
                        positions: Positions = "last", **kw: Any) -> ActBatch:
    """All rows in memory (for probe-sized datasets; stream big ones with ``capture_activations``)."""
    parts = list(iter_activations(model, tokenizer, texts, sites, positions, **kw))
    if not parts:
        raise InputError("no texts to run")
    return ActBatch(np.concatenate([p.text_index for p in parts]), np.concatenate([p.position for p in parts]),
                    {s: np.concatenate([p.acts[s] for p in parts]) for s in parts[0].acts})


class _ChunkWriter:
    """Buffers rows and writes one .npy per site per chunk once ``chunk_rows`` rows have accumulated."""

    def __init__(self, folder: Path, chunk_rows: int, dtype: np.dtype) -> None:
        self.folder, self.chunk_rows, self.dtype = folder, chunk_rows, dtype
        self.buf: list[ActBatch] = []
        self.n_buf = 0
        self.chunks: list[dict[str, Any]] = []
        self.dims: dict[str, int] = {}

    def add(self, b: ActBatch) -> None:
        self.buf.append(b)
        self.n_buf += len(b.position)
        if self.n_buf >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if not self.n_buf:
            return
        stem = f"{len(self.chunks):05d}"
        rows = np.stack([np.concatenate([b.text_index for b in self.buf]),
                         np.concatenate([b.position for b in self.buf])], axis=1)
        (self.folder / "rows").mkdir(parents=True, exist_ok=True)
        np.save(self.folder / "rows" / f"{stem}.npy", rows)
        for site in self.buf[0].acts:
            arr = np.concatenate([b.acts[site] for b in self.buf]).astype(self.dtype, copy=False)
            self.dims[site] = arr.shape[1]
            (self.folder / "acts" / site).mkdir(parents=True, exist_ok=True)
            np.save(self.folder / "acts" / site / f"{stem}.npy", arr)
        self.chunks.append({"stem": stem, "rows": int(self.n_buf)})
        self.buf, self.n_buf = [], 0


class _HashedTexts:
    """Passes texts through while hashing them, so the dataset hash needs no second pass or list."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.texts, self.h, self.n = texts, hashlib.sha256(), 0

    def __iter__(self) -> Iterator[str]:
        for t in self.texts:
            self.h.update(t.encode("utf-8") + b"\x00")
            self.n += 1
            yield t


def capture_activations(
    handle: ModelHandle,
    texts: Iterable[str],
    out_dir: str | Path,
    sites: str | Sequence[str] = "resid",
    positions: Positions = "last",
    *,
    batch_size: int = 16,
    max_length: int | None = None,
    chunk_rows: int = 65536,
    dtype: str = "float32",
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Stream activations of ``handle`` (a ``ModelHandle``) over ``texts`` to an artifact folder."""
    from tqdm import tqdm

    if dtype not in ("float32", "float16"):
        raise InputError(f"dtype must be float32 or float16, got {dtype!r}")
    if chunk_rows < 1:
        raise InputError(f"chunk_rows must be positive, got {chunk_rows}")
    names = [s.name for s in resolve_sites(handle.model, sites)]
    pos_cfg: Any = positions if isinstance(positions, str) else {"indices_hash": config_hash(
        [p if isinstance(p, (int, np.integer)) else list(p) for p in positions])}
    config = {"sites": names, "positions": pos_cfg, "batch_size": batch_size, "max_length": max_length,
              "chunk_rows": chunk_rows, "dtype": dtype}
    source = _HashedTexts(texts)
    with building(out_dir, overwrite=overwrite, force=overwrite) as tmp:
        writer = _ChunkWriter(tmp, chunk_rows, np.dtype(dtype))
        for b in tqdm(iter_activations(handle.model, handle.tokenizer, source, names, positions, batch_size,
                                       max_length), disable=not progress, desc="capture", unit="batch"):
            writer.add(b)
        writer.flush()
        n_rows = sum(c["rows"] for c in writer.chunks)
        atomic_write_json(tmp / "index.json", {"sites": names, "dims": {s: writer.dims.get(s) for s in names},
                                               "chunks": writer.chunks, "n_rows": n_rows, "n_texts": source.n,
                                               "dtype": dtype})
        write_manifest(tmp, kind="activations", config=config,
                       inputs={"model": handle.model_hash, "dataset": source.h.hexdigest()[:16]},
                       extra={"model": handle.provenance, "n_rows": n_rows, "n_texts": source.n})
    return Path(out_dir)


class ActivationSet:
    """Read a captured activation folder: per-site chunks as memory maps, or whole arrays when small."""

    def __init__(self, path: str | Path) -> None:
        from empiricist.artifacts import read_manifest

        self.path = Path(path)
        self.manifest = read_manifest(self.path, kind="activations")
        self.index = json.loads((self.path / "index.json").read_text())

    @property
    def sites(self) -> list[str]:
        return list(self.index["sites"])

    def dim(self, site: str) -> int:
        self._check(site)
        return int(self.index["dims"][site])

    @property
    def n_rows(self) -> int:
        return int(self.index["n_rows"])

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return list(self.index["chunks"])

    def _check(self, site: str) -> None:
        if site not in self.index["sites"]:
            raise ArtifactError(f"{self.path} has no site {site!r}; it has {self.sites}")

    def iter_chunks(self, site: str) -> Iterator[np.ndarray]:
        self._check(site)
        for c in self.index["chunks"]:
            yield np.load(self.path / "acts" / site / f"{c['stem']}.npy", mmap_mode="r")

    def load(self, site: str) -> np.ndarray:
        """Every row of one site as one array (n_rows, d)."""
        return np.concatenate(list(self.iter_chunks(site))) if self.chunks else np.zeros((0, 0), np.float32)

    def rows(self) -> np.ndarray:
        """(n_rows, 2): text index and token position of each row."""
        parts = [np.load(self.path / "rows" / f"{c['stem']}.npy") for c in self.index["chunks"]]
        return np.concatenate(parts) if parts else np.zeros((0, 2), np.int64)
