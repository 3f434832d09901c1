"""What a fit takes and returns: :class:`FitSettings`, :class:`FitResult`, and the seeded
network input (:func:`make_input`, :func:`code_channels`, :func:`seed_everything`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from dip.fitting.fast import AMP_MODES
from dip.fitting.official import BACKTRACKS, FINAL_INPUTS
from dip.fitting.stopping import STOP_MODES
from dip.typed import SettingError, check_int, typed_fields

__all__ = ["FitSettings", "FitResult", "seed_everything", "code_channels", "make_input",
           "draw_code"]


def _choice(name: str, value, known) -> None:
    if value not in known:
        raise SettingError(name, value, f"choose one of {', '.join(known)}", "unknown")


@dataclass
class FitSettings:
    """Settings of one DIP fit (names and defaults of the official code).

    Attributes
    ----------
    num_iter : int
        Number of Adam steps.
    lr : float
        Adam learning rate.
    reg_noise_std : float
        Std of the Gaussian perturbation added to z at every step (0 = none).
    input_depth : int
        Channels of the noise code z (ignored for ``input_type='meshgrid'``: 2).
    input_type : {'noise', 'meshgrid', 'image'}
        z ~ U[0, 1)·``input_scale``, the 2-channel coordinate grid in [0, 1], or an
        image given to :func:`fit` as ``z`` (e.g. the flash photo of a flash/no-flash
        pair).
    input_scale : float
        Scale of the uniform code (official ``var = 1/10``).
    exp_weight : float
        Weight of the exponential average of outputs, avg ← w·avg + (1 − w)·out.
    tv_weight : float
        Weight of an added total-variation term (0 = pure data term).
    record_every : int
        Steps between history rows.
    backtrack_drop_db : float
        PSNR drop against the observation (dB) that triggers a rollback; ``inf`` disables.
    max_backtracks : int
        Consecutive rollbacks after which the run is declared diverged ('guard' only).
    backtrack : {'guard', 'official'}
        'guard' (default): every step; a drop or a NaN restores parameters, buffers and
        Adam state and the step is redone (:class:`~dip.fitting.monitors.Backtrack`). 'official':
        the guard of the task's notebook where it has one (denoising.ipynb: parameters
        only, the bad step's gradient still applied; :mod:`dip.fitting.official`), else none.
    final_input : {'clean', 'perturbed'}
        Input of ``final``: 'clean' (default) z, as inpainting.ipynb; 'perturbed' the last
        step's z + ``reg_noise_std``·n, as the denoising, super-resolution and restoration
        notebooks' ``net(net_input)``. The same when ``reg_noise_std`` is 0.
    stop : {'fixed', 'wmv', 'emv'}
        'fixed' runs ``num_iter`` steps; 'wmv' / 'emv' also detect the stopping point
        without ground truth (:mod:`dip.fitting.stopping`) and end the run ``stop_patience``
        steps after it (``num_iter`` is then the cap).
    stop_window : int
        W of ES-WMV (outputs in the variance window).
    stop_patience : int
        P: steps without a new variance minimum before the run ends.
    stop_alpha : float
        α of ES-EMV.
    seed : int
        Seeds the network initialisation, z and the per-step input noise.
    device : str
        'auto' (CUDA when available, else CPU), 'cpu' or 'cuda[:i]'.
    progress : bool
        Show a tqdm bar.
    channels_last : bool or None
        Run the net in channels_last memory format; None = automatic: on AVX-512 CPUs
        for images of 256² pixels or more, never on CUDA (see :mod:`dip.fitting.fast`).
    amp : {'off', 'bf16', 'fp16'}
        Autocast of the forward pass (the loss is computed in fp32).
    compile : bool
        Wrap the net in ``torch.compile``.
    fused_adam : bool or None
        Fused Adam; None = on CUDA only.
    cuda_graph : bool or None
        Replay the step as CUDA graphs after :data:`dip.fitting.fast.GRAPH_WARMUP` eager steps;
        None = on CUDA only (True on the CPU runs the same loop without graphs).
    keep_memory : bool or None
        Keep freed memory in the process (:func:`dip.fitting.fast.keep_freed_memory`: faster CPU
        steps, bit-identical results, a larger peak memory); None = on the CPU only.
        Process-wide: once a fit has turned it on, False does not turn it off.
    snapshot_every : int
        Keep the output every this many steps (:class:`~dip.fitting.snapshots.Snapshots`,
        ``FitResult.snapshots``); 0 = none.
    snapshot_limit : int
        Most snapshots kept; when reached, every other one goes and the period doubles.
    snapshot_side : int
        Longest side of a kept snapshot (area-downscaled above it).
    """

    num_iter: int = 3000
    lr: float = 0.01
    reg_noise_std: float = 1.0 / 30
    input_depth: int = 32
    input_type: str = "noise"
    input_scale: float = 0.1
    exp_weight: float = 0.99
    tv_weight: float = 0.0
    record_every: int = 10
    backtrack_drop_db: float = 5.0
    max_backtracks: int = 10
    backtrack: str = "guard"
    final_input: str = "clean"
    stop: str = "fixed"
    stop_window: int = 100
    stop_patience: int = 1000
    stop_alpha: float = 0.1
    seed: int = 0
    device: str = "auto"
    progress: bool = False
    channels_last: bool | None = None
    amp: str = "off"
    compile: bool = False
    fused_adam: bool | None = None
    cuda_graph: bool | None = None
    keep_memory: bool | None = None
    snapshot_every: int = 0
    snapshot_limit: int = 64
    snapshot_side: int = 256

    def __post_init__(self):
        """Convert each value to its type and refuse invalid ones (:class:`SettingError`):
        the one place they are checked."""
        for name, value in typed_fields(self).items():  # the types of the config's schema
            setattr(self, name, value)
        check_int("num_iter", self.num_iter)
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise SettingError("lr", self.lr, "give a positive learning rate")
        _choice("stop", self.stop, STOP_MODES)
        check_int("stop_window", self.stop_window, 2)
        check_int("stop_patience", self.stop_patience)
        if not 0 < self.stop_alpha <= 1:
            raise SettingError("stop_alpha", self.stop_alpha, "give a weight in (0, 1]")
        _choice("amp", self.amp, AMP_MODES)
        _choice("final_input", self.final_input, FINAL_INPUTS)
        _choice("backtrack", self.backtrack, BACKTRACKS)
        check_int("snapshot_every", self.snapshot_every, 0)
        check_int("snapshot_limit", self.snapshot_limit, 2)
        check_int("snapshot_side", self.snapshot_side, 8)


@dataclass
class FitResult:
    """What a fit returns. Images are 1×C×H×W float32 tensors on the CPU in [0, 1].

    ``final`` is the net's output after the last step for the input ``final_input``
    names: f_θ(z) ('clean', as inpainting.ipynb) or f_θ(z + σ·n) with the last step's
    noise draw n ('perturbed', as the denoising, super-resolution and restoration
    notebooks); ``average`` the exponential average of the outputs, ``oracle`` the
    output of the step with the best ground-truth metric (None without ground truth),
    ``stop`` the output at the detected stopping point ``iter_stop`` and
    ``stop_average`` the exponential average there (with ``stop='fixed'``: ``final``,
    ``average`` and the number of steps). ``steps`` counts the parameter
    updates done; ``resumed_at`` is the step a checkpoint was resumed from (or None);
    ``memory_format`` ('nchw' or 'channels_last') is the layout the net ran in;
    ``graph_steps`` counts the steps run as graph replays (``cuda_graph``; on the CPU by
    the graph's eager stand-in), 0 when every step ran eagerly. ``snapshots`` are the
    outputs kept along the fit (``snapshot_every``; :class:`~dip.fitting.snapshots.Frame`),
    their PSNR against the ground truth, or the observation without one.

    ``status`` is 'ok', 'stopped' (early stopping ended the run) or 'diverged': the
    backtracking guard gave up, the parameters blew up (non-finite output; ``final`` is
    then the running average), or the final output fits the observation worse than the
    best flat image (:func:`dip.fitting.divergence.worse_than_flat`).
    """

    final: torch.Tensor
    average: torch.Tensor
    oracle: torch.Tensor | None
    iter_oracle: int | None
    history: pd.DataFrame
    seconds: float
    device: str
    status: str = "ok"
    backtracks: int = 0
    scores: dict = field(default_factory=dict)
    stop: torch.Tensor | None = None
    iter_stop: int | None = None
    steps: int = 0
    resumed_at: int | None = None
    memory_format: str = "nchw"
    graph_steps: int = 0
    stop_average: torch.Tensor | None = None
    snapshots: list = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and numpy's legacy global generator."""
    torch.manual_seed(int(seed))
    np.random.seed(int(seed) % 2**32)


def code_channels(settings: FitSettings) -> int:
    """Channels of the drawn code z: 2 for the meshgrid, else ``input_depth``."""
    return 2 if settings.input_type == "meshgrid" else settings.input_depth


def make_input(input_type: str, depth: int, size: tuple[int, int], *, scale: float = 0.1,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """The fixed network input z, 1×depth×H×W.

    'noise': U[0, 1)·scale (official ``get_noise(..., 'noise', var=1/10)``);
    'meshgrid': two channels with x and y coordinates in [0, 1].
    """
    h, w = size
    if input_type == "noise":
        return torch.rand((1, depth, h, w), generator=generator) * scale
    if input_type == "meshgrid":
        y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
        return torch.stack([x, y])[None]
    raise ValueError(f"unknown input_type {input_type!r}; choose 'noise' or 'meshgrid'")


def draw_code(settings: FitSettings, size: tuple[int, int]) -> torch.Tensor:
    """The code z of a fit with ``settings``, 1×C×H×W, drawn from a CPU generator seeded
    with ``settings.seed`` (the same z for the same seed, whatever the engine)."""
    gen = torch.Generator(device="cpu").manual_seed(int(settings.seed))
    return make_input(settings.input_type, code_channels(settings), size,
                      scale=settings.input_scale, generator=gen)
