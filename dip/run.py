"""One DIP run from a composed config: problem → net → fit → record.

:func:`run` is what ``dip`` (the Hydra app in :mod:`dip.__main__`) calls for every job
of a sweep. Everything a run writes goes to a temporary directory that is renamed to
``out_dir`` at the end, so a directory that exists is a finished run.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

import dip
from dip import DipError, nets, tasks
from dip.config import config_hash
from dip.corrupt import SIGNALS, pil_resize, signal
from dip.data import center_crop, crop_to_multiple, image_id, read, save_image
from dip.fit import FitResult, FitSettings, fit, pick_device, seed_everything
from dip.metrics import psnr
from dip.tasks import Problem

__all__ = ["run", "record_dir", "build_problem", "build_net", "build_input", "net_multiple",
           "min_size", "check_size", "set_threads", "versions", "git_commit"]


def net_multiple(net_cfg: DictConfig) -> int:
    """Side length the network's input must be a multiple of (2^number of scales)."""
    name = net_cfg.name
    if name == "skip":
        return 2 ** len(net_cfg.num_channels_down)
    if name == "encdec":
        return 2 ** int(net_cfg.depth)
    if name == "unet":
        return 2 ** (4 + int(net_cfg.more_layers))
    return 1


def min_size(net_cfg: DictConfig) -> int:
    """Smallest side the net accepts: its deepest scale must stay wider than the padding.

    A k×k convolution with reflection padding needs more than k // 2 pixels, and
    BatchNorm needs more than one; so the deepest scale keeps at least
    max(2, k // 2 + 1) pixels (2·2^depth for the paper's 3×3 net).
    """
    m = net_multiple(net_cfg)
    if m <= 1:
        return 1
    k = net_cfg.get("filter_size_down", 3)
    k = max(k) if OmegaConf.is_list(k) or isinstance(k, (list, tuple)) else int(k)
    return m * max(2, k // 2 + 1)


def check_size(image: torch.Tensor, net_cfg: DictConfig, what: str = "image") -> None:
    """Refuse images too small for the net (see :func:`min_size`)."""
    n = min_size(net_cfg)
    h, w = image.shape[-2:]
    if min(h, w) < n:
        raise DipError(f"{what} {h}×{w} is smaller than the {net_cfg.name} net's minimum "
                       f"size {n}×{n}; use a larger image or a net with fewer scales")


def build_net(cfg: DictConfig, num_input_channels: int, num_output_channels: int):
    """Network of ``cfg.net``, widths scaled by ``cfg.profile.width_scale``."""
    kwargs = OmegaConf.to_container(cfg.net, resolve=True)
    name = kwargs.pop("name")
    scale = float(cfg.profile.width_scale)
    if scale != 1.0:
        kwargs = nets.scale_width(kwargs, name, scale)
    return nets.build(name, num_input_channels, num_output_channels, **kwargs)


def _read(spec, root, what: str) -> torch.Tensor:
    if spec is None or str(spec).strip() == "":
        raise DipError(f"no {what} given; set {what}=PATH (a file, dataset/file or skimage:NAME)")
    return read(str(spec), root=root)


def _lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b)


def _check_numbers(cfg: DictConfig) -> None:
    task = cfg.task.name
    if task == "denoising" and not cfg.corrupted:
        sigma = cfg.sigma
        if not isinstance(sigma, (int, float)) or isinstance(sigma, bool) or not sigma > 0:
            raise DipError(f"sigma={sigma} is invalid; give the noise std on the 0-255 scale, "
                           "e.g. sigma=25")
    if task == "sr":
        f = cfg.factor
        if isinstance(f, bool) or not isinstance(f, (int, float)) or f != int(f) or f < 2:
            raise DipError(f"factor={f} is invalid; the SR factor must be an integer >= 2, "
                           "e.g. factor=4")
    if task == "inpainting" and cfg.mask is None and not 0 <= cfg.p_missing < 1:
        raise DipError(f"p_missing={cfg.p_missing} is invalid; give a fraction in [0, 1)")
    for key in ("num_iter",):
        value = cfg.fit[key]
        if not isinstance(value, int) or value < 1:
            raise DipError(f"fit.{key}={value} is invalid; give a positive integer")
    if not cfg.fit.lr > 0 or not math.isfinite(cfg.fit.lr):
        raise DipError(f"fit.lr={cfg.fit.lr} is invalid; give a positive learning rate")


