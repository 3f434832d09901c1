"""The paper's skip net and the eager reference loop the benchmark times ours against.

Owns the paper net's settings (:data:`PAPER_KWARGS`, :data:`PAPER_PARAMS`), our build of
it (:func:`ours_net`), the official ``skip`` network written out plainly
(:func:`reference_skip`), and the plain eager step on it (input noise, forward, MSE,
backward, ``torch.optim.Adam``; no monitors): :class:`Reference` in this process,
:class:`RemoteReference` in a child process (``python -m dip.bench --_reference``,
served by :func:`serve_reference`) so that it keeps the C library's default allocator,
as a plain script does. :data:`REFERENCES` says where a row's reference ran.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from dip.bench.workload import problem, sync

__all__ = ["PAPER_KWARGS", "PAPER_PARAMS", "REFERENCES", "reference_skip", "ours_net",
           "Reference", "RemoteReference", "serve_reference"]

PAPER_KWARGS = dict(num_channels_down=[128] * 5, num_channels_up=[128] * 5,
                    num_channels_skip=[4] * 5, filter_size_down=3, filter_size_up=3,
                    filter_skip_size=1, upsample_mode="bilinear", pad="reflection")
PAPER_PARAMS = 2_217_831

# Where the reference of a single row runs (the row's "reference" entry).
REFERENCES = {"plain": "own process, default allocator",
              "kept": "own process, freed memory kept",
              "in-process": "our process"}

# The prefix of the child process's replies on stdout (anything else it prints is not).
REPLY = "dip-bench-reference: "


# --- the official skip network, written out plainly ----------------------------------

class _Concat(nn.Module):
    """Concatenates its branches' outputs, each centre-cropped to the smallest."""

    def __init__(self, *branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        outs = [b(x) for b in self.branches]
        h = min(o.shape[2] for o in outs)
        w = min(o.shape[3] for o in outs)
        outs = [o[:, :, (o.shape[2] - h) // 2:(o.shape[2] - h) // 2 + h,
                  (o.shape[3] - w) // 2:(o.shape[3] - w) // 2 + w] for o in outs]
        return torch.cat(outs, 1)


def _conv(cin, cout, k, stride=1):
    pad = (k - 1) // 2
    layers = [nn.ReflectionPad2d(pad)] if pad else []
    return nn.Sequential(*layers, nn.Conv2d(cin, cout, k, stride, padding=0))


def _block(cin, cout, k, stride=1):
    return [_conv(cin, cout, k, stride), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]


def reference_skip(n_in=32, n_out=3, down=(128,) * 5, up=(128,) * 5, skip=(4,) * 5):
    """The official ``skip`` net (bilinear, reflection padding, 3×3 / 1×1 filters)."""
    n = len(down)

    def level(i, cin):
        deeper = nn.Sequential(*_block(cin, down[i], 3, 2), *_block(down[i], down[i], 3))
        if i < n - 1:
            deeper.append(level(i + 1, down[i]))
        deeper.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
        k = up[i + 1] if i < n - 1 else down[i]
        skip_branch = nn.Sequential(*_block(cin, skip[i], 1))
        return nn.Sequential(_Concat(skip_branch, deeper), nn.BatchNorm2d(skip[i] + k),
                             *_block(skip[i] + k, up[i], 3), *_block(up[i], up[i], 1))

    return nn.Sequential(level(0, n_in), _conv(up[0], n_out, 1), nn.Sigmoid())


def ours_net(seed: int = 0) -> nn.Module:
    """This project's ``skip`` net with :data:`PAPER_KWARGS`, initialised from ``seed``."""
    from dip.nets import build

    torch.manual_seed(seed)
    return build("skip", 32, 3, **PAPER_KWARGS)


# --- the eager reference loop ----------------------------------------------------------

class Reference:
    """The eager reference loop on :func:`reference_skip`: input noise, forward, MSE,
    backward, Adam (lr 0.01), fitting the noisy image of :func:`dip.bench.workload.problem`.

    Its attributes ``net``, ``z``, ``target`` and ``opt`` may be replaced (another net,
    layout or optimiser) before stepping.
    """

    def __init__(self, size, device):
        torch.manual_seed(0)
        self.net = reference_skip().to(device).train()
        count = sum(p.numel() for p in self.net.parameters())
        assert count == PAPER_PARAMS, f"reference net has {count} parameters"
        self.device = device
        self.z = (torch.rand(1, 32, size, size) * 0.1).to(device)
        self.target = problem(size).observation.to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=0.01)

    def step(self):
        """One step (not synchronised)."""
        self.opt.zero_grad(set_to_none=True)
        out = self.net(self.z + torch.randn_like(self.z) / 30)
        F.mse_loss(out, self.target).backward()
        self.opt.step()

    def block(self, steps):
        """Run ``steps`` steps; the wall time of each, in seconds (synchronised)."""
        times = []
        for _ in range(steps):
            sync(self.device)
            t = time.perf_counter()
            self.step()
            sync(self.device)
            times.append(time.perf_counter() - t)
        return times

    def close(self):
        """Nothing to release (as :meth:`RemoteReference.close` for a child process)."""


class RemoteReference:
    """:class:`Reference` in a child process (``python -m dip.bench --_reference``),
    stepped through a pipe; the same :meth:`block` and :meth:`close`.

    ``where='kept'``: the child keeps its freed memory (:func:`dip.fitting.fast.keep_freed_memory`)
    as our fits do; 'plain': it runs with the C library's defaults, as a plain script.
    A child that ends before replying raises ``RuntimeError`` (its error is on stderr).
    """

    def __init__(self, size, device, where="plain"):
        cmd = [sys.executable, "-m", "dip.bench", "--_reference", str(size), str(device),
               where, "--threads", str(torch.get_num_threads())]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self._reply()  # set up and warmed up

    def _reply(self):
        for line in self.proc.stdout:  # anything else the child prints is not ours
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY):])
        code = self.proc.wait()
        raise RuntimeError(f"the reference process ended (exit code {code}); its error "
                           "is above")

    def block(self, steps):
        """The child's times of ``steps`` steps, in seconds."""
        self.proc.stdin.write(f"{steps}\n")
        self.proc.stdin.flush()
        return self._reply()

    def close(self):
        """End the child (killed if it has not ended a minute after its stdin closed)."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def serve_reference(size, device_str, where):
    """Child process of :class:`RemoteReference`: one warm-up step, then for each line
    ``N`` of stdin the times of N steps as one JSON line on stdout."""
    from dip.fitting import fast

    if where == "kept":
        fast.keep_freed_memory()
    ref = Reference(size, torch.device(device_str))
    ref.block(1)
    print(REPLY + "null", flush=True)
    for line in sys.stdin:
        print(REPLY + json.dumps(ref.block(int(line))), flush=True)
