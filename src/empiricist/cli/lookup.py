"""CLI for training-data lookup: ``index``, ``count``, ``docs``, ``next``, ``trace``, ``search``, ``contamination``."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from empiricist.artifacts import Workspace
from empiricist.cli.options import AddressOpt, ExecutorOpt, Overwrite, Quiet, WorkspaceOpt, units_executor

if TYPE_CHECKING:
    from rich.console import Console

    from empiricist.data.store import TokenStore
    from empiricist.lookup.ngram import NgramIndex
    from empiricist.suite.handles import ModelHandle


@cache
def _console() -> Console:
    """rich on first print: ``count`` prints one number and must not import it (≈ 50 ms, issue 15)."""
    from rich.console import Console

    return Console()


StoreOpt = Annotated[Path | None, typer.Option("--store", help="token store folder (default: the suite's)")]
SuiteOpt = Annotated[str | None, typer.Option("--suite", help="suite name or folder whose store to use "
                                              "(default: the workspace's only suite)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
TokensOpt = Annotated[bool, typer.Option("--tokens", help="match the phrase's token ids (one tokenisation) "
                                         "with the n-gram index, not its text")]
IgnoreCaseOpt = Annotated[bool, typer.Option("--ignore-case", "-i", help="text match ignoring case")]
SpaceOpt = Annotated[bool, typer.Option("--normalize-space", help="text match with every run of whitespace "
                                        "as one space")]


def open_default_ngram(store: TokenStore, workspace: Workspace | None, progress: bool = True) -> NgramIndex:
    from empiricist.lookup.ngram import open_default_ngram as open_ngram  # numpy and the engine: on use only

    return open_ngram(store, workspace, progress=progress)


def _counts(store: TokenStore, query: Any, tokens: bool, ignore_case: bool, normalize_space: bool,
            workspace: Workspace | None, quiet: bool) -> dict[str, int]:
    """``text``: occurrences in the documents' text; ``tokens``: of its one tokenisation (the n-gram index),
    when asked for, or for free when that index is already built and the match is not normalised."""
    from empiricist.artifacts import is_complete
    from empiricist.lookup.ngram_build import default_ngram_index_path

    out: dict[str, int] = {}
    if not tokens:
        from empiricist.lookup.text import TextIndex, TextNorm

        out["text"] = TextIndex.open(store, TextNorm(ignore_case, normalize_space), progress=not quiet,
                                     workspace=workspace).count(query)
    if tokens or (not ignore_case and not normalize_space
                  and is_complete(default_ngram_index_path(store, workspace))):
        out["tokens"] = open_default_ngram(store, workspace, progress=not quiet).count(query)
    return out


def open_store(store: Path | None, suite: str | None, workspace: Workspace | None) -> TokenStore:
    """The store to look in (indexes built for it go to its own workspace, else ``workspace``)."""
    from empiricist.data.store import TokenStore

    if store is not None:
        return TokenStore.open(store)
    from empiricist.suite.handles import choose_suite
    from empiricist.suite.suite import Suite

    return Suite(choose_suite(suite, workspace)).store()


def _query(text: str | None, ids: str | None) -> Any:
    from empiricist.errors import InputError

    if ids:
        try:
            return [int(x) for x in ids.replace(",", " ").split()]
        except ValueError:
            raise InputError(f"--ids must be integers separated by spaces or commas, got {ids!r}") from None
    if text is None:
        raise InputError("give a query text or --ids")
    return text


def _print_docs(store: TokenStore, hits: list[Any], chars: int, score: str = "occurrences") -> None:
    """One table for n-gram, text, trace and search hits (they name the document index and id differently).

    ``score`` names the number column (occurrences, BM25 score, cosine); metadata columns are the keys the
    hits' documents actually have (a generated world's genre; a JSONL corpus's own fields), so a real
    corpus never shows an empty column."""
    rows = [h.to_dict() if hasattr(h, "to_dict") else dict(h) for h in hits]
    metas = [d.get("meta") or {} for d in rows]
    keys = [k for k in dict.fromkeys(k for m in metas for k in m) if any(_short(m.get(k)) for m in metas)][:3]
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for col in ("rank", "doc id", score, *keys, "text"):
        table.add_column(col)
    for i, (d, meta) in enumerate(zip(rows, metas, strict=True), 1):
        index = d.get("index", d.get("doc_index"))
        value = d.get("occurrences", d.get("score", ""))
        text = store.doc_text(int(index))[:chars].replace("\n", " ")
        table.add_row(str(i), Text(str(d.get("id", d.get("doc_id")))),
                      f"{value:.3g}" if isinstance(value, float) else str(value),
                      *(Text(_short(meta.get(k))) for k in keys), Text(text))  # data, never rich markup
    _console().print(table)


def _short(value: Any) -> str:
    if value is None or value == "":
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 24 else text[:23] + "…"


def register(app: typer.Typer) -> None:
    index = typer.Typer(help="Build training-data indexes over a token store.", no_args_is_help=True)
    app.add_typer(index, name="index")

    @index.command("build")
    def index_build(
        kind: Annotated[list[str] | None, typer.Option(help="text, ngram, bm25, minilm, model (default: text, ngram, "
                                                       "bm25)")] = None,
        model: Annotated[str | None, typer.Option(help="model spec for --kind model (default: the suite's largest)")] = None,
        chunk_tokens: Annotated[int | None, typer.Option(help="index chunks of N tokens instead of documents")] = None,
        ngram_shards: Annotated[int, typer.Option(help="n-gram index in N document-range shards, one unit of work "
                                                  "each (same answers as one shard)")] = 1,
        executor: ExecutorOpt = None, address: AddressOpt = None,
        store: StoreOpt = None, suite: SuiteOpt = None, workspace: WorkspaceOpt = None, quiet: Quiet = False,
    ) -> None:
        """Build (or reuse) the n-gram index and search indexes for a store (with --executor: embedding
        and n-gram shards in units of work on it)."""
        from empiricist.lookup import build_ngram_index, build_search_index

        units = units_executor(executor, address)
        s = open_store(store, suite, workspace)
        for k in kind or ["text", "ngram", "bm25"]:
            if k == "text":
                from empiricist.lookup.text import build_text_index

                _console().print(f"text: {build_text_index(s, progress=not quiet, workspace=workspace)}")
                continue
            if k == "ngram":
                path = build_ngram_index(s, progress=not quiet, workspace=workspace, shards=ngram_shards,
                                         executor=units)
                _console().print(f"ngram: {path}")
                continue
            handle = _model_for(k, model, suite, workspace)
            path = build_search_index(s, kind=k, chunk_tokens=chunk_tokens, model=handle, progress=not quiet,
                                      workspace=workspace, executor=units)
            _console().print(f"{k}: {path}")

    @app.command("count")
    def count_cmd(text: Annotated[str | None, typer.Argument(help="the phrase, as it appears in document text")] = None,
                  ids: Annotated[str | None, typer.Option(help="token ids instead of text (implies --tokens)")] = None,
                  tokens: TokensOpt = False, ignore_case: IgnoreCaseOpt = False, normalize_space: SpaceOpt = False,
                  as_json: JsonOpt = False, store: StoreOpt = None, suite: SuiteOpt = None,
                  workspace: WorkspaceOpt = None, quiet: Quiet = False) -> None:
        """How often a phrase occurs in the training documents (every tokenisation; --tokens: one)."""
        s = open_store(store, suite, workspace)
        counts = _counts(s, _query(text, ids), tokens or ids is not None, ignore_case, normalize_space, workspace,
                         quiet)
        if as_json:
            typer.echo(json.dumps(counts))
            return
        typer.echo(str(counts.get("text", counts.get("tokens"))))
        if "text" in counts and "tokens" in counts and counts["text"] != counts["tokens"]:
            typer.echo(f"note: {counts['text']} in the text, {counts['tokens']} as this one tokenisation "
                       "(--tokens); the rest are other tokenisations or inside longer tokens", err=True)

    @app.command("docs")
    def docs_cmd(text: Annotated[str | None, typer.Argument(help="the phrase, as it appears in document text")] = None,
                 ids: Annotated[str | None, typer.Option(help="token ids instead of text (implies --tokens)")] = None,
                 tokens: TokensOpt = False, ignore_case: IgnoreCaseOpt = False, normalize_space: SpaceOpt = False,
                 max_docs: Annotated[int, typer.Option()] = 10, chars: Annotated[int, typer.Option()] = 120,
                 as_json: JsonOpt = False,
                 store: StoreOpt = None, suite: SuiteOpt = None, workspace: WorkspaceOpt = None,
                 quiet: Quiet = False) -> None:
        """Training documents containing a phrase, most occurrences first, with their metadata."""
        s = open_store(store, suite, workspace)
        query = _query(text, ids)
        if tokens or ids is not None:
            hits = open_default_ngram(s, workspace, progress=not quiet).documents(query, max_docs=max_docs)
        else:
            from empiricist.lookup.text import TextIndex, TextNorm

            index = TextIndex.open(s, TextNorm(ignore_case, normalize_space), progress=not quiet, workspace=workspace)
            hits = index.documents(query, max_docs=max_docs)
        if as_json:
            typer.echo(json.dumps([h.to_dict() for h in hits], ensure_ascii=False, indent=1, default=str))
        else:
            _print_docs(s, hits, chars)

    @app.command("next")
    def next_cmd(text: Annotated[str | None, typer.Argument()] = None,
                 ids: Annotated[str | None, typer.Option()] = None, top: Annotated[int, typer.Option()] = 10,
                 store: StoreOpt = None, suite: SuiteOpt = None, workspace: WorkspaceOpt = None) -> None:
        """∞-gram next-token distribution: the longest suffix of the query seen in training, and what followed."""
        idx = open_default_ngram(open_store(store, suite, workspace), workspace)
        dist = idx.next_token_distribution(_query(text, ids))
        _console().print(f"longest suffix seen: {dist.suffix_len} tokens, {dist.count:,} occurrences"
                         + (" (sampled)" if dist.approx else ""))
        from rich.table import Table
        from rich.text import Text

        table = Table()
        for col in ("token", "id", "count", "p"):
            table.add_column(col)
        probs = dist.probs()
        for tid, c in dist.top(top):
            table.add_row(Text(repr(idx.decode([tid]))), str(tid), f"{c:,}", f"{probs[tid]:.3f}")
        _console().print(table)

    @app.command("trace")
    def trace_cmd(
        prompt: Annotated[str, typer.Option(help="prompt given to the model")] = "",
        text: Annotated[str | None, typer.Option(help="trace this output instead of generating one")] = None,
        model: Annotated[str | None, typer.Option(help="model spec (default: the suite's largest model)")] = None,
        max_new_tokens: Annotated[int, typer.Option()] = 48,
        min_len: Annotated[int, typer.Option(help="minimum span length in tokens")] = 5,
        max_freq: Annotated[int, typer.Option(help="drop spans occurring more often than this")] = 1000,
        max_docs: Annotated[int, typer.Option()] = 5,
        as_json: JsonOpt = False,
        store: StoreOpt = None, suite: SuiteOpt = None, workspace: WorkspaceOpt = None, quiet: Quiet = False,
    ) -> None:
        """Generate with a model (or take --text) and trace verbatim spans of the output to training documents."""
        from empiricist.evals.generate import continue_text
        from empiricist.lookup import trace_text

        s = open_store(store, suite, workspace)
        idx = open_default_ngram(s, workspace)
        if text is None:
            handle = _model_for("model", model, suite, workspace)
            text = continue_text(handle, prompt, max_new_tokens)
        result = trace_text(idx, text, prompt=prompt or None, min_len=min_len, max_freq=max_freq, max_docs=max_docs)
        from empiricist.lookup.text import TextIndex

        in_text = TextIndex.open(s, progress=not quiet, workspace=workspace)  # each span as the text holds it
        spans = [{**span.to_dict(), "text_count": in_text.count(span.to_dict()["text"])} for span in result.spans]
        if as_json:
            typer.echo(json.dumps({"prompt": prompt, "output": text, **result.to_dict(), "spans": spans},
                                  ensure_ascii=False, indent=1, default=str))
            return
        from rich.text import Text

        _console().print(f"[bold]prompt[/bold] {prompt!r}\n[bold]output[/bold] {text!r}")
        for d in spans:
            _console().print(Text.assemble("\n", (repr(d.get("text")), "green"),
                                           f" (in the text {d['text_count']:,}; as these tokens {d.get('count'):,})"))
            _print_docs(s, d.get("documents", []), 100)

    @app.command("search")
    def search_cmd(
        query: Annotated[str, typer.Argument()],
        kind: Annotated[str, typer.Option(help="bm25, minilm or model")] = "bm25",
        model: Annotated[str | None, typer.Option()] = None, k: Annotated[int, typer.Option("-k", "--k")] = 10,
        chars: Annotated[int, typer.Option()] = 120, as_json: JsonOpt = False,
        store: StoreOpt = None, suite: SuiteOpt = None, workspace: WorkspaceOpt = None, quiet: Quiet = False,
    ) -> None:
        """Semantic (FAISS over MiniLM or the model's own states) or lexical (BM25) search of training documents."""
        from empiricist.lookup import SearchIndex, build_search_index

        s = open_store(store, suite, workspace)
        handle = _model_for(kind, model, suite, workspace)
        path = build_search_index(s, kind=kind, model=handle, progress=not quiet, workspace=workspace)
        hits = SearchIndex.open(path, s, model=handle).search(query, k=k)
        if as_json:
            typer.echo(json.dumps([h.to_dict() for h in hits], ensure_ascii=False, indent=1, default=str))
        else:
            _print_docs(s, hits, chars, score="bm25 score" if kind == "bm25" else "cosine")

    @app.command("contamination")
    def contamination_cmd(
        items: Annotated[Path, typer.Argument(help="eval items (JSONL)")],
        fields: Annotated[str, typer.Option(help="comma-separated item fields whose text is checked")] = "question,answer",
        n: Annotated[int, typer.Option(help="n-gram length")] = 13,
        min_fraction: Annotated[float, typer.Option(help="flag an item when this fraction of its n-grams occur "
                                                    "(0 = any one n-gram, lm-eval's rule)")] = 0.8,
        model: Annotated[list[str] | None, typer.Option(help="models for membership scores (Min-K%, loss, zlib)")] = None,
        out: Annotated[Path | None, typer.Option(help="write per-item JSONL here")] = None,
        overwrite: Overwrite = False,
        store: StoreOpt = None, suite: SuiteOpt = None, workspace: WorkspaceOpt = None, quiet: Quiet = False,
    ) -> None:
        """Per item: longest verbatim overlap, matching n-grams, documents involved; optional membership scores."""
        from empiricist.artifacts import atomic_write_text, check_replaceable
        from empiricist.data.readers import iter_records
        from empiricist.lookup import contamination_report, membership_scores
        from empiricist.suite.handles import load_model

        if out:
            check_replaceable(out, None, overwrite)  # before the work: never clobber someone's file

        rows = [rec for _, rec in iter_records(items)]
        s = open_store(store, suite, workspace)
        report = contamination_report(rows, s, open_default_ngram(s, workspace, progress=not quiet), n=n, fields=fields.split(","),
                                      min_fraction=min_fraction)
        out_rows = [r.to_dict() for r in report]
        for spec in model or []:
            h = load_model(spec, workspace=workspace)
            for row, m in zip(out_rows, membership_scores(h, rows, fields=fields.split(","), progress=not quiet),
                              strict=True):
                row[f"membership[{h.name}]"] = m.scores()
        flagged = sum(r["contaminated"] for r in out_rows)
        _console().print(f"{flagged} of {len(out_rows)} items contaminated ({n}-grams, min fraction {min_fraction})")
        if out:
            atomic_write_text(out, "".join(json.dumps(r, default=str) + "\n" for r in out_rows))
            _console().print(f"per-item results: {out}")


def _model_for(kind: str, spec: str | None, suite: str | None, workspace: Workspace | None) -> ModelHandle | None:
    if kind != "model":
        return None
    from empiricist.suite.handles import choose_suite, load_model
    from empiricist.suite.suite import Suite

    if spec is None:
        s = Suite(choose_suite(suite, workspace))
        spec = f"suite:{s.path}/{s.sizes[-1]}"
    return load_model(spec, workspace=workspace)


def register_validate(app: typer.Typer) -> None:
    @app.command("lookup-validate")
    def lookup_validate(
        kind: Annotated[list[str] | None, typer.Option(help="retrievers: trace, bm25, minilm, model")] = None,
        max_items: Annotated[int, typer.Option(help="fact questions per kind (verbatim / paraphrase-only)")] = 300,
        query: Annotated[str, typer.Option(help="'prompt' (cloze + answer) or 'question' (QA form + answer)")] = "prompt",
        membership: Annotated[bool, typer.Option(help="also score membership inference with every suite size")] = True,
        out: Annotated[Path | None, typer.Option(help="write the markdown tables here")] = None,
        overwrite: Overwrite = False,
        suite: SuiteOpt = None, workspace: WorkspaceOpt = None, quiet: Quiet = False,
    ) -> None:
        """Score tracing, search and contamination detection against the world's ground truth (one table each)."""
        from empiricist.artifacts import check_replaceable
        from empiricist.lookup import (
            SearchIndex,
            build_search_index,
            evaluate_contamination,
            retrieval_groundtruth,
            to_markdown,
        )
        from empiricist.suite.handles import choose_suite, load_model
        from empiricist.suite.suite import Suite
        from empiricist.world import World

        if out:
            check_replaceable(out, None, overwrite)
        s = Suite(choose_suite(suite, workspace))
        store = s.store()  # the suite just chosen: open_store would resolve it a second time
        world = World.open(store.world_path())
        ngram = open_default_ngram(store, workspace, progress=not quiet)
        retrievers: dict[str, Any] = {}
        for k in kind or ["trace", "bm25", "minilm", "model"]:
            if k == "trace":
                retrievers["trace"] = ngram
                continue
            handle = _model_for(k, None, suite, workspace)
            path = build_search_index(store, kind=k, model=handle, progress=not quiet, workspace=workspace)
            retrievers[k if k != "model" else f"model ({s.sizes[-1]})"] = SearchIndex.open(path, store, model=handle)
        retrieval = retrieval_groundtruth(world, store, retrievers, max_items=max_items, query=query,
                                          progress=not quiet)
        models = {size: load_model(f"suite:{s.path}/{size}") for size in s.sizes} if membership else {}
        contamination = evaluate_contamination(world, store, ngram, models, progress=not quiet)
        text = ("## Retrieval of the documents that state a fact (top 10)\n\n" + to_markdown(retrieval)
                + "\n## Contamination detection against planted items\n\n" + to_markdown(contamination))
        _console().print(text)
        if out:
            from empiricist.artifacts import atomic_write_text

            atomic_write_text(out, text)
