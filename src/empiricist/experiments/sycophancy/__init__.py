"""The sycophancy experiment: where does sycophancy come from? (docs/sycophancy.md)

Model families that differ only in the dose of deferring forum answers (``families``), an eval in
Anthropic's persona format on held-out entities (``evalset``) and its statistics (``metric``), attribution
of the sycophantic answers (``trace``) and retraining without the documents found (``counterfactual``),
decided by a pre-registered rule (``rule``) as a locked study (``study``, ``specs/``). The main job is
``main.run_main_job`` (``empiricist run``). Importing the package imports none of them (nor torch).
"""
