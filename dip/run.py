"""One DIP run from a composed config: problem → net → fit → record.

:func:`run` is what ``dip`` (the Hydra app in :mod:`dip.__main__`) calls for every job
of a sweep: it checks the config and the input, builds the problem and the network,
fits them and hands the results to :mod:`dip.records`, which writes the run's record.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from dip import DipError, DipNote, nets, tasks
from dip.checkpoint import Checkpoint, discard
from dip.claims import claim
from dip.config import config_hash
from dip.corrupt import SIGNALS, pil_resize, signal
from dip.data import center_crop, crop_to_multiple, read
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
from dip.official import BACKTRACKS, FINAL_INPUTS
from dip.records import (
    check_not_foreign,
    check_writable,
    existing_record,
    record_dir,
    record_run,
)
from dip.stopping import STOP_MODES
from dip.tasks import Problem

__all__ = ["run", "build_problem", "build_net", "unused_net_keys", "note_unused_net_keys",
           "build_input", "net_multiple", "min_size", "check_size", "set_threads",
           "settings_from", "fit_seeds", "checkpoint_path", "check_fit_memory", "taken"]


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
    ``apply(img, what=...)`` (the image itself, described as ``what``) first refuses an
    image too small for the net and notes a cut that changes its size (see
    :func:`_check_cut`; ``upscale``: the net's output is the image upscaled by it).
    """
    size = None if cfg.crop is None else \
        tuple(int(v) for v in cfg.crop) if OmegaConf.is_list(cfg.crop) else int(cfg.crop)
    factor = cfg.get("scale")
    if factor is not None and not (isinstance(factor, (int, float)) and 0 < factor <= 1):
        raise DipError(f"scale={factor} is invalid; give a downscaling factor in (0, 1]")

    def apply(img: torch.Tensor, scale: int = 1, mask: bool = False, *,
              what: str | None = None, upscale: int = 1) -> torch.Tensor:
        if factor is not None and factor != 1:
            h, w = img.shape[-2:]
            new = (max(1, round(h * factor)), max(1, round(w * factor)))
            img = pil_resize(img, new, "nearest" if mask else "lanczos")
        if size is not None:
            img = center_crop(img, tuple(v * scale for v in size) if isinstance(size, tuple)
                              else size * scale)
        if what is not None:
            _check_cut(cfg, img, multiple * scale, what, upscale)
        return crop_to_multiple(img, multiple * scale)

    return apply


def _described(cfg: DictConfig) -> str:
    """``image SPEC``, with the resizing and centre crop applied to it (for messages)."""
    done = [f"scaled by {cfg.scale}"] if cfg.get("scale") not in (None, 1) else []
    done += [] if cfg.crop is None else [f"centre crop {cfg.crop}"]
    return f"image {cfg.image}" + (f" ({', '.join(done)})" if done else "")


def _check_cut(cfg: DictConfig, img: torch.Tensor, multiple: int, what: str,
               upscale: int = 1) -> None:
    """Refuse ``img`` (resized and centre-cropped, not yet cut to ``multiple``) when the
    net cannot take it; note the cut when it changes the size.

    ``upscale`` > 1: ``img`` is an SR input, the net's output is ``upscale`` times larger.
    """
    net, m, n = cfg.net, net_multiple(cfg.net), min_size(cfg.net)
    h, w = img.shape[-2:]
    ch, cw = h - h % multiple, w - w % multiple
    if min(ch, cw) * upscale < n:
        cut = f" (cut to {ch}×{cw}, a multiple of {multiple})" if min(ch, cw) and \
            (ch, cw) != (h, w) else ""
        up = f", {ch * upscale}×{cw * upscale} once upscaled ×{upscale}" \
            if upscale > 1 and min(ch, cw) else ""
        need = math.ceil(math.ceil(n / upscale) / multiple) * multiple  # fits the net
        fix = f"use crop={need} or larger, or" if cfg.crop is not None else \
            "use a larger image or"
        raise DipError(f"{what} is {h}×{w}{cut}{up}, smaller than the {net.name} net's "
                       f"minimum size {n}×{n}; {fix} a net with fewer scales")
    if (ch, cw) == (h, w):
        return
    if upscale > 1:
        why = (f"a multiple of {multiple}, so that ×{upscale} it is a multiple of {m}, "
               f"the {net.name} net's size multiple")
    elif multiple != m:
        why = (f"a multiple of {multiple}, for the {net.name} net's size multiple {m} and "
               f"the SR factor {cfg.factor}")
    else:
        why = f"a multiple of {m}, the {net.name} net's size multiple"
    head = f"crop={cfg.crop} cut to" if cfg.crop is not None else f"{what} is {h}×{w}, cut to"
    warnings.warn(f"{head} {ch}×{cw} ({why})", DipNote, stacklevel=4)


