"""Fast paths of the fit step: memory format, mixed precision, fused Adam, compilation,
CUDA graphs.

The defaults of :class:`~dip.fitting.settings.FitSettings` keep the CPU on eager fp32 NCHW,
except for images of :data:`CPU_CHANNELS_LAST_PIXELS` pixels or more on CPUs whose oneDNN runs its
AVX-512 kernels: there channels_last is faster. With oneDNN pinned to AVX2
(``ONEDNN_MAX_CPU_ISA=AVX2``, as ``make`` does for CPU profiles) channels_last was slower
at every size, and ``torch.compile`` was slower too. On CUDA the automatic choices are
NCHW, ``cudnn.benchmark``, the fused Adam and CUDA graphs; bf16 autocast
(``amp='bf16'``), channels_last and ``torch.compile`` (``compile=True``) are opt-in.

An eager step of the paper net on a fast GPU waits for the host to launch several hundred
small kernels. A CUDA graph (:class:`StepGraph`) launches the recorded forward/backward
pass and the Adam update as two replays, with the monitors and rollbacks between them. A
capture that fails falls back to the eager step with a warning; the loop is tested on the
CPU, where a stand-in replays the step eagerly (identical results). PyTorch's CUDA
reflection padding works in NCHW only, so the nets pad a channels_last tensor on CUDA with
their own slice copies (:mod:`dip.nets.pad`).

On the CPU a fit also keeps the memory it frees (:func:`keep_freed_memory`). glibc's
malloc hands blocks of 128 KiB and more (up to 32 MiB as it adapts) back to the system
when they are freed, and the next step's activations of the same size come back as fresh
pages that the kernel must fault in and zero. Keeping them leaves the results
bit-identical (only where the bytes live changes); the price is memory: the heap keeps
freed blocks of every size it has seen, and what a fit freed stays with the process after
it.

The measurements behind these choices (step times, memory, the graph and bf16 PSNR
checks), each with its commit and machine, are in ``docs/performance.md``.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
import warnings
from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["AMP_MODES", "CPU_CHANNELS_LAST_PIXELS", "configure", "use_channels_last",
           "use_fused_adam", "use_cuda_graph", "use_keep_memory", "keep_freed_memory",
           "freed_memory_kept", "prepare", "adam", "autocast", "StepGraph", "StepLock",
           "STEP_LOCK", "GRAPH_WARMUP"]

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


def configure(device: torch.device, settings=None) -> None:
    """Process-wide settings for ``device``: ``cudnn.benchmark`` on CUDA (fixed shapes)
    and, for ``cuda:K``, GPU K as this thread's current device (what graph captures and
    streams made without a device use); freed memory kept in the process
    (:func:`keep_freed_memory`) when :func:`use_keep_memory` says so for ``settings``."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        if device.index is not None:
            torch.cuda.set_device(device)
    if use_keep_memory(settings, device):
        keep_freed_memory()


def use_keep_memory(settings, device: torch.device) -> bool:
    """Keep freed memory in the process: the setting, or automatic (on the CPU, where
    activations live in the C library's heap; not on CUDA, whose caching allocator keeps
    them already) when None."""
    value = getattr(settings, "keep_memory", None)
    return device.type == "cpu" if value is None else bool(value)


# glibc's mallopt parameters (malloc.h) and the largest value they take (an int): blocks
# below it come from the heap, which is trimmed only when this much is free at its top.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
KEEP_BYTES = 2**31 - 1
_keep_lock = threading.Lock()
_kept: bool | None = None


def _mallopt_keep() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    # the parameter codes are glibc's: another C library's mallopt may read them otherwise
    if not (hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt")):
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    heap = mallopt(_M_MMAP_THRESHOLD, KEEP_BYTES)
    kept = mallopt(_M_TRIM_THRESHOLD, KEEP_BYTES)
    return bool(heap and kept)


def keep_freed_memory() -> bool:
    """Let this process keep the memory it frees instead of returning it to the system.

    Sets glibc's malloc thresholds (``M_MMAP_THRESHOLD``, ``M_TRIM_THRESHOLD``) to
    :data:`KEEP_BYTES`: blocks up to 2 GiB come from the heap, and freed ones stay there
    for the next step, which then finds its pages already mapped instead of faulting in
    fresh zeroed ones. Process-wide and for the rest of the process (the same effect as
    starting it with ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` set);
    called once by the first fit that uses it, a no-op afterwards.

    Returns
    -------
    bool
        Whether the thresholds are set: False where the C library is not glibc
        (macOS, Windows, musl), which keeps its own behaviour.
    """
    global _kept
    with _keep_lock:
        if _kept is None:
            _kept = _mallopt_keep()
        return _kept


def freed_memory_kept() -> bool:
    """Whether :func:`keep_freed_memory` has set the allocator of this process."""
    return bool(_kept)


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
    configure(device, settings)
    channels_last = use_channels_last(settings, device, z.shape)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        z = z.contiguous(memory_format=torch.channels_last)
    if getattr(settings, "compile", False):
        net = torch.compile(net)
    return net, z, channels_last


def adam(params: Iterable[torch.Tensor], settings, device: torch.device) -> torch.optim.Adam:
    """``torch.optim.Adam`` with the run's learning rate (fused when chosen; capturable
    by a CUDA graph when the run uses one; for-each on the CPU otherwise).

    PyTorch picks the for-each implementation by itself on CUDA only; on the CPU it
    loops over the parameters in Python. For-each gives the same bits there (each
    tensor goes through the same kernels) in half the time: measured on an AMD EPYC,
    one thread, a 16-wide skip net, 6.4 → 3.1 ms a step (the fused CPU kernel, 1.9 ms,
    rounds differently, so it stays opt-in).
    """
    kw = {"capturable": True} if device.type == "cuda" and use_cuda_graph(settings, device) \
        else {}
    if use_fused_adam(settings, device):
        kw["fused"] = True
    elif device.type == "cpu":
        kw["foreach"] = True
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
    """Shared/exclusive lock of the fits of one process (dip.fitting.batched's threads engine).

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

    @property
    def waiting(self) -> int:
        """Exclusive holders waiting for the shared ones to finish."""
        return self._waiting

    @contextlib.contextmanager
    def observed(self):
        """The lock's condition held; yields ``wait_for(predicate, timeout)`` to wait
        until the lock's state satisfies ``predicate`` (tests and diagnostics)."""
        with self._cond:
            yield self._cond.wait_for

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
            self._cond.notify_all()  # observers (:meth:`observed`) see the waiting holder
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
