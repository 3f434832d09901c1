"""The line a run prints before its first step: what is fitted, how, where, and how long.

:func:`announce` says the task and image, the image's size, the net and profile, the
steps (or the cap of an early-stopped run, and where an automatic cap comes from), the
stopping rule, the device and threads, and the expected time. The time comes from
:func:`time_step`: a few steps of the fit loop itself on a throw-away network of the
run's own architecture and size, so it includes everything a step costs on this machine.
"""

from __future__ import annotations

import torch

from dip.fitting.loop import fit
from dip.fitting.monitors import History
from dip.fitting.settings import FitSettings
from dip.launch.device import pick_device
from dip.runs.spec import RunSpec

__all__ = ["announce", "time_step", "steps_text"]


def time_step(plan, steps: int = 3) -> float:
    """Seconds of one step of ``plan``'s fit on this machine: the fit loop run for
    ``steps`` steps on a throw-away network (the first step warms up and is not
    counted); the run's own fit re-seeds and rebuilds its network, so nothing carries
    over. Batch norm's statistics and the RNGs of the throw-away fit are its own."""
    s = plan.settings()
    probe = FitSettings(**{**vars(s), "num_iter": steps, "stop": "fixed", "progress": False,
                           "cuda_graph": False})
    history = History(every=1)
    fit(plan.build_net(), plan.problem, probe, [history], z=plan.z)
    plan.problem.to("cpu")
    seconds = history.frame()["seconds"].to_numpy()
    return float((seconds[-1] - seconds[0]) / max(1, len(seconds) - 1))


def steps_text(spec: RunSpec, size) -> str:
    """'3000 steps' for a fixed schedule; for a run that stops early its rule, its
    patience and its cap, and where the cap comes from when it is automatic."""
    cap = spec.step_cap(size)
    if spec.stop == "fixed":
        return f"{cap} steps"
    rule = f"{spec.stop} early stopping (patience {spec.stopping.get('patience')})"
    if str(spec.stopping.get("cap")) == "auto":
        source = (f"automatic: {spec.stopping.get('cap_per_side'):g} per pixel of the image's "
                  "side; fit.num_iter=N sets it")
    elif spec.stopping.get("cap") is not None:
        source = "stopping.cap"
    else:
        source = "fit.num_iter"
    return f"{rule}, at most {cap} steps ({source})"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def announce(plan, per_step: float | None = None) -> str:
    """The announcement of ``plan`` (one line). ``per_step``: the seconds of a step
    (default: :func:`time_step`)."""
    spec, problem = plan.spec, plan.problem
    c, h, w = problem.image_shape
    size = tuple(problem.out_shape[-2:])
    device = pick_device(spec.device)
    n = torch.get_num_threads()
    threads = f" with {n} thread{'s' if n > 1 else ''}" if device.type == "cpu" else ""
    per_step = time_step(plan) if per_step is None else per_step
    steps = spec.step_cap(size) * len(plan.seeds)
    seeds = f" × {len(plan.seeds)} seeds" if len(plan.seeds) > 1 else ""
    time = f"{'up to ' if spec.stop != 'fixed' else 'about '}{_duration(per_step * steps)}"
    return (f"{spec.task} of {spec.image} ({h}×{w} pixels, H×W, {c} channel"
            f"{'s' if c > 1 else ''}): net {spec.net.name} ({spec.profile} profile, "
            f"widths ×{spec.net.width_scale:g}), "
            f"{steps_text(spec, size)}{seeds}, on {device}{threads}; "
            f"{time} ({per_step:.3g} s a step)")
