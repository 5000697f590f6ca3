"""The built-in ResNets: the paper's ResNet-26/38/50 (Table 1) as data, options validated, registered as a family.

Stand-Alone Self-Attention in Vision Models (Ramachandran et al., NeurIPS 2019), Table 1 and Table 3:
baseline conv ResNets, "conv stem + attention" (every bottleneck spatial layer is attention) and "full
attention" (attention stem too), plus the conv/attention hybrids of Table 3 via ``attention_groups``.

Presets (``backbone``) fill ``stem`` and ``attention_groups``; an explicitly given ``stem`` or
``attention_groups`` wins over the preset (e.g. ``backbone="attention", attention_groups=[3, 4]`` is the
conv stem with attention in groups 3–4 only).  With neither, the model is the conv baseline.

The vocabularies here (:data:`MODELS`, :data:`PRESETS`, :data:`STEMS`, :data:`LAYER_GROUPS`, and
:data:`~sasa.layers.sasa2d.POS_ENCODINGS` / :data:`~sasa.kernels.BACKENDS` re-exported) are the only copies: the
platform's spec reads them. Every name of :data:`MODELS` is a model of :mod:`sasa.models.registry`, so a new
depth is one line in that table.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any

from torch import nn

from sasa.kernels import BACKENDS
from sasa.layers.sasa2d import POS_ENCODINGS
from sasa.models.registry import register_family
from sasa.models.resnet import ResNet

__all__ = ["BACKENDS", "DEFAULTS", "LAYER_GROUPS", "MODELS", "POS_ENCODINGS", "PRESETS", "STEMS", "build_resnet"]

BASE_WIDTHS = (64, 128, 256, 512)  # bottleneck (mid) widths of layer groups 1–4; outputs are 4×
BASE_STEM_WIDTH = 64
WIDTH_DIVISOR = 8
STEMS = ("conv", "attention")
LAYER_GROUPS = (1, 2, 3, 4)  # the layer groups that may use attention (``attention_groups``)


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: bottleneck blocks per layer group."""

    name: str
    blocks: tuple[int, int, int, int]


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("resnet26", (1, 2, 4, 1)),
        ModelSpec("resnet38", (2, 3, 5, 2)),
        ModelSpec("resnet50", (3, 4, 6, 3)),
    )
}

PRESETS: dict[str, dict[str, Any]] = {
    "conv": {"stem": "conv", "attention_groups": ()},
    "attention": {"stem": "conv", "attention_groups": LAYER_GROUPS},  # "conv stem + attention"
    "full": {"stem": "attention", "attention_groups": LAYER_GROUPS},  # "full attention"
}

DEFAULTS: dict[str, Any] = {
    "in_channels": 3,
    "backbone": None,
    "stem": None,  # None: from the preset, else "conv"
    "attention_groups": None,  # None: from the preset, else ()
    "kernel_size": 7,
    "heads": 8,
    "pos_enc": "relative",
    "backend": "auto",
    "stem_mixtures": 4,
    "width": 1.0,
    "small_input": False,
}


def _hint(value: object, valid: list[str]) -> str:
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, valid, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _bad(option: str, value: object, valid: str, hint: str = "") -> ValueError:
    return ValueError(f"create_model: invalid {option}={value!r}{hint}; valid values: {valid}")


