"""What network a run trains, as a small serialisable record kept in every checkpoint.

`ModelConfig.build()` rebuilds exactly the network whose state_dict a checkpoint holds, so
`odg train --init CKPT`, `--resume` and `odg pretrain transfer` need only the checkpoint.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from torch import nn

from .. import zoo
from ..lif import LIFParams
from ..small import SMALL_SPECS

INPUTS = ("events", "mean", "ei", "rgb")
INPUT_CHANNELS = {"events": 2, "mean": 2, "ei": 1, "rgb": 3}
STATIC_STEPS = 6            # T a static input is repeated over for an SNN unless told (pipeS's T = 6)
INPUT_HELP = {
    "events": "the store's event frames [T, B, 2, H, W] (0/1)",
    "mean": "the event frames averaged over time, a static 2-channel image [B, 2, H, W] in [0, 1]",
    "ei": "the Edge-Integral relief of the events (events back to an image of edges), [B, 1, H, W] "
          "in [-1, 1]",
    "rgb": "the split's source ILSVRC2012 JPEGs (read from the folder the split was built from), "
           "framed as the events are, [B, 3, H, W], ImageNet mean/std normalised",
}


def model_spec(name: str) -> zoo.ModelSpec:
    """The entry of network `name` (family, input kind, stem, builder): the tiny models of
    `odg.models.small` first, then the zoo's; ValueError listing every known name if none."""
    if name in SMALL_SPECS:
        return SMALL_SPECS[name]
    if name in zoo.MODELS:
        return zoo.MODELS[name]
    raise ValueError(f"unknown model {name!r}; known: {', '.join(known_models())}")


def build_model(name: str, num_classes: int, **options) -> nn.Module:
    """A fresh network by name: the tiny models of `odg.models.small` (`lif_tiny`, `liaf_tiny`), then
    the zoo's (`odg.models.build`)."""
    return model_spec(name).builder(num_classes=num_classes, **options)


def known_models() -> list[str]:
    return sorted(set(zoo.list_models()) | set(SMALL_SPECS))


def is_spiking_resnet(name: str) -> bool:
    """Whether `name` is a LIF/LIAF ResNet (zoo or tiny); False for an unknown name."""
    return name in known_models() and model_spec(name).family == "spiking_resnet"


def fixed_decay_params(decay: float = 0.25, **kw) -> LIFParams:
    """LIF parameters with a fixed (untrained) leak factor `decay` (pipeS: 0.25)."""
    if not 0.0 < decay < 1.0:
        raise ValueError(f"a leak factor must be in (0, 1), got {decay}")
    return LIFParams(decay_init=math.log(decay / (1.0 - decay)), learn_decay=False, **kw)


def with_fixed_decay(params: LIFParams, decay: float) -> LIFParams:
    """`params`' threshold, surrogate window and leak slope with the fixed leak factor `decay`."""
    return fixed_decay_params(decay, threshold=params.threshold, surrogate_halfwidth=params.surrogate_halfwidth,
                              leak_slope=params.leak_slope)


@dataclass(frozen=True)
class ModelConfig:
    """A network and the input it takes.

    name: `odg.models.small` or zoo name. num_classes: classifier outputs. in_channels: stem input
    channels (2 for events and `mean`, 1 for `ei`, 3 for `rgb`). input: one of `INPUTS`.
    steps: for static inputs fed to an SNN, the number of time steps the image is repeated over
    (None: the events' own T). neuron: `LIFParams` fields for the LIF/LIAF ResNets (None for the
    ANN baselines). ann: the sharpened-ReLU ANN of pipeS (`odg.models.pretrain.sharpen`), fed one
    step. widths: stage widths of the tiny models (None: their default).
    """

    name: str
    num_classes: int
    in_channels: int = 2
    input: str = "events"
    steps: int | None = None
    neuron: dict | None = field(default=None)
    ann: bool = False
    widths: tuple | None = None

    def __post_init__(self):
        if self.input not in INPUTS:
            raise ValueError(f"input must be one of {', '.join(INPUTS)}, got {self.input!r}")
        if self.ann and not is_spiking_resnet(self.name):
            raise ValueError(f"the sharpened-ReLU ANN mirrors a LIF/LIAF ResNet, not {self.name!r}")
        if self.ann and self.input == "events":
            raise ValueError("the sharpened-ReLU ANN takes static images: input mean, ei or rgb")
        if self.widths is not None and self.name not in SMALL_SPECS:
            raise ValueError(f"widths apply to the tiny models ({', '.join(sorted(SMALL_SPECS))}) only")

    @property
    def static(self) -> bool:
        return self.input != "events"

    @property
    def spec(self) -> zoo.ModelSpec:
        """The network's entry (`model_spec`): its family, input kind and stem."""
        return model_spec(self.name)

    @property
    def lif_params(self) -> LIFParams | None:
        return LIFParams(**self.neuron) if self.neuron is not None else None

    def build(self) -> nn.Module:
        """A freshly initialised network of this configuration (sharpened when `ann`)."""
        spec, opts = self.spec, {}
        if spec.family in ("spiking_resnet", "resnet3d"):
            opts["steps"] = None        # any T: the training loop's batches are time first by construction
        if spec.family == "spiking_resnet":
            opts["in_channels"] = self.in_channels
            opts["params"] = self.lif_params or LIFParams()
            if self.widths is not None:
                opts["widths"] = tuple(self.widths)
        elif spec.family == "resnet2d":
            opts["in_channels"] = self.in_channels
        elif self.in_channels != spec.stem_channels:
            raise ValueError(f"{self.name} takes {spec.stem_channels}-channel event frames only")
        model = build_model(self.name, self.num_classes, **opts)
        if self.ann:
            from ..pretrain.sharpened_relu import sharpen
            sharpen(model)
        return model

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if d["widths"] is not None:
            d["widths"] = list(d["widths"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        if d.get("widths") is not None:
            d["widths"] = tuple(d["widths"])
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)


def stem_prefixes(model: nn.Module) -> tuple[str, ...]:
    """State-dict key prefixes of `model`'s input stem (conv + BN, and the stem neuron's decay):
    `conv1.` for the LIF/LIAF ResNets, `conv1.` and `bn1.` for the 2D ResNet, `conv1.` and
    `bn1.` for the 3D ResNet."""
    from ..resnet2d import ResNet2d
    from ..snn_resnet import SpikingResNet
    if isinstance(model, SpikingResNet):
        return ("conv1.",)
    if isinstance(model, ResNet2d):
        return ("conv1.", "bn1.")
    keys = list(model.state_dict())
    if any(k.startswith("conv1.") for k in keys) and any(k.startswith("bn1.") for k in keys):
        return ("conv1.", "bn1.")
    raise ValueError(f"do not know the stem of {type(model).__name__}")


def classifier_prefixes(model: nn.Module) -> tuple[str, ...]:
    """State-dict key prefixes of the classifier (`fc.` for every network trained here)."""
    if any(k.startswith("fc.") for k in model.state_dict()):
        return ("fc.",)
    raise ValueError(f"do not know the classifier of {type(model).__name__}")
