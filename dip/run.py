"""One DIP run from a composed config: problem → net → fit → record.

:func:`run` is what ``dip`` (the Hydra app in :mod:`dip.__main__`) calls for every job
of a sweep. Everything a run writes goes to a temporary directory that is renamed to
``out_dir`` at the end, so a directory that exists is a finished run.
"""

from __future__ import annotations

import errno
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

import dip
from dip import DipError, DipNote, nets, tasks
from dip.checkpoint import Checkpoint, discard
from dip.config import config_hash
from dip.corrupt import SIGNALS, pil_resize, signal
from dip.data import center_crop, crop_to_multiple, image_id, read, save_image
from dip.fast import AMP_MODES
from dip.fit import (
    FitResult,
    FitSettings,
    code_channels,
    default_monitors,
    fit,
    pick_device,
    seed_everything,
)
from dip.memory import ENV_LIMIT, GB, available_bytes, check_memory, fit_cost
from dip.metrics import psnr
from dip.stopping import STOP_MODES
from dip.tasks import Problem

__all__ = ["run", "record_dir", "build_problem", "build_net", "unused_net_keys",
           "note_unused_net_keys", "build_input", "net_multiple", "min_size", "check_size",
           "set_threads", "existing_record", "record_run", "versions", "git_commit",
           "fit_seeds", "checkpoint_path", "check_writable", "check_fit_memory"]


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


def unused_net_keys(cfg: DictConfig) -> list[str]:
    """Keys of ``cfg.net`` that its builder does not take: settings an experiment wrote
    for its own net (e.g. ``num_channels_skip`` of the skip net) when another net is
    chosen (``net=encdec``). :func:`build_net` leaves them out."""
    return sorted(set(cfg.net) - {"name"} - nets.builder_keys(cfg.net.name))


def note_unused_net_keys(cfg: DictConfig) -> None:
    """A ``note:`` line naming the keys of :func:`unused_net_keys`, if any."""
    unused = unused_net_keys(cfg)
    if unused:
        warnings.warn(f"net={cfg.net.name} does not take {', '.join(unused)} (set for "
                      "another net, e.g. by the experiment); left out", DipNote, stacklevel=2)


def build_net(cfg: DictConfig, num_input_channels: int, num_output_channels: int):
    """Network of ``cfg.net``, widths scaled by ``cfg.profile.width_scale``; the keys of
    :func:`unused_net_keys` are left out. Settings the builder refuses (a per-level list
    of the wrong length, an unknown mode) end as a one-line :class:`~dip.DipError`."""
    kwargs = OmegaConf.to_container(cfg.net, resolve=True)
    name = kwargs.pop("name")
    for key in unused_net_keys(cfg):
        kwargs.pop(key)
    scale = float(cfg.profile.width_scale)
    try:
        if scale != 1.0:
            kwargs = nets.scale_width(kwargs, name, scale)
        return nets.build(name, num_input_channels, num_output_channels, **kwargs)
    except ValueError as err:
        raise DipError(f"net={name}: {err}; fix it with net.<key>=... overrides") from None


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
    for key, value in cfg.fit.items():
        if isinstance(value, float) and math.isnan(value):
            raise DipError(f"fit.{key}=nan is invalid; give a number")
    for key in ("num_iter",):
        value = cfg.fit[key]
        if not isinstance(value, int) or value < 1:
            raise DipError(f"fit.{key}={value} is invalid; give a positive integer")
    if not cfg.fit.lr > 0 or not math.isfinite(cfg.fit.lr):
        raise DipError(f"fit.lr={cfg.fit.lr} is invalid; give a positive learning rate")
    _check_trust_settings(cfg)