def _crops(cfg: DictConfig, multiple: int):
    """The same resizing and centre crops for an image and everything aligned with it.

    ``cfg.scale`` (optional) resizes first (PIL Lanczos; nearest for masks), then
    ``cfg.crop`` takes the centre square and the sides are cut to ``multiple``.
    """
    size = None if cfg.crop is None else \
        tuple(int(v) for v in cfg.crop) if OmegaConf.is_list(cfg.crop) else int(cfg.crop)
    factor = cfg.get("scale")
    if factor is not None and not (isinstance(factor, (int, float)) and 0 < factor <= 1):
        raise DipError(f"scale={factor} is invalid; give a downscaling factor in (0, 1]")

    def apply(img: torch.Tensor, scale: int = 1, mask: bool = False) -> torch.Tensor:
        if factor is not None and factor != 1:
            h, w = img.shape[-2:]
            new = (max(1, round(h * factor)), max(1, round(w * factor)))
            img = pil_resize(img, new, "nearest" if mask else "lanczos")
        if size is not None:
            img = center_crop(img, tuple(v * scale for v in size) if isinstance(size, tuple)
                              else size * scale)
        return crop_to_multiple(img, multiple * scale)

    return apply


def build_problem(cfg: DictConfig) -> Problem:
    """The :class:`~dip.tasks.Problem` described by ``cfg`` (image, task, corruption)."""
    _check_numbers(cfg)
    root = cfg.data.root
    task = cfg.task.name
    m = net_multiple(cfg.net)
    image = _read(cfg.image, root, "image")
    gt = _read(cfg.gt, root, "gt") if cfg.corrupted and cfg.gt is not None else None

    if task == "sr":
        factor = int(cfg.factor)
        if cfg.corrupted:  # image is the LR input: the HR output must fit the net
            m_lr = max(1, m // math.gcd(m, factor))
            lr = _crops(cfg, m_lr)(image)
            check_size(lr.repeat_interleave(factor, -1).repeat_interleave(factor, -2),
                       cfg.net, f"upscaled image (factor {factor})")
            hr = None if gt is None else _crops(cfg, m_lr)(gt, factor)
            return tasks.sr(lr=lr, hr=hr, factor=factor, kernel_type=cfg.task.kernel_type)
        hr = _crops(cfg, _lcm(m, factor))(image)
        check_size(hr, cfg.net)
        return tasks.sr(hr=hr, factor=factor, kernel_type=cfg.task.kernel_type)

    crop = _crops(cfg, m)
    if gt is not None and gt.shape[-2:] != image.shape[-2:]:
        raise DipError(f"gt is {gt.shape[-2]}×{gt.shape[-1]} but the image is "
                       f"{image.shape[-2]}×{image.shape[-1]}; give the clean version of the "
                       "same image")
    mask = None
    if task == "inpainting" and cfg.mask is not None:
        mask = _read(cfg.mask, root, "mask")
        if mask.shape[-2:] != image.shape[-2:]:
            raise DipError(f"mask is {mask.shape[-2]}×{mask.shape[-1]} but the image is "
                           f"{image.shape[-2]}×{image.shape[-1]}; give a mask of the image's "
                           "size")
        mask = crop(mask.amin(0, keepdim=True), mask=True)
    image = crop(image)
    gt = None if gt is None else crop(gt)
    check_size(image, cfg.net)
    if task == "fitting":
        kind = str(cfg.get("signal", "image"))
        if kind not in SIGNALS:
            raise DipError(f"signal={kind} is invalid; choose one of {', '.join(SIGNALS)}")
        sigma = float(cfg.sigma) if kind == "noisy" else 25.0
        return tasks.fitting(target=signal(image, kind, sigma=sigma, seed=int(cfg.seed)),
                             gt=gt)
    if task == "denoising":
        if cfg.corrupted:
            return tasks.denoising(noisy=image, gt=gt)
        return tasks.denoising(gt=image, sigma=float(cfg.sigma), seed=int(cfg.seed))
    if task == "inpainting":
        if mask is None and cfg.corrupted:
            raise DipError("inpainting a damaged image needs its mask; set mask=PATH "
                           "(white = known pixel)")
        problem = tasks.inpainting(image=image, mask=mask, p_missing=float(cfg.p_missing),
                                   seed=int(cfg.seed), image_is_gt=not cfg.corrupted)
        if gt is not None:
            problem.gt = gt[None]
        return problem
    raise DipError(f"unknown task {task!r}; choose denoising, inpainting or sr")


def build_input(cfg: DictConfig, problem: Problem) -> torch.Tensor | None:
    """The network input when it is an image (``fit.input_type=image``), else None.

    ``input_image`` is read, resized and cropped exactly as the image, and must then
    have the size of the restored image (e.g. the flash photo of a flash/no-flash pair).
    """
    if cfg.fit.input_type != "image":
        return None
    z = _crops(cfg, net_multiple(cfg.net))(_read(cfg.get("input_image"), cfg.data.root,
                                                 "input_image"))
    if tuple(z.shape[-2:]) != tuple(problem.out_shape[1:]):
        raise DipError(f"input_image is {z.shape[-2]}×{z.shape[-1]} after cropping but the "
                       f"output is {problem.out_shape[1]}×{problem.out_shape[2]}; give an "
                       "image of the same size")
    return z[None]


def set_threads(threads) -> None:
    """Pin torch's CPU threads (None: leave torch's default).

    CPU results depend on the thread count, so a pinned count is part of what makes a
    run reproducible (the profiles pin it; records store it in ``device_name``).
    """
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise DipError(f"threads={threads} is invalid; give a positive integer or null")
    torch.set_num_threads(threads)


def settings_from(cfg: DictConfig) -> FitSettings:
    """:class:`~dip.fit.FitSettings` from ``cfg.fit`` plus seed, device and progress."""
    values = OmegaConf.to_container(cfg.fit, resolve=True)
    return FitSettings(**values, seed=int(cfg.seed), device=str(cfg.device),
                       progress=bool(cfg.progress))


def git_commit() -> str:
    """Commit of the source tree ('unknown' outside git; '+dirty' with local changes)."""
    here = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=here,
                              capture_output=True, text=True, timeout=10)
        sha = head.stdout.strip() if head.returncode == 0 else ""
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha or "unknown") + ("+dirty" if sha and dirty.strip() else "")


