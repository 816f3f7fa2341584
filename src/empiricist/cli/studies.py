"""CLI for studies: ``study check|keygen|lock|verify|amend|run|bundle|replicate``, hidden items
``study commit|publish|audit``, ``study blind|unblind|position``, and ``ledger``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from empiricist.cli.options import AddressOpt, ExecutorOpt, Quiet, WorkspaceOpt
from empiricist.cli.study_tables import experiment_table, signatures_line

console = Console()
Spec = Annotated[Path, typer.Argument(help="study spec (TOML)")]
Prepare = Annotated[bool, typer.Option("--prepare", help="build the spec's suite preset (world, store, models) "
                                       "through the pipeline if the workspace lacks it")]


def power_table(report: dict[str, Any]) -> Table:
    parties = list(next(iter(report["worlds"].values()))["parties"])
    table = Table(title=f"power: {report['n_sims']} simulated studies per world, {report['n_items']} items "
                        f"({report['n_clusters']} clusters)")
    table.add_column("world of")
    table.add_column("controls\npass", justify="right")
    for p in parties:
        table.add_column(f"{p}\ncorroborated", justify="right")
        table.add_column(f"{p}\nfalsified", justify="right")
    for world, w in report["worlds"].items():
        cells = [f"{w['controls_pass']:.0%}"]
        for p in parties:
            cells += [f"{w['parties'][p]['corroborated']:.0%}", f"{w['parties'][p]['falsified']:.0%}"]
        table.add_row(world, *cells)
    return table


def verdict_table(results: dict[str, Any]) -> Table:
    table = Table(title=f"study {results['study']}: {results['status']}")
    for col in ("party", "prediction", "estimate", "90% CI", "adj. p holds", "adj. p fails", "verdict"):
        table.add_column(col, justify="right" if col in ("estimate", "adj. p holds", "adj. p fails") else "left")
    for c in results["controls"]:
        table.add_row("control", c["id"], f"{c['estimate']:.3f}", f"[{c['lo']:.3f}, {c['hi']:.3f}]",
                      f"{c['p_hold']:.3g}", f"{c['p_fail']:.3g}", c["verdict"])
    for p in results["predictions"]:
        table.add_row(p["party"], p["id"], f"{p['estimate']:.3f}", f"[{p['lo']:.3f}, {p['hi']:.3f}]",
                      f"{p['p_hold_adj']:.3g}", f"{p['p_fail_adj']:.3g}", p["verdict"])
    for p in results["parties"]:
        table.add_row(p["name"], f"[bold]{p['combine']}[/bold]", "", "", "", "", f"[bold]{p['final']}[/bold]")
    return table


def _print_verdicts(r: dict[str, Any]) -> None:
    console.print(verdict_table(r))


def _print_experiment(r: dict[str, Any]) -> None:
    console.print(experiment_table(r))
    g = r["grid"]
    console.print(f"grid: {g['path']} ({'reused' if g['reused'] else 'trained'}, {g['n_runs']} runs)")


def _print_power(report: dict[str, Any]) -> None:
    console.print(power_table(report))
    for flag in report["flags"]:
        console.print(f"[red]{flag}[/red]" if flag.startswith(("NOT AT RISK", "CANNOT", "EXPECT", "CONTROLS CAN"))
                      else f"[yellow]{flag}[/yellow]")
    if not report["flags"]:
        console.print("[green]every party is at risk and the design has the planned power[/green]")


def _print_plan(report: dict[str, Any]) -> None:
    console.print(f"experiment {report['experiment']}, grid {report['grid']} (config hash {report['config_hash']}): "
                  f"{report['plan']}.")
    for p in report["parties"]:
        console.print(f"party {p['name']}: {p['position']}\n  predicts {p['predicts']}; combined: {p['combine']}")
    for flag in report["flags"]:
        console.print(f"[red]{flag}[/red]" if flag.startswith(("NOT AT RISK", "CANNOT")) else f"[yellow]{flag}[/yellow]")
    if not report["flags"]:
        console.print("[green]every party is at risk[/green]")


def _print_flags(report: dict[str, Any]) -> None:
    for flag in report.get("flags", []):
        console.print(f"[yellow]{flag}[/yellow]")


# How each study kind's check report and results print (presentation only; the numbers come from the kind).
# A kind without an entry prints its flags, and its outcome (printed for every kind).
CHECK_PRINTERS = {"eval": _print_power, "experiment": _print_plan}
RESULT_PRINTERS = {"eval": _print_verdicts, "experiment": _print_experiment}


def load_experiments() -> None:
    """Register the shipped experiments (the CLI's edge is where plug-ins are imported; docs/design.md)."""
    import empiricist.experiments.compute_elo.study
    import empiricist.experiments.gradualism.study
    import empiricist.experiments.probe_evasion
    import empiricist.experiments.safeguards.study
    import empiricist.experiments.sycophancy.study
    import empiricist.experiments.unlearning.study  # noqa: F401


def _lock_state(spec: Path) -> None:
    """Say whether the spec is locked and, if it changed since, what changed."""
    from empiricist.studies.fields import read_toml
    from empiricist.studies.integrity import verified_status
    from empiricist.studies.lock import LockMismatch, check_spec, read_lock, signature_state

    lock = read_lock(spec)
    console.print(f"lock: {verified_status(spec)}" + (f"; signatures: {signature_state(lock)}" if lock else ""),
                  markup=False)
    if lock is not None:
        try:
            check_spec(read_toml(spec), lock, spec)
        except LockMismatch as e:
            console.print(f"[red]{e}[/red]")


def register(app: typer.Typer) -> None:
    study = typer.Typer(help="Pre-registered studies: check, lock, run, bundle, replicate.", no_args_is_help=True)
    app.add_typer(study, name="study")

    @study.command("check")
    def check_cmd(spec: Spec, sims: Annotated[int | None, typer.Option(help="simulated studies per world "
                                                                      "(default: the spec's power.n_sims)")] = None,
                  ) -> None:
        """Validate a spec and simulate its power in each party's predicted world."""
        from empiricist.studies import kind_of, load_spec
        from empiricist.studies.signing import blocking_flags

        load_experiments()
        s = load_spec(spec)
        console.print(f"[bold]{s.id}[/bold]: valid spec, {len(s.parties)} part{'y' if len(s.parties) == 1 else 'ies'}"
                      f" ({'adversarial collaboration' if s.adversarial else 'single party'}), "
                      f"{sum(len(p.predictions) for p in s.parties)} predictions, {len(s.controls)} controls")
        for w in s.warnings:
            console.print(f"[yellow]warning:[/yellow] {w}")
        _lock_state(spec)
        report = kind_of(s).check(s, n_sims=sims)
        blocking = blocking_flags(report)
        for flag in blocking:
            console.print(flag, style="red", markup=False)
        CHECK_PRINTERS.get(report["kind"], _print_flags)(report)
        if blocking:
            console.print(f"[red]{spec}: the design cannot settle its question ({len(blocking)} flag(s) above); "
                          "it cannot be locked[/red]")
            raise typer.Exit(2)

    @study.command("keygen")
    def keygen_cmd(spec: Spec, party: Annotated[str, typer.Option(help="the party the key signs for")],
                   signer: Annotated[str | None, typer.Option(help="who holds the key (default: the party's "
                                                              "name)")] = None,
                   out: Annotated[Path | None, typer.Option(help="folder for the private key (default "
                                                            "~/.config/empiricist/keys/, outside the repository)")]
                   = None,
                   overwrite: Annotated[bool, typer.Option("--overwrite", help="replace this party/signer's key")]
                   = False) -> None:
        """Make an ed25519 key for a party; its public key goes into the study's registry <spec>.keys.toml."""
        from empiricist.studies.signing import keygen

        load_experiments()
        pair, registry = keygen(spec, party, signer, out=out, overwrite=overwrite)
        console.print(f"private key: {pair.private_path} (mode 0600; keep it secret, never commit it)", markup=False)
        console.print(f"public key:  {pair.public_key}", markup=False)
        console.print(f"registry:    {registry} (commit it with the spec)\nsign with: empiricist study lock {spec} "
                      f"--party {party} --key {pair.private_path}", markup=False)

    @study.command("lock")
    def lock_cmd(spec: Spec, party: Annotated[str, typer.Option(help="the party signing")],
                 signer: Annotated[str | None, typer.Option(help="who signs for it (with --key: default the "
                                                            "registry's name for the key)")] = None,
                 key: Annotated[Path | None, typer.Option(help="ed25519 private key to sign with (see study "
                                                          "keygen); without it the sign-off is name-only")] = None,
                 workspace: WorkspaceOpt = None, prepare: Prepare = False) -> None:
        """Sign the spec for one party (the lock is complete once every party has signed)."""
        from empiricist.studies.lock import lock_path, signature_state
        from empiricist.studies.signing import sign

        load_experiments()
        lock = sign(spec, party, signer, workspace=workspace, prepare=prepare, key=key)
        waiting = [p for p in lock["parties"] if p not in {s["party"] for s in lock["signoffs"]}]
        last = lock["signoffs"][-1]
        how = f"signed with key {last['key']}" if last.get("key") else "[yellow]UNSIGNED (name-only)[/yellow]"
        console.print(f"{lock_path(spec)}: sign-off by {party} ({last['signer']}), {how}; spec sha256 "
                      f"{lock['spec_sha256'][:16]}, {len(lock['artifacts'])} artifacts pinned")
        console.print("[green]lock complete[/green]" if lock["complete"] else f"waiting for: {', '.join(waiting)}")
        console.print(f"signatures: {signature_state(lock)}", markup=False)

    @study.command("verify")
    def verify_cmd(path: Annotated[Path, typer.Argument(help="study spec (TOML) or its .lock.json")]) -> None:
        """Check a lock: party set, stored spec copy, hash chain, amendments, signatures (exit 2 if any fails)."""
        from empiricist.studies.fields import read_toml
        from empiricist.studies.integrity import check_lock

        spec = path.with_name(path.name.removesuffix(".lock.json") + ".toml") if path.name.endswith(".lock.json") \
            else path
        checks = check_lock(spec, doc=read_toml(spec) if spec.is_file() else None)
        for c in checks:
            console.print(c.line(), markup=False, highlight=False, style="green" if c.ok else "red")
        if not all(c.ok for c in checks):
            raise typer.Exit(2)

    @study.command("commit")
    def commit_cmd(items: Annotated[Path, typer.Argument(help="the hidden items: a JSONL task file")],
                   out: Annotated[Path, typer.Option(help="folder for commitment.json (public) and "
                                                          "items.private.jsonl (never publish it)")],
                   public_field: Annotated[list[str] | None, typer.Option(
                       "--public-field", help="a field whose value counts are declared public (repeatable)")] = None,
                   n: Annotated[int | None, typer.Option(help="commit a seeded sample of this many items")] = None,
                   seed: Annotated[int, typer.Option(help="the sample's seed")] = 0) -> None:
        """Commit hidden items: a salted hash each, a Merkle root the study locks (task source hidden:<out>)."""
        from empiricist.studies.hidden import commit_file

        c = commit_file(items, out, tuple(public_field or ()), n, seed)
        console.print(f"committed {len(c.leaves)} items: root {c.root}", markup=False, highlight=False)
        console.print(f"public: {out / 'commitment.json'}  private (keep it so): {out / 'items.private.jsonl'}",
                      markup=False, highlight=False)

    @study.command("publish")
    def publish_cmd(spec: Spec, out: Annotated[Path | None, typer.Option(help="the public bundle's folder "
                                                                          "(default: <spec>.public)")] = None,
                    results: Annotated[Path | None, typer.Option(help="the run's folder (default: <spec>.results)")]
                    = None) -> None:
        """Write the public bundle of a run with hidden tasks: every score and verdict, nothing of the items."""
        from empiricist.studies.audit import publish_run

        console.print(f"public bundle: {publish_run(spec, results, out)} (scanned: no hidden text)")

    @study.command("audit")
    def audit_cmd(private: Annotated[Path, typer.Argument(help="the study spec (TOML), or a private bundle "
                                                                "(items with salts, every row)")],
                  public: Annotated[Path, typer.Argument(help="the public bundle (commitment, redacted rows, stats)")],
                  root: Annotated[str | None, typer.Option(help="with a private bundle: the Merkle root the "
                                                                "study locked")] = None,
                  results: Annotated[Path | None, typer.Option(help="with a spec: the run's folder")] = None,
                  public_field: Annotated[list[str] | None, typer.Option(
                      "--public-field", help="a row field declared public when the bundle was written")] = None,
                  ) -> None:
        """Check a public bundle of hidden items against the private run and the locked root (exit 2 if not)."""
        from empiricist.studies.audit import audit, audit_run

        if private.suffix == ".toml":
            problems = audit_run(private, public, results, tuple(public_field or ("cluster",)))
        else:
            problems = audit(private, public, root=root, public_fields=tuple(public_field or ()))
        for p in problems:
            console.print(f"FAIL {p}", markup=False, highlight=False, style="red")
        if problems:
            raise typer.Exit(2)
        console.print("ok: the private items match the committed root, the public rows are their redaction, "
                      "and the public statistics follow from them", style="green")

    @study.command("blind")
    def blind_cmd(spec: Spec, party: Annotated[str, typer.Option(help="the party looking")],
                  results: Annotated[Path | None, typer.Option(help="the run's folder")] = None) -> None:
        """Each condition's scores under shuffled labels (recorded in the lock's chain)."""
        from empiricist.studies.blinding import blinded_view

        view = blinded_view(spec, party, results)
        for task, conds in view["tasks"].items():
            table = Table(title=f"{task} (blinded)")
            for col in ("condition", "items", "mean score"):
                table.add_column(col)
            for label, v in conds.items():
                table.add_row(label, str(v["n"]), f"{v['mean']:.3f}")
            console.print(table)

    @study.command("unblind")
    def unblind_cmd(spec: Spec, party: Annotated[str, typer.Option(help="the party unblinding")],
                    results: Annotated[Path | None, typer.Option(help="the run's folder")] = None) -> None:
        """Which model each blinded condition is (the time is recorded in the lock's chain)."""
        from empiricist.studies.blinding import unblind

        for label, model in unblind(spec, party, results).items():
            console.print(f"{label}: {model}", markup=False, highlight=False)

    @study.command("position")
    def position_cmd(spec: Spec, party: Annotated[str, typer.Option(help="your party")],
                     changed: Annotated[bool, typer.Option("--changed/--unchanged",
                                                           help="did the result change your position?")],
                     note: Annotated[str, typer.Option(help="what the result did to your position, in a sentence")]
                     ) -> None:
        """Record whether the result changed your position (the minds-changed record; shown in the ledger)."""
        from empiricist.studies.blinding import record_position

        record_position(spec, party, changed, note)
        console.print(f"recorded: {party} {'changed' if changed else 'kept'} its position")

    @study.command("amend")
    def amend_cmd(spec: Spec, author: Annotated[str, typer.Option()], what: Annotated[str, typer.Option()],
                  why: Annotated[str, typer.Option()]) -> None:
        """Record a deviation from the locked plan (append-only; the report shows every entry)."""
        from empiricist.studies.lock import amend, amendments_path

        amend(spec, author, what, why)
        console.print(f"amended: {amendments_path(spec)}")

    @study.command("run")
    def run_cmd(spec: Spec, out: Annotated[Path | None, typer.Option(help="results folder (default "
                                                                     "<spec>.results/ beside the spec)")] = None,
                max_items: Annotated[int | None, typer.Option(help="smoke run on the first N items (recorded as a "
                                                              "deviation; not the pre-registered design)")] = None,
                executor: ExecutorOpt = None, address: AddressOpt = None,
                workspace: WorkspaceOpt = None, prepare: Prepare = False, quiet: Quiet = False) -> None:
        """Run the evals, decide every control and prediction, write results.json and the report."""
        from empiricist.execute import executor_from
        from empiricist.studies import run_study

        load_experiments()
        run = run_study(spec, out=out, workspace=workspace, prepare=prepare, progress=not quiet, max_items=max_items,
                        executor=executor_from(executor, address))
        r = run.results
        RESULT_PRINTERS.get(r["kind"], _print_flags)(r)
        style = "bold red" if not r["controls_passed"] else "bold"
        console.print(f"[{style}]{r['outcome']}[/{style}]")
        console.print(signatures_line(r), markup=False, soft_wrap=True)
        console.print(f"results: {run.folder / 'results.json'}\nreport: {run.report}", markup=False, soft_wrap=True)

    @study.command("migrate-lock")
    def migrate_cmd(spec: Spec, workspace: WorkspaceOpt = None) -> None:
        """Rewrite an old lock whose pinned code only moved (verified exactly; the migration is recorded)."""
        from empiricist.studies.lock import lock_path
        from empiricist.studies.signing import migrate_lock

        load_experiments()
        res = migrate_lock(spec, workspace=workspace)
        if not res["migrated"]:
            console.print(f"{lock_path(spec)}: already current, nothing to migrate")
            return
        console.print(f"{lock_path(spec)}: migrated ({res['lock']['migrations'][-1]['why']}); the lock now pins:")
        for change in res["changes"]:
            console.print(f"  {change}", markup=False)

    @study.command("bundle")
    def bundle_cmd(spec: Spec, out: Annotated[Path | None, typer.Option(help="bundle folder")] = None) -> None:
        """Write a replication bundle (folder and .tar.gz) of a study that has run."""
        from empiricist.studies import bundle

        load_experiments()
        folder, archive = bundle(spec, out=out)
        console.print(f"bundle: {folder}\narchive: {archive}")

    @study.command("replicate")
    def replicate_cmd(
        path: Annotated[Path, typer.Argument(help="bundle folder or .tar.gz")],
        fast: Annotated[bool, typer.Option("--fast", help="re-analyse the bundled transcripts only")] = False,
        tolerance: Annotated[float, typer.Option(help="largest difference counted as a match")] = 1e-6,
        out: Annotated[Path | None, typer.Option(help="working folder (default: a new temporary one)")] = None,
        workspace: WorkspaceOpt = None, quiet: Quiet = False,
    ) -> None:
        """Re-run a bundled study from scratch (or re-analyse it) and compare every number and verdict."""
        from empiricist.studies import replicate

        load_experiments()
        rep = replicate(path, workspace=workspace, fast=fast, tolerance=tolerance, out=out, progress=not quiet)
        table = Table(title=f"replication ({rep['mode']}; tolerance {tolerance:g})")
        for col in ("party", "prediction", "max |diff|", "numbers", "verdict", "replicated verdict"):
            table.add_column(col)
        for r in rep["rows"]:
            if r.get("missing"):
                table.add_row(r["party"], r["id"], "", "[red]missing[/red]", "", "")
                continue
            table.add_row(r["party"], r["id"], f"{r['max_diff']:.2g}",
                          "match" if r["numbers_match"] else f"[red]differ ({r['worst']})[/red]", r["verdict"],
                          r["new_verdict"] if not r["verdict_changed"] else f"[red]{r['new_verdict']}[/red]")
        console.print(table)
        for a in rep["artifacts"]:
            console.print(f"artifact {a['artifact']} ({a['what']}): " + (
                "identical to the locked one" if a["identical"] else
                f"[yellow]differs from the lock ({'; '.join(a['changes'][:2])}"
                f"{'; ...' if len(a['changes']) > 2 else ''})[/yellow]"))
        changed = rep["verdicts_changed"]
        console.print(f"[red]verdicts changed for: {', '.join(changed)}[/red]" if changed else
                      "[green]every party's verdict replicated[/green]")
        console.print(f"original: {rep['original_outcome']}\nreplication: {rep['outcome']}")

    @app.command("ledger")
    def ledger_cmd(folder: Annotated[list[Path] | None, typer.Option("--dir", help="folder of study specs and "
                                                                  "external entries (repeatable; default: studies/ "
                                                                  "and the main job's packaged study)")] = None,
                   as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
                   workspace: WorkspaceOpt = None) -> None:
        """Claims with the studies that tested them, their verdicts and open challenges."""
        from empiricist.artifacts import Workspace
        from empiricist.experiments.sycophancy.main import SPECS
        from empiricist.studies import ledger

        load_experiments()
        folders = folder or [p for p in (Path("studies"), SPECS) if p.is_dir()]
        led = ledger(folders, results=Workspace.at(workspace).root / "studies")
        if as_json:
            typer.echo(json.dumps(led, indent=1, default=str))
            return
        for claim, studies in led["claims"].items():
            table = Table(title=f"claim: {claim}")
            for col in ("study", "status", "verdicts", "outcome"):
                table.add_column(col)
            for s in studies:
                if s.get("kind") == "external":  # published evidence, beside the studies
                    src = s["source"]
                    nums = "; ".join(f"{n['quantity']}: {n['value']}" for n in s["numbers"][:3])
                    table.add_row(s["id"], f"external ({src['authors'][0]} {src['year']})", nums,
                                  f"{s['summary']} {src['url']}")
                    continue
                verdicts = ", ".join(f"{k}: {v}" for k, v in s.get("verdicts", {}).items())
                minds = "; ".join(f"{p}: {'changed' if r['changed'] else 'unchanged'} ({r['note']})"
                                  for p, r in s.get("positions", {}).items())
                table.add_row(s["id"], s.get("error") or s.get("status", ""), verdicts,
                              s.get("outcome", "") + (f" — minds: {minds}" if minds else ""))
            console.print(table)
        for r in led["relations"]:
            console.print(f"{r['study']} {r['relation']} {r['target']}: {r['state']}")
        if led["open_challenges"]:
            console.print(f"[yellow]{len(led['open_challenges'])} open challenge(s)[/yellow]")
