"""From a run's spec to the problem it fits: reading, resizing and cropping the inputs.

:func:`build_problem` reads the image (and the ground truth of a corrupted image), hands
them to the task (:mod:`dip.problems.task`) with the run's crops (:class:`Inputs`: resize
by ``scale``, the centre ``crop``, a cut to the net's size multiple, each checked against
the net), then pads the problem (``pad_image``); :func:`build_input` prepares an input
image (``fit.input_type=image``) the same way.
"""

from __future__ import annotations

import math
import warnings

import torch

from dip.data.crops import center_crop, crop_to_multiple
from dip.data.images import bit_depth
from dip.data.specs import read
from dip.errors import DipError, DipNote
from dip.fitting.settings import code_channels
from dip.problems import task as tasks
from dip.problems.noise import pil_resize
from dip.problems.problem import Problem, pad
from dip.problems.task import Inputs
from dip.runs.spec import RunSpec, invalid

__all__ = ["build_problem", "problem_from", "build_input", "cropper", "released_scores"]


def _read(spec, root, what: str) -> torch.Tensor:
    if spec is None or str(spec).strip() == "":
        raise DipError(f"no {what} given; set {what}=PATH (a file, dataset/file or skimage:NAME)")
    return read(str(spec), root=root)


def _described(spec: RunSpec) -> str:
    """``image SPEC``, with the resizing and centre crop applied to it (for messages)."""
    scale = spec.keys.scale
    done = [f"scaled by {scale}"] if scale not in (None, 1) else []
    done += [] if spec.crop is None else [f"centre crop {spec.crop}"]
    return f"image {spec.image}" + (f" ({', '.join(done)})" if done else "")


def cropper(spec: RunSpec):
    """The run's crop, for an image and everything aligned with it (see :class:`Inputs`):
    ``scale`` (optional) resizes first (PIL Lanczos; nearest for masks), then ``crop``
    takes the centre square and the sides are cut to the multiple."""
    crop = spec.crop
    size = None if crop is None else \
        tuple(int(v) for v in crop) if isinstance(crop, (list, tuple)) else int(crop)
    factor = spec.keys.scale
    if factor is not None and not 0 < factor <= 1:
        raise invalid("scale", factor)

    def apply(img: torch.Tensor, multiple: int, scale: int = 1, *, mask: bool = False,
              what: str | None = None, upscale: int = 1, why: str | None = None):
        if factor is not None and factor != 1:
            h, w = img.shape[-2:]
            new = (max(1, round(h * factor)), max(1, round(w * factor)))
            img = pil_resize(img, new, "nearest" if mask else "lanczos")
        if size is not None:
            img = center_crop(img, tuple(v * scale for v in size) if isinstance(size, tuple)
                              else size * scale)
        if what is not None:
            _check_cut(spec, img, multiple * scale, what, upscale, why)
        return crop_to_multiple(img, multiple * scale)

    return apply


def _check_cut(spec: RunSpec, img: torch.Tensor, multiple: int, what: str,
               upscale: int = 1, why: str | None = None) -> None:
    """Refuse ``img`` (resized and centre-cropped, not yet cut to ``multiple``) when the
    net cannot take it; note the cut when it changes the size.

    ``upscale`` > 1: ``img`` is an SR input, the net's output is ``upscale`` times larger;
    ``why``: what else than the net ``multiple`` is a multiple of.
    """
    net, m, n = spec.net.name, spec.net.multiple(), spec.net.min_size()
    h, w = img.shape[-2:]
    ch, cw = h - h % multiple, w - w % multiple
    if min(ch, cw) * upscale < n:
        cut = f" (cut to {ch}×{cw}, a multiple of {multiple})" if min(ch, cw) and \
            (ch, cw) != (h, w) else ""
        up = f", {ch * upscale}×{cw * upscale} once upscaled ×{upscale}" \
            if upscale > 1 and min(ch, cw) else ""
        need = math.ceil(math.ceil(n / upscale) / multiple) * multiple  # fits the net
        fix = f"use crop={need} or larger, or" if spec.crop is not None else \
            "use a larger image or"
        raise DipError(f"{what} is {h}×{w}{cut}{up}, smaller than the {net} net's "
                       f"minimum size {n}×{n}; {fix} a net with fewer scales")
    if (ch, cw) == (h, w):
        return
    if upscale > 1:
        reason = (f"a multiple of {multiple}, so that ×{upscale} it is a multiple of {m}, "
                  f"the {net} net's size multiple")
    elif multiple != m:
        reason = f"a multiple of {multiple}, for the {net} net's size multiple {m} and {why}"
    else:
        reason = f"a multiple of {m}, the {net} net's size multiple"
    head = f"crop={spec.crop} cut to" if spec.crop is not None else \
        f"{what} is {h}×{w}, cut to"
    warnings.warn(f"{head} {ch}×{cw} ({reason})", DipNote, stacklevel=4)


