"""Runs: a composed config read once into a plan, the plan executed into a record.

Owns the config (the ``pick`` resolver, identities: :mod:`~dip.runs.config`; its types:
:mod:`~dip.runs.schema`), ``prepare`` → :class:`~dip.runs.plan.RunPlan` → ``execute``
(:mod:`~dip.runs.plan`), the problem and net a config describes
(:mod:`~dip.runs.inputs`, :mod:`~dip.runs.builders`), the announcement before a fit
(:mod:`~dip.runs.announce`), records (:mod:`~dip.runs.records`), their numbers and
provenance (:mod:`~dip.runs.scores`, :mod:`~dip.runs.provenance`) and the batched
launcher's runs (:mod:`~dip.runs.batched`).

May import :mod:`dip.fitting` and every layer below it.
"""