def _mask_threshold(cfg: DictConfig) -> float | None:
    """``cfg.mask_threshold`` checked: a level in (0, 1), or None."""
    level = cfg.get("mask_threshold")
    if level is None:
        return None
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise DipError(f"mask_threshold={level} is invalid; give a level in (0, 1) (mask "
                       "pixels at or above it are known), e.g. mask_threshold=0.5")
    return float(level)


def _note_unused_mask(cfg: DictConfig, level: float | None) -> None:
    """A note when ``mask=`` or ``mask_threshold=`` is given but not used."""
    given = cfg.mask is not None and str(cfg.mask).strip() != ""
    if given and cfg.task.name != "inpainting":
        warnings.warn(f"mask= is ignored by task={cfg.task.name} (only inpainting uses it)",
                      DipNote, stacklevel=3)
    elif level is not None and not given:
        warnings.warn(f"mask_threshold={cfg.mask_threshold} is ignored: no mask= is given",
                      DipNote, stacklevel=3)


def _binary_mask(mask: torch.Tensor, level: float | None, spec) -> torch.Tensor:
    """``mask`` (values in [0, 1]) as 0/1: rounded at ``level`` (with a note counting the
    grey pixels), or refused when it has grey pixels and no level is given."""
    grey = int(((mask != 0) & (mask != 1)).sum())
    if not grey:
        return mask
    if level is None:
        raise DipError(f"mask {spec} is not binary: {grey} of {mask.numel()} pixels are grey "
                       "(neither black nor white); set mask_threshold=0.5 to round them, or "
                       "give a black-and-white mask (white = known pixel)")
    warnings.warn(f"{spec}: binarised at {level:g}; {grey} of {mask.numel()} pixels were grey "
                  "and were rounded", DipNote, stacklevel=3)
    return (mask >= level).to(mask.dtype)


def _pad_width(cfg: DictConfig) -> int:
    """``cfg.pad_image`` checked: pixels of reflection padding (0 when the key is absent)."""
    b = cfg.get("pad_image", 0)
    b = 0 if b is None else b
    if isinstance(b, bool) or not isinstance(b, int) or b < 0:
        raise DipError(f"pad_image={b} is invalid; give the pixels of reflection padding "
                       "(an integer >= 0, e.g. pad_image=1; 0 = none)")
    if b and cfg.task.name == "sr":
        raise DipError("pad_image is for denoising, inpainting and fitting, not task=sr; "
                       "set pad_image=0")
    if b and cfg.fit.input_type == "image":
        raise DipError("pad_image cannot be used with fit.input_type=image (the input image "
                       "is not padded); set pad_image=0")
    return b


