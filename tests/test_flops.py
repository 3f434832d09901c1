"""Arithmetic counts and the matrix-product rate (no timings asserted)."""

import torch
from torch import nn

from dip.bench import PAPER_KWARGS, reference_skip
from dip.bench.flops import gemm_gflop_s, step_gflop
from dip.nets import build


def _conv_count(net, size, input_depth=32):
    """2 FLOP per multiply-add: each convolution's forward pass, its weight gradient,
    and its input gradient where the input needs one, counted with hooks."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        macs = (output.numel() * module.in_channels // module.groups
                * module.kernel_size[0] * module.kernel_size[1])
        total += 2 * macs * (3 if inputs[0].requires_grad else 2)

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, nn.Conv2d)]
    net(torch.rand(1, input_depth, size, size)).sum().backward()
    for h in handles:
        h.remove()
    return total / 1e9


def test_step_count_is_that_of_the_convolutions():
    net = reference_skip()
    assert step_gflop(reference_skip, 64) == _conv_count(net, 64)
    # the paper net's quoted cost: about 115 GFLOP at 256², 460 at 512²
    assert round(step_gflop(reference_skip, 256)) == 115
    assert round(step_gflop(reference_skip, 512)) == 460


def test_step_count_of_another_net_and_of_n_runs():
    def make():
        return build("skip", 8, 1, num_channels_down=[16] * 3, num_channels_up=[16] * 3,
                     num_channels_skip=[4] * 3, pad="reflection", upsample_mode="bilinear")

    one = step_gflop(make, 32, input_depth=8)
    assert one == _conv_count(make(), 32, input_depth=8)
    assert step_gflop(make, 32, input_depth=8, n=4) == 4 * one
    # 4× the pixels, 4× the arithmetic (every level's side halves exactly)
    assert step_gflop(make, 64, input_depth=8) == 4 * one
    assert step_gflop(lambda: build("skip", 32, 3, **PAPER_KWARGS), 64) == \
        step_gflop(reference_skip, 64)


def test_matrix_product_rate_leaves_the_thread_setting_alone():
    before = torch.get_num_threads()
    rate = gemm_gflop_s(torch.device("cpu"), threads=1, side=128, seconds=0.01)
    assert rate > 0
    assert torch.get_num_threads() == before
