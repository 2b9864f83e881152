"""Training recipes as named presets (a frozen table); explicit options override their fields.

Published values are marked as such in each preset's `source`; where a paper leaves a value
unstated, the preset's value is this project's choice and `source` says so.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("step", "multistep", "constant")


@dataclass(frozen=True)
class Recipe:
    """Optimiser, schedule and length of a run.

    lr: initial learning rate; schedule "step" multiplies it by `gamma` every `step_size` epochs,
    "multistep" at each of `milestones` (epochs), "constant" never. batch_size: samples per
    process (per GPU). stem_warmup: epochs at the start during which only the input stem trains
    (pipeD). The schedule counts the epochs after the stem warm-up.
    """

    name: str
    optimizer: str = "adam"
    lr: float = 0.03
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "step"
    step_size: int = 15
    milestones: tuple = ()
    gamma: float = 0.3
    epochs: int = 25
    batch_size: int = 22
    stem_warmup: int = 0
    model: str | None = None
    description: str = ""
    source: str = ""

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.lr <= 0 or self.epochs < 1 or self.batch_size < 1 or self.stem_warmup < 0:
            raise ValueError(f"bad recipe {self.name!r}: need lr > 0, epochs >= 1, batch_size >= 1, "
                             f"stem_warmup >= 0")
        if self.schedule == "step" and self.step_size < 1:
            raise ValueError("step_size must be >= 1")
        if any(int(m) < 1 for m in self.milestones):
            raise ValueError("milestones must be epochs >= 1")

    def override(self, **fields) -> "Recipe":
        """This recipe with the given fields replaced; fields given as None are left unchanged."""
        changes = {k: v for k, v in fields.items() if v is not None}
        if "milestones" in changes:
            changes["milestones"] = tuple(int(m) for m in changes["milestones"])
            changes.setdefault("schedule", "multistep")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Recipe":
        d = dict(d)
        d["milestones"] = tuple(d.get("milestones") or ())
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


PRESETS: dict[str, Recipe] = {r.name: r for r in (
    Recipe("es-imagenet-resnet18", optimizer="adam", lr=0.03, schedule="step", step_size=15, gamma=0.3,
           epochs=25, batch_size=22, model="liaf_resnet18",
           description="ES-ImageNet LIF/LIAF-ResNet-18 from scratch (cross-entropy, DDP + SyncBN)",
           source="published (docs/MODELS.md): Adam lr 0.03, x0.3 every 15 epochs, 25 epochs, 22 per GPU"),
    Recipe("es-imagenet-resnet34", optimizer="adam", lr=0.03, schedule="step", step_size=15, gamma=0.3,
           epochs=25, batch_size=22, model="liaf_resnet34",
           description="ES-ImageNet LIF/LIAF-ResNet-34 from scratch",
           source="the published ResNet-18 recipe (no separate ResNet-34 recipe is published)"),
    Recipe("pipes-ann", optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, schedule="multistep",
           milestones=(30, 60, 90), gamma=0.1, epochs=100, batch_size=64, model="lif_resnet18",
           description="pipeS step 1: the sharpened-ReLU ANN on static images",
           source="this project's choice (the usual ImageNet ResNet recipe; the ramp reaches its "
                  "sharpest at epoch 98); the papers give no ANN recipe"),
    Recipe("pipes-finetune", optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=0.0,
           schedule="multistep", milestones=(2, 4, 6, 8), gamma=0.3, epochs=10, batch_size=22,
           model="lif_resnet18",
           description="pipeS step 2: fine-tune the LIF SNN that received the ANN's weights",
           source="published: SGD, MultiStepLR [2, 4, 6, 8], gamma 0.3; lr 0.01, momentum 0.9 and "
                  "10 epochs are this project's choice"),
    Recipe("piped", optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=0.0, schedule="multistep",
           milestones=(10, 20), gamma=0.1, epochs=26, batch_size=22, stem_warmup=1, model="liaf_resnet18",
           description="pipeD: new 2-channel stem trained alone for one epoch, then everything",
           source="published: SGD lr 0.1, milestones [10, 20], stem alone for one epoch; gamma 0.1, "
                  "momentum 0.9 and 25 epochs after the warm-up are this project's choice"),
)}

DEFAULT_PRESET = "es-imagenet-resnet18"


def get_preset(name: str) -> Recipe:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}") from None


def list_presets() -> list[str]:
    return sorted(PRESETS)
