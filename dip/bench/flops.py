"""Arithmetic of a fit step and the rate a machine reaches on plain matrix products.

What a benchmark needs to say how close a step runs to the hardware:
:func:`step_gflop` counts the convolution arithmetic of one step (forward and
backward pass) from shapes alone, and :func:`gemm_gflop_s` measures the fp32 rate of
a large matrix product, the most a convolution step could hope to sustain.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["step_gflop", "gemm_gflop_s"]


def step_gflop(make_net: Callable[[], nn.Module], size: int, input_depth: int = 32,
               n: int = 1) -> float:
    """Convolution arithmetic of one step of ``n`` runs at ``size``², in GFLOP.

    Counts what :class:`torch.utils.flop_counter.FlopCounterMode` counts: the
    convolutions and matrix products of the forward pass and of the backward pass
    (gradients of the weights, and of the inputs where they are needed), 2 FLOP per
    multiply-add. BatchNorm, activations, padding, upsampling and the optimiser are
    left out. The net is built and run on the ``meta`` device, so no memory or time is
    spent on the arithmetic itself.

    Parameters
    ----------
    make_net : callable
        Builds the network (no arguments).
    size : int
        Image side in pixels (square input).
    input_depth : int
        Channels of the network input.
    n : int
        Runs per step: the count is ``n`` times that of one run.

    Returns
    -------
    float
        GFLOP (1e9 floating-point operations) per step.
    """
    with torch.device("meta"):
        net = make_net()
        z = torch.empty(1, input_depth, size, size)
    with FlopCounterMode(display=False) as counter:
        net(z).sum().backward()
    return n * counter.get_total_flops() / 1e9


def gemm_gflop_s(device: torch.device, threads: int | None = None, side: int | None = None,
                 seconds: float = 0.5) -> float:
    """fp32 rate of a square matrix product on ``device``, in GFLOP/s.

    Parameters
    ----------
    device : torch.device
        Where to multiply.
    threads : int, optional
        CPU threads for the measurement (the process's setting is restored after it);
        ``None`` keeps the current one.
    side : int, optional
        Matrix side: 1024 on the CPU, 8192 on a GPU by default.
    seconds : float
        Roughly how long to keep multiplying (after one warm-up product).

    Returns
    -------
    float
        2·side³ FLOP per product over the median time of a product. On CUDA the
        product runs at PyTorch's matmul precision setting (full fp32 by default), while
        cuDNN convolutions may use TF32, so a convolution step can exceed this rate there.
    """
    side = side or (8192 if device.type == "cuda" else 1024)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        gen = torch.Generator(device=device).manual_seed(0)
        a = torch.randn(side, side, device=device, generator=gen)
        b = torch.randn(side, side, device=device, generator=gen)
        times: list[float] = []
        start = time.perf_counter()
        for i in range(1000):
            t = time.perf_counter()
            a @ b
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i:  # the first product is a warm-up
                times.append(time.perf_counter() - t)
            if time.perf_counter() - start > seconds and len(times) >= 3:
                break
    finally:
        torch.set_num_threads(before)
    times.sort()
    return 2 * side ** 3 / times[len(times) // 2] / 1e9
