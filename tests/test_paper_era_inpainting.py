"""The paper-era inpainting table: half masks (dip.data.fetch.half_mask, registry dataset
``paper/inpainting50/mask_half``) and ``pad_image`` (dip.problems.problem.pad,
dip.runs.inputs.build_problem)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_cfg, smooth_png, spec_of
from omegaconf import OmegaConf
from PIL import Image

import dip.data.registry
from dip import DipError, data
from dip.data.fetch import HALF_SEED, half_mask, plan
from dip.data.fetch import main as fetch_main
from dip.problems.denoising import denoising
from dip.problems.inpainting import inpainting
from dip.problems.metrics import psnr
from dip.problems.operators import Identity, Mask
from dip.problems.problem import pad
from dip.problems.sr import sr
from dip.runs.config import config_hash
from dip.runs.inputs import build_problem

# Hashes of the quick table's configs, recorded before pad_image and the half masks
# existed: its committed records keep their identity.
QUICK_HASHES = {"barbara": "f6954e221b7d", "house": "89274e615fee", "peppers256": "d75e20c53d4a"}

# Per image of paper/inpainting50: pixels where the released masked image and the
# ground truth are both 0, and how many of them half_mask makes known (measured on the
# registry's files; images not listed have none).
AMBIGUOUS = {"boat": (7, 4), "couple": (247, 130), "fingerprint": (1, 1), "montage": (249, 132),
             "peppers256": (511, 251)}
ITEMS = ("barbara", "boat", "house", "Lena512", "peppers256", "Cameraman256", "couple",
         "fingerprint", "hill", "man", "montage")


def png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path, format="PNG")
    return path


def pixels(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.array(img)


# --------------------------------------------------------------------------- the rule


def fake_pair(seed: int, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A ground truth with a black 1-pixel frame and black specks, and its masked image."""
    rng = np.random.default_rng(seed)
    gt = rng.integers(1, 256, (size, size), dtype=np.uint8)
    gt[0, :] = gt[-1, :] = gt[:, 0] = gt[:, -1] = 0
    gt[rng.random((size, size)) < 0.05] = 0
    masked = np.where(rng.random((size, size)) < 0.5, gt, 0).astype(np.uint8)
    return gt, masked


