"""Runs: a composed config read once into a plan, the plan executed into a record.

Owns the config (composing it, the ``pick`` resolver, a run's identity:
:mod:`~dip.runs.config`; its schema: :mod:`~dip.runs.schema`; an experiment's declared
sweep: :mod:`~dip.runs.experiments`), the typed settings a config is read into
(:mod:`~dip.runs.spec`), ``prepare`` → :class:`~dip.runs.plan.RunPlan` → ``execute``
(:mod:`~dip.runs.plan`), the problem a run fits (:mod:`~dip.runs.inputs`), the
announcement before a fit (:mod:`~dip.runs.announce`), records
(:mod:`~dip.runs.records`), their numbers and provenance (:mod:`~dip.runs.scores`,
:mod:`~dip.runs.provenance`) and the batched launcher's runs (:mod:`~dip.runs.batched`).

May import :mod:`dip.fitting` and every layer below it. Only config, schema, experiments
and plan read Hydra or OmegaConf; the rest take a :class:`~dip.runs.spec.RunSpec`.
"""
