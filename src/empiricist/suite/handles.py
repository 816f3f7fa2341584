"""One way to get any causal LM, its tokenizer and its provenance.

A spec is one of
- ``suite:<suite name or folder>/<size>[@step<N>]`` — a model of one of our suites (default: last step);
- a local folder holding an HF model (``config.json`` + weights), e.g. a downloaded Pythia checkpoint;
- a hub id such as ``EleutherAI/pythia-70m`` with an optional revision (Pythia's ``step1000`` style).
The hub path is the plain ``from_pretrained`` call; it works wherever the hub is reachable (or cached).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from empiricist.artifacts import Workspace, config_hash, is_complete, read_manifest, sha256_file
from empiricist.errors import ArtifactError, EmpiricistError

_SUITE_SPEC = re.compile(r"^suite:(?P<suite>.+?)/(?P<size>[^/@]+)(?:@(?:step)?(?P<step>\d+))?$")


@dataclass(frozen=True)
class SuiteSpec:
    """``suite:<suite name or folder>/<size>[@step<N>]``, parsed (``step`` None: the last checkpoint)."""

    suite: str
    size: str
    step: int | None = None

    def format(self) -> str:
        return f"suite:{self.suite}/{self.size}" + (f"@step{self.step}" if self.step is not None else "")


def parse_suite_spec(spec: str) -> SuiteSpec | None:
    """The one reading of a ``suite:`` model spec; None when ``spec`` is not one (a folder, a hub id)."""
    m = _SUITE_SPEC.match(spec)
    if m is None:
        return None
    return SuiteSpec(m["suite"], m["size"], int(m["step"]) if m["step"] else None)


@dataclass
class ModelHandle:
    """A loaded model with its tokenizer and where it came from (for manifests and result tables)."""

    model: Any
    tokenizer: Any
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.provenance.get("name"))

    @property
    def model_hash(self) -> str:
        """Identifies the weights: results are cached under it."""
        return str(self.provenance.get("weights_sha256") or config_hash(self.provenance))


def resolve_suite(name_or_path: str, workspace: Workspace | str | Path | None = None) -> Path:
    """A suite folder from a path or a name (the newest suite in the workspace whose folder starts with it)."""
    p = Path(name_or_path)
    if (p / "suite.json").exists():
        return p
    folder = Workspace.at(workspace).root / "suites"
    matches = sorted(folder.glob(f"{name_or_path}*"), key=lambda q: q.stat().st_mtime) if folder.exists() else []
    matches = [m for m in matches if (m / "suite.json").exists()]
    if not matches:
        here = suite_names(workspace)
        raise ArtifactError(f"no suite {name_or_path!r} in {folder} ("
                            + (f"suites here: {', '.join(here)}; choose one with --suite" if here else
                               "train one with `empiricist suite train`") + ", or give a token store with --store)")
    return matches[-1]


def suite_names(workspace: Workspace | str | Path | None = None) -> list[str]:
    """The names of the suites trained in a workspace (a name can have several folders: configs, stores)."""
    folder = Workspace.at(workspace).root / "suites"
    names = set()
    for m in folder.iterdir() if folder.is_dir() else []:
        try:
            names.add(str(json.loads((m / "suite.json").read_text())["config"]["name"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a suite folder (or a half-written one): not a choice to offer
    return sorted(names)


def choose_suite(name_or_path: str | None, workspace: Workspace | str | Path | None = None) -> Path:
    """``resolve_suite``; with no name, the workspace's only suite, else an error naming the choices."""
    if name_or_path is not None:
        return resolve_suite(name_or_path, workspace)
    names = suite_names(workspace)
    if len(names) == 1:
        return resolve_suite(names[0], workspace)
    root = Workspace.at(workspace).root
    if not names:
        raise ArtifactError(f"no suite in workspace {root}: give a token store with --store FOLDER, a suite with "
                            "--suite NAME, another workspace with --workspace, or train one (`empiricist run`)")
    raise ArtifactError(f"workspace {root} has several suites ({', '.join(names)}): choose one with --suite NAME "
                        "or a token store with --store FOLDER")


def resolve(spec: str, *, step: int | None = None, workspace: Workspace | str | Path | None = None) -> dict[str, Any]:
    """Turn a spec into a location plus provenance, without loading weights."""
    parsed = parse_suite_spec(spec)
    if parsed is not None:
        from empiricist.suite.suite import Suite

        suite = Suite(resolve_suite(parsed.suite, workspace))
        path = suite.checkpoint_path(parsed.size, step if step is not None else parsed.step)
        info = json.loads((path / "empiricist.json").read_text())
        return {"source": "suite", "path": str(path), "suite": str(suite.path), "size": parsed.size,
                "step": info["step"], "tokens_seen": info.get("tokens_seen"), "n_params": info.get("n_params"),
                "name": f"{suite.config.name}/{parsed.size}@step{info['step']}"}
    p = Path(spec).expanduser()
    if p.exists():
        if not (p / "config.json").exists():
            raise ArtifactError(f"{p} is not an HF model folder (no config.json)")
        return {"source": "path", "path": str(p), "name": p.name}
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise ArtifactError(f"model folder {spec} does not exist")
    return {"source": "hub", "hub_id": spec, "name": spec}


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else "no details"


