"""What one benchmark run measures, per device and for ``--quick``: a :class:`Plan`.

On the CPU the single section has a row for the default step (the automatic fast
paths), one against a reference that keeps its freed memory as ours does
(``same-malloc``) and, except with ``--quick``, one with bf16 autocast (oneDNN's AMX /
AVX-512 bf16 kernels where the CPU has them). On CUDA, whose steps cost milliseconds, it
has every size with more steps, one row per variant of our step (:data:`CUDA_VARIANTS`),
and the batched section adds 256² and the threads engine with CUDA graphs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dip.errors import DipError

__all__ = ["Plan", "plan_for", "chosen", "ENGINES", "CUDA_ENGINES", "CPU_VARIANTS",
           "CUDA_VARIANTS", "BATCHED_CUDA_STEPS"]

# Steps between the short and the long fit of a batched row on CUDA. With 21 (the
# CPU's count + 1) an H200 gave sequential baselines 2x apart between rows and, for
# threads+graphs, long fits no longer than short ones.
BATCHED_CUDA_STEPS = 200

# Batched rows: label -> (dip.fitting.batched engine, fit settings of its runs).
ENGINES = {"threads": ("threads", {}), "grouped": ("grouped", {})}
CUDA_ENGINES = {"threads": ("threads", {"cuda_graph": False}), "grouped": ("grouped", {}),
                "threads+graphs": ("threads", {"cuda_graph": True})}

# Single rows: variant -> fit settings of our step.
CPU_VARIANTS = {"default": {}, "same-malloc": {}, "bf16": {"amp": "bf16"}}
_EAGER, _CL = {"cuda_graph": False}, {"channels_last": True}
CUDA_VARIANTS = {"fp32-graph": {}, "fp32-eager": _EAGER,
                 "fp32-cl-graph": _CL, "fp32-cl": {**_CL, **_EAGER},
                 "bf16-graph": {"amp": "bf16"}, "bf16": {"amp": "bf16", **_EAGER},
                 "bf16-cl-graph": {"amp": "bf16", **_CL}}


@dataclass(frozen=True)
class Plan:
    """The sections of one benchmark run.

    Attributes
    ----------
    device_type : str
        'cpu' or 'cuda'.
    sizes : tuple of int
        Image sides of the single section, each timed in ``repeats`` fits of ``steps``
        timed steps.
    big : tuple of int
        Further sides of the single section, timed in ``big_repeats`` fits of
        ``big_steps`` steps (512² on the CPU's full run).
    repeats, steps, big_repeats, big_steps : int
        See ``sizes`` and ``big``.
    variants : dict
        Single rows: variant name -> fit settings of our step.
    batched_sizes : tuple of int
        Image sides of the batched section.
    ns : tuple of int
        Numbers of runs of each batched row.
    engines : dict
        Batched rows: label -> (engine, fit settings of its runs).
    batched_steps : int
        Steps between a batched row's short and long fit.
    mem_sizes : tuple of int
        Sides of the single fits whose peak memory is measured.
    mem_batched : tuple of (int, int)
        (side, N) of the batched fits whose peak memory is measured.
    watch : (int, int)
        (side, steps) of the fit whose snapshots and TensorBoard are timed
        (:mod:`dip.bench.watch`).
    """

    device_type: str
    sizes: tuple[int, ...]
    big: tuple[int, ...]
    repeats: int
    steps: int
    variants: dict
    batched_sizes: tuple[int, ...]
    ns: tuple[int, ...]
    engines: dict
    batched_steps: int
    mem_sizes: tuple[int, ...]
    mem_batched: tuple[tuple[int, int], ...]
    big_repeats: int = 1
    big_steps: int = 2
    watch: tuple[int, int] = (128, 300)

    def reference(self, variant: str) -> str:
        """Where the reference of a single row runs (a key of
        :data:`dip.bench.reference.REFERENCES`): in our process on CUDA; on the CPU in
        a process of its own, keeping its freed memory in the ``same-malloc`` row."""
        if self.device_type == "cuda":
            return "in-process"
        return "kept" if variant == "same-malloc" else "plain"

    def batched_repeats(self, size: int) -> int:
        """Alternations of single and batched fits of a batched row at ``size``²."""
        return self.repeats if size <= 64 and self.device_type != "cuda" else 1

    def gflop_sizes(self) -> list[int]:
        """Every side some section measures, in order."""
        return sorted({*self.sizes, *self.big, *self.batched_sizes, *self.mem_sizes})


def chosen(table: dict, names: Sequence[str] | None, what: str) -> dict:
    """The entries of ``table`` named in ``names`` (all of it when none are named).

    Raises
    ------
    DipError
        When a name is not in ``table``.
    """
    if not names:
        return table
    unknown = [x for x in names if x not in table]
    if unknown:
        raise DipError(f"unknown {what} {unknown[0]!r} here; choose from {', '.join(table)}")
    return {x: table[x] for x in names}


def plan_for(device_type: str, quick: bool = False, *, sizes: Sequence[int] | None = None,
             variants: Sequence[str] | None = None,
             batched_sizes: Sequence[int] | None = None,
             engines: Sequence[str] | None = None) -> Plan:
    """The plan of a run on a ``device_type`` ('cpu' or 'cuda') device.

    ``quick``: fewer repeats and sizes (< 5 min on 2 CPU cores). ``sizes`` replace the
    single section's sides (and leave out its big ones), ``batched_sizes`` the batched
    section's; ``variants`` and ``engines`` choose among the device's by name (on the
    CPU, bf16 too with ``quick``). Raises :class:`dip.DipError` for an unknown name.
    """
    cuda = device_type == "cuda"
    table = CUDA_VARIANTS if cuda else CPU_VARIANTS
    if quick and not cuda and not variants:
        table = {k: v for k, v in CPU_VARIANTS.items() if k != "bf16"}
    base = dict(sizes=(64, 128, 256), big=(), repeats=2, steps=3, batched_sizes=(64,),
                mem_batched=((64, 8),), watch=(128, 200))
    if not quick:
        base.update(big=(512,), repeats=3, steps=4, batched_sizes=(64, 128),
                    mem_batched=((64, 8), (128, 8)), watch=(128, 400))
    if cuda:  # steps cost milliseconds: more of them, all sizes
        base.update(sizes=(64, 128, 256, 512), big=(), repeats=3, steps=20, watch=(256, 1000),
                    batched_sizes=base["batched_sizes"] + (256,),
                    mem_batched=base["mem_batched"] + ((256, 8),))
    if sizes:
        base.update(sizes=tuple(sizes), big=())
    if batched_sizes:
        base["batched_sizes"] = tuple(batched_sizes)
    return Plan(device_type=device_type, **base,
                variants=chosen(table, variants, "variant"),
                engines=chosen(CUDA_ENGINES if cuda else ENGINES, engines, "engine"),
                ns=(1, 2, 4, 8), mem_sizes=(64, 128, 256, 512),
                batched_steps=BATCHED_CUDA_STEPS if cuda else base["steps"] + 1)
