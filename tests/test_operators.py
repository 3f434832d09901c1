import numpy as np
import pytest
import torch

from dip.problems.noise import add_noise, bernoulli_mask, lr_image
from dip.problems.operators import Downsampler, Mask, get_kernel, kernel_1d
from dip.problems.sr import sr


def _official_lanczos_2d(factor, support, phase=0.5):
    """The official get_kernel double loop (lanczos branch), for comparison."""
    width = 2 * support * factor + 1
    n = width - 1 if phase == 0.5 else width
    center = (width + 1) / 2.0
    k = np.zeros((n, n))
    for i in range(1, n + 1):
        for j in range(1, n + 1):
            di = abs(i + phase - center) / factor
            dj = abs(j + phase - center) / factor
            val = 1.0
            for d in (di, dj):
                if d != 0:
                    val *= support * np.sin(np.pi * d) * np.sin(np.pi * d / support)
                    val /= np.pi**2 * d**2
            k[i - 1, j - 1] = val
    return k / k.sum()


@pytest.mark.parametrize("factor", [2, 4, 8])
@pytest.mark.parametrize("kind,support", [("lanczos2", 2), ("lanczos3", 3)])
def test_kernel_matches_official_and_sums_to_one(factor, kind, support):
    k = get_kernel(factor, kind, 0.5)
    assert k.shape == (2 * support * factor,) * 2
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(k, _official_lanczos_2d(factor, support), atol=1e-12)
    assert kernel_1d(factor, kind).sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("kind", ["lanczos2", "lanczos3", "box"])
def test_downsampler_of_constant_is_constant(kind):
    d = Downsampler(3, 4, kind, phase=0.5, preserve_size=True)
    x = torch.full((1, 3, 32, 48), 0.37)
    y = d(x)
    assert y.shape == (1, 3, 8, 12)
    torch.testing.assert_close(y, torch.full_like(y, 0.37), rtol=0, atol=1e-6)


def test_downsampler_equals_full_2d_convolution():
    torch.manual_seed(0)
    x = torch.rand(1, 2, 32, 32)
    d = Downsampler(2, 4, "lanczos2")
    k = torch.from_numpy(get_kernel(4, "lanczos2")).float()
    xp = torch.nn.functional.pad(x, (d.pad,) * 4, mode="replicate")
    w = torch.zeros(2, 2, *k.shape)
    w[0, 0] = k
    w[1, 1] = k
    ref = torch.nn.functional.conv2d(xp, w, stride=4)
    torch.testing.assert_close(d(x), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("factor,phase", [(2, 0.5), (4, 0.5), (8, 0.5), (3, 0), (5, 0),
                                          (2, 0), (4, 0)])
def test_downsampler_size_and_centre(factor, phase):
    """H×W → (H/f)×(W/f), and a ramp sampled where the kernel is centred: the middle of
    each f×f block (f·i + (f − 1)/2) wherever the official padding allows it."""
    d = Downsampler(1, factor, "lanczos2", phase=phase)
    n = 8 * factor
    ramp = torch.arange(n, dtype=torch.float64).expand(1, 1, n, n)
    y = d.double()(ramp)
    assert y.shape == (1, 1, 8, 8)
    inner = y[0, 0, 4, 2:-2]  # away from the replicated borders
    i = torch.arange(2, 6, dtype=torch.float64)
    shift = (factor - 1) / 2 if (d.kernel.numel() - factor) % 2 == 0 else \
        (d.kernel.numel() - 1) / 2 - d.pad  # odd kernel, even factor: official padding
    torch.testing.assert_close(inner, factor * i + shift, rtol=0, atol=1e-5)


def test_sr_problem_handles_odd_factors():
    torch.manual_seed(0)
    hr = torch.rand(3, 48, 48)
    problem = sr(hr=hr, factor=3)
    assert problem.observation.shape == (1, 3, 16, 16)
    assert problem.operator(hr[None]).shape == problem.observation.shape
    with pytest.raises(ValueError, match="odd factor 3; use phase=0"):
        Downsampler(3, 3, "lanczos2", phase=0.5)


def test_bad_kernel_and_factor():
    with pytest.raises(ValueError, match="kernel_type"):
        kernel_1d(2, "cubic")
    with pytest.raises(ValueError, match="factor"):
        Downsampler(3, 1.5)


def test_mask_operator_broadcasts_over_channels():
    m = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    op = Mask(m)
    x = torch.ones(1, 3, 2, 2)
    assert op(x).sum() == 6


def test_noise_is_seeded_clipped_and_has_sigma():
    img = torch.full((3, 64, 64), 0.5)
    a, b = add_noise(img, 25, seed=3), add_noise(img, 25, seed=3)
    assert torch.equal(a, b)
    assert not torch.equal(a, add_noise(img, 25, seed=4))
    assert a.min() >= 0 and a.max() <= 1
    assert float((a - img).std()) == pytest.approx(25 / 255, rel=0.05)
    with pytest.raises(ValueError):
        add_noise(img, 0)


def test_bernoulli_mask_fraction_and_sharing():
    m = bernoulli_mask((100, 100), 0.5, seed=0)
    assert m.shape == (1, 100, 100)
    assert set(torch.unique(m).tolist()) == {0.0, 1.0}
    assert float(m.mean()) == pytest.approx(0.5, abs=0.03)
    assert torch.equal(m, bernoulli_mask((100, 100), 0.5, seed=0))


def test_lr_image_size_and_error():
    hr = torch.rand(3, 32, 64)
    assert lr_image(hr, 4).shape == (3, 8, 16)
    with pytest.raises(ValueError, match="multiple"):
        lr_image(torch.rand(3, 30, 64), 4)
