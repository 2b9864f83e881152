"""Size and cost of a zoo model: parameters and multiply-adds on a representative input."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .zoo import build, spec


@dataclass(frozen=True)
class ModelSummary:
    """parameters: trainable parameter count. macs: conv + linear multiply-adds of one forward on
    `input_shape` (batch 1, all time steps). input_layout: what forward takes. neuron: the
    spiking networks' membrane recurrence in words (None for the ANNs)."""

    name: str
    parameters: int
    macs: int
    input_layout: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    neuron: str | None = None


def count_macs(model: nn.Module, x: torch.Tensor) -> tuple[int, torch.Tensor]:
    """Multiply-adds of conv (1d/2d/3d) and linear layers in one `model(x)`, via forward hooks.

    Returns (multiply-adds, the model's output). Works on any device, the meta device included.
    """
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Linear):
            total += output.numel() * module.in_features
        else:
            total += output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)

    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    return total, out


def summary(name: str, input_shape: tuple[int, ...] | None = None, **options) -> ModelSummary:
    """Parameters, multiply-adds, input layout and neuron recurrence of zoo model `name`.

    input_shape: defaults to the published input at batch 1 (e.g. `[8, 1, 2, 224, 224]`, T first);
        a time-first model is built for its T (`steps`, unless given in `options`).
    options: as for `odg.models.build`. Runs on the meta device: no weights are allocated, nothing is
    computed (about a second even for the 3D ResNets).
    """
    s = spec(name)
    shape = tuple(input_shape or s.example_input)
    if input_shape is not None and s.time_first:
        options.setdefault("steps", shape[0])          # the networks are built for their T
    with torch.device("meta"):
        model = build(name, **options).eval()
        x = torch.empty(shape)
        macs, out = count_macs(model, x)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return ModelSummary(name, params, macs, s.input_layout, shape, tuple(out.shape),
                        getattr(model, "neuron_description", None))