def _positive_int(value, name: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DipError(f"{name}={value} is invalid; give an integer >= {minimum}")


def _check_trust_settings(cfg: DictConfig) -> None:
    """Early stopping, seeds, checkpoints and the memory limit."""
    if cfg.stop not in STOP_MODES:
        raise DipError(f"stop={cfg.stop} is invalid; choose {', '.join(STOP_MODES)}")
    _positive_int(cfg.stopping.window, "stopping.window", 2)
    _positive_int(cfg.stopping.patience, "stopping.patience")
    alpha = cfg.stopping.alpha
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 1:
        raise DipError(f"stopping.alpha={alpha} is invalid; give a weight in (0, 1]")
    _positive_int(cfg.seeds, "seeds")
    _positive_int(cfg.checkpoint_every, "checkpoint_every", 0)
    limit = cfg.memory_limit_gb
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float))
                              or not limit > 0):
        raise DipError(f"memory_limit_gb={limit} is invalid; give a positive number of GB "
                       "or null (the free memory)")


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
        multiple = _lcm(m, factor)
        h, w = image.shape[-2:]
        if not cfg.corrupted and multiple > m and min(h, w) < max(2 * m, multiple):
            raise DipError(f"SR factor {factor} does not divide the {cfg.net.name} net's size "
                           f"multiple {m}, so the image would be cropped to a multiple of "
                           f"{multiple}, but it is {h}×{w}; use a factor that divides {m} "
                           "(2, 4, 8) or a larger image")
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
    check_size(image, cfg.net, "image" if cfg.crop is None else
               f"image (centre crop {cfg.crop}, cut to a multiple of {m})")
    if task == "fitting":
        kind = str(cfg.get("signal", "image"))
        if kind not in SIGNALS:
            raise DipError(f"signal={kind} is invalid; choose one of {', '.join(SIGNALS)}")
        sigma = float(cfg.sigma) if kind == "noisy" else 25.0
        return tasks.fitting(target=signal(image, kind, sigma=sigma, seed=int(cfg.seed)),
                             gt=gt)
    if task == "denoising":
        if cfg.corrupted:
            return tasks.denoising(noisy=image, gt=gt, sigma=float(cfg.sigma))
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


def settings_from(cfg: DictConfig, seed: int | None = None) -> FitSettings:
    """:class:`~dip.fit.FitSettings` from ``cfg.fit`` plus stopping, seed, device, progress
    and the fast paths (``cfg.fast``).

    ``seed`` overrides ``cfg.seed`` (the members of a seed ensemble).
    """
    values = OmegaConf.to_container(cfg.fit, resolve=True)
    values.update(OmegaConf.to_container(cfg.fast, resolve=True) if "fast" in cfg else {})
    if values.get("amp", "off") not in AMP_MODES:
        raise DipError(f"fast.amp={values['amp']} is unknown; choose one of "
                       f"{', '.join(AMP_MODES)}")
    stopping = cfg.stopping
    return FitSettings(**values, stop=str(cfg.stop), stop_window=int(stopping.window),
                       stop_patience=int(stopping.patience), stop_alpha=float(stopping.alpha),
                       seed=int(cfg.seed if seed is None else seed), device=str(cfg.device),
                       progress=bool(cfg.progress))


def checkpoint_path(cfg: DictConfig, seed: int) -> Path | None:
    """Checkpoint file of one seed of a run, beside its record (None when disabled).

    ``<parent of the record>/.<config hash>.s<seed>.ckpt.pt``: hidden, so record readers
    skip it, and keyed by the config hash, so only the same run resumes from it.
    """
    if not int(cfg.checkpoint_every):
        return None
    return record_dir(cfg).parent / f".{config_hash(cfg)}.s{int(seed)}.ckpt.pt"


def fit_seeds(cfg: DictConfig, problem: Problem, seeds: list[int],
              z: torch.Tensor | None = None) -> list[FitResult]:
    """Fit a fresh network per seed to the same ``problem``, one seed after the other.

    This is the one place where a run's fits happen; a batched implementation (several
    seeds per forward pass) can replace it as long as it returns one
    :class:`~dip.fit.FitResult` per seed, in order. With ``checkpoint_every`` > 0 each
    fit saves and resumes its checkpoint (:func:`checkpoint_path`).
    """
    results = []
    for seed in seeds:
        settings = settings_from(cfg, seed)
        seed_everything(seed)
        n_in = code_channels(settings) if z is None else z.shape[1]
        net = build_net(cfg, n_in, problem.out_shape[0])
        monitors = default_monitors(problem, settings)
        path = checkpoint_path(cfg, seed)
        if path is not None:
            monitors.append(Checkpoint(path, int(cfg.checkpoint_every),
                                       key=f"{config_hash(cfg)}/{seed}"))
        results.append(fit(net, problem, settings, monitors, z=z))
        problem.to("cpu")
    return results


