"""The fully convolutional ResNet of Deep Image Prior (official ``models/resnet.py``)."""

from __future__ import annotations

import torch
from torch import nn

from dip.nets.common import act, check_align_corners, conv, norm

__all__ = ["resnet", "ResidualBlock"]


class ResidualBlock(nn.Module):
    """``x + body(x)`` where body is conv3×3 -> norm -> act -> conv3×3 -> norm.

    Convolutions have no bias and zero padding, as in the official blocks; the
    body is plain ``nn.Sequential`` so the spatial size is preserved.

    Parameters
    ----------
    num_channels : int
        Width of the block.
    norm_layer : callable
        Called as ``norm_layer(num_channels, affine=True)``.
    act_fun : str or callable
        See :func:`dip.nets.common.act`.
    need_residual : bool
        If False the identity path is dropped (``body(x)`` only).
    """

    def __init__(self, num_channels: int, norm_layer, act_fun="LeakyReLU",
                 need_residual: bool = True):
        super().__init__()
        c = num_channels
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, 1, bias=False), _norm(norm_layer, c), act(act_fun),
            nn.Conv2d(c, c, 3, 1, 1, bias=False), _norm(norm_layer, c),
        )
        self.need_residual = need_residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.need_residual else out


def _norm(norm_layer, c: int) -> nn.Module:
    return nn.Identity() if norm_layer is None else norm_layer(c, affine=True)


def resnet(num_input_channels: int, num_output_channels: int, num_blocks: int,
           num_channels: int, need_residual: bool = True, act_fun="LeakyReLU",
           need_sigmoid: bool = True, norm_layer=nn.BatchNorm2d,
           pad: str = "reflection", bn_init: str = "ones",
           align_corners: bool = False) -> nn.Sequential:
    """ResNet generator: head conv -> act, residual blocks, conv -> norm, conv -> sigmoid.

    Parameters
    ----------
    num_input_channels, num_output_channels : int
        Channels of the input code and of the output.
    num_blocks : int
        Number of :class:`ResidualBlock`.
    num_channels : int
        Width of every layer.
    need_residual : bool
        Identity shortcuts in the blocks.
    act_fun : {'LeakyReLU', 'ELU', 'Swish', 'none'} or nn.Module class
        Activation.
    need_sigmoid : bool
        Final sigmoid (the official code always applies it; False drops it).
    norm_layer : callable or {'batch', 'instance', 'none'}
        Normalisation, called with ``affine=True`` as in the official code.
    pad : {'zero', 'reflection'}
        Padding of the first and last convolutions (inner ones zero-pad).
    bn_init : {'ones', 'uniform'}
        Initial weight γ of the normalisation layers: 1 (PyTorch ≥ 1.0) or γ ~ U[0, 1)
        from torch's global RNG as the net is built (PyTorch 0.4, on which the official
        code ran). β = 0.
    align_corners : bool
        Accepted for a uniform interface and checked; the net does not upsample.

    Returns
    -------
    torch.nn.Sequential
    """
    check_align_corners(align_corners)
    factory = norm(norm_layer, bn_init)
    c = num_channels
    layers: list[nn.Module] = [
        conv(num_input_channels, c, 3, bias=True, pad=pad), act(act_fun),
    ]
    layers += [ResidualBlock(c, factory, act_fun, need_residual) for _ in range(num_blocks)]
    layers += [
        nn.Conv2d(c, c, 3, 1, 1), _norm(factory, c),
        conv(c, num_output_channels, 3, bias=True, pad=pad),
    ]
    if need_sigmoid:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)
