"""Fast paths of the fit step: memory format, mixed precision, fused Adam, compilation.

The defaults of :class:`dip.fit.FitSettings` keep the CPU on plain eager fp32 NCHW,
which measured fastest for the paper net on 2 CPU cores (channels_last and
``torch.compile`` were slower at 128²; see ``make bench``). On CUDA the automatic
choices are channels_last, ``cudnn.benchmark`` and the fused Adam; bf16 autocast
(``amp='bf16'``) and ``torch.compile`` (``compile=True``) are opt-in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["AMP_MODES", "configure", "use_channels_last", "use_fused_adam", "prepare", "adam",
           "autocast"]

AMP_MODES = ("off", "bf16", "fp16")


def configure(device: torch.device) -> None:
    """Process-wide settings for ``device``: ``cudnn.benchmark`` on CUDA (fixed shapes)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def use_channels_last(settings, device: torch.device) -> bool:
    """channels_last: the setting, or automatic (on CUDA, off on the CPU) when None."""
    value = getattr(settings, "channels_last", None)
    return device.type == "cuda" if value is None else bool(value)


def use_fused_adam(settings, device: torch.device) -> bool:
    """Fused Adam: the setting, or automatic (on CUDA, off on the CPU) when None."""
    value = getattr(settings, "fused_adam", None)
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
    (callable, torch.Tensor)
        The module to call (compiled when ``settings.compile``) and ``z`` in the
        matching memory format. Parameters are shared with ``net``.
    """
    _check_amp(settings)
    configure(device)
    if use_channels_last(settings, device):
        net = net.to(memory_format=torch.channels_last)
        z = z.contiguous(memory_format=torch.channels_last)
    if getattr(settings, "compile", False):
        net = torch.compile(net)
    return net, z


def adam(params: Iterable[torch.Tensor], settings, device: torch.device) -> torch.optim.Adam:
    """``torch.optim.Adam`` with the run's learning rate (fused when chosen)."""
    if use_fused_adam(settings, device):
        return torch.optim.Adam(params, lr=settings.lr, fused=True)
    return torch.optim.Adam(params, lr=settings.lr)


def autocast(settings, device: torch.device):
    """Autocast context of ``settings.amp`` ('off': a no-op context)."""
    amp = _check_amp(settings)
    if amp == "off":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
