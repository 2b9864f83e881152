"""Tiny LIF/LIAF ResNets for tests, demos and quick CPU experiments (not published networks).

Same cells, blocks and naming as `odg.models.snn_resnet.SpikingResNet` (stem `conv1` = 7x7/2 conv with
bias -> BN -> neuron -> 3x3/2 max-pool; `layer1`, `layer2`, ... of `SpikingBasicBlock`; per-step
global average, mean over T, `fc`), only narrower and shallower: by default 2 -> 16 -> 32 channels,
one block per stage (`widths=(16, 32)`). Every training and transfer path that works on the
published ResNets works on these, in a fraction of a second per step on a CPU.

    from odg.models.small import build_small, SMALL_MODELS
    net = build_small("lif_tiny", num_classes=4)             # input [T, B, 2, H, W], e.g. 32 x 32

They are deliberately not in `odg.models.zoo` (whose list is the published networks); the training
code (`odg.models.train.build_model`) resolves these names first, then the zoo's.
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .lif import LIFParams
from .snn_resnet import SpikingBasicBlock, SpikingResNet, SpikingStem
from .zoo import ModelSpec


class TinySpikingResNet(SpikingResNet):
    """A `SpikingResNet` with stem width `widths[0]` and one stage per entry of `widths`
    (`blocks` basic blocks each; the first stage at stride 1, the others at stride 2).

    Input `[T, B, in_channels, H, W]` (any T unless `steps` is given), output logits `[B, num_classes]`.
    """

    def __init__(self, neuron: str = "lif", num_classes: int = 10, in_channels: int = 2,
                 widths: Sequence[int] = (16, 32), blocks: int = 1, params: LIFParams = LIFParams(),
                 backend: str = "auto", recompute: bool = True, steps: int | None = None):
        nn.Module.__init__(self)
        if not widths or any(int(w) < 1 for w in widths) or blocks < 1:
            raise ValueError(f"need widths >= 1 and blocks >= 1, got widths={tuple(widths)}, blocks={blocks}")
        params = params.with_reading(False)
        kw = dict(neuron=neuron, params=params, backend=backend, recompute=recompute)
        self.neuron, self.params, self.steps = neuron, params, steps
        self.widths = tuple(int(w) for w in widths)
        self.stages = len(self.widths)
        self.conv1 = SpikingStem(in_channels, self.widths[0], **kw)
        channels = self.widths[0]
        for i, width in enumerate(self.widths):
            stride = 1 if i == 0 else 2
            stage = [SpikingBasicBlock(channels, width, stride, **kw)]
            stage += [SpikingBasicBlock(width, width, 1, **kw) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
            channels = width
        self.fc = nn.Linear(channels, num_classes)


def lif_tiny(num_classes: int = 10, **kw) -> TinySpikingResNet:
    """Tiny LIF-ResNet: stem 2 -> 16, blocks 16 -> 16 and 16 -> 32 (stride 2), fc 32 -> classes."""
    return TinySpikingResNet("lif", num_classes, **kw)


def liaf_tiny(num_classes: int = 10, **kw) -> TinySpikingResNet:
    """Tiny LIAF-ResNet: stem 2 -> 16, blocks 16 -> 16 and 16 -> 32 (stride 2), fc 32 -> classes."""
    return TinySpikingResNet("liaf", num_classes, **kw)


SMALL_MODELS = {"lif_tiny": lif_tiny, "liaf_tiny": liaf_tiny}
# their entries, as the zoo's are written (family, input kind, stem): the training code asks these
SMALL_SPECS = {name: ModelSpec(name, builder, f"tiny {name.split('_')[0].upper()}-ResNet (tests, demos; not published)",
                               "[T, B, 2, H, W]", (4, 1, 2, 32, 32), 10, "spiking_resnet", "time_steps")
               for name, builder in SMALL_MODELS.items()}


def build_small(name: str, num_classes: int = 10, **options) -> TinySpikingResNet:
    """Build tiny model `name` (`lif_tiny`, `liaf_tiny`); options as `TinySpikingResNet`'s
    (`in_channels`, `widths`, `blocks`, `params`, `backend`, `recompute`, `steps`)."""
    try:
        builder = SMALL_MODELS[name]
    except KeyError:
        raise ValueError(f"unknown small model {name!r}; known: {', '.join(sorted(SMALL_MODELS))}") from None
    return builder(num_classes=num_classes, **options)
