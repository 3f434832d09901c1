"""Deep Image Prior generator networks and a name -> builder registry.

The official builders (skip, encoder-decoder, ResNet, U-Net), their size rules and
presets, and N nets fitted as one grouped net (:mod:`~dip.nets.grouped`). May import
:mod:`dip.problems` (the Lanczos downsampler of ``downsample_mode``) and the shared
modules; knows nothing of configs.

>>> from dip.nets import build
>>> net = build("skip", 32, 3, num_channels_skip=[4] * 5, pad="reflection")
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable, Iterable, Mapping

from torch import nn

from dip.errors import DipError
from dip.nets.resnet import resnet
from dip.nets.skip import ENCDEC_FIXED, encdec, skip
from dip.nets.unet import unet

__all__ = ["NETS", "build", "builder_keys", "scale_width", "size_multiple", "min_size",
           "PRESETS", "preset", "skip", "encdec", "resnet", "unet"]

NETS: dict[str, Callable[..., nn.Module]] = {
    "skip": skip,
    "encdec": encdec,
    "resnet": resnet,
    "unet": unet,
}

PAPER_SKIP = {
    "num_channels_down": [128] * 5, "num_channels_up": [128] * 5, "num_channels_skip": [4] * 5,
    "filter_size_down": 3, "filter_size_up": 3, "filter_skip_size": 1,
    "upsample_mode": "bilinear", "downsample_mode": "stride", "pad": "reflection",
    "act_fun": "LeakyReLU", "need_sigmoid": True, "need_bias": True, "need1x1_up": True,
}
PRESETS: dict[str, tuple[str, dict]] = {
    "paper": ("skip", PAPER_SKIP),
    "paper-2018": ("skip", {**PAPER_SKIP, "bn_init": "uniform", "align_corners": True}),
}
"""Named nets: name → (builder, keywords). 'paper' is the hourglass of the official
denoising, SR and restoration notebooks, ``skip(32, C, [128]*5, [128]*5, [4]*5, 3, 3, 1,
upsample_mode='bilinear', pad='reflection')`` (``conf/net/skip.yaml``, 2,217,831 parameters
for C = 3); 'paper-2018' adds what PyTorch 0.4 did then (BatchNorm weights drawn from
U(0, 1), ``align_corners=True`` upsampling: docs/faithfulness.md)."""

# Width keywords scaled by :func:`scale_width`, per net.
_WIDTH_KEYS = {
    "skip": ("num_channels_down", "num_channels_up", "num_channels_skip"),
    "encdec": ("channels",),
    "resnet": ("num_channels",),
    "unet": (),
}


def _check_name(name: str) -> None:
    if name not in NETS:
        raise DipError(f"unknown net {name!r}; choose one of {', '.join(NETS)}")


def build(name: str, num_input_channels: int, num_output_channels: int, **kwargs) -> nn.Module:
    """Build the network ``name`` with the official keyword arguments.

    Parameters
    ----------
    name : {'skip', 'encdec', 'resnet', 'unet'}
        Which builder of :data:`NETS` to call.
    num_input_channels, num_output_channels : int
        Channels of the input code and of the output image.
    **kwargs
        Passed unchanged to the builder.

    Raises
    ------
    dip.DipError
        Unknown ``name``.
    """
    _check_name(name)
    return NETS[name](num_input_channels, num_output_channels, **kwargs)


def builder_keys(name: str) -> frozenset[str]:
    """Keyword arguments that the builder ``name`` takes, besides the channel counts of
    its input and output (for 'encdec': its own and those it passes on to :func:`skip`).

    Raises
    ------
    dip.DipError
        Unknown ``name``.
    """
    _check_name(name)
    params = inspect.signature(NETS[name]).parameters
    keys = {k for k, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    keys -= {"num_input_channels", "num_output_channels"}
    if name == "encdec":
        keys |= builder_keys("skip") - set(ENCDEC_FIXED)
    return frozenset(keys)


def preset(name: str = "paper", num_input_channels: int = 32, num_output_channels: int = 3,
           *, width_scale: float = 1.0, seed: int | None = None, **overrides) -> nn.Module:
    """A named net of :data:`PRESETS`, its widths scaled by ``width_scale``.

    Parameters
    ----------
    name : str
        A key of :data:`PRESETS` ('paper', 'paper-2018').
    num_input_channels, num_output_channels : int
        Channels of the input code (32 in the paper) and of the image.
    width_scale : float
        Width multiplier (:func:`scale_width`; 0.5: the 64-wide quick-profile net).
    seed : int, optional
        Seeds torch's global generator before the weights are drawn, so the same seed
        gives the same net (None: the generator as it is).
    **overrides
        Builder keywords that replace the preset's.

    Examples
    --------
    >>> net = preset("paper", 32, 3, width_scale=0.5, seed=0)
    """
    if name not in PRESETS:
        raise DipError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    builder, kwargs = PRESETS[name]
    kwargs = scale_width({**kwargs, **overrides}, builder, width_scale)
    if seed is not None:
        import torch

        torch.manual_seed(int(seed))
    return build(builder, num_input_channels, num_output_channels, **kwargs)


def size_multiple(name: str, **kwargs) -> int:
    """Side length the net's input must be a multiple of: 2^(number of scales).

    Parameters
    ----------
    name : {'skip', 'encdec', 'resnet', 'unet'}
        The net.
    **kwargs
        Its builder keywords (those that set the depth: ``num_channels_down`` for
        'skip', ``depth`` for 'encdec', ``more_layers`` for 'unet'; defaults otherwise).
    """
    _check_name(name)
    if name == "resnet":
        return 1
    defaults = {k: p.default for k, p in inspect.signature(NETS[name]).parameters.items()}
    if name == "skip":
        return 2 ** len(kwargs.get("num_channels_down", defaults["num_channels_down"]))
    if name == "encdec":
        return 2 ** int(kwargs.get("depth", defaults["depth"]))
    return 2 ** (4 + int(kwargs.get("more_layers", defaults["more_layers"])))


def min_size(name: str, **kwargs) -> int:
    """Smallest side the net accepts: its deepest scale must stay wider than the padding.

    A k×k convolution with reflection padding needs more than k // 2 pixels, and
    BatchNorm needs more than one, so the deepest scale keeps at least
    max(2, k // 2 + 1) pixels: 2·2^depth for the paper's 3×3 net (64 for 5 scales).
    ``kwargs`` as for :func:`size_multiple`, plus ``filter_size_down`` (k; an int or
    one per scale).
    """
    m = size_multiple(name, **kwargs)
    if m <= 1:
        return 1
    k = kwargs.get("filter_size_down", 3)
    k = max(k) if isinstance(k, Iterable) and not isinstance(k, str) else int(k)
    return m * max(2, k // 2 + 1)


def _scale(c: int, scale: float) -> int:
    c = int(c)
    return 0 if c == 0 else max(1, math.floor(c * scale + 0.5))


def scale_width(kwargs: Mapping, name: str, scale: float) -> dict:
    """Copy of builder ``kwargs`` with every channel width multiplied by ``scale``.

    Widths are rounded and kept ≥ 1; a 0 (no skip connection) stays 0, and skip
    widths are not reduced below 4 (the paper net's thin skips are kept). Width
    keywords left out of ``kwargs`` are filled in from the builder's defaults so
    that they are scaled too. For 'unet' the ``feature_scale`` is divided by
    ``scale`` instead. ``scale=1`` returns an equal copy.

    Parameters
    ----------
    kwargs : mapping
        Builder keywords (a ``dict`` or OmegaConf ``DictConfig``).
    name : {'skip', 'encdec', 'resnet', 'unet'}
        The net the keywords are for.
    scale : float
        Width multiplier (> 0), e.g. 0.5 for a 64-wide paper net.

    Returns
    -------
    dict
    """
    _check_name(name)
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    out = copy.deepcopy(dict(kwargs))
    if scale == 1:
        return out
    defaults = {k: p.default for k, p in inspect.signature(NETS[name]).parameters.items()
                if p.default is not inspect.Parameter.empty}
    for key in _WIDTH_KEYS[name]:
        value = out.get(key, defaults.get(key))
        if value is None:
            continue
        # Thin skip connections (the paper net's 4 channels) are kept as they are.
        floor = 4 if key == "num_channels_skip" else 1
        if isinstance(value, Iterable) and not isinstance(value, str):
            out[key] = [min(int(c), max(floor, _scale(c, scale))) for c in value]
        else:
            out[key] = min(int(value), max(floor, _scale(value, scale)))
    if name == "unet":
        fs = out.get("feature_scale", defaults["feature_scale"]) / scale
        out["feature_scale"] = int(fs) if float(fs).is_integer() else fs
    return out
