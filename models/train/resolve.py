"""Settle a run's configuration once: network, recipe, run directory and data (`resolve`).

Requests (`ModelRequest`, `RecipeRequest`) are resolved against the run being resumed
(RUN_DIR/last.pt: its network and recipe, which a resumed run may not change), the `init`
checkpoint (its network, with the few changes a request may make) and the store (its number of
classes). Exact forms (`ModelConfig`, `Recipe`) are checked against those the same way. Every
refusal is a `TrainError` naming the option at fault.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from . import checkpoint as ckpt_io
from .inputs import image_datasets, make_dataset, odg_params_of
from .model_config import (
    INPUT_CHANNELS,
    INPUTS,
    STATIC_STEPS,
    ModelConfig,
    fixed_decay_params,
    known_models,
    model_spec,
    with_fixed_decay,
)
from .options import ModelRequest, RecipeRequest, TrainError, TrainOptions
from .presets import Recipe, get_preset

# options a resumed run must keep (it would not continue the same run otherwise)
RESUME_KEEPS = ("seed", "input_size", "limit_steps", "train_split", "images", "method", "augment")


@dataclass
class Resolved:
    """A run, settled: its directory, network, recipe, the checkpoints it starts from (`state`:
    RUN_DIR/last.pt when resuming; `init`: the `init` checkpoint) and its data (`odg_params`: the
    store's ODG parameters, for the Edge-Integral input only)."""

    out: Path
    cfg: ModelConfig
    recipe: Recipe
    state: dict | None
    init: dict | None
    train_ds: Dataset
    val_ds: Dataset | None
    odg_params: object = None


def check_model_input(cfg: ModelConfig) -> None:
    """Refuse a network/input pairing that cannot work, with the reason."""
    want = INPUT_CHANNELS[cfg.input]
    if cfg.in_channels != want:
        raise TrainError(f"input {cfg.input!r} has {want} channel(s) but {cfg.name} is built with "
                         f"{cfg.in_channels} input channels")
    spec = cfg.spec
    if spec.family == "tasnn":
        raise TrainError("the TA-SNNs (fixed input shape, MSE readout as published) are not trained by "
                         "odg train")
    if spec.input_kind == "image" and not cfg.static:
        raise TrainError(f"{cfg.name} takes static images: use --input ei (the published 2D-CNN input), "
                         "mean or rgb")
    if spec.input_kind == "event_frames" and cfg.static:
        raise TrainError(f"{cfg.name} takes event frames: use --input events")


def resume_state(out) -> dict | None:
    """RUN_DIR/last.pt, or None when there is none."""
    p = Path(out) / "last.pt"
    return ckpt_io.load(p) if p.is_file() else None


def option_value(opts: TrainOptions, key: str):
    """An option as recorded in config.json and the checkpoints (the augmentation as a plain dict)."""
    v = getattr(opts, key)
    if key == "augment" and v is not None:
        v = {k: list(x) if isinstance(x, tuple) else x for k, x in dataclasses.asdict(v).items()}
    return v


def resolve(opts: TrainOptions, is_main: bool = True, log=print) -> Resolved:
    """Settle `opts` (see the module docstring); `is_main`: this process writes RUN_DIR."""
    if opts.amp not in (None, "bf16"):
        raise TrainError(f"--amp must be bf16 (or absent), got {opts.amp!r}")
    if opts.input_size is not None and opts.input_size < 1:
        raise TrainError("--input-size must be >= 1")
    if (opts.images is None) == (opts.store is None):
        raise TrainError("train on a store or on images (--images), one of the two")
    if opts.resume and opts.out is None:
        raise TrainError("--resume needs --out RUN_DIR (the run to continue)")

    state = None
    if opts.resume:
        try:
            state = resume_state(opts.out)
        except (ValueError, OSError) as e:
            raise TrainError(str(e)) from None
        if state is None:
            log(f"odg train: no checkpoint in {opts.out} to resume from; starting a new run")
    recipe = _recipe(opts.recipe, state)
    cfg, init = _model(opts, state, recipe)
    check_model_input(cfg)
    if state is not None:
        _check_resumed(opts, state, recipe)
    out = Path(opts.out) if opts.out is not None else Path("runs") / (f"{cfg.name}-ann" if cfg.ann else cfg.name)
    if not opts.resume and (out / "last.pt").exists():
        log(f"odg train: {out} holds an earlier run; starting over (its last.pt and metrics are replaced)")

    train_ds, val_ds = _datasets(opts, cfg, out, is_main, log)
    top = max(int(train_ds.labels.max()), int(val_ds.labels.max()) if val_ds is not None and len(val_ds) else -1)
    if top >= cfg.num_classes:
        raise TrainError(f"the store has labels up to {top} but the network has {cfg.num_classes} classes")
    odg_params = None
    if cfg.input == "ei":
        odg_params = train_ds.params if opts.images is not None else odg_params_of(opts.store)
        if odg_params is None:
            raise TrainError("input 'ei' (Edge-Integral) needs an ES-ImageNet store")
    return Resolved(out, cfg, recipe, state, init, train_ds, val_ds, odg_params)


def _recipe(asked: Recipe | RecipeRequest, state: dict | None) -> Recipe:
    if isinstance(asked, Recipe):
        return asked
    try:
        base = get_preset(asked.preset or asked.default)
        if state is not None and asked.preset is None:
            base = Recipe.from_dict(state["recipe"])
        return base.override(**asked.changes)
    except ValueError as e:
        raise TrainError(str(e)) from None


def _check_resumed(opts: TrainOptions, state: dict, recipe: Recipe) -> None:
    old = Recipe.from_dict(state["recipe"])
    diff = [f.name for f in dataclasses.fields(Recipe)
            if f.name not in ("epochs", "description", "source", "name")
            and getattr(old, f.name) != getattr(recipe, f.name)]
    if diff:
        raise TrainError("--resume with a different recipe: " + ", ".join(
            f"{k} {getattr(old, k)!r} -> {getattr(recipe, k)!r}" for k in diff))
    saved = state.get("options", {})
    for key in RESUME_KEEPS:
        if key in saved and saved[key] != option_value(opts, key):
            raise TrainError(f"--resume with a different {key}: the run used {saved[key]!r}, "
                             f"now {option_value(opts, key)!r}")


def _model(opts: TrainOptions, state: dict | None, recipe: Recipe) -> tuple[ModelConfig, dict | None]:
    """(the network, the `init` checkpoint or None)."""
    asked = opts.model
    if state is not None:
        cfg = ModelConfig.from_dict(state["model_config"])
        if isinstance(asked, ModelConfig) and asked != cfg:
            raise TrainError(f"--resume: {opts.out}/last.pt trains {cfg.name} ({cfg.to_dict()}), not "
                             f"{asked.to_dict()}")
        if isinstance(asked, ModelRequest) and asked.name is not None and asked.name != cfg.name:
            raise TrainError(f"--resume: {opts.out} trains {cfg.name}, not {asked.name}")
        return cfg, None
    if opts.init is not None:
        try:
            init = ckpt_io.load(opts.init)
        except (ValueError, OSError) as e:
            raise TrainError(f"--init: {e}") from None
        held = ModelConfig.from_dict(init["model_config"])
        if asked is None:
            return held, init
        if isinstance(asked, ModelRequest):
            if asked.name is not None and asked.name != held.name:
                raise TrainError(f"--init {opts.init} holds {held.name}, not {asked.name}")
            return _adapted(held, asked), init
        if asked.name != held.name or asked.ann != held.ann:
            raise TrainError(f"--init {opts.init} holds {'ANN ' if held.ann else ''}{held.name}, "
                             f"not {'ANN ' if asked.ann else ''}{asked.name}")
        return asked, init
    if asked is None:
        raise TrainError("name a model (--model) or a checkpoint to start from (--init)")
    if isinstance(asked, ModelConfig):
        return asked, None
    return _new(asked, recipe, opts), None


def _adapted(held: ModelConfig, asked: ModelRequest) -> ModelConfig:
    """The `init` checkpoint's network with the input, steps and neuron changes `asked` makes."""
    changes = {}
    if asked.input is not None:
        changes["input"] = asked.input
    if asked.steps is not None:
        changes["steps"] = asked.steps
    try:
        if held.neuron is not None and (asked.surrogate_halfwidth is not None or asked.decay is not None):
            p = held.lif_params
            if asked.decay is not None:
                p = with_fixed_decay(p, asked.decay)
            if asked.surrogate_halfwidth is not None:
                p = dataclasses.replace(p, surrogate_halfwidth=asked.surrogate_halfwidth)
            changes["neuron"] = dataclasses.asdict(p)
        return held.replace(**changes)
    except ValueError as e:
        raise TrainError(str(e)) from None


def _new(asked: ModelRequest, recipe: Recipe, opts: TrainOptions) -> ModelConfig:
    """A fresh network from `asked`, with the defaults `ModelRequest` names."""
    from ..lif import LIFParams

    name = asked.name or recipe.model
    if name is None:
        raise TrainError("name a model with --model (or a checkpoint with --init)")
    if name not in known_models():
        raise TrainError(f"unknown model {name!r}; known: {', '.join(known_models())}")
    spec = model_spec(name)
    inp = asked.input or ("rgb" if asked.ann else "events")
    if inp not in INPUTS:
        raise TrainError(f"input must be one of {', '.join(INPUTS)}, got {inp!r}")
    try:
        neuron = None
        if spec.family == "spiking_resnet":
            p = LIFParams(learn_decay=not asked.ann) if asked.decay is None else fixed_decay_params(asked.decay)
            if asked.surrogate_halfwidth is not None:
                p = dataclasses.replace(p, surrogate_halfwidth=asked.surrogate_halfwidth)
            neuron = dataclasses.asdict(p)
        elif asked.surrogate_halfwidth is not None or asked.decay is not None:
            raise TrainError(f"{name} has no LIF neurons: --surrogate-halfwidth / --decay do not apply")
        steps = asked.steps
        if inp != "events" and not asked.ann and steps is None and spec.time_first:
            steps = STATIC_STEPS
        return ModelConfig(name=name, num_classes=asked.num_classes or _classes(opts), in_channels=INPUT_CHANNELS[inp],
                           input=inp, steps=steps, neuron=neuron, ann=asked.ann,
                           widths=tuple(asked.widths) if asked.widths else None)
    except TrainError:
        raise
    except ValueError as e:
        raise TrainError(str(e)) from None


def _classes(opts: TrainOptions) -> int:
    """The number of classes of the data: the store's (1000 for ILSVRC2012 images)."""
    if opts.images is not None:
        return 1000
    from odg.pipelines.store import open_store
    from odg.pipelines.store.writer import StoreError
    try:
        return len(open_store(opts.store).classes)
    except (StoreError, OSError) as e:
        raise TrainError(str(e)) from None


def _datasets(opts: TrainOptions, cfg: ModelConfig, out: Path, is_main: bool, log) -> tuple[Dataset, Dataset | None]:
    """(training, validation or None) datasets of the run's store or images."""
    from odg.pipelines.store import open_store

    skip_log = out / "skipped.tsv"
    if opts.images is not None:
        if not opts.resume and is_main and skip_log.exists():
            skip_log.unlink()
        try:
            train_ds, val_ds = image_datasets(opts.images, opts.train_split, opts.val_split, cfg, opts.method,
                                              opts.augment, skip_log, log)
        except ValueError as e:
            raise TrainError(str(e)) from None
    else:
        st = open_store(opts.store)
        if opts.train_split not in st:
            raise TrainError(f"store {opts.store} has no split {opts.train_split!r} (it has: {', '.join(st.splits)})")
        val_split = opts.val_split if (opts.val_split and opts.val_split in st) else None
        if opts.val_split and val_split is None:
            log(f"odg train: store has no split {opts.val_split!r}: no validation")
        try:
            train_ds = make_dataset(opts.store, opts.train_split, cfg, opts.allow_incomplete)
            val_ds = make_dataset(opts.store, val_split, cfg, opts.allow_incomplete) if val_split else None
        except ValueError as e:
            raise TrainError(str(e)) from None
    if len(train_ds) == 0:
        raise TrainError(f"split {opts.train_split!r} has no kept samples")
    return train_ds, val_ds
