"""The model zoo: every published network, built by name."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from . import resnet2d, resnet3d, snn_resnet, tasnn

FAMILIES = {
    "spiking_resnet": "LIF/LIAF ResNet: spiking stem cell and basic blocks (`odg.models.snn_resnet`)",
    "resnet2d": "2D-CNN ResNet on static images (`odg.models.resnet2d`)",
    "resnet3d": "3D-CNN ResNet on event frames (`odg.models.resnet3d`)",
    "tasnn": "TA-SNN: temporal-wise attention SNN (`odg.models.tasnn`)",
}
INPUT_KINDS = {
    "image": "a static image [B, C, H, W]",
    "time_steps": "a sequence [T, B, C, H, W]: event frames, or a static image repeated over T",
    "event_frames": "event frames [T, B, C, H, W] only",
}


@dataclass(frozen=True)
class ModelSpec:
    """A zoo entry. `input_layout`: what forward takes; `example_input`: a representative input
    shape at batch 1 (the published one); `num_classes`: the published number of classes.

    family: one of `FAMILIES` (what the network is built of; the code that treats networks
    differently asks this, never the name). input_kind: one of `INPUT_KINDS`. stem_channels: the
    input channels of the published stem (2 for event frames, 1 for the Edge-Integral image).
    """

    name: str
    builder: Callable[..., nn.Module]
    description: str
    input_layout: str
    example_input: tuple[int, ...]
    num_classes: int
    family: str
    input_kind: str
    stem_channels: int = 2

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {', '.join(INPUT_KINDS)}, got {self.input_kind!r}")

    @property
    def time_first(self) -> bool:
        """Whether forward takes `[T, B, ...]` (and the builder `steps=`, the T it takes)."""
        return self.input_kind != "image"


_ES_IMAGENET = (8, 1, 2, 224, 224)
_SPIKING = dict(family="spiking_resnet", input_kind="time_steps")
_SPECS = (
    ModelSpec("liaf_resnet18", snn_resnet.liaf_resnet18, "LIAF-ResNet-18 (ES-ImageNet)",
              "[T, B, 2, H, W]", _ES_IMAGENET, 1000, **_SPIKING),
    ModelSpec("liaf_resnet34", snn_resnet.liaf_resnet34, "LIAF-ResNet-34 (ES-ImageNet)",
              "[T, B, 2, H, W]", _ES_IMAGENET, 1000, **_SPIKING),
    ModelSpec("lif_resnet18", snn_resnet.lif_resnet18, "LIF-ResNet-18 (ES-ImageNet)",
              "[T, B, 2, H, W]", _ES_IMAGENET, 1000, **_SPIKING),
    ModelSpec("lif_resnet34", snn_resnet.lif_resnet34, "LIF-ResNet-34 (ES-ImageNet)",
              "[T, B, 2, H, W]", _ES_IMAGENET, 1000, **_SPIKING),
    ModelSpec("resnet2d18", resnet2d.resnet2d18, "2D-CNN ResNet-18 on Edge-Integral images",
              "[B, 1, H, W]", (1, 1, 224, 224), 1000, "resnet2d", "image", stem_channels=1),
    ModelSpec("resnet2d34", resnet2d.resnet2d34, "2D-CNN ResNet-34 on Edge-Integral images",
              "[B, 1, H, W]", (1, 1, 224, 224), 1000, "resnet2d", "image", stem_channels=1),
    ModelSpec("resnet3d18", resnet3d.resnet3d18, "3D-CNN ResNet-18 (bottleneck, as published)",
              "[T, B, 2, H, W]", _ES_IMAGENET, 1000, "resnet3d", "event_frames"),
    ModelSpec("resnet3d34", resnet3d.resnet3d34, "3D-CNN ResNet-34 (bottleneck, as published)",
              "[T, B, 2, H, W]", _ES_IMAGENET, 1000, "resnet3d", "event_frames"),
    ModelSpec("tasnn_gesture", tasnn.tasnn_gesture, "TA-SNN for DVS128 Gesture (32x32, T=30)",
              "[T, B, 2, 32, 32]", (30, 1, 2, 32, 32), 11, "tasnn", "event_frames"),
    ModelSpec("tasnn_cifar10dvs", tasnn.tasnn_cifar10dvs, "TA-SNN for CIFAR10-DVS (128x128, T=10)",
              "[T, B, 2, 128, 128]", (10, 1, 2, 128, 128), 10, "tasnn", "event_frames"),
)
MODELS: dict[str, ModelSpec] = {s.name: s for s in _SPECS}


def spec(name: str) -> ModelSpec:
    """The zoo entry `name`; ValueError listing the known names if there is none."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(list_models())}") from None


def list_models() -> list[str]:
    """Names of every model in the zoo, sorted."""
    return sorted(MODELS)


def build(name: str, num_classes: int | None = None, **options) -> nn.Module:
    """Build zoo model `name` with fresh weights.

    num_classes: output classes; None means the published number (1000 for the ES-ImageNet models,
    11 for tasnn_gesture, 10 for tasnn_cifar10dvs). options: passed to the builder, e.g.
    `params=LIFParams(learn_decay=False)`, `in_channels=1`, `backend="auto"|"torch"|"triton"` for the LIF/LIAF
    ResNets, `params=TASNNLIFParams(...)` for the TA-SNNs, and `steps=` (T) for every time-first
    model: the T it takes (default: the published one, 8 for ES-ImageNet, 30 / 10 for the TA-SNNs);
    the ES-ImageNet networks take `steps=None` for any T.
    """
    s = spec(name)
    return s.builder(num_classes=s.num_classes if num_classes is None else num_classes, **options)
