"""Devices: the one place that turns a ``device=`` setting into a checked torch device."""

from __future__ import annotations

import torch

from dip import DipError

__all__ = ["pick_device"]


def pick_device(device: str = "auto") -> torch.device:
    """Resolve 'auto' to CUDA when available, else CPU; check that a named device is
    there ('cpu', 'cuda' or 'cuda:K'; a one-line :class:`~dip.DipError` otherwise)."""
    device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()):
        raise DipError(f"device={device} is unknown; choose auto, cpu, cuda or cuda:K")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DipError(f"device={device} but this torch sees no CUDA GPU (a CPU-only "
                           "build, or no driver); use device=cpu or device=auto")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise DipError(f"device={device} but only {count} CUDA GPU"
                           f"{'s are' if count > 1 else ' is'} visible (cuda:0 to "
                           f"cuda:{count - 1}); choose one of them")
    return torch.device(device)
