"""Restoration problems: what is observed, through which operator, and how it is scored.

A :class:`Problem` bundles the observation x̂, the forward operator A applied to the
network output in the data term ‖A f(z) − x̂‖², the ground truth when it is known and
the metric the paper reports. Each task's module builds one (:mod:`dip.problems.task`);
:func:`pad` reflection-pads one before fitting (the official ``restoration.ipynb``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from dip.errors import DipError
from dip.problems.metrics import psnr, psnr_y
from dip.problems.noise import pil_resize
from dip.problems.operators import Identity, Mask

__all__ = ["Problem", "pad", "batch", "METRICS"]

METRICS = {"psnr": psnr, "psnr_y": psnr_y}


@dataclass
class Problem:
    """One restoration problem.

    The tensors, the operator and ``out_shape`` are those of the fit. A problem padded
    by :func:`pad` (``border`` > 0) is fitted on the image with a reflected border of
    ``border`` pixels on each side; :meth:`unpad` cuts it off, and :meth:`score`,
    :meth:`corrupted_view` and :attr:`image_shape` are those of the original image.

    Attributes
    ----------
    task : str
        'denoising', 'inpainting', 'sr' or 'fitting'.
    observation : torch.Tensor
        x̂ as 1×C×h×w in [0, 1] (h×w is the low resolution for SR).
    operator : nn.Module
        A, mapping the network output (1×C×H×W) to the observation space.
    out_shape : (C, H, W)
        Shape of the restored image the network must produce.
    gt : torch.Tensor or None
        Ground truth 1×C×H×W, when known.
    metric : {'psnr', 'psnr_y'}
        What the paper reports for this task.
    extras : dict
        Task data kept for reports and baselines (mask, LR image, ...).
    border : int
        Pixels of reflection padding on each side of the fitted image (0: none).
    """

    task: str
    observation: torch.Tensor
    operator: nn.Module
    out_shape: tuple[int, int, int]
    gt: torch.Tensor | None = None
    metric: str = "psnr"
    extras: dict = field(default_factory=dict)
    border: int = 0

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the restored image without the padding (``out_shape`` if none)."""
        c, h, w = self.out_shape
        b = self.border
        return (c, h - 2 * b, w - 2 * b)

    def unpad(self, image: torch.Tensor) -> torch.Tensor:
        """``image`` (…×H×W) without the padded border: a view of its centre when it has
        the fit's size ``out_shape``, ``image`` itself when it has the original size
        (or when the problem is not padded)."""
        b = self.border
        size = tuple(image.shape[-2:])
        if b == 0 or size == tuple(self.image_shape[1:]):
            return image
        if size != tuple(self.out_shape[1:]):
            raise ValueError(f"image {size[0]}×{size[1]} has neither the fitted size "
                             f"{self.out_shape[1]}×{self.out_shape[2]} nor the original "
                             f"{self.image_shape[1]}×{self.image_shape[2]}")
        return image[..., b:size[0] - b, b:size[1] - b]

    def score(self, out: torch.Tensor) -> float:
        """Metric of an output against the ground truth (NaN when there is none), on the
        original image: a padded border is cut off both (:meth:`unpad`)."""
        if self.gt is None:
            return float("nan")
        return METRICS[self.metric](self.unpad(self.gt), self.unpad(out))

    def corrupted_view(self) -> torch.Tensor:
        """The observation shown at the restored image's size (for figures and PSNR),
        without a padded border."""
        if self.task == "sr":
            return pil_resize(self.observation[0], self.out_shape[1:], "nearest")[None]
        return self.unpad(self.observation)

    def to(self, device) -> Problem:
        """Move tensors and the operator to ``device`` (returns self)."""
        self.observation = self.observation.to(device)
        self.operator = self.operator.to(device)
        if self.gt is not None:
            self.gt = self.gt.to(device)
        return self


def batch(x: torch.Tensor) -> torch.Tensor:
    """``x`` as a batch of one (1×C×H×W), unless it is one already."""
    return x if x.dim() == 4 else x[None]


def pad(problem: Problem, border: int) -> Problem:
    """``problem`` with observation, ground truth and mask reflection-padded by ``border``.

    The network then fits the (H + 2b)×(W + 2b) image; the padded pixels are reflections
    of the image's (``F.pad(x, (b,) * 4, mode='reflect')``, which mirrors about the edge
    pixel as ``nn.ReflectionPad2d``), and a pixel of the border is known where its mirror
    image is. The official ``restoration.ipynb`` fits the image padded so (b = 1, its
    'Choose figure' cell: ``nn.ReflectionPad2d(1)``). Scores and views stay those of the
    original image (:meth:`Problem.unpad`).

    Parameters
    ----------
    problem : Problem
        A denoising, inpainting or fitting problem (A = I or a mask), not yet padded.
    border : int
        Pixels added on each side (≥ 0; 0 returns ``problem`` itself); less than each
        side of the image.

    Returns
    -------
    Problem
        A new problem with ``border`` set; the input is left as it was.
    """
    if isinstance(border, bool) or int(border) != border or border < 0:
        raise DipError(f"pad_image={border} is invalid; give a number of pixels >= 0")
    border = int(border)
    if border == 0:
        return problem
    if problem.task == "sr" or problem.border:
        what = "an SR problem" if problem.task == "sr" else "a problem padded already"
        raise DipError(f"cannot pad {what}; pad_image is for denoising, inpainting and "
                       "fitting (set pad_image=0)")
    c, h, w = problem.out_shape
    if border >= min(h, w):
        raise DipError(f"pad_image={border} needs an image wider than {border} pixels, but "
                       f"it is {h}×{w}; use a smaller pad_image")

    def reflect(x: torch.Tensor) -> torch.Tensor:
        y = F.pad(batch(x).float(), (border,) * 4, mode="reflect").to(x.dtype)
        return y if x.dim() == 4 else y[0]

    operator = problem.operator
    extras = dict(problem.extras)
    if isinstance(operator, Mask):
        operator = Mask(reflect(operator.mask))
        extras["mask"] = reflect(extras["mask"])
    elif not isinstance(operator, Identity):
        raise DipError(f"cannot pad a problem whose operator is {type(operator).__name__}; "
                       "set pad_image=0")
    return replace(problem, observation=reflect(problem.observation), operator=operator,
                   out_shape=(c, h + 2 * border, w + 2 * border),
                   gt=None if problem.gt is None else reflect(problem.gt), extras=extras,
                   border=border)

