"""Fast paths of the fit step: memory format, mixed precision, fused Adam, compilation,
CUDA graphs.

The defaults of :class:`dip.fit.FitSettings` keep the CPU on eager fp32 NCHW, except for
images of :data:`CPU_CHANNELS_LAST_PIXELS` pixels or more on CPUs whose oneDNN runs its
AVX-512 kernels: there channels_last is faster. Measured on 2 cores of an AVX-512 Xeon,
one step of the paper net in channels_last took 1.04× the NCHW time at 64² and 128²,
0.89× at 256² and 0.76× at 512²; with oneDNN pinned to AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2``,
as ``make`` does for CPU profiles) channels_last was slower at every size (1.13× at 256²).
``torch.compile`` was slower too (1.13× at 256², after 87 s of compilation). On CUDA the
automatic choices are NCHW, ``cudnn.benchmark``, the fused Adam and CUDA graphs; bf16
autocast (``amp='bf16'``), channels_last and ``torch.compile`` (``compile=True``) are
opt-in.

On an H200 the eager step of the paper net takes 16–19 ms at every size from 64² to 512²
(1.00–1.06× the eager reference of :mod:`dip.bench`, which has no monitors): the GPU
waits for the host to launch several hundred small kernels. A CUDA graph
(:class:`StepGraph`) launches the recorded forward/backward pass and the Adam update as
two replays: 3.0 / 3.6 / 5.5 / 13.0 ms at 64² / 128² / 256² / 512² in NCHW, 0.19 / 0.21 /
0.29 / 0.66× the reference (whose own time varied from 14 to 21 ms between rows). In
channels_last the same steps took 3.2 / 3.9 / 5.8 / 14.1 ms: its convolutions convert
layouts less, but its BatchNorm and padding cost more (12.6 against 11.4 ms of kernels a
step at 512²). At 512² the step is bound by the GPU's work, not by launches. The same
500 steps of the paper's F16 σ 25 denoising, eager and as graphs, ended 0.03 dB apart
(float sums in another order); an 11000-step paper inpainting run of House with graphs
gave 38.90 dB (the paper's result image: 39.00).
``results/bench/nvidia-h200.md`` has the numbers, ``results/profile/nvidia-h200.md``
where the time goes. A capture that fails falls back to the eager step with a warning; the
loop is tested on the CPU, where a stand-in replays the step eagerly (identical results).
bf16 was not faster, with or without graphs.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["AMP_MODES", "CPU_CHANNELS_LAST_PIXELS", "configure", "use_channels_last",
           "use_fused_adam", "use_cuda_graph", "prepare", "adam", "autocast", "StepGraph",
           "StepLock", "STEP_LOCK", "GRAPH_WARMUP"]

AMP_MODES = ("off", "bf16", "fp16")
# Image area (H·W) from which an AVX-512 CPU runs the net in channels_last when the
# setting is automatic (None): measured faster from 256² up, slower at 128² and below.
CPU_CHANNELS_LAST_PIXELS = 256 * 256


def _onednn_avx512() -> bool:
    """Whether oneDNN's convolutions run AVX-512 (or newer) kernels in this process: the
    CPU has AVX-512 and ``ONEDNN_MAX_CPU_ISA`` does not cap the instruction set below it."""
    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return False
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").strip().upper()
    return cap in ("", "ALL", "DEFAULT") or "AVX512" in cap or "AMX" in cap


def configure(device: torch.device) -> None:
    """Process-wide settings for ``device``: ``cudnn.benchmark`` on CUDA (fixed shapes)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def use_channels_last(settings, device: torch.device, shape=None) -> bool:
    """channels_last: the setting, or automatic when None.

    Automatic: never on CUDA (NCHW measured faster on an H200 from 256² up, as fast below);
    on the CPU when oneDNN runs AVX-512 kernels and the image (the last two entries of
    ``shape``, e.g. z's N×C×H×W) has at least :data:`CPU_CHANNELS_LAST_PIXELS` pixels.
    """
    value = getattr(settings, "channels_last", None)
    if value is not None:
        return bool(value)
    if device.type == "cuda":
        return False
    return (shape is not None and int(shape[-1]) * int(shape[-2]) >= CPU_CHANNELS_LAST_PIXELS
            and _onednn_avx512())


def use_fused_adam(settings, device: torch.device) -> bool:
    """Fused Adam: the setting, or automatic (on CUDA, off on the CPU) when None."""
    value = getattr(settings, "fused_adam", None)
    return device.type == "cuda" if value is None else bool(value)


def use_cuda_graph(settings, device: torch.device) -> bool:
    """CUDA graphs (:class:`StepGraph`): the setting, or automatic (on CUDA, not on the
    CPU) when None. True on the CPU runs the graph loop with its eager stand-in."""
    value = getattr(settings, "cuda_graph", None)
    return device.type == "cuda" if value is None else bool(value)


def _check_amp(settings) -> str:
    amp = getattr(settings, "amp", "off") or "off"
    if amp not in AMP_MODES:
        raise ValueError(f"unknown amp {amp!r}; choose one of {', '.join(AMP_MODES)}")
    return amp


