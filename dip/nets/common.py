"""Building blocks shared by the Deep Image Prior networks.

Small factories (:func:`act`, :func:`conv`, :func:`bn`, :func:`norm`, :func:`upsample`) and
:class:`Concat`, the module that joins a skip branch and a deeper branch along
channels, cropping to the smaller spatial size as the official code does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from dip.nets.pad import ReflectionPad2d
from dip.problems.operators import Downsampler

__all__ = [
    "PADS", "DOWNSAMPLE_MODES", "UPSAMPLE_MODES", "ACTIVATIONS", "BN_INITS",
    "Concat", "act", "bn", "conv", "norm", "upsample", "center_crop", "check_choice",
    "check_align_corners", "init_norm", "per_level",
]

PADS = ("zero", "reflection")
DOWNSAMPLE_MODES = ("stride", "avg", "max", "lanczos2", "lanczos3")
UPSAMPLE_MODES = ("nearest", "bilinear")
ACTIVATIONS = ("LeakyReLU", "ELU", "Swish", "none")
NORMS = ("batch", "instance", "none")
BN_INITS = ("ones", "uniform")


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")


def per_level(value: Any, n: int, name: str) -> list:
    """Broadcast a scalar to ``n`` levels, or check a per-level sequence has length ``n``.

    Strings and numbers are scalars; any other iterable (list, tuple, OmegaConf
    ``ListConfig``) is taken as one entry per level.
    """
    if isinstance(value, (str, bytes, int, float)) or not isinstance(value, Iterable):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries but the net has {n} levels")
    return values


def act(act_fun: str | Callable[[], nn.Module] | nn.Module = "LeakyReLU") -> nn.Module:
    """Activation module.

    Parameters
    ----------
    act_fun : {'LeakyReLU', 'ELU', 'Swish', 'none'} or callable or nn.Module
        'LeakyReLU' is in-place with negative slope 0.2 (official), 'Swish' is
        x·sigmoid(x) (``nn.SiLU``), 'none' is the identity. A class or factory is
        called with no arguments; a module instance is deep-copied.
    """
    if isinstance(act_fun, str):
        check_choice("act_fun", act_fun, ACTIVATIONS)
        if act_fun == "LeakyReLU":
            return nn.LeakyReLU(0.2, inplace=True)
        if act_fun == "ELU":
            return nn.ELU()
        if act_fun == "Swish":
            return nn.SiLU()
        return nn.Identity()
    if isinstance(act_fun, nn.Module):
        return copy.deepcopy(act_fun)
    if callable(act_fun):
        return act_fun()
    raise ValueError(f"unknown act_fun {act_fun!r}; choose one of {', '.join(ACTIVATIONS)} "
                     "or pass an nn.Module class")


def init_norm(module: nn.Module, bn_init: str = "ones") -> nn.Module:
    """Initialise the affine weight γ of a normalisation layer as PyTorch 1.0+ or 0.4 did.

    Parameters
    ----------
    module : nn.Module
        A freshly built layer; anything that is not an affine BatchNorm or InstanceNorm
        is returned unchanged.
    bn_init : {'ones', 'uniform'}
        'ones': γ = 1 (PyTorch ≥ 1.0; nothing is done). 'uniform': γ ~ U[0, 1), drawn in
        place from torch's global RNG, as PyTorch 0.4 (the official code's) did in the
        layer's constructor, so the draw is seeded like the rest of the net. β stays 0.
        InstanceNorm derived from BatchNorm in PyTorch 0.4 and was drawn alike.

    Returns
    -------
    nn.Module
        ``module`` itself.
    """
    check_choice("bn_init", bn_init, BN_INITS)
    if (bn_init == "uniform" and isinstance(module, nn.modules.batchnorm._NormBase)
            and module.affine):
        with torch.no_grad():
            module.weight.uniform_(0.0, 1.0)
    return module


def bn(num_features: int, bn_init: str = "ones") -> nn.BatchNorm2d:
    """``nn.BatchNorm2d`` (affine, running statistics) with γ initialised by ``bn_init``.

    Parameters
    ----------
    num_features : int
        Channels.
    bn_init : {'ones', 'uniform'}
        γ = 1 (PyTorch ≥ 1.0 default) or γ ~ U[0, 1) from torch's global RNG (PyTorch
        0.4, on which the official code ran; see :func:`init_norm`). β = 0 either way.
    """
    return init_norm(nn.BatchNorm2d(num_features), bn_init)


def norm(norm_layer: str | Callable[..., nn.Module] | None,
         bn_init: str = "ones") -> Callable[..., nn.Module] | None:
    """Resolve a normalisation spec to a layer factory (``None`` for no normalisation).

    Parameters
    ----------
    norm_layer : {'batch', 'instance', 'none'} or callable or None
        'instance' is ``nn.InstanceNorm2d`` (affine=False by default), 'batch' is
        ``nn.BatchNorm2d``; a class such as ``nn.InstanceNorm2d`` is returned as is.
    bn_init : {'ones', 'uniform'}
        With 'uniform' the factory is wrapped so that every affine BatchNorm (or
        InstanceNorm) it builds gets γ ~ U[0, 1) (:func:`init_norm`); 'ones' returns
        the factory unchanged.
    """
    check_choice("bn_init", bn_init, BN_INITS)
    if norm_layer is None:
        return None
    if isinstance(norm_layer, str):
        check_choice("norm_layer", norm_layer, NORMS)
        factory = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d,
                   "none": None}[norm_layer]
    elif callable(norm_layer):
        factory = norm_layer
    else:
        raise ValueError(f"unknown norm_layer {norm_layer!r}; choose one of {', '.join(NORMS)}")
    if factory is None or bn_init == "ones":
        return factory

    def make(*args, **kwargs) -> nn.Module:
        return init_norm(factory(*args, **kwargs), bn_init)

    return make


def conv(in_f: int, out_f: int, kernel_size: int, stride: int = 1, bias: bool = True,
         pad: str = "zero", downsample_mode: str = "stride") -> nn.Sequential:
    """Convolution with 'same' padding and an optional downsampler (official ``conv``).

    Parameters
    ----------
    in_f, out_f : int
        Input and output channels.
    kernel_size : int
        Square kernel size; the input is padded by ``(kernel_size - 1) // 2``.
    stride : int
        With ``downsample_mode='stride'`` a strided convolution; otherwise a
        stride-1 convolution followed by the downsampler of that factor.
    bias : bool
        Whether the convolution has a bias.
    pad : {'zero', 'reflection'}
        Zero padding inside the convolution, or a separate reflection pad
        (:class:`dip.nets.pad.ReflectionPad2d`, which keeps channels_last on CUDA).
    downsample_mode : {'stride', 'avg', 'max', 'lanczos2', 'lanczos3'}
        How to reduce resolution when ``stride > 1``.
    """
    check_choice("pad", pad, PADS)
    check_choice("downsample_mode", downsample_mode, DOWNSAMPLE_MODES)
    layers: list[nn.Module] = []
    to_pad = (kernel_size - 1) // 2
    if pad == "reflection" and to_pad > 0:
        layers.append(ReflectionPad2d(to_pad))
    conv_pad = to_pad if pad == "zero" else 0
    downsampler = None
    if stride != 1 and downsample_mode != "stride":
        if downsample_mode == "avg":
            downsampler = nn.AvgPool2d(stride, stride)
        elif downsample_mode == "max":
            downsampler = nn.MaxPool2d(stride, stride)
        else:
            downsampler = Downsampler(out_f, stride, downsample_mode, phase=0.5,
                                      preserve_size=True)
        stride = 1
    layers.append(nn.Conv2d(in_f, out_f, kernel_size, stride, padding=conv_pad, bias=bias))
    if downsampler is not None:
        layers.append(downsampler)
    return nn.Sequential(*layers)


def check_align_corners(align_corners) -> None:
    """Raise ``ValueError`` unless ``align_corners`` is a bool."""
    if not isinstance(align_corners, bool):
        raise ValueError(f"align_corners must be true or false, got {align_corners!r}")


def upsample(mode: str, scale_factor: int = 2, align_corners: bool = False) -> nn.Upsample:
    """``nn.Upsample`` by ``scale_factor``.

    Parameters
    ----------
    mode : {'nearest', 'bilinear'}
        Interpolation.
    scale_factor : int
        Upscaling factor s.
    align_corners : bool
        Bilinear only (ignored for 'nearest'). False (current PyTorch default): output
        pixel x samples the input at (x + 0.5) / s - 0.5. True: the corner pixels of
        input and output coincide, x samples x · (n_in - 1) / (n_out - 1); PyTorch
        before 0.4 (on which the official code ran) behaved so. The two differ most
        near the borders.
    """
    check_choice("upsample_mode", mode, UPSAMPLE_MODES)
    check_align_corners(align_corners)
    if mode == "bilinear":
        return nn.Upsample(scale_factor=scale_factor, mode=mode, align_corners=align_corners)
    return nn.Upsample(scale_factor=scale_factor, mode=mode)


def center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Central ``height``×``width`` window of an N×C×H×W tensor (a view, no copy)."""
    if x.shape[2] == height and x.shape[3] == width:
        return x
    top = (x.shape[2] - height) // 2
    left = (x.shape[3] - width) // 2
    return x[:, :, top:top + height, left:left + width]


class Concat(nn.Module):
    """Apply each branch to the same input and concatenate the results along ``dim``.

    Outputs of different spatial size are centre-cropped to the smallest one
    (official ``Concat``); when all sizes agree nothing is cropped.

    Parameters
    ----------
    dim : int
        Concatenation dimension (1 = channels).
    *branches : nn.Module
        Modules applied to the input, in order.
    """

    def __init__(self, dim: int, *branches: nn.Module):
        super().__init__()
        self.dim = dim
        for idx, module in enumerate(branches):
            self.add_module(str(idx), module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [module(x) for module in self._modules.values()]
        h = min(o.shape[2] for o in outs)
        w = min(o.shape[3] for o in outs)
        return torch.cat([center_crop(o, h, w) for o in outs], dim=self.dim)

    def __len__(self) -> int:
        return len(self._modules)
