"""Reflection padding that keeps the channels_last layout on CUDA.

PyTorch's CUDA kernel of ``reflection_pad2d`` works on NCHW only: it copies a
channels_last input to NCHW, returns NCHW, and in the backward pass copies the gradient
to NCHW again and scatters it with atomic adds. In a channels_last net every reflection-
padded convolution then pays about four full-size layout copies a step (cuDNN converts
back), which is where most of the copies in the channels_last profile of
``results/profile/nvidia-h200.md`` come from (70 copies a step at 512², 2.6 ms of the
12.6 ms of kernels). :func:`reflect_pad` pads with slice copies instead, in the input's
own layout, and folds the gradient back without atomics (so it is deterministic).

The CPU kernel keeps channels_last itself; :class:`ReflectionPad2d` uses it there and
for NCHW inputs on CUDA, so that those results stay bit-identical to
``nn.ReflectionPad2d``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

__all__ = ["ReflectionPad2d", "reflect_pad"]


def _layout(x: torch.Tensor) -> torch.memory_format:
    cl = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if cl and not x.is_contiguous() else torch.contiguous_format


class _ReflectPad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: int) -> torch.Tensor:
        n, c, h, w = x.shape
        ctx.p, ctx.layout = p, _layout(x)
        out = torch.empty((n, c, h + 2 * p, w + 2 * p), dtype=x.dtype, device=x.device,
                          memory_format=ctx.layout)
        out[:, :, p:p + h, p:p + w] = x
        for i in range(1, p + 1):  # rows first (inner columns), then whole columns
            out[:, :, p - i, p:p + w] = x[:, :, i]
            out[:, :, p + h - 1 + i, p:p + w] = x[:, :, h - 1 - i]
        for i in range(1, p + 1):
            out[:, :, :, p - i] = out[:, :, :, p + i]
            out[:, :, :, p + w - 1 + i] = out[:, :, :, p + w - 1 - i]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor):
        p = ctx.p
        h, w = g.shape[2] - 2 * p, g.shape[3] - 2 * p
        # fold the columns (whole height), then the rows of the folded strip
        gc = g[:, :, :, p:p + w].clone(memory_format=ctx.layout)
        for i in range(1, p + 1):
            gc[:, :, :, i] += g[:, :, :, p - i]
            gc[:, :, :, w - 1 - i] += g[:, :, :, p + w - 1 + i]
        gx = gc[:, :, p:p + h]
        for i in range(1, p + 1):
            gx[:, :, i] += gc[:, :, p - i]
            gx[:, :, h - 1 - i] += gc[:, :, p + h - 1 + i]
        return gx.contiguous(memory_format=ctx.layout), None


def reflect_pad(x: torch.Tensor, p: int) -> torch.Tensor:
    """Pad the last two dimensions of an N×C×H×W tensor by ``p`` pixels on every side,
    reflecting at the border (as ``F.pad(x, (p,) * 4, mode='reflect')``), in ``x``'s own
    memory format.

    Parameters
    ----------
    x : torch.Tensor
        N×C×H×W, NCHW or channels_last, any floating dtype and device.
    p : int
        Padding in pixels, 0 ≤ p < min(H, W).

    Returns
    -------
    torch.Tensor
        N×C×(H+2p)×(W+2p), in the memory format of ``x``. Values equal ``F.pad``'s;
        gradients equal up to the order of a border pixel's (at most four) terms.
    """
    if x.dim() != 4:
        raise ValueError(f"reflect_pad needs an N×C×H×W tensor, got {x.dim()} dimensions")
    if not 0 <= p < min(x.shape[2], x.shape[3]):
        raise ValueError(f"reflection padding {p} needs an image larger than {p} pixels "
                         f"on each side, got {x.shape[2]}×{x.shape[3]}")
    return _ReflectPad.apply(x, p) if p else x


class ReflectionPad2d(nn.ReflectionPad2d):
    """``nn.ReflectionPad2d`` that keeps a channels_last input channels_last on CUDA
    (:func:`reflect_pad`); elsewhere, and for unequal paddings, PyTorch's kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.padding[0]
        if (x.is_cuda and len(set(self.padding)) == 1
                and _layout(x) is torch.channels_last):
            return reflect_pad(x, p)
        return super().forward(x)
