"""The grouped network: N nets of one architecture run as one.

Every convolution becomes a convolution with ``groups = N`` over ``N × C`` channels whose
weight is the concatenation of the N nets' weights, every BatchNorm one BatchNorm over
``N × C`` channels (so the batch statistics stay per net; the running statistics are
kept in the N nets), and channel-wise layers (padding, activations, upsampling) are
applied as they are. Skip concatenations are interleaved per net so that each net's
channels stay contiguous. The inputs are concatenated along channels: the grouped net
maps ``1 × N·C_in × H × W`` to ``1 × N·C_out × H × W``. The parameters stay those of the
N nets (concatenated at every forward pass), so each keeps its own optimiser. The
grouped engine of :mod:`dip.fitting.batched` fits with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dip.nets.common import Concat, center_crop

__all__ = ["GroupedNet", "group", "can_group"]

# Layers that act on every channel independently: shared as they are by all runs.
_CHANNELWISE = (nn.LeakyReLU, nn.ReLU, nn.ELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Identity,
                nn.ReflectionPad2d, nn.ZeroPad2d, nn.ReplicationPad2d, nn.Upsample,
                nn.AvgPool2d, nn.MaxPool2d)


class _GroupedConv(nn.Module):
    """N convolutions of equal shape as one grouped convolution."""

    def __init__(self, convs: Sequence[nn.Conv2d]):
        super().__init__()
        c = convs[0]
        if c.padding_mode != "zeros" or isinstance(c.padding, str):
            raise TypeError(f"cannot group a Conv2d with padding {c.padding!r} "
                            f"({c.padding_mode})")
        self.convs = nn.ModuleList(convs)
        self.n = len(convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.convs[0]
        w = torch.cat([m.weight for m in self.convs]) if self.n > 1 else c.weight
        b = None
        if c.bias is not None:
            b = torch.cat([m.bias for m in self.convs]) if self.n > 1 else c.bias
        return F.conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups * self.n)


class _GroupedBN(nn.Module):
    """N BatchNorm2d layers of C channels as one over N·C channels (statistics per run).

    The running statistics stay in the N layers: they are gathered for the pass and
    written back afterwards, for the runs that are marked active only (a finished or
    rolled-back run's statistics are left as they were).
    """

    def __init__(self, bns: Sequence[nn.BatchNorm2d], state: dict):
        super().__init__()
        b = bns[0]
        if b.track_running_stats and b.momentum is None:
            raise TypeError("cannot group BatchNorm with a cumulative average (momentum=None)")
        self.bns = nn.ModuleList(bns)
        self.state = state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b0 = self.bns[0]
        w = b = None
        if b0.affine:
            w = torch.cat([m.weight for m in self.bns])
            b = torch.cat([m.bias for m in self.bns])
        track = b0.track_running_stats
        training = self.training or not track
        if not track:
            return F.batch_norm(x, None, None, w, b, True, 0.0, b0.eps)
        rm = torch.cat([m.running_mean for m in self.bns])
        rv = torch.cat([m.running_var for m in self.bns])
        out = F.batch_norm(x, rm, rv, w, b, training, b0.momentum, b0.eps)
        if self.training:
            active = self.state.get("active")
            with torch.no_grad():
                for i, (m, mean, var) in enumerate(zip(self.bns, rm.chunk(len(self.bns)),
                                                       rv.chunk(len(self.bns)), strict=True)):
                    if active is None or active[i]:
                        m.running_mean.copy_(mean)
                        m.running_var.copy_(var)
                        m.num_batches_tracked.add_(1)
        return out


class _GroupedConcat(nn.Module):
    """Concat of grouped branches, interleaved per run: [a_1 b_1 | a_2 b_2 | ...]."""

    def __init__(self, branches: Sequence[nn.Module], n: int):
        super().__init__()
        self.branches = nn.ModuleList(branches)
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [m(x) for m in self.branches]
        h = min(o.shape[2] for o in outs)
        w = min(o.shape[3] for o in outs)
        outs = [center_crop(o, h, w) for o in outs]
        if self.n == 1:
            return torch.cat(outs, 1)
        b = outs[0].shape[0]
        parts = [o.reshape(b, self.n, o.shape[1] // self.n, h, w) for o in outs]
        return torch.cat(parts, 2).reshape(b, -1, h, w)


def _group(mods: Sequence[nn.Module], state: dict) -> nn.Module:
    first = mods[0]
    if any(type(m) is not type(first) for m in mods):
        raise TypeError("the nets differ in structure")
    n = len(mods)
    if type(first) is nn.Sequential:
        if any(len(m) != len(first) for m in mods):
            raise TypeError("the nets differ in structure")
        return nn.Sequential(*[_group([m[i] for m in mods], state) for i in range(len(first))])
    if type(first) is Concat:
        if first.dim != 1 or any(len(m) != len(first) for m in mods):
            raise TypeError("only channel concatenations of equal structure can be grouped")
        subs = [list(m._modules.values()) for m in mods]
        return _GroupedConcat([_group([s[i] for s in subs], state) for i in range(len(first))], n)
    if type(first) is nn.Conv2d:
        if any(m.weight.shape != first.weight.shape for m in mods):
            raise TypeError("convolutions of different shape")
        return _GroupedConv(mods)
    if type(first) is nn.BatchNorm2d:
        if any(m.num_features != first.num_features for m in mods):
            raise TypeError("BatchNorm layers of different width")
        return _GroupedBN(mods, state)
    if isinstance(first, _CHANNELWISE) and not any(True for _ in first.parameters()):
        return first
    raise TypeError(f"cannot group {type(first).__name__} layers")


class GroupedNet(nn.Module):
    """N networks of one architecture as a single grouped network.

    Parameters
    ----------
    nets : sequence of nn.Module
        Networks built by the same builder with the same arguments (e.g. ``skip``,
        ``encdec``), typically with different seeds. Their parameters are shared,
        not copied: training the grouped net trains them.

    Notes
    -----
    Input ``1 × N·C_in × H × W`` (run ``i`` in channels ``[i·C_in, (i+1)·C_in)``),
    output ``1 × N·C_out × H × W`` in the same layout. Supported layers: Sequential,
    :class:`~dip.nets.common.Concat` along channels, Conv2d with zero padding,
    BatchNorm2d and parameter-free channel-wise layers (padding, activations,
    upsampling, pooling).
    """

    def __init__(self, nets: Sequence[nn.Module]):
        super().__init__()
        if not nets:
            raise ValueError("no nets to group")
        self.n = len(nets)
        self.state: dict = {"active": None}
        self.body = _group(list(nets), self.state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def set_active(self, active: Sequence[bool] | None) -> None:
        """Runs whose BatchNorm running statistics the next passes update (None: all)."""
        self.state["active"] = None if active is None else list(active)


def group(nets: Sequence[nn.Module]) -> GroupedNet:
    """The :class:`GroupedNet` of ``nets`` (raises ``TypeError`` when they cannot be)."""
    return GroupedNet(nets)


def can_group(net: nn.Module) -> bool:
    """Whether copies of ``net`` can be fitted together by :func:`fit_batched`."""
    try:
        _group([net], {})
    except TypeError:
        return False
    return True
