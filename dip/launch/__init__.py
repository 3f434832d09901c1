"""Where and how runs execute: devices and CPU threads (:mod:`~dip.launch.device`), the
memory a fit needs (:mod:`~dip.launch.memory`), one process per run
(:mod:`~dip.launch.claims`), interrupts (:mod:`~dip.launch.signals`) and a sweep's jobs
and ledger (:mod:`~dip.launch.sweep`).

May import only the shared modules (:mod:`dip.errors`, :mod:`dip.atomic`); the fit loop
asks it for the device and for interrupts, so it sits below :mod:`dip.fitting`.
"""