def _check_padded_net(cfg: DictConfig, problem: Problem) -> Problem:
    """``problem``; DipError when it is padded and the net does not map its size to itself.

    A padded image's sides need not be multiples of the net's (514 = 512 + 2): the skip
    net with a skip branch at every scale and strided downsampling gives back its input's
    size (each Concat crops the upsampled branch to the skip branch's size, as the
    official code), other nets and modes may not. The net is run on the meta device
    (shapes only); a net that cannot run there is not checked.
    """
    if not problem.border:
        return problem
    c, h, w = problem.out_shape
    n_in = code_channels(settings_from(cfg))
    with torch.random.fork_rng(devices=[]):  # a throw-away net: the global RNG is kept
        net = build_net(cfg, n_in, c)
    try:
        with torch.no_grad():
            out = tuple(net.to("meta")(torch.empty(1, n_in, h, w, device="meta")).shape[-2:])
    except (NotImplementedError, RuntimeError):
        return problem
    if out != (h, w):
        raise DipError(f"pad_image={problem.border}: the {cfg.net.name} net maps the padded "
                       f"{h}×{w} image to {out[0]}×{out[1]}; use net=skip with skip "
                       "connections at every scale and net.downsample_mode=stride (the "
                       "official restoration.ipynb net), or pad_image=0")
    return problem


def build_problem(cfg: DictConfig) -> Problem:
    """The :class:`~dip.tasks.Problem` described by ``cfg`` (image, task, corruption).

    ``pad_image`` = b > 0 reflection-pads the problem (image, mask, ground truth) by b
    pixels after the resizing and crops (:func:`dip.tasks.pad`): a 512² image cut to the
    net's multiple stays 512² and is fitted as 514² (b = 1), as the official
    ``restoration.ipynb`` does; the problem scores and shows the original 512².
    """
    border = _pad_width(cfg)
    _check_numbers(cfg)
    level = _mask_threshold(cfg)
    _note_unused_mask(cfg, level)
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
            lr = _crops(cfg, m_lr)(image, what=_described(cfg), upscale=factor)
            hr = None if gt is None else _crops(cfg, m_lr)(gt, factor)
            return tasks.sr(lr=lr, hr=hr, factor=factor, kernel_type=cfg.task.kernel_type)
        hr = _crops(cfg, _lcm(m, factor))(image, what=_described(cfg))
        return tasks.sr(hr=hr, factor=factor, kernel_type=cfg.task.kernel_type)

    crop = _crops(cfg, m)
    if gt is not None and gt.shape[-2:] != image.shape[-2:]:
        raise DipError(f"gt is {gt.shape[-2]}×{gt.shape[-1]} but the image is "
                       f"{image.shape[-2]}×{image.shape[-1]}; give the clean version of the "
                       "same image")
    h, w = image.shape[-2:]
    image = crop(image, what=_described(cfg))
    gt = None if gt is None else crop(gt)
    mask = None
    if task == "inpainting" and cfg.mask is not None:
        mask = _read(cfg.mask, root, "mask")
        if mask.shape[-2:] != (h, w):
            raise DipError(f"mask is {mask.shape[-2]}×{mask.shape[-1]} but the image is "
                           f"{h}×{w}; give a mask of the image's size")
        mask = crop(_binary_mask(mask.amin(0, keepdim=True), level, cfg.mask), mask=True)
    if task == "fitting":
        kind = str(cfg.get("signal", "image"))
        if kind not in SIGNALS:
            raise DipError(f"signal={kind} is invalid; choose one of {', '.join(SIGNALS)}")
        sigma = float(cfg.sigma) if kind == "noisy" else 25.0
        problem = tasks.fitting(target=signal(image, kind, sigma=sigma, seed=int(cfg.seed)),
                                gt=gt)
        return _check_padded_net(cfg, tasks.pad(problem, border))
    if task == "denoising":
        if cfg.corrupted:
            problem = tasks.denoising(noisy=image, gt=gt, sigma=float(cfg.sigma))
        else:
            problem = tasks.denoising(gt=image, sigma=float(cfg.sigma), seed=int(cfg.seed))
        return _check_padded_net(cfg, tasks.pad(problem, border))
    if task == "inpainting":
        if mask is None and cfg.corrupted:
            raise DipError("inpainting a damaged image needs its mask; set mask=PATH "
                           "(white = known pixel)")
        problem = tasks.inpainting(image=image, mask=mask, p_missing=float(cfg.p_missing),
                                   seed=int(cfg.seed), image_is_gt=not cfg.corrupted)
        if gt is not None:
            problem.gt = gt[None]
        return _check_padded_net(cfg, tasks.pad(problem, border))
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
    for key, known in (("final_input", FINAL_INPUTS), ("backtrack", BACKTRACKS)):
        if values.get(key, known[0]) not in known:
            raise DipError(f"fit.{key}={values[key]} is unknown; choose {' or '.join(known)}")
    stopping = cfg.stopping
    return FitSettings(**values, stop=str(cfg.stop), stop_window=int(stopping.window),
                       stop_patience=int(stopping.patience), stop_alpha=float(stopping.alpha),
                       seed=int(cfg.seed if seed is None else seed), device=str(cfg.device),
                       progress=bool(cfg.progress))