def _choice(option: str, value: object, valid: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in valid:
        raise _bad(option, value, ", ".join(map(repr, valid)), _hint(value, list(valid)))
    return value


def _integer(option: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _bad(option, value, f"an integer >= {minimum}")
    return value


def _groups(value: object) -> tuple[int, ...]:
    valid = f"a list of distinct layer groups from {', '.join(map(str, LAYER_GROUPS))} (e.g. [3, 4]; [] for none)"
    if not isinstance(value, list | tuple):
        raise _bad("attention_groups", value, valid)
    for group in value:
        if isinstance(group, bool) or not isinstance(group, int) or group not in LAYER_GROUPS:
            raise _bad("attention_groups", value, valid)
    if len(set(value)) != len(value):
        raise _bad("attention_groups", value, valid)
    return tuple(sorted(value))


def _width(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
        raise _bad("width", value, "a finite number > 0 (channel multiplier)")
    return float(value)


def scale_width(channels: int, multiplier: float) -> int:
    """``channels × multiplier`` rounded to the nearest multiple of 8, at least 8."""
    return max(WIDTH_DIVISOR, int(channels * multiplier / WIDTH_DIVISOR + 0.5) * WIDTH_DIVISOR)


def _resolve(name: object, num_classes: object, options: dict[str, Any]) -> dict[str, Any]:
    """Validate everything and return the JSON-serialisable resolved config."""
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"create_model: unknown ResNet {name!r}{_hint(name, sorted(MODELS))}; valid names: "
                         f"{', '.join(sorted(MODELS))}")
    for key in options:
        if key not in DEFAULTS:
            raise ValueError(
                f"create_model: unknown option {key!r}{_hint(key, list(DEFAULTS))}; "
                f"valid options: {', '.join(sorted(DEFAULTS))}"
            )
    opts = {**DEFAULTS, **options}
    backbone = opts["backbone"]
    if backbone is not None:
        _choice("backbone", backbone, tuple(PRESETS))
    preset = PRESETS[backbone or "conv"]
    stem = _choice("stem", preset["stem"] if opts["stem"] is None else opts["stem"], STEMS)
    groups = _groups(preset["attention_groups"] if opts["attention_groups"] is None else opts["attention_groups"])
    matching = [k for k, v in PRESETS.items() if v["stem"] == stem and tuple(v["attention_groups"]) == groups]
    if not isinstance(opts["small_input"], bool):
        raise _bad("small_input", opts["small_input"], "True, False")
    return {
        "name": name,
        "num_classes": _integer("num_classes", num_classes, 0),
        "in_channels": _integer("in_channels", opts["in_channels"], 1),
        "backbone": matching[0] if matching else None,  # the preset these settings amount to, if any
        "stem": stem,
        "attention_groups": list(groups),
        "kernel_size": _integer("kernel_size", opts["kernel_size"], 1),
        "heads": _integer("heads", opts["heads"], 1),
        "pos_enc": _choice("pos_enc", opts["pos_enc"], POS_ENCODINGS),
        "backend": _choice("backend", opts["backend"], BACKENDS),
        "stem_mixtures": _integer("stem_mixtures", opts["stem_mixtures"], 1),
        "width": _width(opts["width"]),
        "small_input": opts["small_input"],
    }


def build_resnet(name: str, num_classes: int, **options: Any) -> nn.Module:
    """Build the ResNet ``name`` (a key of :data:`MODELS`) mapping (B, in_channels, H, W) images to (B, num_classes).

    Keyword options (defaults): ``in_channels`` (3); ``backbone`` preset "conv" | "attention" | "full"
    (None = conv); ``stem`` "conv" | "attention"; ``attention_groups`` subset of 1–4 whose bottleneck
    spatial layers are SASA2d; ``kernel_size`` (7), ``heads`` (8), ``pos_enc`` ("relative"), ``backend``
    ("auto"; "torch" | "triton", see :class:`~sasa.layers.SASA2d`) for every SASA2d;
    ``stem_mixtures`` (4); ``width`` (1.0) channel multiplier, widths rounded to multiples of 8;
    ``small_input`` (False) a non-downsampling stem for 8×8–32×32 images.  Explicit ``stem`` /
    ``attention_groups`` override the preset.  Bad names, options or values raise ``ValueError``.

    The resolved options are attached as ``model.config``; ``create_model(**model.config)`` rebuilds it.
    """
    config = _resolve(name, num_classes, options)
    multiplier = config["width"]
    widths = tuple(scale_width(c, multiplier) for c in BASE_WIDTHS)
    for group in config["attention_groups"]:
        if widths[group - 1] % config["heads"]:
            raise ValueError(
                f"create_model: heads={config['heads']} does not divide the attention width "
                f"{widths[group - 1]} of layer group {group}; choose heads dividing it or change width"
            )
    model = ResNet(
        blocks=MODELS[name].blocks,
        widths=widths,
        stem_width=scale_width(BASE_STEM_WIDTH, multiplier),
        num_classes=config["num_classes"],
        in_channels=config["in_channels"],
        stem=config["stem"],
        small_input=config["small_input"],
        attention_groups=tuple(config["attention_groups"]),
        kernel_size=config["kernel_size"],
        heads=config["heads"],
        pos_enc=config["pos_enc"],
        backend=config["backend"],
        stem_mixtures=config["stem_mixtures"],
    )
    model.config = config
    return model


register_family(lambda: MODELS, build_resnet)
