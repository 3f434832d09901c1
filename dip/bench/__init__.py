"""Benchmark of the fit step against a plain eager reference (``make bench``). At the
top of the house beside :mod:`dip.cli`: it may import every layer.

Measures, on the CPU or the GPU of this machine:

* **single**: the per-iteration time of this project's :func:`dip.fitting.loop.fit` (the whole
  loop with its default monitors: history, oracle, backtracking guard) against a
  plain eager reference implementation of the official skip network
  (:mod:`dip.bench.reference`: same architecture, 2,217,831 parameters, fp32 NCHW,
  ``torch.optim.Adam``, no monitors), alternating step by step (one reference step
  between two of ours), so that a load that changes over time hits both alike. On the
  CPU the reference runs in a process of its own (:class:`RemoteReference`, driven
  through a pipe) so that it keeps the C library's default allocator, as a plain script
  does, while ours keeps its freed memory (:func:`dip.fitting.fast.keep_freed_memory`,
  process-wide, so one process could not hold both); the ``same-malloc`` row gives that
  process the kept memory too, which leaves the loop's own cost. On CUDA it runs in our
  process. Medians over all timed steps; ``ratio`` = median ours / median reference,
  ``ratio_paired`` the median of the step-by-step ratios.
* **batched**: throughput of :func:`dip.fitting.batched.fit_batched` for N runs, per engine
  (CPU: threads and grouped; CUDA: also threads with CUDA graphs), against N
  sequential single runs with all the process's threads: ``sequential_s`` = N × the
  steady-state wall time per step of a :func:`dip.fitting.loop.fit` call, ``batched_s`` = that
  of a ``fit_batched`` call, each the wall time of a long fit minus that of a short one
  over the steps between (:func:`step_cost`: set-up, warm-up steps, graph captures and
  the final output cancel); medians, single and batched calls alternating; on CUDA one
  discarded short fit first per shape (cudnn.benchmark's trials).
* **compute rate**: the convolution arithmetic of a paper-net step per size
  (:func:`dip.bench.flops.step_gflop`: forward and backward, from shapes alone) turns each
  row's time into GFLOP/s, set beside the fp32 rate of a large matrix product on this
  machine (:func:`dip.bench.flops.gemm_gflop_s`; on the CPU with one thread and with all of
  the process's), the most a step of convolutions could sustain; a batched speedup s
  needs s times the sequential rate.
* **peak memory**: of one paper-net fit per size, in a fresh subprocess
  (:mod:`dip.bench.memory`).

Writes ``results/bench/<device>.json`` and ``.md`` after each section (``complete`` is
false until the last one has run). Usage::

    python -m dip.bench            # full: 64², 128², 256², 512²
    python -m dip.bench --quick    # < 5 min on 2 CPU cores
    python -m dip.bench --quick --amp-check 3000   # + fp32 vs bf16 PSNR (GPU)
    python -m dip.bench --skip single,batched,memory --amp-check 1000 --check-crop 128

What each device measures is in :mod:`dip.bench.plans`: on the CPU, ``single`` has a row
for the default step, one against a reference with kept memory (``same-malloc``) and,
except with ``--quick``, one with bf16 autocast (``bf16``). On CUDA, ``single`` has one
row per variant of our step: ``fp32-graph`` (the automatic fast paths: NCHW,
cudnn.benchmark, fused Adam, CUDA graphs), ``fp32-eager`` (without graphs),
``fp32-cl-graph`` and ``fp32-cl`` (the same in channels_last), ``bf16-graph`` and ``bf16``
(bf16 autocast), ``bf16-cl-graph`` (bf16 in channels_last), each against the same eager
fp32 NCHW reference; ``batched`` compares the grouped engine, the threads engine (one
CUDA stream per run, eager steps) and the threads engine with each run's step replayed
as CUDA graphs (``threads+graphs``) with N sequential default runs, 200 steps apart on
CUDA (:data:`BATCHED_CUDA_STEPS`).

Modules: :mod:`~dip.bench.workload` (the image, problem and settings every measurement
fits), :mod:`~dip.bench.reference` (the paper net and the eager reference loop),
:mod:`~dip.bench.measure` (timing: single and batched rows, compute rates),
:mod:`~dip.bench.memory` (peak memory), :mod:`~dip.bench.checks` (PSNR checks),
:mod:`~dip.bench.plans` (what to measure), :mod:`~dip.bench.report` (results files and
their summary), :mod:`~dip.bench.cli` (the command line). This package re-exports their
public names.
"""

from dip.bench.checks import amp_check, check_problem, graph_check
from dip.bench.cli import main, run_sections, sides
from dip.bench.measure import (
    Timer,
    bench_batched,
    bench_single,
    compute_rates,
    fit_wall,
    ours_block,
    short_steps,
    step_cost,
)
from dip.bench.memory import bench_memory, measure_memory
from dip.bench.plans import (
    BATCHED_CUDA_STEPS,
    CPU_VARIANTS,
    CUDA_ENGINES,
    CUDA_VARIANTS,
    ENGINES,
    Plan,
    plan_for,
)
from dip.bench.reference import (
    PAPER_KWARGS,
    PAPER_PARAMS,
    REFERENCES,
    Reference,
    RemoteReference,
    ours_net,
    reference_skip,
    serve_reference,
)
from dip.bench.report import ResultsFile, device_slug, markdown, merge, new_results, with_rates
from dip.bench.workload import image, problem, settings, sync

__all__ = [
    "main", "run_sections", "sides",
    "PAPER_KWARGS", "PAPER_PARAMS", "REFERENCES", "reference_skip", "ours_net", "Reference",
    "RemoteReference", "serve_reference",
    "image", "problem", "settings", "sync",
    "Timer", "ours_block", "bench_single", "fit_wall", "short_steps", "step_cost",
    "bench_batched", "compute_rates",
    "bench_memory", "measure_memory",
    "check_problem", "amp_check", "graph_check",
    "Plan", "plan_for", "ENGINES", "CUDA_ENGINES", "CPU_VARIANTS", "CUDA_VARIANTS",
    "BATCHED_CUDA_STEPS",
    "ResultsFile", "device_slug", "markdown", "merge", "new_results", "with_rates",
]
