"""Peak memory of one short paper-net fit (single or batched), each in a fresh process.

:func:`bench_memory` starts ``python -m dip.bench --_memory SIZE N DEVICE``, whose
:func:`measure_memory` prints one JSON line. On the CPU the peak is the increase of the
process's peak resident set size (``VmHWM`` of /proc/self/status) over its resident set
just before the fit (after imports and set-up), i.e. what the fit itself needed; on CUDA
``torch.cuda.max_memory_allocated`` over the memory allocated before it.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import torch

from dip.bench.reference import ours_net
from dip.bench.workload import problem, settings
from dip.fitting.fast import GRAPH_WARMUP

__all__ = ["bench_memory", "measure_memory", "proc_kb"]


def proc_kb(field):
    """A field of /proc/self/status in kB (VmRSS: now, VmHWM: peak of this process);
    ``ru_maxrss`` where there is no /proc."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _short_fit(size, n, device):
    """Set up a short fit of ``n`` runs (past a CUDA graph capture) and return the call
    that runs it: :func:`dip.fitting.loop.fit` for one run, else
    :func:`dip.fitting.batched.fit_batched`."""
    from dip.fitting.batched import fit_batched
    from dip.fitting.loop import fit

    steps = GRAPH_WARMUP + 3 if device.type == "cuda" else 2
    problems = [problem(size, seed=i) for i in range(n)]
    nets = [ours_net(i) for i in range(n)]
    runs = [settings(steps, device, seed=i) for i in range(n)]
    if n == 1:
        return lambda: fit(nets[0], problems[0], runs[0])
    return lambda: fit_batched(nets, problems, runs)


def measure_memory(size, n, device_str):
    """Child process: print the peak memory of a short fit (single or batched) as one
    JSON line ``{"size", "n", "mb"}``."""
    device = torch.device(device_str)
    if device.type == "cuda":
        # a first fit lets cudnn.benchmark try its algorithms (whose trial workspaces
        # would count as the fit's peak); the second one is measured
        _short_fit(size, n, device)()
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        run = _short_fit(size, n, device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        run = _short_fit(size, n, device)
        # ru_maxrss would keep the parent's peak across exec: read this process's own
        base = proc_kb("VmRSS")
    run()
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    else:
        peak = (proc_kb("VmHWM") - base) / 1024
    print(json.dumps({"size": size, "n": n, "mb": round(peak, 1)}))


def bench_memory(size, n, device, log):
    """Peak MB of a short fit of ``n`` runs at ``size``² (:func:`measure_memory` in a
    fresh process with this one's thread count); ``None`` if that process failed."""
    cmd = [sys.executable, "-m", "dip.bench", "--_memory", str(size), str(n), str(device),
           "--threads", str(torch.get_num_threads())]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        log(f"memory {size}² N={n}: failed: {proc.stderr[-500:]}")
        return None
    mb = json.loads(proc.stdout.strip().splitlines()[-1])["mb"]
    log(f"memory {size}² N={n}: {mb:.0f} MB")
    return mb