def check_writable(out_dir: Path) -> None:
    """DipError unless the folder that will hold ``out_dir`` can be created and written."""
    parent = Path(out_dir).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as err:
        raise DipError(_os_message(err, f"cannot write records to {parent}")) from None


def _os_message(err: OSError, what: str) -> str:
    reason = err.strerror or str(err) or type(err).__name__
    if err.errno in (errno.EEXIST, errno.ENOTDIR):
        reason = "part of the path is a file, not a folder"
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"{what}: no space left on device; free some space or point records=/out_dir="
                " at another disk, then rerun (earlier records are untouched)")
    return (f"{what}: {reason}; choose a writable folder with out_dir=... or records=..., "
            "or fix its permissions")


def memory_limit(cfg: DictConfig, device: torch.device) -> int:
    """Bytes a fit may use: ``memory_limit_gb``, else $DIP_MEMORY_LIMIT_GB, else free memory."""
    if cfg.memory_limit_gb is not None:
        return int(float(cfg.memory_limit_gb) * GB)
    if os.environ.get(ENV_LIMIT):
        try:
            return int(float(os.environ[ENV_LIMIT]) * GB)
        except ValueError:
            raise DipError(f"{ENV_LIMIT}={os.environ[ENV_LIMIT]!r} is not a number of GB"
                           ) from None
    return available_bytes(device)


def check_fit_memory(cfg: DictConfig, problem: Problem) -> int:
    """Estimated bytes of fitting ``problem``; DipError (with a crop that fits) when too many."""
    settings = settings_from(cfg)
    n_in = code_channels(settings)
    probe = build_net(cfg, n_in, problem.out_shape[0])  # throw-away: fits re-seed and rebuild
    device = pick_device(settings.device)
    multiple = net_multiple(cfg.net)
    window = settings.stop_window if settings.stop == "wmv" else 0
    per_pixel, fixed = fit_cost(probe.to(device), n_in, multiple, problem.out_shape[0], window,
                                min_side=min_size(cfg.net))
    return check_memory(per_pixel, fixed, tuple(problem.out_shape[1:]),
                        memory_limit(cfg, device), multiple, cfg.profile.name)


def git_commit() -> str:
    """Commit of the source tree ('+dirty' with local changes).

    The environment variable ``DIP_COMMIT``, when set, names it instead (a copied
    tree, whose .git may be missing or stale); outside git without it: 'unknown'.
    """
    if os.environ.get("DIP_COMMIT"):
        return os.environ["DIP_COMMIT"]
    here = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=here,
                              capture_output=True, text=True, timeout=10)
        sha = head.stdout.strip() if head.returncode == 0 else ""
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        sha, dirty = "", ""
    if not sha:
        return "unknown"
    return sha + ("+dirty" if sha and dirty.strip() else "")


def versions() -> dict:
    """Versions of what produced a number."""
    import hydra
    import skimage

    return {"dip": dip.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "hydra": hydra.__version__, "skimage": skimage.__version__,
            "python": platform.python_version()}


