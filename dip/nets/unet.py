"""The U-Net of Deep Image Prior (official ``models/unet.py``)."""

from __future__ import annotations

import torch
from torch import nn

from dip.nets.common import center_crop, check_align_corners, check_choice, conv, norm

__all__ = ["unet", "UNet"]

UNET_UPSAMPLE_MODES = ("deconv", "bilinear", "nearest")


def _double_conv(in_ch: int, out_ch: int, norm_layer, need_bias: bool, pad: str) -> nn.Sequential:
    """(conv3×3 -> [norm] -> ReLU) twice (official ``unetConv2``)."""
    layers: list[nn.Module] = []
    for c_in in (in_ch, out_ch):
        layers.append(conv(c_in, out_ch, 3, bias=need_bias, pad=pad))
        if norm_layer is not None:
            layers.append(norm_layer(out_ch))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _down(in_ch: int, out_ch: int, norm_layer, need_bias: bool, pad: str) -> nn.Sequential:
    """Max-pool ×2 then :func:`_double_conv` (official ``unetDown``)."""
    return nn.Sequential(nn.MaxPool2d(2, 2),
                         _double_conv(in_ch, out_ch, norm_layer, need_bias, pad))


class _Up(nn.Module):
    """Upsample ``x``, concatenate with the (centre-cropped) skip tensor, double conv.

    As the official ``unetUp``: the decoder convolutions have no normalisation.
    """

    def __init__(self, out_ch: int, upsample_mode: str, need_bias: bool, pad: str,
                 same_num_filt: bool = False, align_corners: bool = False):
        super().__init__()
        num_filt = out_ch if same_num_filt else out_ch * 2
        if upsample_mode == "deconv":
            self.up = nn.ConvTranspose2d(num_filt, out_ch, 4, stride=2, padding=1)
        else:
            kw = {"align_corners": align_corners} if upsample_mode == "bilinear" else {}
            self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode=upsample_mode, **kw),
                                    conv(num_filt, out_ch, 3, bias=need_bias, pad=pad))
        self.conv = _double_conv(out_ch * 2, out_ch, None, need_bias, pad)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        skip = center_crop(skip, x.shape[2], x.shape[3])
        return self.conv(torch.cat([x, skip], 1))


class UNet(nn.Module):
    """U-Net module; see :func:`unet` for the parameters."""

    def __init__(self, num_input_channels=3, num_output_channels=3, feature_scale=4,
                 more_layers=0, concat_x=False, upsample_mode="deconv", pad="zero",
                 norm_layer=nn.InstanceNorm2d, need_sigmoid=True, need_bias=True,
                 bn_init="ones", align_corners=False):
        super().__init__()
        check_choice("upsample_mode", upsample_mode, UNET_UPSAMPLE_MODES)
        check_align_corners(align_corners)
        factory = norm(norm_layer, bn_init)
        self.concat_x = concat_x
        self.more_layers = int(more_layers)
        f = [max(1, int(x // feature_scale)) for x in (64, 128, 256, 512, 1024)]
        extra = num_input_channels if concat_x else 0
        if concat_x and min(f) <= extra:
            raise ValueError(f"concat_x needs every width > num_input_channels; widths {f}")
        args = (factory, need_bias, pad)

        self.start = _double_conv(num_input_channels, f[0] - extra, *args)
        self.downs = nn.ModuleList(
            [_down(f[i], f[i + 1] - extra, *args) for i in range(4)]
            + [_down(f[4], f[4] - extra, *args) for _ in range(self.more_layers)])
        self.more_ups = nn.ModuleList(
            [_Up(f[4], upsample_mode, need_bias, pad, same_num_filt=True,
                 align_corners=align_corners) for _ in range(self.more_layers)])
        self.ups = nn.ModuleList([_Up(f[i], upsample_mode, need_bias, pad,
                                      align_corners=align_corners) for i in range(4)])
        final: list[nn.Module] = [conv(f[0], num_output_channels, 1, bias=need_bias, pad=pad)]
        if need_sigmoid:
            final.append(nn.Sigmoid())
        self.final = nn.Sequential(*final)
        self.pool = nn.AvgPool2d(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [self.start(x)]
        xs = x
        if self.concat_x:
            feats[0] = torch.cat([feats[0], xs], 1)
        for down in self.downs:
            out = down(feats[-1])
            if self.concat_x:
                xs = self.pool(xs)
                out = torch.cat([out, xs], 1)
            feats.append(out)
        # feats: [start, down1..down4, more_1..more_m]; decode from the deepest.
        y = feats.pop()
        for up in reversed(self.more_ups):
            y = up(y, feats.pop())
        for up in reversed(self.ups):
            y = up(y, feats.pop())
        return self.final(y)


def unet(num_input_channels: int = 3, num_output_channels: int = 3, feature_scale: float = 4,
         more_layers: int = 0, concat_x: bool = False, upsample_mode: str = "deconv",
         pad: str = "zero", norm_layer=nn.InstanceNorm2d, need_sigmoid: bool = True,
         need_bias: bool = True, bn_init: str = "ones", align_corners: bool = False) -> UNet:
    """U-Net with max-pool encoder and concatenating decoder (official ``UNet``).

    Parameters
    ----------
    num_input_channels, num_output_channels : int
        Channels of the input code and of the output.
    feature_scale : float
        Widths are ``[64, 128, 256, 512, 1024] // feature_scale``.
    more_layers : int
        Extra levels at the deepest width.
    concat_x : bool
        Concatenate the (average-pooled) input to every encoder output.
    upsample_mode : {'deconv', 'bilinear', 'nearest'}
        Transposed 4×4 convolution, or resize followed by a 3×3 convolution.
    pad : {'zero', 'reflection'}
        Padding of the convolutions.
    norm_layer : callable or {'instance', 'batch', 'none'} or None
        Normalisation of the encoder convolutions, called as ``norm_layer(width)``;
        the default ``nn.InstanceNorm2d`` has no affine parameters.
    need_sigmoid : bool
        Final sigmoid.
    need_bias : bool
        Biases in the (non-transposed) convolutions.
    bn_init : {'ones', 'uniform'}
        Initial weight γ of affine normalisation layers (``norm_layer='batch'``): 1
        (PyTorch ≥ 1.0) or γ ~ U[0, 1) from torch's global RNG as the net is built
        (PyTorch 0.4, on which the official code ran). No effect on the default
        instance norm, which has no weights.
    align_corners : bool
        Of ``upsample_mode='bilinear'`` (ignored otherwise): False is PyTorch's current
        default, True what PyTorch < 0.4 (the official code's) computed; see
        :func:`dip.nets.common.upsample`.

    Returns
    -------
    UNet

    Notes
    -----
    Spatial sizes should be divisible by ``2 ** (4 + more_layers)``; otherwise skip
    tensors are centre-cropped and the output is smaller than the input. The
    official decoder loop fails for ``more_layers > 1``; here it works as intended.
    """
    return UNet(num_input_channels, num_output_channels, feature_scale, more_layers, concat_x,
                upsample_mode, pad, norm_layer, need_sigmoid, need_bias, bn_init, align_corners)