def versions() -> dict:
    """Versions of what produced a number."""
    import hydra
    import skimage

    return {"dip": dip.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "hydra": hydra.__version__, "skimage": skimage.__version__,
            "python": platform.python_version()}


def device_name(device: str) -> str:
    """Human-readable device: GPU model or CPU with its thread count."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def metrics_of(problem: Problem, result: FitResult, cfg: DictConfig) -> dict:
    """The numbers of a run, each with how it was made."""
    scored = problem.gt is not None
    corrupted_view = problem.corrupted_view().cpu()
    nan = float("nan")
    return {
        "experiment": cfg.name,
        "label": cfg.get("label"),
        "task": cfg.task.name,
        "image": str(cfg.image),
        "image_id": image_id(str(cfg.gt if cfg.corrupted and cfg.gt else cfg.image)),
        "dataset": cfg.dataset,
        "sigma": cfg.sigma if cfg.task.name == "denoising" else None,
        "factor": int(cfg.factor) if cfg.task.name == "sr" else None,
        "metric": problem.metric,
        "psnr_corrupted": problem.score(corrupted_view) if scored else nan,
        "psnr_final": problem.score(result.final) if scored else nan,
        "psnr_avg": problem.score(result.average) if scored else nan,
        "psnr_oracle": problem.score(result.oracle) if result.oracle is not None else nan,
        "iter_oracle": result.iter_oracle,
        "psnr_obs_final": psnr(problem.observation.cpu(),
                               problem.operator.cpu()(result.final).detach()),
        "num_iter": int(cfg.fit.num_iter),
        "seconds": round(result.seconds, 3),
        "sec_per_iter": round(result.seconds / max(1, int(cfg.fit.num_iter)), 5),
        "status": result.status,
        "backtracks": result.backtracks,
        "device": result.device,
        "device_name": device_name(result.device),
        "seed": int(cfg.seed),
        "profile": cfg.profile.name,
        "net": cfg.net.name,
        "size": list(problem.out_shape),
        "config_hash": config_hash(cfg),
        "commit": git_commit(),
        "versions": versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _clean(obj):
    """Replace NaN/inf by None so metrics.json is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def write_record(out_dir: Path, cfg: DictConfig, problem: Problem, result: FitResult,
                 metrics: dict, images: dict | None = None) -> Path:
    """Write a run's files into a temporary directory, then move it to ``out_dir``.

    ``images`` (name → tensor) are saved too as ``<name>.png`` (network input image,
    baseline outputs).
    """
    from dip.report.figures import plot_history, side_by_side

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_image(tmp / "restored.png", result.final)
        save_image(tmp / "restored_avg.png", result.average)
        save_image(tmp / "corrupted.png", problem.observation.cpu())
        for name, img in (images or {}).items():
            save_image(tmp / f"{name}.png", img.cpu())
        panels = [("corrupted", problem.corrupted_view().cpu(), metrics["psnr_corrupted"]),
                  ("DIP", result.final, metrics["psnr_final"]),
                  ("DIP (averaged)", result.average, metrics["psnr_avg"])]
        if problem.gt is not None:
            save_image(tmp / "gt.png", problem.gt.cpu())
            panels.insert(0, ("ground truth", problem.gt.cpu(), None))
        side_by_side(panels, tmp / "comparison.png",
                     title=f"{cfg.task.name} · {cfg.image} · profile {cfg.profile.name} · "
                           f"{cfg.fit.num_iter} it · seed {cfg.seed}")
        result.history.to_csv(tmp / "history.csv", index=False)
        plot_history(result.history, tmp / "curves.png",
                     title=f"{cfg.task.name} · {cfg.image} · profile {cfg.profile.name}")
        (tmp / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        (tmp / "metrics.json").write_text(json.dumps(_clean(metrics), indent=2) + "\n")
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def record_dir(cfg: DictConfig) -> Path:
    """Where a run's record goes: ``out_dir`` if set, else ``records/<config hash>``."""
    if cfg.out_dir is not None:
        return Path(cfg.out_dir)
    return Path(cfg.records) / config_hash(cfg)


def run(cfg: DictConfig) -> dict:
    """Fit DIP as ``cfg`` describes, write the record and return its metrics.

    A run whose record already exists is not repeated (unless ``force=true``): its
    stored metrics are returned with ``skipped = True``.
    """
    out = record_dir(cfg)
    if (out / "metrics.json").is_file() and not cfg.force:
        metrics = json.loads((out / "metrics.json").read_text())
        return {**metrics, "skipped": True, "out_dir": str(out)}
    problem = build_problem(cfg)
    settings = settings_from(cfg)
    set_threads(cfg.get("threads"))
    z = build_input(cfg, problem)
    n_in = z.shape[1] if z is not None else \
        2 if settings.input_type == "meshgrid" else settings.input_depth
    seed_everything(int(cfg.seed))
    net = build_net(cfg, n_in, problem.out_shape[0])
    pick_device(settings.device)  # fail early on an unknown device string
    result = fit(net, problem, settings, z=z)
    problem.to("cpu")
    metrics = metrics_of(problem, result, cfg)
    images = {} if z is None else {"input": z}
    if cfg.baselines and problem.gt is not None:
        from dip.baselines import run_baselines

        outputs: dict = {}
        metrics["baselines"] = run_baselines(problem, images=outputs)
        images.update({f"baseline_{k}": v for k, v in outputs.items()})
    metrics["out_dir"] = str(write_record(out, cfg, problem, result, metrics, images))
    return metrics
