"""Where a fit step's time goes on a GPU: loop overhead, kernels, batched engines.

    python experiments/gpu_profile.py --out DIR [--sizes 64,256,512] [--parts ...]

Parts (each guarded: one that fails is logged and the next one runs):

* ``loop``: median step time of :func:`dip.fitting.loop.fit` at each size, with CUDA graphs and
  the default monitors, with graphs and no monitor but a timer, and eager with the
  timer only; the eager reference of ``dip/bench/reference.py`` beside them.
* ``kernels``: ``torch.profiler`` over a few eager steps at the largest size (the
  reference NCHW, ours channels_last, ours NCHW) and of the grouped engine's
  forward/backward (N runs at 256²): device time per step and the top operators.
* ``batched``: steady-state step cost (``dip.bench.step_cost``) of N sequential runs
  and of the grouped and threads+graphs engines at 256².
* ``ops``: bilinear ×2 upsampling and reflection padding, forward + backward, timed
  with CUDA events, against pointwise formulations.
* ``compile``: the reference net under ``torch.compile`` at the largest size (in a
  subprocess with a time limit).

Writes ``DIR/profile.md`` (appended after each part) and prints the same.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

from dip import bench

OUT: Path | None = None


def log(text: str) -> None:
    print(text, flush=True)
    if OUT is not None:
        with open(OUT / "profile.md", "a") as fh:
            fh.write(text + "\n")


def fit_time(size, device, steps, monitors="timer", **kw):
    """Median step time of a fit with a timer and ``monitors``: 'timer' (none else),
    'default', or a callable (problem, settings) -> list of monitors."""
    from dip.fitting.loop import fit
    from dip.fitting.step import default_monitors

    problem = bench.problem(size)
    s = bench.settings(steps, device, **kw)
    timer = bench.Timer(device)
    if monitors == "timer":
        mons = []
    elif monitors == "default":
        mons = default_monitors(problem, s)
    else:
        mons = monitors(problem, s)
    fit(bench.ours_net(), problem, s, monitors=mons + [timer])
    times = timer.diffs()[7:]  # past cudnn's trials and the graph capture
    return statistics.median(times) if times else float("nan")


def part_monitors(device, sizes=(64, 256), steps=80):
    """Step time with each default monitor alone, and a host profile of a default fit."""
    import cProfile
    import io
    import pstats

    from dip.fitting.loop import fit
    from dip.fitting.monitors import Backtrack, History, Oracle
    from dip.fitting.step import default_monitors

    sets = {"timer only": "timer", "Backtrack": lambda p, s: [Backtrack()],
            "History(10)": lambda p, s: [History(10)], "Oracle": lambda p, s: [Oracle()],
            "default": "default"}
    log("\n## monitors: median s/step with CUDA graphs\n")
    log("| size | " + " | ".join(sets) + " |")
    log("|" + " --- |" * (len(sets) + 1))
    for size in sizes:
        fit_time(size, device, 6)
        row = [f"{fit_time(size, device, steps, m) * 1e3:.2f} ms" for m in sets.values()]
        log(f"| {size} | " + " | ".join(row) + " |")
    size = max(sizes)
    problem = bench.problem(size)
    s = bench.settings(200, device)
    prof = cProfile.Profile()
    prof.enable()
    t = time.perf_counter()
    fit(bench.ours_net(), problem, s, monitors=default_monitors(problem, s))
    wall = time.perf_counter() - t
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(30)
    log(f"\n### host profile of a 200-step default fit at {size}² ({wall:.2f} s)\n")
    log("```\n" + buf.getvalue()[-9000:] + "\n```")


def part_loop(sizes, device):
    log("\n## loop: median s/step\n")
    log("| size | graph+default monitors | graph+timer | eager+default | eager+timer "
        "| reference |")
    log("| --- | --- | --- | --- | --- | --- |")
    for size in sizes:
        steps = 60
        fit_time(size, device, 6)  # cudnn trials
        a = fit_time(size, device, steps, "default")
        b = fit_time(size, device, steps, "timer")
        c = fit_time(size, device, steps, "default", cuda_graph=False)
        d = fit_time(size, device, steps, "timer", cuda_graph=False)
        ref = bench.Reference(size, device)
        ref.block(3)
        r = statistics.median(ref.block(40))
        log(f"| {size} | {a * 1e3:.2f} ms | {b * 1e3:.2f} ms | {c * 1e3:.2f} ms "
            f"| {d * 1e3:.2f} ms | {r * 1e3:.2f} ms |")


def _profile(step, device, steps=5, rows=18, title=""):
    from torch.profiler import ProfilerActivity, profile

    for _ in range(3):
        step()
    torch.cuda.synchronize(device) if device.type == "cuda" else None
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    t = time.perf_counter()
    with profile(activities=acts) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize(device) if device.type == "cuda" else None
    wall = (time.perf_counter() - t) / steps
    ka = prof.key_averages()
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    kernels = [e for e in ka if device.type != "cuda"
               or e.device_type == torch.autograd.DeviceType.CUDA]  # no double counting
    total = sum(getattr(e, key, 0.0) for e in kernels) / steps / 1e3
    log(f"\n### {title}: wall {wall * 1e3:.2f} ms/step (profiled), "
        f"{'GPU kernel' if device.type == 'cuda' else 'CPU'} time {total:.2f} ms/step\n")
    try:
        table = ka.table(sort_by=key, row_limit=rows, max_name_column_width=60)
    except Exception:  # noqa: BLE001 - older key names
        table = ka.table(sort_by="self_cuda_time_total", row_limit=rows)
    log("```\n" + table + "\n```")


def _ref_step(size, device, channels_last=False, net=None):
    """The step of the benchmark's eager reference loop, with another net or layout."""
    ref = bench.Reference(size, device)
    if net is not None:
        ref.net = net
    if channels_last:
        ref.net = ref.net.to(memory_format=torch.channels_last)
        ref.z = ref.z.contiguous(memory_format=torch.channels_last)
    ref.opt = torch.optim.Adam(ref.net.parameters(), lr=0.01)
    return ref.step


