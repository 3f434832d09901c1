"""Provenance: how a number was made (commit, versions, device, CPU and kernel pins).

Records (:mod:`dip.runs.records`) store these with every run, and table captions name them.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from dip.fitting import fast

__all__ = ["git_commit", "versions", "device_name", "machine", "kernel_pins", "KERNEL_PINS"]


def git_commit() -> str:
    """Commit of the source tree ('+dirty' with local changes).

    The environment variable ``DIP_COMMIT``, when set, names it instead (a copied
    tree, whose .git may be missing or stale); outside git without it: 'unknown'.
    """
    if os.environ.get("DIP_COMMIT"):
        return os.environ["DIP_COMMIT"]
    here = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=here,
                              capture_output=True, text=True, timeout=10)
        sha = head.stdout.strip() if head.returncode == 0 else ""
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        sha, dirty = "", ""
    if not sha:
        return "unknown"
    return sha + ("+dirty" if dirty.strip() else "")


def versions() -> dict:
    """Versions of what produced a number."""
    return {"dip": metadata.version("dip"), "torch": torch.__version__,
            "numpy": np.__version__, "hydra": metadata.version("hydra-core"),
            "skimage": metadata.version("scikit-image"), "python": platform.python_version()}


# Environment variables that pin a CPU library's kernels to one instruction set, with the
# name a caption gives each (the Makefile sets all three for the CPU profiles).
KERNEL_PINS = (("ONEDNN_MAX_CPU_ISA", "oneDNN"), ("ATEN_CPU_CAPABILITY", "ATen"),
               ("MKL_CBWR", "MKL"))


def kernel_pins(stored: dict | None = None) -> list[str]:
    """The kernel pins set in this process's environment, or those a record stored
    (``stored``: its ``machine`` dict, keyed by the lower-cased variables), e.g.
    ``['oneDNN AVX2', 'ATen AVX2', 'MKL AVX2']`` (values upper-cased; unset pins are left
    out)."""
    if stored is None:
        values = {var: os.environ.get(var) for var, _ in KERNEL_PINS}
    else:  # machine() stores each pin under its lower-cased variable
        values = {var: stored.get(var.lower()) for var, _ in KERNEL_PINS}
    return [f"{name} {values[var].strip().upper()}" for var, name in KERNEL_PINS
            if (values[var] or "").strip()]


def device_name(device: str) -> str:
    """Human-readable device: GPU model, or CPU with its thread count and the kernel pins
    (:func:`kernel_pins`) in effect."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return ", ".join([f"cpu ({platform.machine()}", f"{torch.get_num_threads()} threads",
                      *kernel_pins()]) + ")"


def machine() -> dict:
    """The CPU that ran a fit and the instruction sets its kernels used: float results of
    long fits differ between kernels (e.g. oneDNN's AVX2 and AVX-512 convolutions); and
    whether the process kept its freed memory (:func:`dip.fitting.fast.keep_freed_memory`),
    which changes its speed and peak memory, not its results."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model or platform.processor() or platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            **{var.lower(): os.environ.get(var) for var, _ in KERNEL_PINS},
            "freed_memory_kept": fast.freed_memory_kept()}