@pytest.fixture
def fake_registry(tmp_path, monkeypatch):
    """A registry of two fake images (alpha and beta: the same pixels) and their half masks,
    with the images in a data root: (root, registry path)."""
    root = tmp_path / "root"
    (root / "fake").mkdir(parents=True)
    gt, masked = fake_pair(0)
    rows = []
    for item in ("alpha", "beta"):
        for kind, array in (("GT", gt), ("masked", masked)):
            path = png(root / "fake" / f"{item}_{kind}.png", array)
            rows.append(_row("fake", path.name, "fake/repo", path, array))
    for item in ("alpha", "beta"):  # the expected bytes: made by the rule under test
        src = root / "fake"
        mask = half_mask(src / f"{item}_masked.png", src / f"{item}_GT.png", item)
        buf = io.BytesIO()
        Image.fromarray(mask).save(buf, format="PNG")
        rows.append({**_row("fake/mask_half", f"{item}_mask_half.png", "derived", None, mask),
                     "source_path": f"../{item}_masked.png != 0 or half(../{item}_GT.png == 0)",
                     "sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
                     "bytes": str(len(buf.getvalue()))})
    registry = tmp_path / "registry.csv"
    with open(registry, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    monkeypatch.setattr(dip.data.registry, "REGISTRY_CSV", registry)
    dip.data.registry.clear_cache()
    yield root, registry
    dip.data.registry.clear_cache()


def _row(dataset, file, repo, path, array) -> dict:
    derived = repo == "derived"
    return {"dataset": dataset, "file": file, "source_repo": repo,
            "source_path": "" if derived else f"images/{file}",
            "source_commit": "" if derived else "0" * 40,
            "width": str(array.shape[1]), "height": str(array.shape[0]), "mode": "L",
            "sha256": "" if derived else data.file_sha256(path),
            "bytes": "" if derived else str(path.stat().st_size),
            "url": "" if derived else f"https://raw.githubusercontent.com/fake/repo/{file}"}


def test_half_masks_are_derived_into_the_data_root(fake_registry, capsys):
    root, _ = fake_registry
    entry = data.lookup("fake/mask_half/alpha_mask_half.png")
    assert (entry.derived_from, entry.gt_from) == ("fake/alpha_masked.png", "fake/alpha_GT.png")
    assert fetch_main(["fake", "--root", str(root)]) == 0  # the sources are there: no download
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == ["derived  fake/mask_half/alpha_mask_half.png",
                          "derived  fake/mask_half/beta_mask_half.png"]
    assert all(line.startswith("ok ") for line in lines[:-2])
    assert fetch_main(["fake/mask_half", "--root", str(root)]) == 0  # verified, not remade
    assert capsys.readouterr().out.split()[::2] == ["ok"] * 6
    gt, masked = fake_pair(0)
    mask = data.read("fake/mask_half/alpha_mask_half.png", root=root)[0].numpy()
    assert set(np.unique(mask)) == {0.0, 1.0}
    assert (mask[masked != 0] == 1).all()  # known where the masked image is non-zero
    assert (mask[(masked == 0) & (gt != 0)] == 0).all()  # missing where only it is 0
    both = (masked == 0) & (gt == 0)
    assert both.sum() > 250 and 0.4 < mask[both].mean() < 0.6  # about half known
    other = data.read("fake/mask_half/beta_mask_half.png", root=root)[0].numpy()
    assert (other[~both] == mask[~both]).all() and (other[both] != mask[both]).any()


def test_half_mask_is_reproducible_and_keyed_per_image(tmp_path):
    gt, masked = fake_pair(1)
    g, m = png(tmp_path / "gt.png", gt), png(tmp_path / "masked.png", masked)
    first = half_mask(m, g, "peppers256")
    assert np.array_equal(first, half_mask(m, g, "peppers256"))
    assert not np.array_equal(first, half_mask(m, g, "couple"))
    # pinned draws (numpy's PCG64 raw stream and SeedSequence are fixed across platforms)
    zero = png(tmp_path / "zero.png", np.zeros((8, 8), np.uint8))
    pinned = half_mask(zero, zero, "peppers256") == 255
    assert HALF_SEED == 2018 and np.packbits(pinned.ravel()).tobytes().hex() == "f65286904cd2f3a4"
    with pytest.raises(DipError, match="give the ground truth"):
        half_mask(m, png(tmp_path / "small.png", gt[:8]), "x")


def test_fetch_adds_the_sources_of_half_masks():
    names = [e.name for e in plan(["paper/inpainting50/mask_half"], ["boat_mask_half.png"])]
    assert names == ["paper/inpainting50/boat_GT.png", "paper/inpainting50/boat_masked.png",
                     "paper/inpainting50/mask_half/boat_mask_half.png"]  # sources first
    half = data.list_images("paper/inpainting50/mask_half")
    assert half == sorted(f"paper/inpainting50/mask_half/{i}_mask_half.png" for i in ITEMS)
    assert len(data.list_images("paper/inpainting50")) == 33  # the released files and masks
    assert data.image_id(half[0]) == "Cameraman256"


def test_real_counts_and_registry_hashes(data_root):
    """The counts of the report, and the registry's hashes made by the rule."""
    folder = data_root / "paper/inpainting50"
    if not (folder / "peppers256_masked.png").is_file():
        pytest.skip("paper/inpainting50 is not in the data root")
    for item in ITEMS:
        masked, gt = folder / f"{item}_masked.png", folder / f"{item}_GT.png"
        mask = half_mask(masked, gt, item)
        both = (pixels(masked) == 0) & (pixels(gt) == 0)
        assert (int(both.sum()), int((mask[both] == 255).sum())) == AMBIGUOUS.get(item, (0, 0))
        released = pixels(folder / f"{item}_mask.png")
        assert np.array_equal(mask[~both], released[~both]), item
        buf = io.BytesIO()
        Image.fromarray(mask).save(buf, format="PNG")
        entry = data.lookup(f"paper/inpainting50/mask_half/{item}_mask_half.png")
        assert hashlib.sha256(buf.getvalue()).hexdigest() == entry.sha256, item


# --------------------------------------------------------------------------- configs


def test_paper_table_pads_and_uses_the_half_masks():
    cfg = make_cfg("experiment=table_inpainting", "profile=paper", "item=peppers256")
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["pad_image"] == 1
    assert resolved["task"]["mask"] == "paper/inpainting50/mask_half/peppers256_mask_half.png"
    assert make_cfg("experiment=table_inpainting", "profile=paper",
                    "mask_source=random").task.mask is None
    for profile in ("quick", "smoke"):
        other = make_cfg("experiment=table_inpainting", f"profile={profile}", "item=boat")
        assert (other.pad_image, other.task.mask) == (0, "paper/inpainting50/boat_mask.png")
    assert make_cfg().pad_image == 0


def test_quick_identities_are_unchanged():
    for item, digest in QUICK_HASHES.items():
        assert config_hash(make_cfg("experiment=table_inpainting", f"item={item}",
                                    "threads=1")) == digest  # make's layout: one thread
    plain = make_cfg()
    without = OmegaConf.create(OmegaConf.to_container(plain))
    del without["pad_image"]
    assert config_hash(plain) == config_hash(without)  # pad_image: 0 is neutral


def test_paper_table_problem_is_padded(data_root, tmp_path):
    """Peppers with its half mask, as the paper profile builds it: 258² fitted, 256² scored."""
    folder = data_root / "paper/inpainting50"
    if not (folder / "peppers256_masked.png").is_file():
        pytest.skip("paper/inpainting50 is not in the data root")
    root = tmp_path / "root"
    (root / "paper/inpainting50").mkdir(parents=True)
    for kind in ("GT", "masked"):
        shutil.copyfile(folder / f"peppers256_{kind}.png",
                        root / f"paper/inpainting50/peppers256_{kind}.png")
    cfg = make_cfg("experiment=table_inpainting", "profile=paper", "item=peppers256",
                   f"data.root={root}")
    in_memory = build_problem(spec_of(cfg))  # the half mask is made from its sources when read
    assert not (root / "paper/inpainting50/mask_half").exists()
    assert fetch_main(["paper/inpainting50/mask_half", "--only", "peppers256_mask_half.png",
                       "--root", str(root)]) == 0
    problem = build_problem(spec_of(cfg))
    assert torch.equal(in_memory.extras["mask"], problem.extras["mask"])
    assert (problem.out_shape, problem.image_shape, problem.border) == \
        ((1, 258, 258), (1, 256, 256), 1)
    mask = problem.unpad(problem.extras["mask"])
    assert int(mask.sum()) == 32649 + 251  # released known pixels + half of the frame's 511
    gt = data.read("paper/inpainting50/peppers256_GT.png", root=root)
    assert torch.equal(problem.unpad(problem.gt)[0], gt)
    assert problem.score(problem.gt) == float("inf")


def test_the_paper_net_runs_on_514():
    """The official geometry: 514 → 257 → 129 → 65 → 33 → 17 and back, the Concat cropping
    each upsampled branch to its skip's size; the output is 514²."""
    cfg = make_cfg("experiment=table_inpainting", "profile=paper", "net.width_scale=0.0625")
    net = spec_of(cfg).net.build(32, 1)
    with torch.no_grad():
        assert net(torch.rand(1, 32, 514, 514)).shape == (1, 1, 514, 514)


# --------------------------------------------------------------------------- padding


def test_pad_reflects_and_scores_the_original():
    image = torch.rand(3, 8, 10)
    mask = (torch.rand(1, 8, 10) < 0.5).float()
    plain = inpainting(image=image, mask=mask)
    padded = pad(plain, 1)
    assert plain.border == 0 and plain.out_shape == (3, 8, 10)  # left as it was
    assert padded.out_shape == (3, 10, 12) and padded.image_shape == (3, 8, 10)
    reflect = torch.nn.ReflectionPad2d(1)
    assert torch.equal(padded.observation, reflect((image * mask)[None]))
    assert torch.equal(padded.gt, reflect(image[None]))
    assert isinstance(padded.operator, Mask)
    assert torch.equal(padded.operator.mask, reflect(mask[None]))
    assert torch.equal(padded.extras["mask"], reflect(mask[None])[0])
    assert torch.equal(padded.unpad(padded.observation), plain.observation)
    assert torch.equal(padded.corrupted_view(), plain.corrupted_view())
    out = padded.gt.clone()
    out[..., 0, :] = 1 - out[..., 0, :]  # wrong only on the padded border
    assert padded.score(out) == float("inf") and psnr(padded.gt, out) < 20
    assert padded.score(plain.corrupted_view()) == plain.score(plain.corrupted_view())
    assert pad(plain, 0) is plain
    den = pad(denoising(gt=image, sigma=25, seed=0), 2)
    assert isinstance(den.operator, Identity) and den.out_shape == (3, 12, 14)
    with pytest.raises(ValueError, match="neither the fitted size"):
        padded.unpad(torch.zeros(1, 3, 9, 9))
    with pytest.raises(DipError, match="smaller pad_image"):
        pad(plain, 8)
    with pytest.raises(DipError, match="cannot pad an SR problem"):
        pad(sr(hr=torch.rand(3, 8, 8), factor=2), 1)
    with pytest.raises(DipError, match="padded already"):
        pad(padded, 1)


@pytest.mark.parametrize("extra, message", [
    (["pad_image=-1"], "pad_image=-1 is invalid"),
    (["pad_image=1.5"], "pad_image=1.5 is invalid"),
    (["pad_image=1", "task=sr", "factor=2"], "not task=sr"),
    (["pad_image=1", "task=inpainting", "net=encdec", "net.depth=2", "net.channels=[8,8]"],
     r"the encdec net maps the padded 66×66 image to \d+×\d+; use net=skip"),
    (["pad_image=1", "net.downsample_mode=avg"], "the skip net maps the padded 66×66 image"),
])
def test_build_problem_refuses_bad_padding(tmp_path, extra, message):
    image = smooth_png(tmp_path / "img.png")
    with pytest.raises(DipError, match=message):
        build_problem(spec_of(make_cfg("profile=smoke", f"image={image}", *extra)))


@pytest.mark.parametrize("task", ["denoising", "inpainting", "fitting"])
def test_build_problem_pads_after_the_crop(tmp_path, task):
    """The same problem as without padding (noise, mask, crop to the net's multiple),
    reflected by 2 pixels: 70×102 is cut to 68×100 (a multiple of 4) and fitted as 72×104."""
    image = smooth_png(tmp_path / "img.png", size=(70, 102))
    signal = ["signal=noisy"] if task == "fitting" else []
    args = ["profile=smoke", f"image={image}", f"task={task}", *signal, *SMALL_NET]
    with pytest.warns(UserWarning, match="cut to 68×100"):
        plain = build_problem(spec_of(make_cfg(*args)))
    with pytest.warns(UserWarning, match="cut to 68×100"):
        padded = build_problem(spec_of(make_cfg(*args, "pad_image=2")))
    assert plain.out_shape == (3, 68, 100) and padded.out_shape == (3, 72, 104)
    assert torch.equal(padded.unpad(padded.observation), plain.observation)
    if task == "fitting":  # fitting a clean image: no ground truth to score
        assert plain.gt is None and padded.gt is None
        return
    assert torch.equal(padded.unpad(padded.gt), plain.gt)
    assert padded.score(plain.observation) == plain.score(plain.observation)


SMALL_NET = ["net.num_channels_down=[8,8]", "net.num_channels_up=[8,8]",
             "net.num_channels_skip=[4,4]"]


@pytest.fixture(scope="module")
def padded_run(tmp_path_factory):
    """A smoke inpainting run of a 64² image with pad_image=1: (out dir, metrics, problem,
    results, the 64² image)."""
    from dip.runs import plan as run_module

    tmp = tmp_path_factory.mktemp("pad")
    image = smooth_png(tmp / "img.png")
    cfg = make_cfg("task=inpainting", "profile=smoke", f"image={image}", f"out_dir={tmp / 'run'}",
                   "progress=false", "pad_image=1", *SMALL_NET)
    seen = {}
    record_run = run_module.record_run

    def spy(cfg, problem, results, *args, **kwargs):
        seen.update(problem=problem, results=results)
        return record_run(cfg, problem, results, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(run_module, "record_run", spy)
        metrics = run_module.run(cfg)
    return tmp / "run", metrics, seen["problem"], seen["results"], data.read(str(image))


def test_pad_image_fits_66_and_scores_64(padded_run):
    out, metrics, problem, results, image = padded_run
    assert problem.out_shape == (3, 66, 66) and problem.image_shape == (3, 64, 64)
    final = results[0].final
    assert final.shape == (1, 3, 66, 66)
    assert metrics["psnr_final"] == pytest.approx(psnr(image[None], final[..., 1:-1, 1:-1]),
                                                  abs=1e-9)
    mask = problem.unpad(problem.extras["mask"])
    assert mask.shape == (1, 64, 64)
    assert metrics["psnr_corrupted"] == pytest.approx(psnr(image, image * mask), abs=1e-9)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["psnr_final"] == pytest.approx(metrics["psnr_final"])


def test_pad_image_record_images_are_64(padded_run):
    out, metrics, *_ = padded_run
    for name in ("restored.png", "restored_avg.png", "corrupted.png", "gt.png"):
        with Image.open(out / name) as img:
            assert img.size == (64, 64), name
    assert metrics["size"] == [3, 64, 64]