def part_kernels(sizes, device, n=8):
    size = max(sizes)
    log(f"\n## kernels at {size}²")
    _profile(_ref_step(size, device), device, title=f"reference NCHW {size}²")
    _profile(_ref_step(size, device, True), device, title=f"reference channels_last {size}²")
    ours = bench.ours_net().to(device).train()
    _profile(_ref_step(size, device, False, ours), device, title=f"our net NCHW {size}²")
    from dip.nets.grouped import GroupedNet

    gnet = GroupedNet([bench.ours_net(i).to(device).train() for i in range(n)]).to(device)
    gsize = min(256, size)
    z = torch.rand(1, 32 * n, gsize, gsize, device=device) * 0.1
    target = torch.rand(1, 3 * n, gsize, gsize, device=device)
    opt = torch.optim.Adam(gnet.parameters(), lr=0.01)

    def gstep():
        opt.zero_grad(set_to_none=True)
        F.mse_loss(gnet(z), target).backward()
        opt.step()
    _profile(gstep, device, title=f"grouped N={n} {gsize}² (NCHW)")
    gnet = gnet.to(memory_format=torch.channels_last)
    z = z.contiguous(memory_format=torch.channels_last)
    _profile(gstep, device, title=f"grouped N={n} {gsize}² (channels_last)")


def part_batched(device, size=256, n=8, steps=20):
    log(f"\n## batched {size}² N={n}: steady-state s per pass\n")
    bench.fit_wall(size, 1, bench.short_steps(device), device)
    single = bench.step_cost(size, 1, steps, device)[0]
    log(f"- single run: {single * 1e3:.2f} ms/step; {n} sequential: {n * single * 1e3:.1f} ms")
    for label, (engine, kw) in bench.CUDA_ENGINES.items():
        if label == "threads":
            continue
        bench.fit_wall(size, n, bench.short_steps(device), device, engine, **kw)
        t = bench.step_cost(size, n, steps, device, engine, **kw)[0]
        log(f"- {label}: {t * 1e3:.1f} ms per pass, speedup {n * single / t:.2f}x")


def up2(x):
    """Bilinear ×2 (align_corners=False) as pointwise ops: rows then columns."""
    def along(x, dim):
        n = x.shape[dim]
        prev = torch.cat([x.narrow(dim, 0, 1), x.narrow(dim, 0, n - 1)], dim)
        nxt = torch.cat([x.narrow(dim, 1, n - 1), x.narrow(dim, n - 1, 1)], dim)
        even, odd = torch.lerp(x, prev, 0.25), torch.lerp(x, nxt, 0.25)
        shape = list(x.shape)
        shape[dim] *= 2
        return torch.stack([even, odd], dim + 1).reshape(shape)
    return along(along(x, 2), 3)