def device_name(device: str) -> str:
    """Human-readable device: GPU model, or CPU with its thread count and, when pinned,
    oneDNN's instruction set (``ONEDNN_MAX_CPU_ISA``)."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return (f"cpu ({platform.machine()}, {torch.get_num_threads()} threads"
            + (f", oneDNN {isa}" if isa else "") + ")")


def machine() -> dict:
    """The CPU that ran a fit and the instruction sets its kernels used: float results of
    long fits differ between kernels (e.g. oneDNN's AVX2 and AVX-512 convolutions)."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model or platform.processor() or platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA")}


def metrics_of(problem: Problem, result: FitResult, cfg: DictConfig) -> dict:
    """The numbers of a run, each with how it was made.

    ``psnr_stop`` / ``iter_stop`` are the output and step of the detected stopping point
    (stop=wmv or emv), or the final output and the number of steps (stop=fixed);
    ``steps`` counts the steps run (fewer than ``num_iter`` when a run stopped early).
    """
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
        "stop": str(cfg.stop),
        "psnr_stop": problem.score(result.stop) if scored else nan,
        "iter_stop": result.iter_stop,
        "psnr_obs_final": psnr(problem.observation.cpu(),
                               problem.operator.cpu()(result.final).detach()),
        "num_iter": int(cfg.fit.num_iter),
        "steps": result.steps,
        "seconds": round(result.seconds, 3),
        "sec_per_iter": round(result.seconds / max(1, result.steps), 5),
        "status": result.status,
        "resumed_at": result.resumed_at,
        "backtracks": result.backtracks,
        "device": result.device,
        "device_name": device_name(result.device), "machine": machine(),
        "memory_format": result.memory_format,
        "graph_steps": result.graph_steps,
        "seed": int(cfg.seed),
        "seeds": [int(cfg.seed)],
        "profile": cfg.profile.name,
        "net": cfg.net.name,
        "size": list(problem.out_shape),
        "config_hash": config_hash(cfg),
        "commit": git_commit(),
        "versions": versions(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


ENSEMBLE_IMAGES = {"restored_ensemble": "final", "restored_ensemble_avg": "average"}
"""Record image of a seed ensemble → the outputs of each seed it is the mean of."""


def ensemble_metrics(problem: Problem, results: list[FitResult], seeds: list[int],
                     means: dict[str, torch.Tensor]) -> dict:
    """Numbers of a seed ensemble: each seed's PSNR of its final output, their mean and
    sample std (ddof 1), the PSNR of the mean of the final outputs (``psnr_ensemble``)
    and of the averaged outputs (``psnr_ensemble_avg``), and the fitting time of all
    seeds (``seconds_seeds``; ``seconds`` is seed ``seed``'s alone). ``means`` are the
    mean outputs named as in :data:`ENSEMBLE_IMAGES`."""
    scored = problem.gt is not None
    nan = float("nan")
    values = [problem.score(r.final) if scored else nan for r in results]
    return {
        "seeds": [int(s) for s in seeds],
        "psnr_seeds": values,
        "psnr_seeds_mean": float(np.mean(values)),
        "psnr_seeds_std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        "psnr_ensemble": problem.score(means["restored_ensemble"]) if scored else nan,
        "psnr_ensemble_avg": problem.score(means["restored_ensemble_avg"]) if scored else nan,
        "status_seeds": [r.status for r in results],
        "seconds_seeds": round(sum(r.seconds for r in results), 3),
    }


def ensemble(results: list[FitResult], which: str = "final") -> torch.Tensor:
    """Pixel-wise mean of the results' ``final`` (or ``average``) outputs."""
    return torch.stack([getattr(r, which) for r in results]).mean(0)


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

    ``images`` (name → tensor: network input image, baseline outputs, a seed ensemble's
    mean outputs) are saved as ``<name>.png``. An OSError
    (no permission, disk full) becomes a one-line DipError; the temporary directory is
    removed and an earlier record at ``out_dir`` is left as it was.
    """
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        _write_files(tmp, cfg, problem, result, metrics, images)
        _replace_dir(tmp, out_dir)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError):
            raise DipError(_os_message(err, f"cannot write the record {out_dir}")) from None
        raise
    return out_dir


def _replace_dir(tmp: Path, out_dir: Path) -> None:
    """Move ``tmp`` to ``out_dir``; an existing ``out_dir`` is replaced only on success."""
    if not out_dir.exists():
        tmp.rename(out_dir)
        return
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    out_dir.rename(old)
    try:
        tmp.rename(out_dir)
    except BaseException:
        old.rename(out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write_files(tmp: Path, cfg: DictConfig, problem: Problem, result: FitResult,
                 metrics: dict, images: dict | None = None) -> None:
    from dip.report.figures import plot_history, side_by_side

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
    if cfg.stop != "fixed":
        save_image(tmp / "restored_stop.png", result.stop)
        panels.append((f"DIP ({cfg.stop} stop, step {result.iter_stop})", result.stop,
                       metrics["psnr_stop"]))
    side_by_side(panels, tmp / "comparison.png",
                 title=f"{cfg.task.name} · {cfg.image} · profile {cfg.profile.name} · "
                       f"{cfg.fit.num_iter} it · seed {cfg.seed}")
    result.history.to_csv(tmp / "history.csv", index=False)
    plot_history(result.history, tmp / "curves.png",
                 title=f"{cfg.task.name} · {cfg.image} · profile {cfg.profile.name}")
    (tmp / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    (tmp / "metrics.json").write_text(json.dumps(_clean(metrics), indent=2) + "\n")


def record_dir(cfg: DictConfig) -> Path:
    """Where a run's record goes: ``out_dir`` if set, else ``records/<config hash>``."""
    if cfg.out_dir is not None:
        return Path(cfg.out_dir)
    return Path(cfg.records) / config_hash(cfg)


def existing_record(cfg: DictConfig) -> dict | None:
    """The stored metrics (``skipped = True``) when the run's record exists and
    ``force`` is off, else None."""
    out = record_dir(cfg)
    if not (out / "metrics.json").is_file() or cfg.force:
        return None
    return {**json.loads((out / "metrics.json").read_text()), "skipped": True,
            "out_dir": str(out)}


def record_run(cfg: DictConfig, problem: Problem, results: list[FitResult],
               seeds: list[int], z: torch.Tensor | None = None, **extra) -> dict:
    """Score the fits of a run (and its baselines), write its record, return the metrics.

    ``results`` are the fits of ``seeds`` (more than one: an ensemble); ``z`` the network
    input when it is an image; ``extra`` goes into metrics.json as is.
    """
    problem.to("cpu")
    result = results[0]
    metrics = metrics_of(problem, result, cfg)
    images = {} if z is None else {"input": z}
    if len(results) > 1:
        means = {name: ensemble(results, which) for name, which in ENSEMBLE_IMAGES.items()}
        metrics.update(ensemble_metrics(problem, results, seeds, means))
        images.update(means)
    metrics.update(extra)
    if cfg.baselines and problem.gt is not None:
        from dip.baselines import run_baselines

        outputs: dict = {}
        metrics["baselines"] = run_baselines(problem, images=outputs)
        images.update({f"baseline_{k}": v for k, v in outputs.items()})
    metrics["out_dir"] = str(write_record(record_dir(cfg), cfg, problem, result, metrics,
                                          images))
    return metrics


def run(cfg: DictConfig) -> dict:
    """Fit DIP as ``cfg`` describes, write the record and return its metrics.

    A run whose record already exists is not repeated (unless ``force=true``): its
    stored metrics are returned with ``skipped = True``.
    """
    done = existing_record(cfg)
    if done is not None:
        return done
    out = record_dir(cfg)
    note_unused_net_keys(cfg)
    problem = build_problem(cfg)
    set_threads(cfg.get("threads"))
    z = build_input(cfg, problem)
    pick_device(str(cfg.device))  # fail early on an unknown device string
    check_writable(out)
    check_fit_memory(cfg, problem)
    seeds = [int(cfg.seed) + k for k in range(int(cfg.seeds))]
    results = fit_seeds(cfg, problem, seeds, z=z)
    metrics = record_run(cfg, problem, results, seeds, z)
    for seed in seeds:  # the record is safe: the checkpoints are no longer needed
        path = checkpoint_path(cfg, seed)
        if path is not None:
            discard(path)
    return metrics
