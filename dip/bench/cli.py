"""Benchmark of the fit step against a plain eager reference (``make bench``).

The command line of ``python -m dip.bench``: its options (:func:`parser`) and the
top-level flow (:func:`main`): pick the device, make the :class:`~dip.bench.plans.Plan`,
run its sections in order (:func:`run_sections`) and write the results after each one.
``--_memory`` and ``--_reference`` start the child processes of
:func:`dip.bench.memory.bench_memory` and :class:`dip.bench.reference.RemoteReference`.
"""

from __future__ import annotations

import argparse
import importlib.util

import torch

from dip.bench.checks import amp_check, graph_check
from dip.bench.measure import bench_batched, bench_single, compute_rates
from dip.bench.memory import bench_memory, measure_memory
from dip.bench.plans import Plan, chosen, plan_for
from dip.bench.reference import serve_reference
from dip.bench.report import ResultsFile, device_slug, new_results
from dip.bench.watch import bench_watch
from dip.errors import DipError
from dip.fitting.tensorboard import INSTALL

__all__ = ["main", "parser", "run_sections", "sides", "SECTIONS"]

# The sections --skip may leave out.
SECTIONS = ("single", "batched", "watch", "memory")


def sides(text: str) -> tuple[int, ...]:
    """Image sides of a comma-separated option, e.g. '256,512'."""
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of image sides; give e.g. 256,512") from None


def _names(text: str | None) -> list[str]:
    """The names of a comma-separated option ('' or None: none)."""
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def parser() -> argparse.ArgumentParser:
    """The options of ``python -m dip.bench``."""
    ap = argparse.ArgumentParser(prog="python -m dip.bench",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes and repeats (< 5 min)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default="results/bench")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--note", default="", help="free text stored with the results")
    ap.add_argument("--amp-check", type=int, default=0, metavar="ITERS",
                    help="also fit the paper's F16 sigma-25 denoising for ITERS steps in fp32 "
                         "and bf16 and compare PSNR (3000 = the paper's schedule)")
    ap.add_argument("--graph-check", type=int, default=0, metavar="ITERS",
                    help="also fit it for ITERS steps eager and with CUDA graphs")
    ap.add_argument("--check-crop", type=int, default=None, metavar="SIDE",
                    help="run those checks on a centre SIDE×SIDE crop (e.g. 128 on a CPU)")
    ap.add_argument("--skip", default="", help="comma-separated sections to leave out: "
                    "single, batched, watch, memory")
    ap.add_argument("--name", default=None, help="file name instead of the device's")
    ap.add_argument("--sizes", type=sides, default=None,
                    help="comma-separated image sides of the single section (e.g. 256,512)")
    ap.add_argument("--variants", default=None,
                    help="comma-separated variants of the single section (CPU: default, bf16; "
                         "CUDA: fp32-graph, fp32-eager, fp32-cl-graph, fp32-cl, bf16-graph, "
                         "bf16, bf16-cl-graph)")
    ap.add_argument("--batched-sizes", type=sides, default=None,
                    help="comma-separated image sides of the batched section (e.g. 256)")
    ap.add_argument("--engines", default=None,
                    help="comma-separated engines of the batched section (e.g. threads+graphs)")
    ap.add_argument("--merge", action="store_true",
                    help="add to an existing JSON of this device: rows measured now replace "
                         "those of the same size/variant/engine, the others stay")
    ap.add_argument("--_memory", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--_reference", nargs=3, help=argparse.SUPPRESS)
    return ap


def _log(msg: str) -> None:
    print(msg, flush=True)


def run_sections(plan: Plan, res: dict, device, save, log=_log, skip=(), graph_iters=0,
                 amp_iters=0, crop=None) -> dict:
    """Measure ``plan``'s sections into ``res`` and ``save(res)`` after each one: the
    compute rates, single rows, batched rows, the cost of watching a fit, the graph and
    amp checks when their ``*_iters`` are set (on a centre ``crop`` when given), and peak
    memory; the sections in ``skip`` are left out. ``res['complete']`` is set at the end."""
    res.update(compute_rates(plan.gflop_sizes(), device))
    log("compute rate: " + ", ".join(f"{k}² {v} GFLOP a step"
                                     for k, v in res["gflop_per_iter"].items())
        + f"; matrix product {res['gemm_gflop_s']} GFLOP/s")
    if "single" not in skip:
        for name, kw in plan.variants.items():
            where = plan.reference(name)
            res["single"] += [bench_single(s, plan.repeats, plan.steps, device, log, name,
                                           where, **kw) for s in plan.sizes]
            res["single"] += [bench_single(s, plan.big_repeats, plan.big_steps, device, log,
                                           name, where, **kw) for s in plan.big]
            save(res)
    if "batched" not in skip:
        for s in plan.batched_sizes:
            res["batched"] += bench_batched(s, plan.ns, plan.engines, plan.batched_repeats(s),
                                            plan.batched_steps, device, log)
            save(res)
    if "watch" not in skip:
        if importlib.util.find_spec("tensorboard") is None:
            log(f"watch: skipped (no tensorboard package; {INSTALL})")
        else:
            size, steps = plan.watch
            res["watch"] = {str(size): bench_watch(size, steps, device, log)}
            save(res)
    if graph_iters:
        res["graph_check"] = graph_check(device, log, graph_iters, crop=crop)
        save(res)
    if amp_iters:
        res["amp_check"] = amp_check(device, log, amp_iters, crop=crop)
        save(res)
    if "memory" not in skip:
        res["peak_mem_mb"] = {str(s): bench_memory(s, 1, device, log) for s in plan.mem_sizes}
        res["peak_mem_batched_mb"] = {f"{s}x{n}": bench_memory(s, n, device, log)
                                      for s, n in plan.mem_batched}
    res["complete"] = True
    save(res)
    return res


def main(argv=None):
    """Run the benchmark with the command-line arguments ``argv``; returns the results
    (``None`` in a child process). Unknown choices exit with one line (code 2)."""
    ap = parser()
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args._memory:
        size, n, dev = args._memory
        return measure_memory(int(size), int(n), dev)
    if args._reference:
        size, dev, where = args._reference
        return serve_reference(int(size), dev, where)

    from dip.launch.device import pick_device

    try:
        device = pick_device(args.device)
        skip = _names(args.skip)
        chosen(dict.fromkeys(SECTIONS), skip, "section to skip")
        plan = plan_for(device.type, args.quick, sizes=args.sizes,
                        variants=_names(args.variants), batched_sizes=args.batched_sizes,
                        engines=_names(args.engines))
    except DipError as err:
        ap.error(str(err))
    res = new_results(device, args.quick, args.note)
    out = ResultsFile(args.out, args.name or device_slug(device), merge=args.merge)
    run_sections(plan, res, device, out.save, skip=set(skip), graph_iters=args.graph_check,
                 amp_iters=args.amp_check, crop=args.check_crop)
    _log(f"wrote {out.json} and .md in {res['seconds']:.0f} s")
    return res
