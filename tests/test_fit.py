"""Behaviour of the fitting loop on small smooth images (seconds each)."""


import pytest
import torch
from conftest import NanAt, settings, small_net, smooth_image
from torch import nn

from dip.fitting.loop import fit
from dip.fitting.monitors import Backtrack, History, Oracle
from dip.fitting.settings import make_input
from dip.problems.denoising import denoising
from dip.problems.inpainting import inpainting
from dip.problems.metrics import psnr
from dip.problems.sr import sr


def test_denoising_beats_the_noisy_input():
    gt = smooth_image(size=64)
    problem = denoising(gt=gt, sigma=25, seed=0)
    torch.manual_seed(0)
    result = fit(small_net(), problem, settings(num_iter=200, reg_noise_std=0.03))
    noisy = problem.score(problem.observation)
    assert problem.score(result.final) > noisy + 4
    assert problem.score(result.average) > noisy + 4
    assert result.final.shape == (1, 3, 64, 64)
    assert 0 <= result.iter_oracle <= 200  # 200: the final output, after the last step
    h = result.history
    # the oracle is the best of the outputs the loop saw (perturbed input), every step
    assert problem.score(result.oracle) >= h.psnr_gt.max() - 1e-9
    assert list(h.columns) == ["step", "loss", "psnr_obs", "psnr_gt", "psnr_gt_avg", "seconds"]
    assert h.step.tolist() == list(range(0, 200, 10))
    assert h.loss.iloc[-1] < h.loss.iloc[0]


def test_inpainting_fills_missing_pixels_better_than_zero_and_mean_fill():
    gt = smooth_image(channels=1)
    problem = inpainting(image=gt, p_missing=0.5, seed=1)
    torch.manual_seed(0)
    result = fit(small_net(n_out=1), problem, settings(num_iter=200))
    missing = problem.extras["mask"] == 0
    err = lambda img: float(((img[0] - gt)[missing] ** 2).mean())  # noqa: E731
    zero_fill = problem.observation[0]
    mean_fill = torch.where(missing, gt[~missing].mean(), gt)
    assert err(result.final[0]) < err(mean_fill) < err(zero_fill)


def test_sr_beats_nearest_upsampling():
    hr = smooth_image(size=32)
    problem = sr(hr=hr, factor=4)
    assert problem.observation.shape == (1, 3, 8, 8)
    torch.manual_seed(0)
    result = fit(small_net(), problem, settings(num_iter=200))
    nearest = problem.corrupted_view()
    assert result.final.shape == (1, 3, 32, 32)
    assert psnr(hr, result.final) > psnr(hr, nearest) + 1


def test_same_seed_gives_identical_output_on_cpu():
    gt = smooth_image(size=32)
    outs = []
    for _ in range(2):
        problem = denoising(gt=gt, sigma=25, seed=0)
        torch.manual_seed(5)
        outs.append(fit(small_net(), problem, settings(num_iter=20, reg_noise_std=0.03, seed=5)))
    assert torch.equal(outs[0].final, outs[1].final)
    assert torch.equal(outs[0].average, outs[1].average)
    problem = denoising(gt=gt, sigma=25, seed=0)
    torch.manual_seed(5)
    other = fit(small_net(), problem, settings(num_iter=20, reg_noise_std=0.03, seed=6))
    assert not torch.equal(outs[0].final, other.final)


def test_backtracking_recovers_from_an_injected_nan():
    gt = smooth_image(size=32)
    problem = denoising(gt=gt, sigma=25, seed=0)
    torch.manual_seed(0)
    net = NanAt(small_net(), calls={30, 31})
    result = fit(net, problem, settings(num_iter=60))
    assert result.status == "ok"
    assert result.backtracks == 2
    assert torch.isfinite(result.final).all()
    assert problem.score(result.final) > problem.score(problem.observation)
    assert result.history.step.tolist() == list(range(0, 60, 10))


def test_backtracking_gives_up_and_reports_divergence():
    gt = smooth_image(size=32)
    problem = denoising(gt=gt, sigma=25, seed=0)
    net = NanAt(small_net(), calls=set(range(5, 10_000)))
    result = fit(net, problem, settings(num_iter=50, max_backtracks=3))
    assert result.status == "diverged"
    assert result.backtracks == 4
    assert all(torch.isfinite(p).all() for p in net.parameters())  # last good step
    assert torch.isfinite(result.average).all()  # bad outputs never enter the average


