"""The encoder-decoder with skip connections ("skip") of Deep Image Prior.

:func:`skip` mirrors the official ``models/skip.py`` (same keywords, defaults,
layers and parameter counts); :func:`encdec` is the same net without skips.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from dip.nets.common import (
    BN_INITS,
    Concat,
    act,
    bn,
    check_align_corners,
    check_choice,
    conv,
    per_level,
    upsample,
)

__all__ = ["skip", "encdec"]


def skip(num_input_channels: int = 2, num_output_channels: int = 3,
         num_channels_down: Sequence[int] = (16, 32, 64, 128, 128),
         num_channels_up: Sequence[int] = (16, 32, 64, 128, 128),
         num_channels_skip: Sequence[int] = (4, 4, 4, 4, 4),
         filter_size_down: int | Sequence[int] = 3, filter_size_up: int | Sequence[int] = 3,
         filter_skip_size: int = 1, need_sigmoid: bool = True, need_bias: bool = True,
         pad: str = "zero", upsample_mode: str | Sequence[str] = "nearest",
         downsample_mode: str | Sequence[str] = "stride", act_fun="LeakyReLU",
         need1x1_up: bool = True, bn_init: str = "ones",
         align_corners: bool = False) -> nn.Sequential:
    """Encoder-decoder with skip connections (the paper's default architecture).

    Level ``i`` (``i = 0`` is the full resolution) is::

        Concat(skip_i, deeper_i) -> BN -> conv(filter_size_up) -> BN -> act
                                 [-> conv 1x1 -> BN -> act]        (need1x1_up)
        skip_i   = conv(filter_skip_size) -> BN -> act              (if skip channels > 0)
        deeper_i = conv(filter_size_down, /2) -> BN -> act -> conv -> BN -> act
                   -> level i+1 -> upsample x2

    followed at the top by a 1×1 convolution and an optional sigmoid. With zero
    skip channels at a level the concatenation is just ``deeper_i`` (the BN after
    it stays). Branch outputs of different size are centre-cropped to the smaller.

    Parameters
    ----------
    num_input_channels, num_output_channels : int
        Channels of the input code z and of the output image.
    num_channels_down, num_channels_up, num_channels_skip : sequence of int
        Widths per level, all of the same length (the depth). A 0 skip width
        removes that skip connection.
    filter_size_down, filter_size_up : int or sequence of int
        Kernel sizes of the encoder and decoder convolutions, per level or scalar.
    filter_skip_size : int
        Kernel size of the skip convolutions.
    need_sigmoid : bool
        Append a sigmoid so outputs lie in [0, 1].
    need_bias : bool
        Biases in the convolutions.
    pad : {'zero', 'reflection'}
        Padding of the convolutions.
    upsample_mode : {'nearest', 'bilinear'} or sequence
        Decoder upsampling, per level or scalar.
    downsample_mode : {'stride', 'avg', 'max', 'lanczos2', 'lanczos3'} or sequence
        Encoder downsampling, per level or scalar: a strided convolution, or a
        stride-1 convolution followed by pooling or a fixed Lanczos downsampler.
    act_fun : {'LeakyReLU', 'ELU', 'Swish', 'none'} or nn.Module class
        Activation (LeakyReLU has slope 0.2).
    need1x1_up : bool
        Add a 1×1 convolution -> BN -> act after each decoder convolution.
    bn_init : {'ones', 'uniform'}
        Initial BN weight γ: 1 (PyTorch ≥ 1.0) or γ ~ U[0, 1) drawn from torch's global
        RNG as the net is built (PyTorch 0.4, on which the official code ran). β = 0.
    align_corners : bool
        Of the bilinear upsampling (ignored for nearest): False is PyTorch's current
        default, True what PyTorch < 0.4 (the official code's) computed; see
        :func:`dip.nets.common.upsample`.

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    ValueError
        Unknown ``pad``, mode, activation or ``bn_init``, ``align_corners`` not a bool,
        or per-level lists of different lengths.
    """
    down, up, skips = list(num_channels_down), list(num_channels_up), list(num_channels_skip)
    n = len(down)
    if n == 0 or len(up) != n or len(skips) != n:
        raise ValueError(
            "num_channels_down, num_channels_up and num_channels_skip must be non-empty and "
            f"of equal length; got {len(down)}, {len(up)} and {len(skips)}")
    up_modes = per_level(upsample_mode, n, "upsample_mode")
    down_modes = per_level(downsample_mode, n, "downsample_mode")
    k_down = per_level(filter_size_down, n, "filter_size_down")
    k_up = per_level(filter_size_up, n, "filter_size_up")
    act(act_fun)  # validate once, before building
    check_choice("bn_init", bn_init, BN_INITS)
    check_align_corners(align_corners)

    def level(i: int, in_ch: int) -> nn.Sequential:
        deeper = nn.Sequential(
            conv(in_ch, down[i], k_down[i], 2, bias=need_bias, pad=pad,
                 downsample_mode=down_modes[i]),
            bn(down[i], bn_init), act(act_fun),
            conv(down[i], down[i], k_down[i], bias=need_bias, pad=pad),
            bn(down[i], bn_init), act(act_fun),
        )
        if i < n - 1:
            deeper.append(level(i + 1, down[i]))
            k = up[i + 1]
        else:
            k = down[i]
        deeper.append(upsample(up_modes[i], align_corners=align_corners))

        if skips[i] != 0:
            branch = nn.Sequential(
                conv(in_ch, skips[i], filter_skip_size, bias=need_bias, pad=pad),
                bn(skips[i], bn_init), act(act_fun),
            )
            layers: list[nn.Module] = [Concat(1, branch, deeper)]
        else:
            layers = [deeper]
        layers += [
            bn(skips[i] + k, bn_init),
            conv(skips[i] + k, up[i], k_up[i], 1, bias=need_bias, pad=pad),
            bn(up[i], bn_init), act(act_fun),
        ]
        if need1x1_up:
            layers += [conv(up[i], up[i], 1, bias=need_bias, pad=pad), bn(up[i], bn_init),
                       act(act_fun)]
        return nn.Sequential(*layers)

    model = nn.Sequential(
        level(0, num_input_channels),
        conv(up[0], num_output_channels, 1, bias=need_bias, pad=pad),
    )
    if need_sigmoid:
        model.append(nn.Sigmoid())
    return model


ENCDEC_FIXED = ("num_channels_down", "num_channels_up", "num_channels_skip")
"""Keywords of :func:`skip` that :func:`encdec` sets itself (from ``depth``, ``channels``)."""


def encdec(num_input_channels: int, num_output_channels: int, depth: int = 6,
           channels: Sequence[int] = (16, 32, 64, 128, 128, 128), **kwargs) -> nn.Sequential:
    """Encoder-decoder without skip connections: :func:`skip` with zero skip widths.

    Parameters
    ----------
    num_input_channels, num_output_channels : int
        Channels of the input code and of the output.
    depth : int
        Number of levels; the first ``depth`` entries of ``channels`` are used for
        both ``num_channels_down`` and ``num_channels_up``.
    channels : sequence of int
        Widths per level (at least ``depth`` entries).
    **kwargs
        Passed to :func:`skip` (e.g. ``filter_size_down=5, need1x1_up=False``).
    """
    channels = list(channels)
    if not 1 <= depth <= len(channels):
        raise ValueError(f"encdec depth {depth} must be between 1 and len(channels) = "
                         f"{len(channels)}")
    given = sorted(set(ENCDEC_FIXED) & set(kwargs))
    if given:
        raise ValueError(f"encdec takes depth and channels, not {', '.join(given)}; "
                         "use skip for explicit per-level widths")
    widths = channels[:depth]
    return skip(num_input_channels, num_output_channels, num_channels_down=widths,
                num_channels_up=list(widths), num_channels_skip=[0] * depth, **kwargs)