def prepare(net: nn.Module, z: torch.Tensor, settings, device: torch.device):
    """Apply memory format and compilation to a net on ``device`` and its input code.

    Returns
    -------
    (callable, torch.Tensor, bool)
        The module to call (compiled when ``settings.compile``), ``z`` in the matching
        memory format, and whether that format is channels_last. Parameters are shared
        with ``net``.
    """
    _check_amp(settings)
    configure(device)
    channels_last = use_channels_last(settings, device, z.shape)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        z = z.contiguous(memory_format=torch.channels_last)
    if getattr(settings, "compile", False):
        net = torch.compile(net)
    return net, z, channels_last


def adam(params: Iterable[torch.Tensor], settings, device: torch.device) -> torch.optim.Adam:
    """``torch.optim.Adam`` with the run's learning rate (fused when chosen; capturable
    by a CUDA graph when the run uses one)."""
    kw = {"capturable": True} if device.type == "cuda" and use_cuda_graph(settings, device) \
        else {}
    if use_fused_adam(settings, device):
        kw["fused"] = True
    return torch.optim.Adam(params, lr=settings.lr, **kw)


def autocast(settings, device: torch.device, cache: bool = True):
    """Autocast context of ``settings.amp`` ('off': a no-op context). ``cache=False``
    inside a CUDA graph capture (cast weights must be recomputed at every replay)."""
    amp = _check_amp(settings)
    if amp == "off":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=cache)


# Eager steps before the capture: cudnn.benchmark picks its algorithms and Adam creates
# its state in them (the captured graph then reuses both).
GRAPH_WARMUP = 3


class StepLock:
    """Shared/exclusive lock of the fits of one process (dip.batched's threads engine).

    A fit holds it shared around its GPU work (set-up, each step, the final output) and
    exclusive around a CUDA graph capture, which then records alone: measured on an
    H200, an eager step of one thread during another thread's capture failed ("operation
    not permitted when stream is capturing") and spoilt that capture. Waiting captures
    go first; replays of captured runs overlap freely (each on its own stream).
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0

    @contextlib.contextmanager
    def shared(self):
        with self._cond:
            while self._exclusive or self._waiting:
                self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self):
        with self._cond:
            self._waiting += 1
            while self._exclusive or self._shared:
                self._cond.wait()
            self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()


STEP_LOCK = StepLock()


class StepGraph:
    """The fit step as two replayable pieces: forward + loss + backward, and the update.

    Between the two the monitors look at the step's output and loss (static tensors
    that each replay overwrites) and may roll the step back, as in the eager loop. On
    CUDA, :meth:`capture` records both pieces as CUDA graphs (sharing one memory pool)
    and each call replays one; elsewhere a call runs the function again and copies its
    results into the tensors of the first call, as a replay overwrites them, which keeps
    the loop's logic (and any monitor that keeps a tensor without copying it) testable
    on the CPU.

    Parameters
    ----------
    device : torch.device
    """

    def __init__(self, device: torch.device):
        self.device = device
        # eager warm-up, capture and replays all on one side stream (never the legacy
        # default stream, which a capture must not depend on)
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.captured = False
        self._fns = None
        self._graphs = None
        self.static = None

    def capture(self, forward_backward, update, optimizer: torch.optim.Optimizer) -> bool:
        """Record ``forward_backward()`` (returns the tensors to expose; writes the
        gradients) and ``update()`` (the optimiser step). Nothing is computed.

        Returns False, with a warning, when the recording fails (the caller goes on with
        the eager step; nothing was applied).
        """
        optimizer.zero_grad(set_to_none=True)  # the replays write, not add, the gradients
        try:
            with STEP_LOCK.exclusive():
                self._record(forward_backward, update, optimizer)
        except RuntimeError as err:
            warnings.warn("CUDA graph capture failed, the fit goes on without graphs: "
                          f"{str(err).strip().splitlines()[0]}", stacklevel=3)
            optimizer.zero_grad(set_to_none=True)
            self._graphs = self._fns = self.static = None
            return False
        self.captured = True
        return True

    def _record(self, forward_backward, update, optimizer) -> None:
        if self.device.type != "cuda":
            self._fns = (forward_backward, update, optimizer)
            return
        fb, up = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        torch.cuda.synchronize(self.device)
        # thread_local: runs of the threads engine capture and replay side by side
        with torch.cuda.graph(fb, stream=self.stream, capture_error_mode="thread_local"):
            self.static = forward_backward()
        with torch.cuda.graph(up, pool=fb.pool(), stream=self.stream,
                              capture_error_mode="thread_local"):
            update()
        self._graphs = (fb, up)

    def context(self):
        """Context for the whole loop: the graph's side stream on CUDA."""
        if self.stream is None:
            return contextlib.nullcontext()
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        return torch.cuda.stream(self.stream)

    def forward_backward(self):
        """One forward/backward pass; returns the static tensors of the capture."""
        if self._graphs is not None:
            self._graphs[0].replay()
        else:  # as a replay does: the results land in the tensors of the first call
            fb, _, optimizer = self._fns
            optimizer.zero_grad(set_to_none=True)
            outs = fb()
            if self.static is None:
                self.static = outs
            else:
                with torch.no_grad():
                    for static, new in zip(self.static, outs, strict=True):
                        static.copy_(new)
        return self.static

    def update(self) -> None:
        """The optimiser step on the gradients of the last :meth:`forward_backward`."""
        if self._graphs is not None:
            self._graphs[1].replay()
        else:
            self._fns[1]()
