"""From a config to the problem a run fits: the task table and the inputs' preparation.

:func:`build_problem` reads the image (and ground truth, mask), resizes and centre-crops
them alike, cuts them to the net's size multiple, checks them against the net and calls
the task's builder from :data:`TASK_BUILDERS`; :func:`build_input` prepares an input
image (``fit.input_type=image``) the same way. A task is one entry of the table: its
config checks and its builder (on :mod:`dip.problems.problem`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from omegaconf import DictConfig, OmegaConf

from dip.data.crops import center_crop, crop_to_multiple
from dip.data.folders import is_folder, paired_mask
from dip.data.images import bit_depth, size_wh
from dip.data.specs import read
from dip.errors import DipError, DipNote
from dip.fitting.settings import code_channels
from dip.problems import problem as tasks
from dip.problems.noise import SIGNALS, pil_resize, signal
from dip.problems.problem import Problem
from dip.runs.builders import build_net, min_size, net_multiple, settings_from
from dip.runs.schema import check_run_keys, invalid

__all__ = ["build_problem", "problem_from", "build_input", "record_fields", "TASK_BUILDERS",
           "TaskEntry"]


def _read(spec, root, what: str) -> torch.Tensor:
    if spec is None or str(spec).strip() == "":
        raise DipError(f"no {what} given; set {what}=PATH (a file, dataset/file or skimage:NAME)")
    return read(str(spec), root=root)


def _lcm(a: int, b: int) -> int:
    return a * b // math.gcd(a, b)


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
    if factor is not None and not 0 < factor <= 1:
        raise invalid("scale", factor)

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
    if not 0 < level < 1:
        raise invalid("mask_threshold", level)
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
    if b < 0:
        raise invalid("pad_image", b)
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


def _check_sigma(cfg: DictConfig) -> None:
    sigma = cfg.sigma
    if not cfg.corrupted and (sigma is None or not sigma > 0):
        raise invalid("sigma", sigma)


def _check_factor(cfg: DictConfig) -> None:
    f = cfg.factor
    if f < 2:
        raise invalid("factor", f)


def _check_p_missing(cfg: DictConfig) -> None:
    if cfg.mask is None and not 0 <= cfg.p_missing < 1:
        raise invalid("p_missing", cfg.p_missing)


def _check_signal(cfg: DictConfig) -> None:
    kind = str(cfg.get("signal", "image"))
    if kind not in SIGNALS:
        raise DipError(f"signal={kind} is invalid; choose one of {', '.join(SIGNALS)}")


def _cropped(cfg: DictConfig, image: torch.Tensor, gt: torch.Tensor | None):
    """``image`` and ``gt`` resized, cropped and cut alike (denoising, inpainting,
    fitting), and the crop function for what else is aligned with them (a mask)."""
    crop = _crops(cfg, net_multiple(cfg.net))
    if gt is not None and gt.shape[-2:] != image.shape[-2:]:
        raise DipError(f"gt is {size_wh(gt)} but the image is {size_wh(image)}; give the "
                       "clean version of the same image")
    return crop(image, what=_described(cfg)), None if gt is None else crop(gt), crop


def _sr(cfg: DictConfig, image: torch.Tensor, gt: torch.Tensor | None) -> Problem:
    """SR: ``image`` is the HR image (or the LR input with ``corrupted=true``); the HR
    side must be a multiple of the net's multiple and of the factor."""
    factor, m = int(cfg.factor), net_multiple(cfg.net)
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
    hr = _crops(cfg, multiple)(image, what=_described(cfg))
    return tasks.sr(hr=hr, factor=factor, kernel_type=cfg.task.kernel_type)


def _denoising(cfg: DictConfig, image: torch.Tensor, gt: torch.Tensor | None) -> Problem:
    image, gt, _ = _cropped(cfg, image, gt)
    if cfg.corrupted:
        return tasks.denoising(noisy=image, gt=gt, sigma=float(cfg.sigma))
    return tasks.denoising(gt=image, sigma=float(cfg.sigma), seed=int(cfg.seed))


def _inpainting(cfg: DictConfig, image: torch.Tensor, gt: torch.Tensor | None) -> Problem:
    h, w = image.shape[-2:]
    image, gt, crop = _cropped(cfg, image, gt)
    mask = None
    if cfg.mask is not None:
        spec = paired_mask(cfg.mask, cfg.image) if is_folder(cfg.mask) else cfg.mask
        mask = _read(spec, cfg.data.root, "mask")
        if mask.shape[-2:] != (h, w):
            raise DipError(f"mask is {size_wh(mask)} but the image is {w}×{h} (W×H); give "
                           "a mask of the image's size")
        mask = crop(_binary_mask(mask.amin(0, keepdim=True), _mask_threshold(cfg), spec),
                    mask=True)
    elif cfg.corrupted:
        raise DipError("inpainting a damaged image needs its mask; set mask=PATH "
                       "(white = known pixel)")
    problem = tasks.inpainting(image=image, mask=mask, p_missing=float(cfg.p_missing),
                               seed=int(cfg.seed), image_is_gt=not cfg.corrupted)
    if gt is not None:
        problem.gt = gt[None]
    return problem


