"""Reports, from run records alone (fitting nothing): the declared tables
(:mod:`~dip.report.declared`, :mod:`~dip.report.tables`), studies of sweeps
(:mod:`~dip.report.study`), figures (:mod:`~dip.report.grids`), rerun checks
(:mod:`~dip.report.compare`) and ``results/README.md`` (:mod:`~dip.report.readme`).

May import :mod:`dip.runs` (records, configs, identities) and every layer below it; only
:mod:`dip.cli` imports it. Its one reader of configs and YAML is :mod:`~dip.report.configs`.
"""
