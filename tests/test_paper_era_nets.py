"""The paper-era switches of the nets (``net.bn_init``, ``net.align_corners``): what they
build, that the paper profile sets them, and that the other profiles keep their identity."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import make_cfg, spec_of
from omegaconf import OmegaConf
from torch import nn

from dip import DipError
from dip.launch.device import usable_cores
from dip.nets import build, builder_keys
from dip.nets.grouped import GroupedNet
from dip.runs.config import config_hash, resolve_threads

NETS = ("skip", "encdec", "resnet", "unet")
# Small nets that have BatchNorm (unet: with norm_layer='batch').
SMALL = {
    "skip": dict(num_channels_down=[8] * 3, num_channels_up=[8] * 3, num_channels_skip=[4] * 3,
                 upsample_mode="bilinear", pad="reflection"),
    "encdec": dict(depth=3, channels=[8, 8, 8], upsample_mode="bilinear"),
    "resnet": dict(num_blocks=2, num_channels=8),
    "unet": dict(feature_scale=16, norm_layer="batch", upsample_mode="bilinear"),
}


def small(name: str, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return build(name, 4, 3, **SMALL[name], **kwargs)


def bn_weights(net: nn.Module) -> torch.Tensor:
    return torch.cat([m.weight.detach() for m in net.modules()
                      if isinstance(m, nn.BatchNorm2d)])


def upsamplers(net: nn.Module) -> list[nn.Upsample]:
    return [m for m in net.modules() if isinstance(m, nn.Upsample)]


# --- bn_init -------------------------------------------------------------------------


@pytest.mark.parametrize("name", NETS)
def test_uniform_bn_init_draws_weights_in_0_1(name):
    ones, uniform = small(name), small(name, bn_init="uniform")
    w = bn_weights(uniform)
    assert w.numel() > 8
    assert ((w >= 0) & (w < 1)).all()
    assert w.unique().numel() > w.numel() // 2       # drawn, not one value
    torch.testing.assert_close(bn_weights(ones), torch.ones_like(w))
    assert not torch.equal(w, bn_weights(ones))
    for m in uniform.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert type(m) is nn.BatchNorm2d           # the grouped engine groups exactly these
            assert torch.equal(m.bias, torch.zeros_like(m.bias))


@pytest.mark.parametrize("name", NETS)
def test_uniform_bn_init_is_seeded_by_torch(name):
    a, b = small(name, 3, bn_init="uniform"), small(name, 3, bn_init="uniform")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb), ka
    assert not torch.equal(bn_weights(a), bn_weights(small(name, 4, bn_init="uniform")))


def test_paper_net_is_reproducible_from_the_seed_and_keeps_its_size():
    cfg = make_cfg("profile=paper")
    torch.manual_seed(0)
    a = spec_of(cfg).net.build(32, 3)
    torch.manual_seed(0)
    b = spec_of(cfg).net.build(32, 3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values(), strict=True))
    w = bn_weights(a)
    assert ((w >= 0) & (w < 1)).all() and w.std() > 0.1
    assert sum(p.numel() for p in a.parameters()) == 2_217_831


def test_affine_instance_norm_is_drawn_too():
    # PyTorch 0.4's InstanceNorm derived from BatchNorm and initialised its weights alike.
    torch.manual_seed(0)
    net = build("resnet", 4, 3, num_blocks=1, num_channels=8, norm_layer="instance",
                bn_init="uniform")
    w = torch.cat([m.weight.detach() for m in net.modules()
                   if isinstance(m, nn.InstanceNorm2d)])
    assert ((w >= 0) & (w < 1)).all() and w.unique().numel() > 1


# --- align_corners -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["skip", "encdec", "unet"])
def test_align_corners_is_the_reference_bilinear_upsampling(name):
    x = torch.rand(1, 8, 5, 7)
    ref_true = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
    ref_false = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    ups = upsamplers(small(name, align_corners=True))
    assert ups
    for up in ups:
        torch.testing.assert_close(up(x), ref_true, atol=0, rtol=0)
    for up in upsamplers(small(name)):
        torch.testing.assert_close(up(x), ref_false, atol=0, rtol=0)
    assert not torch.allclose(ref_true, ref_false)


def test_align_corners_changes_the_output_and_is_ignored_for_nearest():
    z = torch.rand(1, 4, 32, 32)
    a = small("skip", align_corners=False).eval()
    b = small("skip", align_corners=True).eval()
    with torch.no_grad():
        assert not torch.allclose(a(z), b(z))
    nearest = build("skip", 4, 3, num_channels_down=[8] * 2, num_channels_up=[8] * 2,
                    num_channels_skip=[4] * 2, upsample_mode="nearest", align_corners=True)
    assert all(up.mode == "nearest" and up.align_corners is None for up in upsamplers(nearest))


@pytest.mark.parametrize("kwargs,match", [(dict(bn_init="zeros"), "bn_init"),
                                          (dict(align_corners="yes"), "align_corners")])
@pytest.mark.parametrize("name", NETS)
def test_bad_values_are_refused(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        small(name, **kwargs)


def test_bad_value_from_the_config_is_one_error_line():
    with pytest.raises(DipError, match="bn_init"):
        spec_of(make_cfg("profile=smoke", "net.bn_init=zeros")).net.build(32, 3)


# --- grouped engine --------------------------------------------------------------------


def test_grouped_engine_runs_paper_era_nets():
    def make(seed):
        torch.manual_seed(seed)
        return build("skip", 4, 3, num_channels_down=[8] * 3, num_channels_up=[8] * 3,
                     num_channels_skip=[4] * 3, upsample_mode="bilinear",
                     bn_init="uniform", align_corners=True)
    nets = [make(0), make(1)]
    zs = [torch.rand(1, 4, 32, 32) for _ in nets]
    out = GroupedNet(nets)(torch.cat(zs, 1))
    for i, (net, z) in enumerate(zip(nets, zs, strict=True)):
        torch.testing.assert_close(out[:, 3 * i:3 * i + 3], net(z), atol=1e-5, rtol=1e-4)


# --- configs ---------------------------------------------------------------------------


def test_paper_profile_sets_the_2018_behaviour_as_literal_values():
    cfg = make_cfg("experiment=table_inpainting", "profile=paper")
    assert cfg.net.bn_init == "uniform" and cfg.net.align_corners is True
    assert not OmegaConf.is_interpolation(cfg.net, "bn_init")
    assert not OmegaConf.is_interpolation(cfg.net, "align_corners")
    assert cfg.profile.name == "paper"


def test_cli_shows_the_paper_switches_under_net():
    out = subprocess.run([sys.executable, "-m", "dip", "--cfg", "job",
                          "experiment=table_inpainting", "profile=paper"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    net = OmegaConf.create(out).net
    assert not OmegaConf.is_interpolation(net, "bn_init")
    assert not OmegaConf.is_interpolation(net, "align_corners")
    assert (net.bn_init, net.align_corners) == ("uniform", True)


@pytest.mark.parametrize("profile", ["quick", "smoke"])
@pytest.mark.parametrize("net", NETS)
def test_other_profiles_keep_todays_behaviour(profile, net):
    cfg = make_cfg(f"profile={profile}", f"net={net}")
    assert (cfg.net.bn_init, cfg.net.align_corners) == ("ones", False)


@pytest.mark.parametrize("profile", ["paper", "quick", "smoke"])
@pytest.mark.parametrize("net", NETS)
def test_every_net_takes_the_switches(profile, net):
    cfg = make_cfg(f"profile={profile}", f"net={net}")
    assert {"bn_init", "align_corners"} <= builder_keys(net)
    assert list(spec_of(cfg).net.unused) == []
    if profile == "paper":
        assert (cfg.net.bn_init, cfg.net.align_corners) == ("uniform", True)


def test_profile_keys_still_resolve_and_experiments_override_them():
    cfg = make_cfg("experiment=table_inpainting", "profile=quick")
    assert (cfg.profile.name, cfg.net.width_scale, cfg.threads) == ("quick", 0.25, "auto")
    assert cfg.fit.record_every == 10
    cfg = make_cfg("profile=paper", "net.width_scale=0.125")
    assert cfg.net.width_scale == 0.125 and cfg.threads is None


# Recorded from the configs before the switches existed: committed records keep their identity.
@pytest.mark.parametrize("experiment,digest", [("table_inpainting", "f6954e221b7d"),
                                               ("table_denoising", "e7f6e86819d2"),
                                               ("table_sr", "c4944c093c90")])
def test_quick_config_hash_is_unchanged(experiment, digest):
    """With one thread, as make runs the tables (threads=auto, one job per core)."""
    assert config_hash(make_cfg(f"experiment={experiment}", "threads=1")) == digest
    auto = make_cfg(f"experiment={experiment}")
    assert config_hash(resolve_threads(auto, jobs=usable_cores())) == digest


def test_paper_switches_are_part_of_the_identity():
    quick = make_cfg("experiment=table_inpainting")
    flipped = make_cfg("experiment=table_inpainting", "net.bn_init=uniform")
    assert config_hash(flipped) != config_hash(quick)