def test_backtracking_restores_parameters_after_a_psnr_drop():
    torch.manual_seed(0)
    problem = denoising(gt=smooth_image(size=32), sigma=25, seed=0)
    seen = {}

    class JumpAt(nn.Module):
        """Returns an absurd output on the 4th forward call; records parameters."""

        def __init__(self, net):
            super().__init__()
            self.net, self.n = net, 0

        def forward(self, x):
            self.n += 1
            if self.n in (3, 5):
                seen[self.n] = [p.detach().clone() for p in self.net.parameters()]
            out = self.net(x)
            return torch.full_like(out, 3.0) if self.n == 4 else out

    guard = Backtrack(drop_db=5.0)
    monitors = [guard, History(1), Oracle()]
    result = fit(JumpAt(small_net()), problem, settings(num_iter=6), monitors=monitors)
    assert guard.total == 1
    for a, b in zip(seen[3], seen[5], strict=True):
        assert torch.equal(a, b)  # back to the parameters of the last good output
    assert result.history.step.tolist() == list(range(6))
    assert result.history.psnr_obs.min() > 0  # the bad output was never recorded


def test_backtrack_snapshot_groups_tensors_by_dtype_and_restores_all():
    """Parameters, Adam state and BatchNorm's int64 counters are copied in groups of one
    device and dtype each (one foreach call per group) and all come back on a rollback."""
    from dip.fitting.monitors import StepInfo

    net = small_net()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    net(torch.rand(1, 8, 16, 16)).mean().backward()
    opt.step()  # creates the optimiser state
    info = StepInfo(problem=None, net=net, optimizer=opt)
    guard = Backtrack()
    guard._save(info)
    ts, groups = guard._tensors(info)
    assert sorted(i for g in groups for i in g) == list(range(len(ts)))
    for g in groups:
        assert len({(ts[i].device, ts[i].dtype) for i in g}) == 1
    assert torch.int64 in {ts[g[0]].dtype for g in groups}  # the counters are there
    before = [t.clone() for t in ts]
    with torch.no_grad():
        for t in ts:
            t.add_(1)
    guard._restore(info)
    for a, b in zip(before, guard._tensors(info)[0], strict=True):
        assert torch.equal(a, b)


def test_make_input_kinds():
    z = make_input("noise", 4, (8, 6), scale=0.1, generator=torch.Generator().manual_seed(0))
    assert z.shape == (1, 4, 8, 6) and 0 <= float(z.min()) and float(z.max()) < 0.1
    g = make_input("meshgrid", 2, (5, 7))
    assert g.shape == (1, 2, 5, 7)
    assert float(g[0, 0, 0, -1]) == 1.0 and float(g[0, 1, -1, 0]) == 1.0
    with pytest.raises(ValueError, match="input_type"):
        make_input("gauss", 2, (4, 4))


def test_a_long_cpu_fit_says_how_long_and_what_would_be_short():
    from dip import DipNote
    from dip.fitting.monitors import ExpectedTime, History

    note = ExpectedTime(1000).note(3.6, 3600.0, (512, 768))
    assert note.startswith("this fit will take about 60 min on the CPU (3.60 s a step, "
                           "1000 steps); crop=128 or scale=0.25 would take about 5 min")
    early = ExpectedTime(7525, early=True).note(2.47, 18700.0, (256, 384))  # cap: 24·√(H·W)
    assert early.startswith("this fit will take up to 5.2 h on the CPU (2.47 s a step, at "
                            "most 7525 steps; early stopping usually ends it after a third "
                            "to a half of them); crop=64 or scale=0.25 would take about 5 min")
    problem = denoising(gt=smooth_image(size=32), sigma=25, seed=0)
    with pytest.warns(DipNote, match=r"this fit will take about .* crop=32 or scale=1 would"):
        fit(small_net(), problem, settings(num_iter=8),
            [History(4), ExpectedTime(8, threshold=0.0, probe=2)])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DipNote)  # a short fit says nothing
        fit(small_net(), problem, settings(num_iter=8), [History(4), ExpectedTime(8)])
