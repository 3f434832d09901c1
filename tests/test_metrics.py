import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from dip.problems.metrics import psnr, psnr_y, rgb_to_y, ssim


@pytest.mark.parametrize("shape", [(17, 23), (17, 23, 1), (17, 23, 3)])
def test_psnr_equals_skimage(shape):
    rng = np.random.default_rng(0)
    gt = rng.random(shape)
    pred = np.clip(gt + rng.normal(0, 0.05, shape), 0, 1)
    expected = peak_signal_noise_ratio(gt, pred, data_range=1)
    assert abs(psnr(gt, pred) - expected) < 1e-9


def test_psnr_accepts_tensors_in_both_layouts():
    rng = np.random.default_rng(1)
    gt = rng.random((8, 9, 3)).astype(np.float32)
    pred = np.clip(gt + 0.1 * rng.random((8, 9, 3)), 0, 1).astype(np.float32)
    ref = psnr(gt, pred)
    t_gt = torch.from_numpy(gt).permute(2, 0, 1)
    t_pred = torch.from_numpy(pred).permute(2, 0, 1)
    assert psnr(t_gt, t_pred) == pytest.approx(ref, abs=1e-9)
    assert psnr(t_gt[None], t_pred[None]) == pytest.approx(ref, abs=1e-9)


def test_psnr_known_value_and_identity():
    gt = np.zeros((4, 4))
    assert psnr(gt, gt + 0.1) == pytest.approx(20.0)
    assert psnr(gt, gt) == float("inf")
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))


def test_psnr_y_uses_bt601_studio_range_and_4_5_shave():
    rng = np.random.default_rng(2)
    gt = rng.random((20, 30, 3))
    pred = np.clip(gt + rng.normal(0, 0.03, gt.shape), 0, 1)
    y = lambda a: (16 + 219 * (a @ [0.299, 0.587, 0.114])) / 255  # noqa: E731
    expected = peak_signal_noise_ratio(y(gt)[4:-5, 4:-5], y(pred)[4:-5, 4:-5], data_range=1)
    assert psnr_y(gt, pred) == pytest.approx(expected, abs=1e-9)
    # errors only in the shaved border do not count
    pred2 = gt.copy()
    pred2[:4] = 0
    pred2[-5:] = 1
    assert psnr_y(gt, pred2) == float("inf")


def test_rgb_to_y_range():
    assert rgb_to_y(np.zeros((2, 2, 3))).max() == pytest.approx(16 / 255)
    assert rgb_to_y(np.ones((2, 2, 3))).min() == pytest.approx(235 / 255)


def test_ssim_identical_is_one():
    img = np.random.default_rng(3).random((16, 16, 3))
    assert ssim(img, img) == pytest.approx(1.0)
    assert ssim(img, np.clip(img + 0.2, 0, 1)) < 1.0


@pytest.mark.parametrize("channels", [1, 3])
def test_device_path_equals_numpy_path(monkeypatch, channels):
    # The tensor path runs where both images live on one GPU; force it on CPU tensors.
    import dip.problems.metrics as m

    rng = np.random.default_rng(4)
    gt = torch.from_numpy(rng.random((channels, 21, 26)))
    pred = (gt + 0.04 * torch.from_numpy(rng.standard_normal(gt.shape))).clamp(0, 1).float()
    ref_psnr, ref_y = psnr(gt, pred), psnr_y(gt, pred)
    monkeypatch.setattr(m, "_on_device", lambda a, b: True)
    assert psnr(gt[None], pred[None]) == pytest.approx(ref_psnr, abs=1e-9)
    assert psnr_y(gt, pred) == pytest.approx(ref_y, abs=1e-9)
    assert psnr(gt, gt) == float("inf")
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(gt, pred[:, :20])
    with pytest.raises(ValueError, match="too small"):
        psnr_y(gt[:, :9, :9], pred[:, :9, :9])
