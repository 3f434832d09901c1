"""Tests of dip.nets: official parameter counts, shapes, registry and width scaling."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dip import DipError
from dip.nets import NETS, build, encdec, resnet, scale_width, skip, unet
from dip.nets import pad as pad_module
from dip.nets.pad import ReflectionPad2d, reflect_pad


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _encdec_lib(d):
    c = [16, 32, 64, 128, 128, 128][:d]
    return skip(1, 3, num_channels_down=c, num_channels_up=c, num_channels_skip=[0] * d,
                filter_size_down=5, filter_size_up=3, need1x1_up=False, upsample_mode="nearest",
                need_sigmoid=True, need_bias=True, pad="reflection", act_fun="LeakyReLU")


OFFICIAL_COUNTS = {
    "paper_default": (lambda: skip(32, 3, [128] * 5, [128] * 5, [4] * 5, 3, 3, 1,
                                   upsample_mode="bilinear", pad="reflection"), 2_217_831),
    "kate_inpainting": (lambda: skip(
        32, 3, num_channels_down=[128] * 5, num_channels_up=[128] * 5,
        num_channels_skip=[128] * 5, filter_size_up=3, filter_size_down=3,
        upsample_mode="nearest", filter_skip_size=1, need_sigmoid=True, need_bias=True,
        pad="reflection", act_fun="LeakyReLU"), 3_002_627),
    "encdec_6": (lambda: _encdec_lib(6), 2_996_467),
    "encdec_4": (lambda: _encdec_lib(4), 1_060_339),
    "encdec_2": (lambda: _encdec_lib(2), 59_635),
    "encdec_4_registry": (lambda: build("encdec", 1, 3, depth=4, filter_size_down=5,
                                        need1x1_up=False, pad="reflection"), 1_060_339),
    "resnet_8x32": (lambda: resnet(1, 3, 8, 32, need_sigmoid=True, act_fun="LeakyReLU"),
                    158_979),
    "unet_fs8_more1": (lambda: unet(1, 3, feature_scale=8, more_layers=1, concat_x=False,
                                    upsample_mode="deconv", pad="zero",
                                    norm_layer=nn.InstanceNorm2d, need_sigmoid=True,
                                    need_bias=True), 1_616_315),
    "unet_fs8_more1_str": (lambda: build("unet", 1, 3, feature_scale=8, more_layers=1,
                                         norm_layer="instance"), 1_616_315),
    "vase": (lambda: skip(2, 3, [128] * 5, [128] * 5, [0] * 5, 3, 3,
                          upsample_mode="nearest", pad="reflection"), 2_157_955),
}


@pytest.mark.parametrize("case", list(OFFICIAL_COUNTS))
def test_official_parameter_counts(case):
    make, expected = OFFICIAL_COUNTS[case]
    assert n_params(make()) == expected


def small_skip(**kw):
    args = dict(num_channels_down=[8, 8, 8], num_channels_up=[8, 8, 8],
                num_channels_skip=[2, 2, 2])
    args.update(kw)
    return skip(4, 3, **args)


def test_skip_paper_net_shape_and_range():
    torch.manual_seed(0)
    net = skip(32, 3, [128] * 5, [128] * 5, [4] * 5, upsample_mode="bilinear",
               pad="reflection")
    y = net(torch.rand(1, 32, 64, 64))
    assert y.shape == (1, 3, 64, 64)
    assert 0 <= y.min() and y.max() <= 1


@pytest.mark.parametrize("mode", ["stride", "avg", "max", "lanczos2", "lanczos3"])
def test_downsample_modes(mode):
    net = small_skip(downsample_mode=mode, pad="reflection")
    y = net(torch.rand(1, 4, 32, 32))
    assert y.shape == (1, 3, 32, 32)
    y.mean().backward()


@pytest.mark.parametrize("mode", ["nearest", "bilinear", ["nearest", "bilinear", "nearest"]])
def test_upsample_modes(mode):
    assert small_skip(upsample_mode=mode)(torch.rand(1, 4, 32, 32)).shape == (1, 3, 32, 32)


@pytest.mark.parametrize("act_fun", ["LeakyReLU", "ELU", "Swish", "none", nn.ReLU])
def test_activations(act_fun):
    net = small_skip(act_fun=act_fun)
    y = net(torch.rand(1, 4, 32, 32))
    assert y.shape == (1, 3, 32, 32)
    y.mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_swish_is_x_sigmoid_x():
    net = small_skip(act_fun="Swish")
    swish = [m for m in net.modules() if isinstance(m, nn.SiLU)][0]
    x = torch.linspace(-3, 3, 7)
    assert torch.allclose(swish(x), x * torch.sigmoid(x))


def test_odd_sizes_are_cropped_to_input_size():
    y = small_skip(filter_size_down=[3, 5, 3])(torch.rand(1, 4, 37, 45))
    assert y.shape == (1, 3, 37, 45)


def test_skip_accepts_listconfig():
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create({"down": [8, 8], "skip": [0, 2], "up_mode": ["nearest"] * 2})
    net = skip(4, 3, cfg.down, cfg.down, cfg.skip, upsample_mode=cfg.up_mode)
    assert net(torch.rand(1, 4, 16, 16)).shape == (1, 3, 16, 16)


def test_encdec_has_no_skip_branches_and_right_shape():
    net = build("encdec", 2, 3, depth=3, channels=[8, 8, 8])
    assert net(torch.rand(1, 2, 32, 32)).shape == (1, 3, 32, 32)
    assert n_params(net) == n_params(skip(2, 3, [8] * 3, [8] * 3, [0] * 3))
    with pytest.raises(ValueError, match="depth"):
        encdec(2, 3, depth=7)


def test_resnet_shape():
    net = resnet(2, 3, 2, 8)
    y = net(torch.rand(1, 2, 24, 20))
    assert y.shape == (1, 3, 24, 20) and 0 <= y.min() and y.max() <= 1
    assert resnet(2, 3, 1, 8, need_sigmoid=False, norm_layer="none")(
        torch.rand(1, 2, 8, 8)).shape == (1, 3, 8, 8)


@pytest.mark.parametrize("upsample_mode", ["deconv", "bilinear", "nearest"])
def test_unet_shapes(upsample_mode):
    net = unet(3, 2, feature_scale=16, upsample_mode=upsample_mode, norm_layer="batch")
    y = net(torch.rand(1, 3, 32, 32))
    assert y.shape == (1, 2, 32, 32)
    y.mean().backward()


def test_unet_concat_x_and_more_layers():
    net = unet(2, 3, feature_scale=16, more_layers=2, concat_x=True, pad="reflection")
    assert net(torch.rand(1, 2, 128, 128)).shape == (1, 3, 128, 128)


def test_registry():
    assert set(NETS) == {"skip", "encdec", "resnet", "unet"}
    assert isinstance(build("skip", 4, 3, num_channels_down=[4], num_channels_up=[4],
                            num_channels_skip=[1]), nn.Module)
    with pytest.raises(DipError, match="unknown net 'vgg'; choose one of skip, encdec"):
        build("vgg", 3, 3)


@pytest.mark.parametrize("kwargs, match", [
    ({"pad": "replication"}, "pad 'replication'"),
    ({"upsample_mode": "bicubic"}, "upsample_mode 'bicubic'"),
    ({"downsample_mode": "lanczos4"}, "downsample_mode 'lanczos4'"),
    ({"act_fun": "GELU"}, "act_fun 'GELU'"),
    ({"num_channels_skip": [2, 2]}, "equal length"),
    ({"filter_size_up": [3, 3]}, "filter_size_up has 2 entries"),
])
def test_invalid_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small_skip(**kwargs)


def test_invalid_unet_and_resnet_arguments():
    with pytest.raises(ValueError, match="upsample_mode"):
        unet(upsample_mode="pixelshuffle")
    with pytest.raises(ValueError, match="norm_layer"):
        unet(norm_layer="group")
    with pytest.raises(ValueError, match="pad"):
        resnet(1, 3, 1, 4, pad="circular")


def test_scale_width():
    paper = dict(num_channels_down=[128] * 5, num_channels_up=[128] * 5,
                 num_channels_skip=[4] * 5, upsample_mode="bilinear", pad="reflection")
    half = scale_width(paper, "skip", 0.5)
    assert half["num_channels_down"] == [64] * 5 and half["num_channels_up"] == [64] * 5
    assert half["num_channels_skip"] == [4] * 5 and half["pad"] == "reflection"  # thin kept
    assert paper["num_channels_down"] == [128] * 5  # input untouched
    assert n_params(build("skip", 32, 3, **half)) < n_params(build("skip", 32, 3, **paper))
    assert scale_width(paper, "skip", 1) == paper
    assert scale_width(dict(num_channels_skip=[0, 4, 1, 128]), "skip", 0.25)[
        "num_channels_skip"] == [0, 4, 1, 32]
    assert scale_width({}, "encdec", 0.5)["channels"] == [8, 16, 32, 64, 64, 64]
    assert scale_width(dict(num_blocks=8, num_channels=32), "resnet", 0.5)["num_channels"] == 16
    assert scale_width(dict(feature_scale=4), "unet", 0.5)["feature_scale"] == 8
    assert scale_width({}, "unet", 2)["feature_scale"] == 2
    with pytest.raises(DipError):
        scale_width({}, "vgg", 0.5)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("p, n, h, w", [(1, 1, 5, 7), (1, 2, 2, 2), (2, 1, 5, 6), (3, 2, 4, 9)])
def test_reflect_pad_equals_torch_and_keeps_the_layout(fmt, p, n, h, w):
    g = torch.Generator().manual_seed(p * 100 + h)
    x = torch.randn(n, 3, h, w, dtype=torch.float64, generator=g)
    x = x.contiguous(memory_format=fmt).requires_grad_()
    ours, theirs = reflect_pad(x, p), F.pad(x, (p,) * 4, mode="reflect")
    assert torch.equal(ours, theirs)
    assert ours.is_contiguous(memory_format=fmt)
    up = torch.randn(theirs.shape, dtype=torch.float64, generator=g)
    (g_ours,) = torch.autograd.grad(ours, x, up)
    (g_theirs,) = torch.autograd.grad(theirs, x, up)
    torch.testing.assert_close(g_ours, g_theirs, rtol=0, atol=1e-12)
    assert g_ours.is_contiguous(memory_format=fmt)
    assert torch.autograd.gradcheck(lambda t: reflect_pad(t, p), (x,))


def test_reflect_pad_rejects_bad_shapes():
    with pytest.raises(ValueError, match="larger than 2 pixels"):
        reflect_pad(torch.zeros(1, 1, 2, 8), 2)
    with pytest.raises(ValueError, match="N×C×H×W"):
        reflect_pad(torch.zeros(1, 4, 4), 1)
    assert reflect_pad(torch.zeros(1, 1, 3, 3), 0).shape == (1, 1, 3, 3)


def test_reflection_pad_module_uses_torch_kernel_on_cpu(monkeypatch):
    """On the CPU (and for NCHW on CUDA) the net's pad is PyTorch's own kernel, so CPU
    results stay bit-identical; the slice version is only for channels_last on CUDA."""
    net = skip(8, 3, [8] * 2, [8] * 2, [2] * 2, pad="reflection")
    pads = [m for m in net.modules() if isinstance(m, nn.ReflectionPad2d)]
    assert pads and all(isinstance(m, ReflectionPad2d) for m in pads)
    x = torch.randn(1, 4, 6, 6).contiguous(memory_format=torch.channels_last)
    calls = []
    original = pad_module.reflect_pad
    monkeypatch.setattr(pad_module, "reflect_pad", lambda *a: calls.append(a) or original(*a))
    out = pads[0](x)
    assert not calls and torch.equal(out, F.pad(x, (1,) * 4, mode="reflect"))
    assert out.is_contiguous(memory_format=torch.channels_last)