def checkpoint_path(cfg: DictConfig, seed: int) -> Path:
    """Checkpoint file of one seed of a run, beside its record.

    ``<parent of the record>/.<config hash>.s<seed>.ckpt.pt``: hidden, so record readers
    skip it, and keyed by the config hash, so only the same run resumes from it. It is
    written every ``checkpoint_every`` steps (0: never) and when the run is interrupted
    (SIGINT, SIGTERM: :mod:`dip.signals`).
    """
    return record_dir(cfg).parent / f".{config_hash(cfg)}.s{int(seed)}.ckpt.pt"


def fit_seeds(cfg: DictConfig, problem: Problem, seeds: list[int],
              z: torch.Tensor | None = None) -> list[FitResult]:
    """Fit a fresh network per seed to the same ``problem``, one seed after the other.

    This is the one place where a run's fits happen; a batched implementation (several
    seeds per forward pass) can replace it as long as it returns one
    :class:`~dip.fit.FitResult` per seed, in order. Each fit resumes its checkpoint
    (:func:`checkpoint_path`) when there is one and saves it as described there.
    """
    results = []
    for seed in seeds:
        settings = settings_from(cfg, seed)
        seed_everything(seed)
        n_in = code_channels(settings) if z is None else z.shape[1]
        net = build_net(cfg, n_in, problem.out_shape[0])
        monitors = default_monitors(problem, settings)
        monitors.append(Checkpoint(checkpoint_path(cfg, seed), int(cfg.checkpoint_every),
                                   key=f"{config_hash(cfg)}/{seed}"))
        results.append(fit(net, problem, settings, monitors, z=z))
        problem.to("cpu")
    return results


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


def run(cfg: DictConfig) -> dict:
    """Fit DIP as ``cfg`` describes, write the record and return its metrics.

    A run whose record already exists is not repeated (unless ``force=true``): its
    stored metrics are returned with ``skipped = True``. A run that another process is
    fitting (:mod:`dip.claims`) is left to it: ``taken`` names the holder. A folder
    holding anything but an earlier record is refused, never replaced.
    """
    out = record_dir(cfg)
    check_not_foreign(out)
    had_record = (out / "metrics.json").is_file()
    done = existing_record(cfg)
    if done is not None:
        return done
    note_unused_net_keys(cfg)
    problem = build_problem(cfg)
    set_threads(cfg.get("threads"))
    z = build_input(cfg, problem)
    pick_device(str(cfg.device))  # fail early on an unknown device string
    check_writable(out)
    check_fit_memory(cfg, problem)
    held = claim(out)
    if isinstance(held, str):
        return taken(cfg, held)
    seeds = [int(cfg.seed) + k for k in range(int(cfg.seeds))]
    with held:
        if not had_record and (done := existing_record(cfg)) is not None:
            return done  # finished by another process since the first look
        results = fit_seeds(cfg, problem, seeds, z=z)
        metrics = record_run(cfg, problem, results, seeds, z)
    for seed in seeds:  # the record is safe: the checkpoints are no longer needed
        discard(checkpoint_path(cfg, seed))
    return metrics


def taken(cfg: DictConfig, holder: str) -> dict:
    """What a run that another process holds returns (``taken`` names the holder)."""
    return {"taken": holder, "image": str(cfg.image), "out_dir": str(record_dir(cfg))}
