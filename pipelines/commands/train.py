"""`odg train`: train a network on an odg store, or on ILSVRC2012 JPEGs converted on the fly
(`--images`), in one process or many under torchrun.

torch is imported only when the command runs. The training arguments are shared with
`odg pretrain ann` (see `add_training_arguments`, `run_training`)."""
from __future__ import annotations

import argparse

from ._options import add_allow_incomplete, add_quiet, deprecated, positive


def add_training_arguments(p: argparse.ArgumentParser, default_preset: str, ann: bool = False) -> None:
    g = p.add_argument_group("data and network")
    g.add_argument("store", nargs="?", metavar="STORE",
                   help="the odg store to train on (path or fsspec URL); this or --images is required")
    deprecated(g, "--store", "the STORE argument", "store_option")
    if not ann:
        g.add_argument("--images", metavar="ROOT",
                       help="instead of a store: ILSVRC2012 images (ROOT/train/, ROOT/val/ or the original tars), "
                            "converted to events on the fly in the DataLoader workers")
        g.add_argument("--method", choices=("odg", "i2e"), default=None,
                       help="with --images: the conversion, odg (ES-ImageNet, the default) or i2e")
        g.add_argument("--augment", nargs="?", const="all", default=None, metavar="NAMES",
                       help="with --images: augment the training images before conversion; a comma list of "
                            f"{', '.join(AUGMENTS)} (alone: all; directions applies to i2e): random resized crop "
                            "(scale 0.08-1, ratio 3/4-4/3), horizontal flip (p 0.5), I2E's random directions; "
                            "seeded from --seed, the epoch and the image")
    g.add_argument("--model", help="network: a zoo name (`odg models list`) or lif_tiny / liaf_tiny "
                                   "(default: the preset's, or the --init checkpoint's)")
    if not ann:
        g.add_argument("--init", metavar="CKPT",
                       help="start from this checkpoint's weights (an `odg pretrain transfer` output or a "
                            "training checkpoint); its network is used unless --model names another")
    g.add_argument("--input", choices=("events", "mean", "ei", "rgb"),
                   help="what the network sees: events (event frames, the default for odg train), mean "
                        "(frames averaged over time), ei (Edge-Integral image), rgb (the split's source "
                        "JPEGs; the default for odg pretrain ann)")
    g.add_argument("--steps", type=int, metavar="T",
                   help="time steps a static input (mean, ei, rgb) is repeated over for an SNN (default 6)")
    g.add_argument("--input-size", type=int, metavar="S",
                   help="average-pool the 224 x 224 frames or images down to S x S on the fly (quick runs)")
    g.add_argument("--num-classes", type=int, help="classifier outputs (default: the store's number of classes)")
    g.add_argument("--width", type=int, nargs="+", metavar="C",
                   help="stage widths of lif_tiny / liaf_tiny (default 16 32)")
    g.add_argument("--surrogate-halfwidth", type=float, metavar="H",
                   help="opt-in surrogate window |m - 0.5| < H (published 0.5; with 0.5 a LIF-ResNet's "
                        "blocks pass no gradient, 0.75 lets them learn)")
    if not ann:
        g.add_argument("--decay", type=float, metavar="K",
                       help="a fixed leak factor K in (0, 1) for every neuron (default: learned, as published)")
    g.add_argument("--train-split", default="train", help="split to train on (default train)")
    add_allow_incomplete(g)
    g.add_argument("--val-split", default="val", help="split to evaluate on each epoch; 'none': no evaluation")

    r = p.add_argument_group("recipe (a preset; explicit options override its fields)")
    r.add_argument("--preset", default=None, help=f"recipe preset (default {default_preset}); see --list-presets")
    r.add_argument("--list-presets", action="store_true", help="print the presets and exit")
    r.add_argument("--epochs", type=int)
    r.add_argument("--batch-size", type=int, metavar="B", help="samples per process (per GPU)")
    r.add_argument("--lr", type=float)
    r.add_argument("--optimizer", choices=("adamw", "sgd", "adam"))
    r.add_argument("--momentum", type=float)
    r.add_argument("--weight-decay", type=float)
    r.add_argument("--schedule", choices=("step", "multistep", "constant"))
    r.add_argument("--step-size", type=int, metavar="E", help="step schedule: multiply lr by gamma every E epochs")
    r.add_argument("--milestones", type=int, nargs="+", metavar="E", help="multistep schedule epochs")
    r.add_argument("--gamma", type=float)
    if not ann:
        r.add_argument("--stem-warmup", type=int, metavar="E",
                       help="train only the input stem for the first E epochs (pipeD: 1)")

    x = p.add_argument_group("run")
    x.add_argument("--out", metavar="RUN_DIR", help="checkpoints, metrics.jsonl, accuracy_vs_time.png "
                                                    "(default runs/<model>)")
    x.add_argument("--resume", action="store_true", help="continue RUN_DIR/last.pt exactly where it stopped")
    x.add_argument("--amp", choices=("bf16",), help="bfloat16 autocast")
    x.add_argument("--loader-workers", type=int, default=0, metavar="N", help="DataLoader worker processes")
    deprecated(x, "--workers", "--loader-workers", "loader_workers", type=int, metavar="N")
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--limit-steps", type=int, metavar="N", help="at most N optimiser steps per epoch")
    x.add_argument("--time-budget", type=float, metavar="S",
                   help="stop after S seconds of wall time (evaluating and saving first)")
    x.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    x.add_argument("--threads", type=positive("--threads"), metavar="N",
                   help="torch CPU threads per process (default: torch's)")
    x.add_argument("--keep-checkpoints", action="store_true", help="also keep RUN_DIR/epoch-NNN.pt of every epoch")
    add_quiet(x, "no progress bars")


