"""What watching a fit costs: the time its snapshots and TensorBoard add to a step.

:func:`bench_watch` fits the quick profile's net (the paper's skip net at half its
widths) at the quick profile's snapshot period, with a TensorBoard logger writing every
``record_every`` steps, and times every call of those two monitors' hooks. Their work is
all that watching adds to a step (neither changes what the step computes), so their
time per step over the fit's median step time is the overhead, measured without the
noise of comparing two separate fits.
"""

from __future__ import annotations

import statistics
import tempfile
import time

from dip.bench.measure import Timer
from dip.bench.workload import problem, settings, sync

__all__ = ["bench_watch", "QUICK_SNAPSHOT_EVERY", "QUICK_WIDTH"]

QUICK_SNAPSHOT_EVERY = 100  # conf/config.yaml's snapshot_every at profile=quick
QUICK_WIDTH = 0.5  # conf/profile/quick.yaml's net.width_scale


def _timed(monitor, hooks, device, spent: list[float]) -> None:
    """Replace ``monitor``'s ``hooks`` by ones that add their seconds to ``spent[0]``."""
    for name in hooks:
        hook = getattr(monitor, name)

        def timed(info, hook=hook):
            sync(device)
            t0 = time.perf_counter()
            hook(info)
            sync(device)
            spent[0] += time.perf_counter() - t0

        setattr(monitor, name, timed)


def _net():
    import torch

    from dip import nets
    from dip.bench.reference import PAPER_KWARGS

    torch.manual_seed(0)
    return nets.build("skip", 32, 3, **nets.scale_width(PAPER_KWARGS, "skip", QUICK_WIDTH))


def bench_watch(size: int, steps: int, device, log, every: int = QUICK_SNAPSHOT_EVERY) -> dict:
    """The row of the watch section: a ``size``² fit of ``steps`` steps with snapshots
    every ``every`` steps and TensorBoard every ``record_every``; the median step time
    and the seconds a step that each monitor adds, and their share of the step."""
    from dip.fitting.loop import fit
    from dip.fitting.snapshots import Snapshots
    from dip.fitting.step import default_monitors
    from dip.fitting.tensorboard import TensorBoard

    prob = problem(size)
    s = settings(steps, device, snapshot_every=every)
    timer = Timer(device)
    spent = {"snapshots": [0.0], "tensorboard": [0.0]}
    with tempfile.TemporaryDirectory() as tmp:
        board = TensorBoard(tmp, every=s.record_every)
        monitors = default_monitors(prob, s) + [board, timer]
        snaps = next(m for m in monitors if isinstance(m, Snapshots))
        _timed(snaps, ("on_step",), device, spent["snapshots"])
        _timed(board, ("on_step", "on_end"), device, spent["tensorboard"])
        res = fit(_net(), prob, s, monitors=monitors)
    step = statistics.median(timer.diffs())
    row = {"size": size, "width_scale": QUICK_WIDTH, "steps": res.steps,
           "snapshot_every": every, "snapshots": len(res.snapshots),
           "tensorboard_every": s.record_every, "step_s": round(step, 4)}
    for name, (seconds,) in spent.items():
        per_step = seconds / res.steps
        row[f"{name}_s_per_step"] = round(per_step, 6)
        row[f"{name}_pct"] = round(100 * per_step / step, 3)
    log(f"watch {size}²: step {step:.4f} s; snapshots +{row['snapshots_pct']:.2f} %, "
        f"TensorBoard +{row['tensorboard_pct']:.2f} % a step")
    return row
