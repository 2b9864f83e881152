"""The model zoo: every published network, built by name."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from . import resnet2d, resnet3d, snn_resnet, tasnn


@dataclass(frozen=True)
class ModelSpec:
    """A zoo entry. `input_layout`: what forward takes; `example_input`: a representative input
    shape at batch 1 (the published one); `num_classes`: the published number of classes."""

    name: str
    builder: Callable[..., nn.Module]
    description: str
    input_layout: str
    example_input: tuple[int, ...]
    num_classes: int


_ES_IMAGENET = (8, 1, 2, 224, 224)
_SPECS = (
    ModelSpec("liaf_resnet18", snn_resnet.liaf_resnet18, "LIAF-ResNet-18 (ES-ImageNet)",
              "[T, B, 2, H, W]", _ES_IMAGENET, 1000),
    ModelSpec("liaf_resnet34", snn_resnet.liaf_resnet34, "LIAF-ResNet-34 (ES-ImageNet)",
              "[T, B, 2, H, W]", _ES_IMAGENET, 1000),
    ModelSpec("lif_resnet18", snn_resnet.lif_resnet18, "LIF-ResNet-18 (ES-ImageNet)",
              "[T, B, 2, H, W]", _ES_IMAGENET, 1000),
    ModelSpec("lif_resnet34", snn_resnet.lif_resnet34, "LIF-ResNet-34 (ES-ImageNet)",
              "[T, B, 2, H, W]", _ES_IMAGENET, 1000),
    ModelSpec("resnet2d18", resnet2d.resnet2d18, "2D-CNN ResNet-18 on Edge-Integral images",
              "[B, 1, H, W]", (1, 1, 224, 224), 1000),
    ModelSpec("resnet2d34", resnet2d.resnet2d34, "2D-CNN ResNet-34 on Edge-Integral images",
              "[B, 1, H, W]", (1, 1, 224, 224), 1000),
    ModelSpec("resnet3d18", resnet3d.resnet3d18, "3D-CNN ResNet-18 (bottleneck, as published)",
              "[T, B, 2, H, W]", _ES_IMAGENET, 1000),
    ModelSpec("resnet3d34", resnet3d.resnet3d34, "3D-CNN ResNet-34 (bottleneck, as published)",
              "[T, B, 2, H, W]", _ES_IMAGENET, 1000),
    ModelSpec("tasnn_gesture", tasnn.tasnn_gesture, "TA-SNN for DVS128 Gesture (32x32, T=30)",
              "[T, B, 2, 32, 32]", (30, 1, 2, 32, 32), 11),
    ModelSpec("tasnn_cifar10dvs", tasnn.tasnn_cifar10dvs, "TA-SNN for CIFAR10-DVS (128x128, T=10)",
              "[T, B, 2, 128, 128]", (10, 1, 2, 128, 128), 10),
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