def _fitting(cfg: DictConfig, image: torch.Tensor, gt: torch.Tensor | None) -> Problem:
    image, gt, _ = _cropped(cfg, image, gt)
    kind = str(cfg.get("signal", "image"))
    sigma = float(cfg.sigma) if kind == "noisy" else 25.0
    return tasks.fitting(target=signal(image, kind, sigma=sigma, seed=int(cfg.seed)), gt=gt)


def _no_fields(cfg: DictConfig) -> dict:
    return {}


@dataclass(frozen=True)
class TaskEntry:
    """A task as a run sees it: ``check(cfg)`` refuses the task's invalid settings before
    anything is read; ``build(cfg, image, gt)`` makes the problem from the image (and
    ground truth, or None) as read, before any crop; ``fields(cfg)`` are the task's own
    fields of a record's metrics (the noise level, the SR factor), beside the common ones.
    The task's baselines register themselves (:func:`dip.problems.baselines.register`)."""

    check: Callable[[DictConfig], None]
    build: Callable[[DictConfig, torch.Tensor, torch.Tensor | None], Problem]
    fields: Callable[[DictConfig], dict] = _no_fields


TASK_BUILDERS: dict[str, TaskEntry] = {
    "denoising": TaskEntry(_check_sigma, _denoising, lambda cfg: {"sigma": cfg.sigma}),
    "inpainting": TaskEntry(_check_p_missing, _inpainting),
    "sr": TaskEntry(_check_factor, _sr, lambda cfg: {"factor": int(cfg.factor)}),
    "fitting": TaskEntry(_check_signal, _fitting),
}
"""Task name (``cfg.task.name``) → its checks and builder. A new task adds its entry here
(its operator in :mod:`dip.problems.operators`, its problem in
:mod:`dip.problems.problem`, its config file in ``conf/task/``)."""


def record_fields(cfg: DictConfig) -> dict:
    """The task's own fields of a run's metrics (:attr:`TaskEntry.fields`; {} for a task
    that is not in the table)."""
    entry = TASK_BUILDERS.get(cfg.task.name)
    return {} if entry is None else entry.fields(cfg)


def build_problem(cfg: DictConfig) -> Problem:
    """The :class:`~dip.problems.problem.Problem` described by ``cfg`` (image, task, corruption):
    the settings checked, the image (and ``gt`` of a corrupted image) read, then as
    :func:`problem_from`; ``extras['bits']``: the image file's sample depth
    (:func:`dip.data.images.bit_depth`), at which the record saves its images."""
    entry, border = _checked(cfg)
    image = _read(cfg.image, cfg.data.root, "image")
    gt = _read(cfg.gt, cfg.data.root, "gt") if cfg.corrupted and cfg.gt is not None else None
    problem = _check_padded_net(cfg, tasks.pad(entry.build(cfg, image, gt), border))
    problem.extras["bits"] = bit_depth(cfg.image)  # the record's images keep it
    return problem


def problem_from(cfg: DictConfig, image: torch.Tensor, gt: torch.Tensor | None = None
                 ) -> Problem:
    """The problem of ``cfg``'s task for an image already read (C×H×W in [0, 1]).

    The task's checks run first, then its builder (resizing, crops, the cut to the net's
    multiple, the corruption). ``pad_image`` = b > 0 reflection-pads the problem (image,
    mask, ground truth) by b pixels after the crops (:func:`dip.problems.problem.pad`): a 512² image
    stays 512² and is fitted as 514² (b = 1), as the official ``restoration.ipynb`` does;
    the problem scores and shows the original 512².
    """
    entry, border = _checked(cfg)
    return _check_padded_net(cfg, tasks.pad(entry.build(cfg, image, gt), border))


def _checked(cfg: DictConfig) -> tuple[TaskEntry, int]:
    """The task's entry and the padding width, once the task's settings are checked (their
    types by :func:`dip.runs.schema.check_run_keys`)."""
    check_run_keys(cfg)
    border = _pad_width(cfg)
    entry = TASK_BUILDERS.get(cfg.task.name)
    if entry is None:
        raise DipError(f"unknown task {cfg.task.name!r}; choose one of "
                       f"{', '.join(TASK_BUILDERS)}")
    entry.check(cfg)
    _note_unused_mask(cfg, _mask_threshold(cfg))
    return entry, border


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
