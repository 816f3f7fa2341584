"""empiricist.evals: eval tasks, scorers, a cached runner and a results table with every transcript.

Tasks (``tasks``)
    Item(id, prompt, choices, target, cluster, meta, lookup_text), Task(name, items, source_hash, format, wrapper)
    load_task(path, format="auto"|"anthropic"|"native", wrapper=None) ; WRAPPERS ; world_tasks(world_path)
    task_from_records(name, records, format="native")
Scoring (``scorers``; model-facing part cached, grading re-run)
    LoglikScorer(metric="acc"|"acc_norm"|"acc_bytes"|"acc_token"|"p_gold", truncation="error"|"left")
    GenerateScorer(max_new_tokens=32, until=("\\n",), match="exact"|"contains"|"regex", pattern=None)
    make_scorer("loglik"|"generate", **options)
    choice_logliks(model, tokenizer, [(prompt, choices)]) : shared-prompt batched log-likelihood (``loglik``)
Running (``runner``)
    run_eval(tasks, models, scorer, out=None, contamination="auto", on_chunk=None) -> EvalRun
    expand_models(models, suite=, sizes=, checkpoints=) ; resolve_tasks(["world:fact_qa", "file.jsonl"])
Results (``results``)
    Results(table) / Results.read(run_dir) ; .rows() .models() .tasks() .scores(task, model) .write(folder)
    .write_lm_eval_samples(folder)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from empiricist._lazy import lazy_exports

if TYPE_CHECKING:
    from empiricist.evals.loglik import ChoiceLoglik, choice_logliks, reference_logprob
    from empiricist.evals.results import SCHEMA, Results
    from empiricist.evals.runner import EvalRun, expand_models, resolve_tasks, run_eval
    from empiricist.evals.scorers import GenerateScorer, LoglikScorer, make_scorer
    from empiricist.evals.tasks import WRAPPERS, Item, Task, load_task, task_from_records, world_tasks

_EXPORTS = {
    "ChoiceLoglik": "loglik",
    "choice_logliks": "loglik",
    "reference_logprob": "loglik",
    "SCHEMA": "results",
    "Results": "results",
    "EvalRun": "runner",
    "expand_models": "runner",
    "resolve_tasks": "runner",
    "run_eval": "runner",
    "GenerateScorer": "scorers",
    "LoglikScorer": "scorers",
    "make_scorer": "scorers",
    "WRAPPERS": "tasks",
    "Item": "tasks",
    "Task": "tasks",
    "load_task": "tasks",
    "task_from_records": "tasks",
    "world_tasks": "tasks",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "SCHEMA", "WRAPPERS", "ChoiceLoglik", "EvalRun", "GenerateScorer", "Item", "LoglikScorer", "Results", "Task",
    "choice_logliks", "expand_models", "load_task", "make_scorer", "reference_logprob", "resolve_tasks",
    "run_eval", "task_from_records", "world_tasks",
]