def _pad_width(spec: RunSpec) -> int:
    """``pad_image`` checked: pixels of reflection padding (0: none)."""
    b = spec.keys.pad_image or 0
    if b < 0:
        raise invalid("pad_image", b)
    if b and spec.task == "sr":
        raise DipError("pad_image is for denoising, inpainting and fitting, not task=sr; "
                       "set pad_image=0")
    if b and spec.fit.get("input_type") == "image":
        raise DipError("pad_image cannot be used with fit.input_type=image (the input image "
                       "is not padded); set pad_image=0")
    return b


def _check_padded_net(spec: RunSpec, problem: Problem) -> Problem:
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
    n_in = code_channels(spec.settings_for())
    with torch.random.fork_rng(devices=[]):  # a throw-away net: the global RNG is kept
        net = spec.net.build(n_in, c)
    try:
        with torch.no_grad():
            out = tuple(net.to("meta")(torch.empty(1, n_in, h, w, device="meta")).shape[-2:])
    except (NotImplementedError, RuntimeError):
        return problem
    if out != (h, w):
        raise DipError(f"pad_image={problem.border}: the {spec.net.name} net maps the padded "
                       f"{h}×{w} image to {out[0]}×{out[1]}; use net=skip with skip "
                       "connections at every scale and net.downsample_mode=stride (the "
                       "official restoration.ipynb net), or pad_image=0")
    return problem


def build_problem(spec: RunSpec) -> Problem:
    """The :class:`~dip.problems.Problem` that ``spec`` describes (image, task,
    corruption): the image (and ``gt`` of a corrupted image) read, then as
    :func:`problem_from`; ``extras['bits']``: the image file's sample depth
    (:func:`dip.data.images.bit_depth`), at which the record saves its images."""
    border = _pad_width(spec)
    image = _read(spec.image, spec.data_root, "image")
    gt = _read(spec.gt, spec.data_root, "gt") if spec.keys.corrupted and spec.gt else None
    problem = _problem(spec, image, gt, border)
    problem.extras["bits"] = bit_depth(spec.image)  # the record's images keep it
    return problem


def problem_from(spec: RunSpec, image: torch.Tensor, gt: torch.Tensor | None = None
                 ) -> Problem:
    """The problem of ``spec``'s task for an image already read (C×H×W in [0, 1]).

    The task's builder resizes, crops, cuts to the net's multiple and corrupts.
    ``pad_image`` = b > 0 reflection-pads the problem (image, mask, ground truth) by b
    pixels after the crops (:func:`dip.problems.problem.pad`): a 512² image stays 512²
    and is fitted as 514² (b = 1), as the official ``restoration.ipynb`` does; the
    problem scores and shows the original 512².
    """
    return _problem(spec, image, gt, _pad_width(spec))


def _problem(spec: RunSpec, image: torch.Tensor, gt: torch.Tensor | None, border: int):
    inputs = Inputs(image=image, gt=gt, corrupted=spec.keys.corrupted, seed=spec.keys.seed,
                    name=spec.image, described=_described(spec), net=spec.net.name,
                    multiple=spec.net.multiple(), crop=cropper(spec),
                    read=lambda name, what: _read(name, spec.data_root, what))
    problem = tasks.get(spec.task).build(inputs, spec.settings)
    return _check_padded_net(spec, pad(problem, border))


def build_input(spec: RunSpec, problem: Problem) -> torch.Tensor | None:
    """The network input when it is an image (``fit.input_type=image``), else None.

    ``input_image`` is read, resized and cropped exactly as the image, and must then
    have the size of the restored image (e.g. the flash photo of a flash/no-flash pair).
    """
    if spec.fit.get("input_type") != "image":
        return None
    z = cropper(spec)(_read(spec.input_image, spec.data_root, "input_image"),
                      spec.net.multiple())
    if tuple(z.shape[-2:]) != tuple(problem.out_shape[1:]):
        raise DipError(f"input_image is {z.shape[-2]}×{z.shape[-1]} after cropping but the "
                       f"output is {problem.out_shape[1]}×{problem.out_shape[2]}; give an "
                       "image of the same size")
    return z[None]


def released_scores(spec: RunSpec, problem: Problem) -> dict[str, float]:
    """The scores of the compared methods' released whole-image results (``released``:
    name → image spec) seen through this run's crop: each is resized, centre-cropped and
    cut exactly as the image was, then scored as DIP's output is (``problem.score``). A
    result whose crop does not have the restored image's size is left out with a note."""
    scores = {}
    c, h, w = problem.image_shape
    for name, image in spec.released.items():
        full = _read(image, spec.data_root, f"released result {name}")
        out = cropper(spec)(full, spec.net.multiple())
        if tuple(out.shape) != (c, h, w):
            warnings.warn(f"released result {name} ({image}) is {tuple(out.shape)} through the "
                          f"run's crop, not {(c, h, w)}; left out", DipNote, stacklevel=2)
            continue
        scores[name] = problem.score(out[None])
    return scores