def _presets_text() -> str:
    from odg.models.train import PRESETS
    lines = []
    for name in sorted(PRESETS):
        r = PRESETS[name]
        sched = {"step": f"x{r.gamma} every {r.step_size} epochs",
                 "multistep": f"x{r.gamma} at {list(r.milestones)}", "constant": "constant"}[r.schedule]
        lines.append(f"{name}: {r.description}\n    {r.optimizer} lr {r.lr:g}"
                     f"{f' momentum {r.momentum:g}' if r.optimizer == 'sgd' else ''}"
                     f"{f' weight decay {r.weight_decay:g}' if r.weight_decay else ''}, {sched}, {r.epochs} epochs, "
                     f"batch {r.batch_size} per process{f', stem warm-up {r.stem_warmup}' if r.stem_warmup else ''}"
                     f", model {r.model}\n    source: {r.source}")
    return "\n".join(lines)


def _recipe_changes(args) -> dict:
    """The recipe fields given on the command line (None: the preset's)."""
    return dict(optimizer=args.optimizer, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                schedule=args.schedule, step_size=args.step_size, milestones=args.milestones, gamma=args.gamma,
                epochs=args.epochs, batch_size=args.batch_size, stem_warmup=getattr(args, "stem_warmup", None))


def run_training(args, default_preset: str, ann: bool = False) -> int:
    """Handler of `odg train` and `odg pretrain ann`: the arguments as asked, resolved (against the
    store, --init and --resume) by `odg.models.train`."""
    from odg.pipelines.cli import UserError

    if args.list_presets:
        print(_presets_text())
        return 0
    store = args.store or getattr(args, "store_option", None)
    images = getattr(args, "images", None)
    if bool(store) == bool(images):
        raise UserError("STORE is required (the store to train on)" + (", or --images ROOT (one of the two)"
                                                                       if not ann else ""))
    method, augment = image_options(args)
    from odg.models.train import ModelRequest, RecipeRequest, TrainError, TrainOptions, train
    from odg.pipelines.store.writer import StoreError

    model = ModelRequest(name=args.model or None, num_classes=args.num_classes, input=args.input, steps=args.steps,
                         widths=tuple(args.width) if args.width else None, decay=getattr(args, "decay", None),
                         surrogate_halfwidth=args.surrogate_halfwidth, ann=ann)
    recipe = RecipeRequest(args.preset, default_preset, _recipe_changes(args))
    val = None if str(args.val_split).lower() == "none" else args.val_split
    opts = TrainOptions(store=store, out=args.out, recipe=recipe, model=model, init=getattr(args, "init", None),
                        resume=args.resume, seed=args.seed, workers=args.loader_workers,
                        limit_steps=args.limit_steps, input_size=args.input_size, amp=args.amp, device=args.device,
                        train_split=args.train_split, val_split=val, time_budget=args.time_budget,
                        keep_checkpoints=args.keep_checkpoints, progress=not args.quiet, threads=args.threads,
                        images=images, method=method, augment=augment,
                        allow_incomplete=getattr(args, "allow_incomplete", False))
    try:
        res = train(opts)
    except (TrainError, FileNotFoundError, StoreError) as e:
        raise UserError(str(e)) from None
    if res["rank"] == 0:
        f = res["final"] or {}
        top1 = f.get("val_top1")
        print(f"{res['run_dir']}: {res['epochs']} epochs, {res['steps']} steps"
              + (f", val top-1 {top1:.2f}% top-5 {f['val_top5']:.2f}%" if top1 is not None else "")
              + f", weights sha256 {res['hash'][:16]}")
    return 0


AUGMENTS = ("crop", "flip", "directions")


def image_options(args):
    """`(method, odg.Augment or None)` of --method / --augment (only with --images)."""
    from odg.pipelines.cli import UserError
    images = getattr(args, "images", None)
    method, names = getattr(args, "method", None), getattr(args, "augment", None)
    if not images:
        if method is not None or names is not None:
            raise UserError("--method and --augment apply to --images (a store holds its conversion already)")
        return "odg", None
    if names is None:
        return method or "odg", None
    chosen = set(AUGMENTS) if names == "all" else {n.strip() for n in names.split(",") if n.strip()}
    unknown = chosen - set(AUGMENTS)
    if unknown or not chosen:
        raise UserError(f"--augment takes a comma list of {', '.join(AUGMENTS)} (or nothing: all), got {names!r}")
    from odg import Augment
    return method or "odg", Augment(crop="crop" in chosen, flip=0.5 if "flip" in chosen else 0.0,
                                    directions="directions" in chosen, seed=args.seed)


def _handler(args) -> int:
    return run_training(args, default_preset="es-imagenet-resnet18")


def register(cli) -> None:
    p = cli.command("train", "Train a network on an odg store (torchrun for several GPUs or nodes)")
    add_training_arguments(p, default_preset="es-imagenet-resnet18")
    p.set_defaults(func=_handler)
