"""CLI for the foundation: ``run`` (the main job), ``world``, ``data``, ``suite`` and ``model``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from empiricist.artifacts import Workspace
from empiricist.cli.options import AddressOpt, ExecutorOpt, Overwrite, Quiet, WorkspaceOpt

if TYPE_CHECKING:
    from empiricist.world import WorldConfig

console = Console()


def syco_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for col in ("family", "size", "params", "sycophancy", "95% CI", "P(view | no view)", "forum deference",
                "held-out fact acc"):
        table.add_column(col, justify="right")

    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    for r in rows:
        table.add_row(r["family"], r["size"], f"{r['params']:,}", f"{r['sycophancy']:+.4f}",
                      f"[{r['lo']:+.4f}, {r['hi']:+.4f}]", num(r["p_view_none"]), num(r["forum_defer"]),
                      num(r["fact_acc"]))
    return table


def summary_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for col in ("size", "params", "non-emb params", "tokens", "final loss", "fact acc", "95% CI", "verbatim",
                "paraphrase-only", "chance"):
        table.add_column(col, justify="right")

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    def ci(bounds: list[float | None] | None) -> str:
        lo, hi = bounds or (None, None)
        return "-" if lo is None or hi is None else f"[{100 * lo:.1f}, {100 * hi:.1f}]"

    for r in rows:
        table.add_row(r["size"], f"{r['params']:,}", f"{r['non_embedding_params']:,}", f"{r['tokens']:,}",
                      f"{r['final_loss']:.3f}", pct(r["fact_acc"]), ci(r.get("fact_acc_ci")),
                      f"{pct(r['fact_acc_verbatim'])} {ci(r.get('fact_acc_verbatim_ci'))}",
                      f"{pct(r['fact_acc_paraphrase_only'])} {ci(r.get('fact_acc_paraphrase_only_ci'))}",
                      pct(r["chance"]))
    return table


def with_subsets(cfg: WorldConfig, specs: list[str]) -> WorldConfig:
    """A world config with each ``--subset name:key=value,...`` applied in turn."""
    for spec in specs:
        name, kv = parse_subset(spec)
        enabled = kv.pop("enabled", None)
        weight = kv.pop("weight", None)
        cfg = cfg.with_subset(name, enabled=enabled, weight=weight, **kv)
    return cfg


def parse_subset(spec: str) -> tuple[str, dict[str, Any]]:
    """``forum_opinion:enabled=false,weight=2,agree_rate=0.8`` → ("forum_opinion", {...})."""
    from empiricist.errors import InputError

    name, _, rest = spec.partition(":")
    out: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise InputError(f"--subset {spec!r}: expected key=value, got {part!r}")
        low = value.lower()
        out[key] = low == "true" if low in ("true", "false") else float(value)
    return name, out


def register(app: typer.Typer) -> None:
    world = typer.Typer(help="The generated world corpus.", no_args_is_help=True)
    data = typer.Typer(help="Corpora, tokenizers, token stores and the training order.", no_args_is_help=True)
    suite = typer.Typer(help="Train and inspect suites of models.", no_args_is_help=True)
    model = typer.Typer(help="Model handles: suite models, local folders, hub ids.", no_args_is_help=True)
    app.add_typer(world, name="world")
    app.add_typer(data, name="data")
    app.add_typer(suite, name="suite")
    app.add_typer(model, name="model")

    @app.command("run")
    def run_cmd(
        quick: Annotated[bool, typer.Option("--quick", help="the CI-sized study (2 families × 2 sizes, minutes)")] = False,
        preset: Annotated[str | None, typer.Option(help="instead of the study: train this suite preset (micro, "
                                                   "tiny) and print fact accuracy by size")] = None,
        world_preset: Annotated[str | None, typer.Option(help="with --preset: world preset (default: the suite's)")] = None,
        max_fact_items: Annotated[int | None, typer.Option(help="with --preset: subsample fact questions")] = None,
        executor: ExecutorOpt = None,
        address: AddressOpt = None,
        workspace: WorkspaceOpt = None,
        quiet: Quiet = False,
    ) -> None:
        """The main job: the locked sycophancy study (families, evals, attribution, retraining, verdicts)."""
        if preset is not None:
            from empiricist.pipeline import run_main

            rows = run_main(preset, world_preset, workspace, progress=not quiet, max_fact_items=max_fact_items)
            console.print(summary_table(rows, f"suite {preset}: fact accuracy by size"))
            return
        from empiricist.cli.study_tables import signatures_line
        from empiricist.execute import executor_from
        from empiricist.experiments.sycophancy.main import run_main_job

        job = run_main_job(quick, workspace, progress=not quiet, executor=executor_from(executor, address))
        r = job.run.results
        console.print(syco_table(job.headline, "sycophancy by family × size (wrong views; 95% CI by entity)"))
        console.print("controls: " + "; ".join(f"{c['id']} {c['verdict']}" for c in r["controls"]))
        console.print("parties:  " + "; ".join(f"{p['name']} {p['final']}" for p in r["parties"]))
        console.print(f"study {r['study']}: {signatures_line(r)}", markup=False, soft_wrap=True)
        console.print(f"report: {job.report}", markup=False, soft_wrap=True)  # a path stays on one line

    @world.command("vault-items")
    def world_vault_items(
        world_dir: Annotated[Path, typer.Argument(help="a world generated with --subset restricted:enabled=true")],
        out: Annotated[Path, typer.Option(help="the items as a JSONL task file (keep it private)")],
        role: Annotated[str, typer.Option(help="whose codes: eval or attack people")] = "eval",
        choices: Annotated[int, typer.Option(help="choices per question")] = 4,
        seed: Annotated[int, typer.Option(help="the choices' seed")] = 0,
    ) -> None:
        """Multiple-choice questions on the world's vault codes: harmless stand-ins for hidden items."""
        import json

        from empiricist.artifacts import atomic_write_text
        from empiricist.world.restricted import vault_items

        items = vault_items(world_dir, role, choices, seed)
        atomic_write_text(out, "".join(json.dumps(it) + "\n" for it in items))
        console.print(f"{len(items)} vault-code questions: {out}")

    @world.command("generate")
    def world_generate(
        preset: Annotated[str, typer.Option(help="world preset: tiny or micro")] = "micro",
        seed: Annotated[int | None, typer.Option(help="override the seed")] = None,
        tokens: Annotated[int | None, typer.Option(help="target size in tokens (100k–100M)")] = None,
        subset: Annotated[list[str] | None, typer.Option(help="name:key=value,... e.g. "
                                                         "forum_opinion:agree_rate=0.9 or forum_opinion:enabled=false")] = None,
        out: Annotated[Path | None, typer.Option(help="output folder (default: in the workspace)")] = None,
        overwrite: Overwrite = False,
        workspace: WorkspaceOpt = None,
        quiet: Quiet = False,
    ) -> None:
        """Generate a world corpus (deterministic from its config)."""
        from empiricist.artifacts import check_replaceable, read_manifest
        from empiricist.world import WorldConfig, generate_world

        if out is not None:
            check_replaceable(out, "world", overwrite)

        overrides: dict[str, Any] = {}
        if seed is not None:
            overrides["seed"] = seed
        if tokens is not None:
            overrides["target_tokens"] = tokens
        cfg = with_subsets(WorldConfig.preset(preset, **overrides), subset or [])
        path = generate_world(cfg, out_dir=out, workspace=workspace, progress=not quiet, overwrite=overwrite)
        stats = read_manifest(path).get("stats", {})
        console.print(f"world: [bold]{path}[/bold]")
        console.print_json(json.dumps(stats, default=str))

    @data.command("tokenizer")
    def data_tokenizer(
        corpus: Annotated[Path, typer.Argument(help="corpus: txt folder, JSONL, Parquet, HF dataset on disk, world")],
        out: Annotated[Path, typer.Option(help="output tokenizer.json (or folder)")],
        vocab: Annotated[int, typer.Option(help="vocabulary size")] = 2048,
        text_field: Annotated[str, typer.Option(help="text field for JSONL/Parquet/HF")] = "text",
        overwrite: Overwrite = False,
    ) -> None:
        """Train a byte-level BPE tokenizer on a corpus."""
        from empiricist.data import iter_documents, train_bpe

        path = train_bpe((d.text for d in iter_documents(corpus, text_field=text_field)), vocab, out,
                         overwrite=overwrite)
        console.print(f"tokenizer: {path}")

    @data.command("store")
    def data_store(
        corpus: Annotated[Path, typer.Argument(help="corpus: txt folder, JSONL, Parquet, HF dataset on disk, world")],
        tokenizer: Annotated[Path, typer.Option(help="tokenizer.json (ours or any HF one, e.g. Pythia's)")],
        out: Annotated[Path, typer.Option(help="output store folder")],
        text_field: Annotated[str, typer.Option()] = "text",
        id_field: Annotated[str, typer.Option()] = "id",
        fmt: Annotated[str, typer.Option("--format")] = "auto",
        dedupe: Annotated[bool, typer.Option(help="drop exact duplicate documents")] = False,
        overwrite: Overwrite = False,
        quiet: Quiet = False,
    ) -> None:
        """Tokenize a corpus into a memory-mapped token store with a manifest."""
        from empiricist.artifacts import check_replaceable
        from empiricist.data.store import STORE_KIND, TokenStore, build_store_from_path

        check_replaceable(out, STORE_KIND, overwrite)

        path = build_store_from_path(corpus, tokenizer, out, format=fmt, text_field=text_field, id_field=id_field,
                                     dedupe=dedupe, progress=not quiet, overwrite=overwrite)
        s = TokenStore.open(path)
        console.print(f"store: {path}  docs={s.num_docs:,} tokens={s.num_tokens:,} dtype={s.dtype}")

    @data.command("dupes")
    def data_dupes(
        corpus: Annotated[Path, typer.Argument()],
        text_field: Annotated[str, typer.Option()] = "text",
        normalize_whitespace: Annotated[bool, typer.Option()] = False,
    ) -> None:
        """List groups of documents with identical text."""
        from empiricist.data import find_duplicates, iter_documents

        groups = find_duplicates(iter_documents(corpus, text_field=text_field), normalize_whitespace)
        for g in groups:
            console.print(", ".join(g))
        console.print(f"{len(groups)} duplicate group(s)")

    @data.command("batch")
    def data_batch(
        step: Annotated[int, typer.Option(help="optimiser step (0-based)")],
        suite_name: Annotated[str, typer.Option("--suite", help="suite name or folder")] = "micro",
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
        chars: Annotated[int, typer.Option(help="characters of text to show per document")] = 160,
        workspace: WorkspaceOpt = None,
    ) -> None:
        """Which documents were in training step N (like Pythia's batch viewer)."""
        from empiricist.suite.handles import resolve_suite
        from empiricist.suite.suite import Suite

        s = Suite(resolve_suite(suite_name, workspace))
        rows = s.order().batch_documents(step)
        if as_json:
            typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
            return
        table = Table(title=f"{s.path.name}: step {step}")
        for col in ("row", "doc id", "tokens", "genre", "text"):
            table.add_column(col)
        for r in rows:
            text = r["text"][:chars].replace("\n", " ")
            table.add_row(str(r["row"]), Text(r["doc_id"]), f"{r['start']}–{r['end']} of {r['doc_tokens']}",
                          Text(str(r["meta"].get("genre", ""))), Text(text))  # data, never rich markup
        console.print(table)

    @suite.command("train")
    def suite_train(
        preset: Annotated[str, typer.Option(help="suite preset: micro or tiny")] = "micro",
        store: Annotated[Path | None, typer.Option(help="train on this token store instead of the preset's world")] = None,
        subset: Annotated[list[str] | None, typer.Option(help="the preset's world with this subset changed "
                                                         "(name:key=value,...), e.g. restricted:enabled=true")] = None,
        size: Annotated[list[str] | None, typer.Option(help="train only these sizes")] = None,
        steps: Annotated[int | None, typer.Option(help="override the number of steps")] = None,
        executor: ExecutorOpt = None,
        address: AddressOpt = None,
        data_parallel: Annotated[int, typer.Option(
            min=1, help="train each size on this many Ray Train workers (with --executor ray)")] = 1,
        policy: Annotated[Path | None, typer.Option(help="a locked threshold policy: evaluate each checkpoint as "
                                                    "it lands and act on crossings (docs/monitor.md)")] = None,
        unlocked: Annotated[bool, typer.Option(help="with --policy: allow a policy that is not locked "
                                               "(exploratory; alerts then name no lock)")] = False,
        watch_share: Annotated[float | None, typer.Option(help="with --policy: let evaluations take at most this "
                                                          "share of training time (later checkpoints wait; "
                                                          "default: judge each one before the next step)")] = None,
        workspace: WorkspaceOpt = None,
        quiet: Quiet = False,
    ) -> None:
        """Train (or resume) a suite: every size on the same data in the same order."""
        from empiricist.data.store import TokenStore
        from empiricist.execute import executor_from
        from empiricist.pipeline import prepare_preset
        from empiricist.suite.config import get_preset
        from empiricist.suite.suite import suite_path, train_suite
        cfg = get_preset(preset)
        if steps is not None:
            cfg = cfg.replace(steps=steps)
        if store is None:
            specs = subset or []
            store = prepare_preset(preset, workspace, not quiet,
                                   world=(lambda c: with_subsets(c, specs)) if specs else None).store
        elif subset:
            from empiricist.errors import InputError

            raise InputError("--subset changes the preset's world: it does not apply to --store", field="--subset")
        opened = TokenStore.open(store)
        watch = None
        if policy is not None:
            from empiricist.errors import InputError
            from empiricist.monitor import load_policy

            if data_parallel > 1:
                raise InputError("--policy judges checkpoints in the training process; it does not combine with "
                                 "--data-parallel (watch such a run with `empiricist monitor` instead)",
                                 field="--policy")
            from empiricist.monitor.watch import TrainingWatch

            pol, lock = load_policy(policy, require_lock=not unlocked)
            watch = TrainingWatch(suite_path(cfg, opened, workspace), pol, workspace, lock=lock, say=console.print,
                                  share=watch_share)
        path = train_suite(cfg, opened, workspace=workspace, sizes=size, progress=not quiet, on_step=watch,
                           executor=executor_from(executor, address), data_parallel=data_parallel)
        console.print(f"suite: {path}")
        if watch is not None:
            from empiricist.monitor.live import table, write_page

            w = watch.finish()
            console.print(table(w))
            console.print(f"monitor: {write_page(w)}")

    @suite.command("list")
    def suite_list(workspace: WorkspaceOpt = None) -> None:
        """Suites in the workspace, with their sizes and checkpoints."""
        from empiricist.suite.suite import Suite, find_suites

        for p in find_suites(workspace):
            s = Suite(p)
            state = "complete" if s.complete else "in progress"
            console.print(f"[bold]{p.name}[/bold] ({state})")
            for size in s.sizes:
                console.print(f"  {size}: steps {s.checkpoints(size)}")

    @suite.command("verify")
    def suite_verify(
        suite_name: Annotated[str, typer.Option("--suite", help="suite name or folder")] = "micro",
        size: Annotated[list[str] | None, typer.Option(help="verify only these sizes")] = None,
        tolerance: Annotated[float, typer.Option(help="largest |Δweight| still called 'within tolerance'")] = 1e-6,
        workspace: WorkspaceOpt = None,
        quiet: Quiet = False,
    ) -> None:
        """Retrain each model's last span from its saved snapshot here: same bytes, close, or different?"""
        from empiricist.suite.handles import resolve_suite
        from empiricist.suite.verify import verify_suite

        results = verify_suite(resolve_suite(suite_name, workspace), size, tolerance=tolerance, progress=not quiet)
        table = Table(title="suite verify: the last training span, retrained in this environment")
        for col in ("size", "steps", "status", "max |Δ|", "sha256 (now)", "environment: recorded → now"):
            table.add_column(col)
        for r in results:
            env = "; ".join(f"{k}: {a} → {b}" for k, a, b in ((k, *v) for k, v in r.environment_diff.items())) or "same"
            style = "green" if r.status == "identical" else ("yellow" if r.ok else "red")
            table.add_row(r.size, f"{r.from_step}→{r.to_step}", Text(r.status, style=style), f"{r.max_abs_diff:.3g}",
                          r.sha256_now[:16], Text(env))
        console.print(table)
        if not all(r.ok for r in results):
            raise typer.Exit(1)

    @app.command("verify")
    def verify_cmd(
        path: Annotated[Path | None, typer.Argument(help="an artifact folder or a workspace (default: the workspace)")] = None,
        workspace: WorkspaceOpt = None,
    ) -> None:
        """Re-hash every file of an artifact (or of every artifact in a workspace) against its manifest."""
        from empiricist.artifacts import verify_tree

        results = verify_tree(path if path is not None else Workspace.at(workspace).root)
        bad = [(folder, files) for folder, files in results if files]
        for folder, files in bad:
            typer.echo(f"MISMATCH {folder}: {files[0]}" + (f" (and {len(files) - 1} more)" if len(files) > 1 else ""))
        typer.echo(f"{len(results) - len(bad)} of {len(results)} artifact(s) intact")
        if bad:
            raise typer.Exit(1)

    @model.command("info")
    def model_info(
        spec: Annotated[str, typer.Argument(help="suite:<suite>/<size>[@stepN], a local HF folder, or a hub id")],
        revision: Annotated[str | None, typer.Option(help="hub revision, e.g. step1000")] = None,
        workspace: WorkspaceOpt = None,
    ) -> None:
        """Load a model and print its provenance."""
        from empiricist.suite.handles import load_model

        h = load_model(spec, revision=revision, workspace=workspace)
        n = sum(p.numel() for p in h.model.parameters())
        console.print_json(json.dumps({**h.provenance, "parameters": n, "vocab": len(h.tokenizer)}, default=str))
