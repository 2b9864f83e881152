"""LIAF-ResNet and LIF-ResNet, as published for ES-ImageNet (input `[B, 2, 8, 224, 224]`).

This implementation takes `[T, B, C, H, W]`. Convolutions, normalisation and pooling run per time
step on the merged `[T*B, C, H, W]` batch; `BatchNorm2d` over that batch has exactly the statistics
of the published `BatchNorm3d` over (B, T, H, W) per channel. Names map to the published keys as
`conv1.kernel -> conv1.conv`, `conv1.NormLayer -> conv1.bn`, `cv1/cv2 -> conv1/conv2`,
`shortcut_norm -> shortcut_bn` (see `odg.models.published`).

The LIAF reading of each published config (`LIFParams.inplace_activation`): `liaf_resnet18`
carries LeakyReLU(m) as the membrane, in its stem and every block (the published ResNet-18 config's
`LeakyReLU(0.2, inplace=True)`); `liaf_resnet34` has the plain recurrence (`inplace=False` there).
An explicit `inplace_activation` in `params` selects either reading for any LIAF network.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._backend import check_backend
from .layout import merge_time, split_time, time_first_input
from .lif import LIFParams, check_reading, liaf, lif, recurrence, register_decay
from .recompute import recomputed
from .spike_layers import SpikeConv2d, SpikeMaxPool2d
from .surrogate import spike

NEURONS = {"lif": lif, "liaf": liaf}


class _SpikingModule(nn.Module):
    """Holds one decay logit `decay` ([1]) and the neuron kind shared by all its neuron updates.

    `binary_activations`: with LIF neurons every activation between layers is a spike (0/1), so
    convolutions, pooling and neurons keep their inputs for backward as bits. A subclass whose
    activations are not 0/1 (the sharpened-ReLU ANN of pretraining) sets it False.

    `recompute`: while gradients are recorded, each BN -> neuron segment (the whole stem: conv ->
    BN -> neuron -> pool) keeps only its inputs for backward and runs again inside backward
    (`odg.models.recompute.recomputed`): same values and gradients, a fraction of the activation
    memory, one more pass over those activations.
    """

    binary_activations = True

    def __init__(self, neuron: str, params: LIFParams, backend: str, recompute: bool = True):
        super().__init__()
        if neuron not in NEURONS:
            raise ValueError(f"unknown neuron {neuron!r}; known: {', '.join(NEURONS)}")
        check_backend(backend)
        params = params.with_reading(False)
        check_reading(params, neuron == "liaf")
        self.neuron, self.params, self.backend = neuron, params, backend
        self.recompute = bool(recompute)
        register_decay(self, params)

    @property
    def _spikes(self) -> bool:
        return self.neuron == "lif" and self.binary_activations

    def fire(self, x: torch.Tensor, steps: int, spikes_in: bool = False) -> torch.Tensor:
        """Neuron update, with this module's decay, of `[T*B, ...]` (T = `steps`: the layout of
        the per-step layers) -> `[T*B, ...]`; `spikes_in`: x is 0/1."""
        out = NEURONS[self.neuron](split_time(x, steps), torch.sigmoid(self.decay), self.params, self.backend,
                                   spikes_in=spikes_in)
        return merge_time(out)


class SpikingStem(_SpikingModule):
    """Published stem cell: 7x7/2 conv (bias) -> BN -> neuron -> 3x3/2 max-pool (no padding)."""

    def __init__(self, in_channels: int, out_channels: int = 64, neuron: str = "liaf",
                 params: LIFParams = LIFParams(), backend: str = "auto", recompute: bool = True):
        super().__init__(neuron, params, backend, recompute)
        self.conv = nn.Conv2d(in_channels, out_channels, 7, stride=2, padding=3, bias=True)
        self.bn = nn.BatchNorm2d(out_channels)
        # LIF: the pool sees spikes and keeps them as bits (models.spike_layers)
        self.pool = (SpikeMaxPool2d if self._spikes else nn.MaxPool2d)(3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[T, B, C, H, W]` -> `[T, B, 64, H', W']` (224 -> 112 -> 55)."""
        steps = x.shape[0]
        return split_time(self.conv_bn_fire_pool(merge_time(x), steps=steps), steps)

    # The whole stem is one recomputed segment: it keeps only its input, which is 16x smaller
    # than the conv output at 2 input channels (and held by the caller anyway).
    @recomputed("conv", "bn")
    def conv_bn_fire_pool(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        """pool(neuron(bn(conv(x)))) over `[T*B, C, H, W]`."""
        return self.pool(self.fire(self.bn(self.conv(x)), steps))


class SpikingBasicBlock(_SpikingModule):
    """Published residual block; one decay scalar shared by its two neuron updates.

    main = BN(conv2(neuron(BN(conv1(x)))));  shortcut = shortcut_bn(shortcut(x) or x)
    out  = neuron(act(main + shortcut)),  act = LeakyReLU(0.2) for LIAF, the spike function for LIF.
    Convolutions and BNs run per time step (on `[T*B, C, H, W]`), the neurons over time. The
    BN -> neuron steps are recomputed in backward (`odg.models.recompute`). In a LIF network
    every conv here sees spikes (the block input is spikes too): they are `SpikeConv2d`s, which
    keep their input for backward as bits (same results, 1/16 of bf16).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, neuron: str = "liaf",
                 params: LIFParams = LIFParams(), backend: str = "auto", recompute: bool = True):
        super().__init__(neuron, params, backend, recompute)
        conv = SpikeConv2d if self._spikes else nn.Conv2d
        self.conv1 = conv(in_channels, out_channels, 3, stride=stride, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv(out_channels, out_channels, 3, stride=1, padding=1, bias=True)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = conv(in_channels, out_channels, 1, stride=stride, bias=True)
        self.shortcut_bn = nn.BatchNorm2d(out_channels)

    def act(self, x: torch.Tensor) -> torch.Tensor:
        """The activation on the block's sum: LeakyReLU for LIAF, the spike function for LIF."""
        if self.neuron == "liaf":
            return F.leaky_relu(x, self.params.leak_slope)
        return spike(x, self.params.threshold, self.params.surrogate_halfwidth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[T, B, C_in, H, W]` -> `[T, B, C_out, H / stride, W / stride]`."""
        steps, x = x.shape[0], merge_time(x)
        identity = x
        out = self.conv1(x)
        out = self.bn1_fire(out, steps=steps)
        out = self.conv2(out)
        if self.shortcut is not None:
            identity = self.shortcut(x)
        out = self.bn2_add_fire(out, identity, steps=steps)
        return split_time(out, steps)

    @recomputed("bn1")
    def bn1_fire(self, out: torch.Tensor, steps: int) -> torch.Tensor:
        """neuron(bn1(out))."""
        return self.fire(self.bn1(out), steps)

    # an identity shortcut of a LIF network carries the block's input spikes: kept as bits
    @recomputed("bn2", "shortcut_bn", binary=lambda block: (False, block._spikes and block.shortcut is None))
    def bn2_add_fire(self, out: torch.Tensor, identity: torch.Tensor, steps: int) -> torch.Tensor:
        """neuron(act(bn2(out) + shortcut_bn(identity))); for LIF the neuron's input is 0/1."""
        out = self.bn2(out) + self.shortcut_bn(identity)
        return self.fire(self.act(out), steps, spikes_in=self._spikes)


PUBLISHED_STEPS = 8            # ES-ImageNet's T, the published configs' `timeWindows`


class SpikingResNet(nn.Module):
    """LIAF/LIF-ResNet: stem, four stages (64, 128, 256, 512), per-step global average, mean over T, fc.

    Input `[T, B, C, H, W]` (published: T=8, C=2, 224x224), float (or integer 0/1 frames).
    `steps`: the T it takes (the zoo's builders: the published 8), refusing other T with an error
    that names it, so that a batch-first `[B, T, ...]` tensor is not read as T = B; None: any T
    (the network itself works for every T). Output logits `[B, num_classes]`.
    """

    # (published key pattern, this model's key) and back; used by `odg.models.load_published`
    PUBLISHED_TO_OURS = ((r"^conv1\.kernel\.", "conv1.conv."),
                         (r"^conv1\.NormLayer\.", "conv1.bn."),
                         (r"^(layer\d+\.\d+)\.cv(\d)\.", r"\1.conv\2."),
                         (r"^(layer\d+\.\d+)\.shortcut_norm\.", r"\1.shortcut_bn."))
    OURS_TO_PUBLISHED = ((r"^conv1\.conv\.", "conv1.kernel."),
                         (r"^conv1\.bn\.", "conv1.NormLayer."),
                         (r"^(layer\d+\.\d+)\.conv(\d)\.", r"\1.cv\2."),
                         (r"^(layer\d+\.\d+)\.shortcut_bn\.", r"\1.shortcut_norm."))

    def __init__(self, layers: list[int], neuron: str = "liaf", num_classes: int = 1000,
                 in_channels: int = 2, params: LIFParams = LIFParams(), backend: str = "auto",
                 recompute: bool = True, steps: int | None = None):
        super().__init__()
        params = params.with_reading(False)
        kw = dict(neuron=neuron, params=params, backend=backend, recompute=recompute)
        self.neuron, self.params, self.steps = neuron, params, steps
        self.stages = 4
        self.conv1 = SpikingStem(in_channels, 64, **kw)
        widths, channels = (64, 128, 256, 512), 64
        for i, (width, blocks) in enumerate(zip(widths, layers)):
            stride = 1 if i == 0 else 2
            stage = [SpikingBasicBlock(channels, width, stride, **kw)]
            stage += [SpikingBasicBlock(width, width, 1, **kw) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            channels = width
        self.fc = nn.Linear(512, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """`[T, B, C, H, W]` -> per-step pooled features `[T, B, width of the last stage]`.

        x: float, or integer/bool 0/1 frames (converted to the parameters' dtype); another layout
        is refused with a ValueError naming the expected one (`odg.models.layout.time_first_input`).
        """
        name = f"{self.neuron.upper()}-ResNet"
        x = self.conv1(time_first_input(x, self.fc.weight, name, self.conv1.conv.in_channels, self.steps))
        for i in range(self.stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x.mean(dim=(3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[T, B, C, H, W]` -> logits `[B, num_classes]`."""
        return self.fc(self.features(x).mean(dim=0))

    @property
    def neuron_description(self) -> str:
        """The neurons' membrane recurrence, in words (`odg models summary` prints it)."""
        return recurrence(self.params, self.neuron == "liaf")


def liaf_resnet18(num_classes: int = 1000, params: LIFParams = LIFParams(), steps: int | None = PUBLISHED_STEPS,
                  **kw) -> SpikingResNet:
    """Published LIAF-ResNet-18 (11,693,233 parameters at 1000 classes), in the published config's
    in-place reading unless `params.inplace_activation` says otherwise (see the module docstring)."""
    return SpikingResNet([2, 2, 2, 2], "liaf", num_classes, params=params.with_reading(True), steps=steps, **kw)


def liaf_resnet34(num_classes: int = 1000, params: LIFParams = LIFParams(), steps: int | None = PUBLISHED_STEPS,
                  **kw) -> SpikingResNet:
    """Published LIAF-ResNet-34 (21,808,825 parameters at 1000 classes), plain recurrence unless
    `params.inplace_activation` says otherwise."""
    return SpikingResNet([3, 4, 6, 3], "liaf", num_classes, params=params.with_reading(False), steps=steps, **kw)


def lif_resnet18(num_classes: int = 1000, steps: int | None = PUBLISHED_STEPS, **kw) -> SpikingResNet:
    """Published LIF-ResNet-18 (11,693,233 parameters at 1000 classes)."""
    return SpikingResNet([2, 2, 2, 2], "lif", num_classes, steps=steps, **kw)


def lif_resnet34(num_classes: int = 1000, steps: int | None = PUBLISHED_STEPS, **kw) -> SpikingResNet:
    """Published LIF-ResNet-34 (21,808,825 parameters at 1000 classes)."""
    return SpikingResNet([3, 4, 6, 3], "lif", num_classes, steps=steps, **kw)
