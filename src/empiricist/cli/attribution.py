"""CLI for training-data attribution: ``attribute``, ``attribute-audit`` and ``attribute-validate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from empiricist.artifacts import Workspace
from empiricist.cli.options import AddressOpt, ExecutorOpt, Overwrite, Quiet, WorkspaceOpt

console = Console()


def _options(pairs: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when they can be (numbers, null, lists)."""
    from empiricist.errors import InputError

    out: dict[str, Any] = {}
    for p in pairs or []:
        if "=" not in p:
            raise InputError(f"--option must look like key=value, got {p!r}")
        k, v = p.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def register(app: typer.Typer) -> None:
    @app.command("attribute")
    def attribute_cmd(
        model: Annotated[str, typer.Option(help="model spec: suite:<suite>/<size>[@stepN], a local HF folder, a hub id")],
        prompt: Annotated[str | None, typer.Option(help="query prompt")] = None,
        target: Annotated[str | None, typer.Option(help="the continuation to explain (mind the leading space)")] = None,
        contrast: Annotated[str | None, typer.Option(help="explain log p(target) − log p(contrast) instead")] = None,
        queries: Annotated[Path | None, typer.Option(help="JSONL of {prompt, target[, contrast, id]}")] = None,
        method: Annotated[str, typer.Option(help="ekfac, trak, trackstar, tracin, bm25, minilm")] = "trackstar",
        docs: Annotated[Path | None, typer.Option(help="documents: txt/JSONL/Parquet/HF dataset folder")] = None,
        store: Annotated[Path | None, typer.Option(help="documents: a token store (default: the suite model's)")] = None,
        n_docs: Annotated[int | None, typer.Option(help="attribute to a random sample of N documents")] = None,
        sample_seed: Annotated[int, typer.Option(help="seed of the document sample")] = 0,
        top: Annotated[int, typer.Option(help="documents to show per query")] = 10,
        option: Annotated[list[str] | None, typer.Option(help="method option key=value, e.g. proj_dim=512")] = None,
        cache: Annotated[Path | None, typer.Option(help="cache folder (default: <workspace>/attribution-cache)")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
        chars: Annotated[int, typer.Option(help="characters of document text to show")] = 160,
        workspace: WorkspaceOpt = None, quiet: Quiet = False,
    ) -> None:
        """Which training documents most lowered (or raised) the model's loss on a continuation."""
        from empiricist.attribution import Query, attribute, load_documents, load_queries
        from empiricist.errors import InputError
        from empiricist.suite.handles import load_model

        if queries is not None:
            qs = load_queries(queries)
        elif prompt is not None and target is not None:
            qs = [Query(prompt, target, contrast, "q1")]
        else:
            raise InputError("give --prompt and --target, or --queries FILE")
        handle = load_model(model, workspace=workspace)
        documents = load_documents(handle, docs=docs, store=store, n_docs=n_docs, seed=sample_seed)
        res = attribute(handle, qs, documents, method, cache=cache or Workspace.at(workspace).cache("attribution-cache"),
                        options=_options(option), progress=not quiet)
        records = res.to_records(k=top, text_chars=chars if not as_json else 2000)
        if as_json:
            typer.echo(json.dumps({"method": method, "model": handle.name, "n_docs": len(documents),
                                   "seconds": round(res.seconds, 2), "units": res.units, "sign": res.sign,
                                   "queries": records}, ensure_ascii=False, indent=1))
            return
        for rec in records:
            table = Table(title=Text(f"{method}: {rec['prompt']!r} → {rec['target']!r}"
                          + (f" vs {rec['contrast']!r}" if rec["contrast"] else "")
                          + f"  ({len(documents):,} documents, {res.seconds:.1f} s)"))
            for col in ("rank", "score", "doc id", "text"):
                table.add_column(col)
            for t in rec["top"]:
                # Text, not a markup string: document text is data, never rich markup
                table.add_row(str(t["rank"]), f"{t['score']:.4g}", Text(t["doc_id"]), Text(t["text"].replace("\n", " ")))
            console.print(table)
        console.print(Text(f"scores: {res.units}; {res.sign}"))

    @app.command("attribute-audit")
    def attribute_audit_cmd(
        model: Annotated[str, typer.Option(help="model spec: suite:<suite>/<size>[@stepN], a local HF folder, a hub id")],
        docs: Annotated[Path | None, typer.Option(help="documents: txt/JSONL/Parquet/HF dataset folder")] = None,
        store: Annotated[Path | None, typer.Option(help="documents: a token store (default: the suite model's)")] = None,
        n: Annotated[int, typer.Option(help="documents sampled for the gradient checks")] = 32,
        seed: Annotated[int, typer.Option(help="seed of the sample")] = 0,
        exact: Annotated[bool, typer.Option(help="also check EK-FAC against an exact Gauss–Newton solve "
                                                 "(conjugate gradients; minutes, models ≤ 5M parameters)")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
        workspace: WorkspaceOpt = None,
    ) -> None:
        """Before trusting attribution scores: determinism, outlier gradients, the settings that break
        them and agreement between computations that must agree, each with its fix (exit 2 if any fails)."""
        from empiricist.attribution import load_documents
        from empiricist.attribution.audit import audit
        from empiricist.suite.handles import load_model

        handle = load_model(model, workspace=workspace)
        findings = audit(handle, load_documents(handle, docs=docs, store=store), n=n, seed=seed, exact=exact)
        if as_json:
            typer.echo(json.dumps([f.to_dict() for f in findings], indent=1))
        else:
            table = Table(title=Text(f"attribution audit: {handle.name}"))
            for col in ("check", "", "detail", "fix"):
                table.add_column(col)
            for f in findings:
                table.add_row(f.check, "ok" if f.ok else "FAIL", Text(f.detail), Text(f.fix))
            console.print(table)
        if not all(f.ok for f in findings):
            raise typer.Exit(2)

    @app.command("attribute-validate")
    def validate_cmd(
        suite: Annotated[str, typer.Option(help="suite whose world and store to use")] = "micro",
        store_dir: Annotated[Path | None, typer.Option("--store", help="a token store of a generated world "
                                                       "instead of a suite's (e.g. the micro preset's)")] = None,
        preset: Annotated[str, typer.Option(help="validation preset: micro (default), m3 (a larger model), epochs (many passes over a smaller corpus), smooth (a third of the learning rate) or tiny (CI)")] = "micro",
        method: Annotated[list[str] | None, typer.Option(help="methods (default: all)")] = None,
        out: Annotated[Path | None, typer.Option(help="output folder (resumable)")] = None,
        overwrite: Overwrite = False, executor: ExecutorOpt = None, address: AddressOpt = None,
        workspace: WorkspaceOpt = None, quiet: Quiet = False,
    ) -> None:
        """LDS by retraining, fact tracing and counterfactual removal for every method, as one table."""
        from empiricist.artifacts import config_hash
        from empiricist.attribution.validate import VALIDATION_PRESETS, validate
        from empiricist.errors import InputError
        from empiricist.suite.handles import resolve_suite
        from empiricist.suite.suite import Suite
        from empiricist.world.load import World

        if out is not None:
            from empiricist.artifacts import check_replaceable

            check_replaceable(out, "attribution_validation", overwrite, resumable="config.json")
        if preset not in VALIDATION_PRESETS:
            raise InputError(f"unknown preset {preset!r}; presets: {sorted(VALIDATION_PRESETS)}")
        cfg = VALIDATION_PRESETS[preset]
        if store_dir is not None:
            from empiricist.data.store import TokenStore

            store = TokenStore.open(store_dir)
        else:
            store = Suite(resolve_suite(suite, workspace)).store()
        world = World.open(store.world_path())
        folder = out or Workspace.at(workspace).dir("attribution") / f"validate-{preset}-{config_hash([cfg.to_dict(), store.fingerprint])}"
        from empiricist.execute import executor_from

        res = validate(world, store, cfg, folder, progress=not quiet, methods=tuple(method) if method else None,
                       overwrite=overwrite, executor=executor_from(executor, address))
        typer.echo(markdown_table(res))  # plain: a markdown table must not be wrapped
        agree = ", ".join(f"{k} {v:.2f}" for k, v in res["seed_agreement"].items())
        typer.echo(f"\n{res['n_docs']:,} documents, {res['n_fact_queries']} fact + {res['n_text_queries']} text "
                   f"queries; seed agreement (two retraining seeds, Spearman over subsets) {agree or 'n/a'}; "
                   f"results in {folder}/results.json, figure validation.png "
                   f"({res['elapsed_s'] / 60:.1f} min)")


def markdown_table(res: dict[str, Any]) -> str:
    """The validation table (also what docs/attribution.md shows)."""
    def ci(r: dict[str, Any], k: str, sign: str = "") -> str:
        return f"{r[k]:{sign}.3f} [{r[k + '_lo']:{sign}.3f}, {r[k + '_hi']:{sign}.3f}]"

    head = ("| method | LDS, fact queries | LDS, text queries | recall@10 | MRR | counterfactual ΔNLL vs random "
            "| nats per score unit (fact / text) | time (s) | peak RSS (MB) |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        units = f"{r.get('nats_per_unit_fact', float('nan')):.3g} / {r.get('nats_per_unit_text', float('nan')):.3g}"
        lines.append(f"| {r['method']} | {ci(r, 'lds_fact')} | {ci(r, 'lds_text')} | {r['recall@10']:.3f} | "
                     f"{r['mrr']:.3f} | {ci(r, 'cf_vs_random', '+')} | {units} | {r['seconds']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} |")
    if res.get("metasmoothness"):
        lines += ["", ("magic's metasmoothness (replays with w = 1 − ε on random halves; r, slope of actual on "
                       "predicted NLL change; 1, 1 = linear):"), "", "| ε | r | slope | mean abs change (nats) |",
                  "|---:|---:|---:|---:|"]
        lines += [f"| {m['scale']:g} | {m['r']:.3f} | {m['slope']:.3f} | {m['mean_abs_actual']:.4f} |"
                  for m in res["metasmoothness"]]
    return "\n".join(lines)
