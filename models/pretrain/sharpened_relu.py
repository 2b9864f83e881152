"""pipeS's ANN: the LIF-ResNet with every neuron replaced by a "sharpened ReLU".

At epoch `e` the activation is a clipped linear ramp from `lo(e) = min(e / 200, 0.49)` to
`hi(e) = max(1 - e / 200, 0.51)`:

    y = clamp((x - lo) / (hi - lo), 0, 1)

At e = 0 it is the clipped ReLU `clamp(x, 0, 1)`; as e grows it sharpens toward the LIF spike, a
step at 0.5 (the published description, docs/MODELS.md, gives `hi = 1 - e / 200`; the floor at 0.51, reached at e = 98, keeps the
ramp well defined and centred on 0.5 for longer runs). Its backward is the SNN's rectangular
surrogate, `dy/dx = 1` where `|x - threshold| < surrogate_halfwidth` (the published 0.5 and 0.5),
whatever the ramp, so the ANN learns with the gradients the SNN will see.

The ANN is the SNN itself with its neuron functions swapped (`sharpen`): same modules, same
parameter and buffer names and shapes, so every weight (BN included) loads unchanged into the
LIF SNN (`odg.models.pretrain.transfer`). It runs one time step: a static image `[B, C, H, W]` is fed
as `[1, B, C, H, W]`; with T = 1 the LIF membrane is its input, so the SNN's first step computes
exactly the ANN's pre-activations.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..snn_resnet import SpikingBasicBlock, SpikingStem
from ..spike_layers import SpikeConv2d, SpikeMaxPool2d


def ramp(epoch: float) -> tuple[float, float]:
    """(lo, hi) of the sharpened ReLU at epoch `epoch` (0-based, may be fractional)."""
    e = max(float(epoch), 0.0)
    return min(e / 200.0, 0.49), max(1.0 - e / 200.0, 0.51)


class _SharpenedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lo: float, hi: float, threshold: float, halfwidth: float):
        ctx.save_for_backward(x)
        ctx.threshold, ctx.halfwidth = threshold, halfwidth
        return ((x - lo) / (hi - lo)).clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x - ctx.threshold).abs() < ctx.halfwidth), None, None, None, None


def sharpened_relu(x: torch.Tensor, epoch: float = 0.0, threshold: float = 0.5,
                   halfwidth: float = 0.5) -> torch.Tensor:
    """The sharpened ReLU at epoch `epoch`, elementwise, any shape and float dtype; backward: the
    rectangular surrogate of the LIF spike (`threshold`, `halfwidth`)."""
    lo, hi = ramp(epoch)
    return _SharpenedReLU.apply(x, lo, hi, float(threshold), float(halfwidth))


class _Sharp:
    """Mixin: the neuron update of a spiking module becomes the sharpened ReLU (no time recursion)."""

    sharp_epoch: float = 0.0
    binary_activations = False         # sharpened-ReLU outputs lie in [0, 1], not in {0, 1}

    def fire(self, x: torch.Tensor, steps: int, spikes_in: bool = False) -> torch.Tensor:
        p = self.params
        return sharpened_relu(x, self.sharp_epoch, p.threshold, p.surrogate_halfwidth)


class SharpStem(_Sharp, SpikingStem):
    """`SpikingStem` with the sharpened ReLU as its neuron."""


class SharpBasicBlock(_Sharp, SpikingBasicBlock):
    """`SpikingBasicBlock` with the sharpened ReLU as both neurons and, for LIF, as the spike
    function on the block output (LIAF keeps its LeakyReLU there)."""

    def act(self, x: torch.Tensor) -> torch.Tensor:
        if self.neuron == "liaf":
            return F.leaky_relu(x, self.params.leak_slope)
        p = self.params
        return sharpened_relu(x, self.sharp_epoch, p.threshold, p.surrogate_halfwidth)


# the stem and blocks get sharpened neurons; the layers that keep 0/1 inputs as bits become their
# plain parents again, since sharpened-ReLU activations are not 0/1 (same parameters and names)
_SWAP = {SpikingStem: SharpStem, SpikingBasicBlock: SharpBasicBlock,
         SpikeConv2d: nn.Conv2d, SpikeMaxPool2d: nn.MaxPool2d}


def sharpen(model: nn.Module) -> nn.Module:
    """Turn a LIF/LIAF ResNet (zoo or `odg.models.small`) into its sharpened-ReLU ANN, in place.

    Only the classes of its stem and blocks change (to subclasses that override the neuron
    functions), and its `SpikeConv2d` / `SpikeMaxPool2d` become `nn.Conv2d` / `nn.MaxPool2d`:
    no parameter, buffer or name changes. Feed it `[1, B, C, H, W]`. Returns `model`
    (a model already sharpened is returned as is).
    """
    if is_sharpened(model):
        return model
    swapped = 0
    for m in model.modules():
        new = _SWAP.get(type(m))
        if new is not None:
            m.__class__ = new
            swapped += isinstance(m, _Sharp)
    if not swapped:
        raise TypeError(f"{type(model).__name__} has no spiking stem or block to sharpen "
                        "(expected a LIF/LIAF ResNet)")
    model.sharpened_ann = True
    return model


def is_sharpened(model: nn.Module) -> bool:
    return any(isinstance(m, _Sharp) for m in model.modules())


def set_sharpness(model: nn.Module, epoch: float) -> None:
    """Set the ramp of every sharpened ReLU in `model` to that of epoch `epoch`."""
    for m in model.modules():
        if isinstance(m, _Sharp):
            m.sharp_epoch = float(epoch)