def _event_time(fn, device, reps=30):
    for _ in range(3):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(device)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize(device)
    return start.elapsed_time(end) / reps


def part_ops(device, size=256, c=128):
    log(f"\n## ops (1x{c}x{size}x{size}), forward + backward, ms\n")
    x0 = torch.rand(1, c, size, size, device=device)
    err = (F.interpolate(x0, scale_factor=2, mode="bilinear", align_corners=False)
           - up2(x0)).abs().max().item()
    log(f"- pointwise bilinear x2 vs F.interpolate: max |diff| {err:.2e}")
    for fmt in (torch.contiguous_format, torch.channels_last):
        x = x0.contiguous(memory_format=fmt).requires_grad_(True)
        name = "CL" if fmt is torch.channels_last else "NCHW"
        g2 = torch.rand(1, c, 2 * size, 2 * size, device=device).contiguous(memory_format=fmt)
        g1 = torch.rand(1, c, size + 2, size + 2, device=device).contiguous(memory_format=fmt)
        for label, fn in _op_cases(x, g1, g2).items():
            log(f"- {name} {label}: {_event_time(fn, device):.3f} ms")


def _op_cases(x, g1, g2):
    """Forward + backward of each op on ``x`` (gradients g1: padded, g2: upsampled)."""
    return {
        "interpolate bilinear": lambda: torch.autograd.grad(F.interpolate(
            x, scale_factor=2, mode="bilinear", align_corners=False), x, g2),
        "pointwise bilinear": lambda: torch.autograd.grad(up2(x), x, g2),
        "reflection pad 1": lambda: torch.autograd.grad(F.pad(x, (1, 1, 1, 1),
                                                              mode="reflect"), x, g1),
        "zero pad 1": lambda: torch.autograd.grad(F.pad(x, (1, 1, 1, 1)), x, g1),
    }


COMPILE_CHILD = r"""
import statistics, sys, time, torch
from dip import bench
size, mode = int(sys.argv[1]), sys.argv[2]
dev = torch.device('cuda')
torch.backends.cudnn.benchmark = True
ref = bench.Reference(size, dev)
ref.net = torch.compile(ref.net, mode=None if mode == 'default' else mode)
t0 = time.perf_counter()
ref.block(3)
print(f'compile+3 steps {time.perf_counter() - t0:.1f} s', flush=True)
ms = statistics.median(ref.block(30)) * 1e3
print(f'compiled ({mode}) {size}: {ms:.2f} ms/step', flush=True)
"""


def part_compile(sizes, device, limit=110):
    size = max(sizes)
    log(f"\n## torch.compile of the reference net at {size}²\n")
    for mode in ("default",):
        try:
            p = subprocess.run([sys.executable, "-c", COMPILE_CHILD, str(size), mode],
                               capture_output=True, text=True, timeout=limit)
            log("```\n" + (p.stdout + p.stderr[-1500:]).strip() + "\n```")
        except subprocess.TimeoutExpired:
            log(f"- {mode}: over {limit} s")
            return


def main(argv=None):
    global OUT
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/profile")
    ap.add_argument("--sizes", default="64,256,512")
    ap.add_argument("--parts", default="loop,kernels,ops,batched,compile")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    OUT = Path(args.out)
    OUT.mkdir(parents=True, exist_ok=True)
    from dip.launch.device import pick_device

    device = pick_device(args.device)
    sizes = [int(s) for s in args.sizes.split(",")]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    log(f"# step profile on {name}, torch {torch.__version__}")
    torch.backends.cudnn.benchmark = True
    parts = {"loop": lambda: part_loop(sizes, device),
             "monitors": lambda: part_monitors(device, tuple(x for x in sizes if x <= 256)),
             "kernels": lambda: part_kernels(sizes, device),
             "batched": lambda: part_batched(device, size=min(256, max(sizes))),
             "ops": lambda: part_ops(device, size=min(256, max(sizes))),
             "compile": lambda: part_compile(sizes, device)}
    for p in args.parts.split(","):
        t = time.perf_counter()
        try:
            parts[p]()
        except Exception:  # noqa: BLE001 - one part's failure must not lose the others
            log(f"\n{p} failed:\n```\n{traceback.format_exc()[-2000:]}\n```")
        log(f"\n({p}: {time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