def check_model_folder(path: Path) -> None:
    """Refuse, in one line, a local model folder we cannot load safely: pickle-only weights (never
    unpickled), or a safetensors file whose header or size is broken (checked without loading tensors)."""
    from safetensors import safe_open

    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        pickles = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt"))
        if pickles:
            raise ArtifactError(f"{path} holds only pickle weights ({pickles[0]}); empiricist never unpickles "
                                "files it did not write: convert them to safetensors (model.save_pretrained("
                                "..., safe_serialization=True) where you trust the file)")
        raise ArtifactError(f"{path} has no model.safetensors: not a loadable HF model folder")
    for f in weights:
        try:
            with safe_open(str(f), framework="pt") as st:
                names = list(st.keys())
                size = f.stat().st_size
                for name in names:  # header offsets must lie inside the file (get_slice reads no data)
                    st.get_slice(name)
        except Exception as e:  # noqa: BLE001 - safetensors raises its own and OS errors for broken files
            raise ArtifactError(f"{f}: not a valid safetensors file ({_first_line(e)}); re-download or "
                                "re-save it") from None
        if size < 8:
            raise ArtifactError(f"{f}: not a valid safetensors file (too short)")


def spec_model_hash(spec: str, workspace: Workspace | str | Path | None = None) -> str:
    """``load_model(spec).model_hash`` (what results are cached under), without loading a local model's
    weights: their recorded sha256. A hub model's hash needs its loaded config, so it is loaded."""
    prov = resolve(spec, workspace=workspace)
    if prov["source"] != "hub":
        sha = _weights_sha(Path(prov["path"]))
        if sha:
            return sha
    return load_model(spec, workspace=workspace).model_hash


def _weights_sha(path: Path) -> str | None:
    if is_complete(path):
        files = read_manifest(path)["files"]
        return files.get("model.safetensors")
    f = path / "model.safetensors"
    return sha256_file(f) if f.exists() else None


def check_vocab(model: Any, tokenizer: Any, where: str) -> None:
    """A tokenizer that can emit ids past the embedding table would index out of range deep in torch."""
    n_model = model.get_input_embeddings().weight.shape[0]
    n_tok = len(tokenizer)
    if n_tok > n_model:
        raise EmpiricistError(f"{where}: the tokenizer has {n_tok} tokens but the model's embedding has only "
                              f"{n_model} rows; this tokenizer does not belong to this model")


def load_model(
    spec: str,
    *,
    revision: str | None = None,
    step: int | None = None,
    dtype: torch.dtype = torch.float32,
    workspace: Workspace | str | Path | None = None,
    tokenizer: str | Path | None = None,
) -> ModelHandle:
    """Load any HF causal LM (suite / local folder / hub id) with its tokenizer; eval mode, on CPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from empiricist.suite.model import quiet_transformers

    quiet_transformers()
    prov = resolve(spec, step=step, workspace=workspace)
    if revision is not None and prov["source"] == "suite":
        raise EmpiricistError("use @step<N> (or step=) for suite models; revision= is for hub models")
    location = prov.get("path") or prov["hub_id"]
    kwargs: dict[str, Any] = {"revision": revision} if revision else {}
    if prov["source"] != "hub":
        check_model_folder(Path(location))
    where = f"model {spec!r}{f' at revision {revision}' if revision else ''}"
    try:
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, **kwargs)
    except OSError as e:
        raise ArtifactError(f"could not load {where}: {str(e).splitlines()[0]}") from None
    except Exception as e:  # noqa: BLE001 - files we did not write: any parse failure is bad input, not a bug
        raise ArtifactError(f"could not load {where}: its config or weights are broken "
                            f"({type(e).__name__}: {_first_line(e)})") from None
    try:
        tok = AutoTokenizer.from_pretrained(tokenizer or location, **({} if tokenizer else kwargs))
    except Exception as e:  # noqa: BLE001 - as above, for tokenizer.json / tokenizer_config.json / vocab files
        raise ArtifactError(f"could not load the tokenizer of {where} ({tokenizer or location}): broken or "
                            f"missing tokenizer files ({type(e).__name__}: {_first_line(e)})") from None
    model.eval()
    check_vocab(model, tok, spec)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    prov.update({"revision": revision, "dtype": str(dtype).replace("torch.", ""),
                 "model_type": model.config.model_type,
                 "commit": getattr(model.config, "_commit_hash", None)})
    if prov["source"] != "hub":
        prov["weights_sha256"] = _weights_sha(Path(prov["path"]))
    return ModelHandle(model=model, tokenizer=tok, provenance=prov)
