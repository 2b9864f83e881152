"""What a training run is asked to do: `TrainOptions`, and the requests `resolve` settles.

A run names its network either exactly (a `ModelConfig`) or as a `ModelRequest` (what the user
typed: a name, an input, a few neuron settings), and its recipe either exactly (a `Recipe`) or as
a `RecipeRequest` (a preset and explicit overrides). `odg.models.train.resolve` turns requests
into the exact forms once, against the store, the `init` checkpoint and the run being resumed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .model_config import ModelConfig
from .presets import DEFAULT_PRESET, Recipe


class TrainError(ValueError):
    """A training request that cannot be carried out as asked (shown to the user as is)."""


@dataclass(frozen=True)
class ModelRequest:
    """The network a run asks for, every field optional (None: the default named below).

    name: a zoo or tiny model (default: the `init` checkpoint's, else the recipe's `model`).
    num_classes: default the store's number of classes (1000 for `images`). input: one of
    `odg.models.train.INPUTS` (default events; rgb for the sharpened ANN). steps: time steps a
    static input is repeated over for an SNN (default 6). widths: stage widths of the tiny models.
    decay: a fixed leak factor in (0, 1) for every neuron (default: learned, as published; the ANN
    learns none). surrogate_halfwidth: the neurons' surrogate window (default: the published 0.5).
    ann: the sharpened-ReLU ANN of pipeS (`odg pretrain ann`).
    With `init`, only input, steps, decay and surrogate_halfwidth change the checkpoint's network.
    """

    name: str | None = None
    num_classes: int | None = None
    input: str | None = None
    steps: int | None = None
    widths: tuple | None = None
    decay: float | None = None
    surrogate_halfwidth: float | None = None
    ann: bool = False


@dataclass(frozen=True)
class RecipeRequest:
    """A recipe as asked for: preset `preset` (None: the resumed run's recipe, else `default`)
    with the fields in `changes` replaced (`Recipe.override`: None values leave a field alone)."""

    preset: str | None = None
    default: str = DEFAULT_PRESET
    changes: dict = field(default_factory=dict)


@dataclass
class TrainOptions:
    """A training run. `model` may be None when `init` names a checkpoint (its network is used).

    recipe: a `Recipe`, or a `RecipeRequest` resolved against the resumed run.
    model: a `ModelConfig` (used as is), a `ModelRequest` (resolved: see there), or None.
    store: the odg store; train_split / val_split (None: no evaluation; a missing split is skipped).
    images (instead of a store): an ILSVRC2012 tree or tar folder converted on the fly with `method`
    ("odg" or "i2e"), the training split augmented with `augment` (an `odg.Augment` or None);
    skipped inputs are listed in RUN_DIR/skipped.tsv.
    out: RUN_DIR (None: runs/<model>, runs/<model>-ann for the sharpened ANN; required to resume).
    init: a checkpoint whose weights start the run (`odg pretrain transfer` output or any
    checkpoint of this format). resume: continue from RUN_DIR/last.pt. limit_steps: at most
    this many optimiser steps per epoch. input_size: average-pool frames/images to S x S.
    amp: None or "bf16" (autocast). time_budget: stop (after the current step) once this many
    seconds of wall time have passed, evaluate and save. keep_checkpoints: also keep
    RUN_DIR/epoch-NNN.pt for every epoch. threads: torch CPU threads of this process (None: as is).
    """

    store: str | None
    out: str | None
    recipe: Recipe | RecipeRequest
    model: ModelConfig | ModelRequest | None = None
    init: str | None = None
    resume: bool = False
    seed: int = 0
    workers: int = 0
    limit_steps: int | None = None
    input_size: int | None = None
    amp: str | None = None
    device: str = "auto"
    train_split: str = "train"
    val_split: str | None = "val"
    eval_batch_size: int | None = None
    time_budget: float | None = None
    keep_checkpoints: bool = False
    progress: bool = True
    threads: int | None = None
    images: str | None = None
    method: str = "odg"
    augment: object = None
    allow_incomplete: bool = False
    name: str | None = None
    log: object = field(default=None, repr=False)
