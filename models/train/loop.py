"""The training loop behind `odg train` and `odg pretrain ann`: one process, or many under torchrun.

    from odg.models.train import TrainOptions, train, get_preset, ModelConfig
    cfg = ModelConfig("lif_tiny", num_classes=1000)
    train(TrainOptions(store="s.zarr", out="runs/a", model=cfg, recipe=get_preset("es-imagenet-resnet18")))

Each epoch: the training split's kept samples in `ShardSampler` order (this process's share),
cross-entropy, the recipe's optimiser; the schedule steps once per epoch (after the pipeD stem
warm-up); then top-1/top-5 on the validation split (every kept sample once, over all processes);
then, on rank 0 only, RUN_DIR/last.pt (see `checkpoint`), a row of RUN_DIR/metrics.jsonl and
RUN_DIR/accuracy_vs_time.png.

Exact resume: the network is initialised from the seed, the sampler's order depends only on
(seed, epoch), the DataLoader's own generator is re-seeded from (seed, epoch) every epoch (it never
draws from the global generator), and the checkpoint holds the optimiser, schedule, step counters
and the torch/numpy/python generator states. A run interrupted after epoch k and resumed with
`resume=True` therefore computes bit for bit what the uninterrupted run computes (on the CPU with
`workers=0`; on GPUs up to the nondeterminism of their kernels).
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint as ckpt_io
from .distributed import DistEnv, setup, unwrap, wrap
from .inputs import eval_loader, image_datasets, make_dataset, odg_params_of, prepare, train_loader
from .metrics import MetricsLog, plot_accuracy_vs_time, topk_correct
from .model_config import ModelConfig, stem_prefixes
from .presets import Recipe

INPUT_CHANNELS = {"events": 2, "mean": 2, "ei": 1, "rgb": 3}


class TrainError(ValueError):
    """A training request that cannot be carried out as asked (shown to the user as is)."""


@dataclass
class TrainOptions:
    """A training run. `model` may be None when `init` names a checkpoint (its network is used).

    store: the odg store; train_split / val_split (None: no evaluation; a missing split is skipped).
    images (instead of a store): an ILSVRC2012 tree or tar folder converted on the fly with `method`
    ("odg" or "i2e"), the training split augmented with `augment` (an `odg.Augment` or None);
    skipped inputs are listed in RUN_DIR/skipped.tsv.
    out: RUN_DIR. init: a checkpoint whose weights start the run (`odg pretrain transfer` output or
    any checkpoint of this format). resume: continue from RUN_DIR/last.pt. limit_steps: at most
    this many optimiser steps per epoch. input_size: average-pool frames/images to S x S.
    amp: None or "bf16" (autocast). time_budget: stop (after the current step) once this many
    seconds of wall time have passed, evaluate and save. keep_checkpoints: also keep
    RUN_DIR/epoch-NNN.pt for every epoch. threads: torch CPU threads of this process (None: as is).
    allow_incomplete: train on the built shards of a split whose build did not finish (else refused).
    """

    store: str | None
    out: str
    recipe: Recipe
    model: ModelConfig | None = None
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


def make_optimizer(params, recipe: Recipe) -> torch.optim.Optimizer:
    params = list(params)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)


def make_scheduler(optimizer, recipe: Recipe):
    if recipe.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=recipe.step_size, gamma=recipe.gamma)
    milestones = list(recipe.milestones) if recipe.schedule == "multistep" else []
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=recipe.gamma)


def check_model_input(cfg: ModelConfig) -> None:
    """Refuse a network/input pairing that cannot work, with the reason."""
    want = INPUT_CHANNELS[cfg.input]
    if cfg.in_channels != want:
        raise TrainError(f"input {cfg.input!r} has {want} channel(s) but {cfg.name} is built with "
                         f"{cfg.in_channels} input channels")
    if cfg.name.startswith("resnet2d") and not cfg.static:
        raise TrainError(f"{cfg.name} takes static images: use --input ei (the published 2D-CNN input), "
                         "mean or rgb")
    if cfg.name.startswith("resnet3d") and cfg.static:
        raise TrainError(f"{cfg.name} takes event frames: use --input events")
    if cfg.name.startswith("tasnn"):
        raise TrainError("the TA-SNNs (fixed input shape, MSE readout as published) are not trained by "
                         "odg train")


def load_init(model: nn.Module, path, ck: dict | None = None) -> dict:
    """Load the weights of checkpoint `path` (or its already loaded dict `ck`) into `model`,
    strictly; a clear error naming every misfit otherwise."""
    ck = ckpt_io.load(path) if ck is None else ck
    own = model.state_dict()
    src = ck["model"]
    missing = [k for k in own if k not in src]
    unknown = [k for k in src if k not in own]
    bad = [f"{k}: checkpoint {list(src[k].shape)}, model {list(own[k].shape)}"
           for k in own if k in src and tuple(src[k].shape) != tuple(own[k].shape)]
    if missing or unknown or bad:
        parts = []
        if bad:
            parts.append("shape mismatch: " + "; ".join(bad[:10]))
        if missing:
            parts.append("missing in checkpoint: " + ", ".join(missing[:10]))
        if unknown:
            parts.append("not in the model: " + ", ".join(unknown[:10]))
        raise TrainError(f"--init {path} does not fit {type(model).__name__}: " + " | ".join(parts))
    model.load_state_dict(src, strict=True)
    return ck


def resume_state(out) -> dict | None:
    """RUN_DIR/last.pt, or None when there is none."""
    p = Path(out) / "last.pt"
    return ckpt_io.load(p) if p.is_file() else None


def _stem_parameters(model: nn.Module) -> list[nn.Parameter]:
    prefixes = stem_prefixes(model)
    return [p for n, p in model.named_parameters() if n.startswith(prefixes)]


def _option(opts: TrainOptions, key: str):
    """An option as recorded in config.json and the checkpoints (the augmentation as a plain dict)."""
    v = getattr(opts, key)
    if key == "augment" and v is not None:
        v = {k: list(x) if isinstance(x, tuple) else x for k, x in dataclasses.asdict(v).items()}
    return v


def _lr(opt) -> float:
    return float(opt.param_groups[0]["lr"])


@torch.no_grad()
def evaluate(model: nn.Module, loader, cfg: ModelConfig, input_size, env: DistEnv, odg_params,
             amp: str | None) -> tuple[float | None, float | None, float | None]:
    """(top-1 %, top-5 %, mean loss) over every sample of the loader's dataset, all processes."""
    model.eval()
    c1 = c5 = n = loss_sum = 0.0
    for batch, labels in loader:
        if len(labels) == 0:                    # every input of the batch skipped (images on the fly)
            continue
        x = prepare(batch, cfg, input_size, env.device, odg_params)
        labels = labels.to(env.device)
        with torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=amp == "bf16"):
            logits = model(x)
        logits = logits.float()
        loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
        a, b = topk_correct(logits, labels)
        c1, c5, n = c1 + a, c5 + b, n + len(labels)
    c1, c5, n, loss_sum = env.all_sum([c1, c5, n, loss_sum])
    if n == 0:
        return None, None, None
    return 100.0 * c1 / n, 100.0 * c5 / n, loss_sum / n


def train(opts: TrainOptions) -> dict:
    """Run (or continue) a training run; returns a summary dict (rows, final row, hash, run dir)."""
    log = opts.log or (lambda msg: print(msg, file=sys.stderr))
    if opts.threads is not None:
        torch.set_num_threads(max(1, int(opts.threads)))
    env = setup(opts.device)
    try:
        return _train(opts, env, log if env.is_main else (lambda msg: None))
    finally:
        env.cleanup()


def _train(opts: TrainOptions, env: DistEnv, log) -> dict:
    from odg.pipelines.store import open_store

    out = Path(opts.out)
    if opts.amp not in (None, "bf16"):
        raise TrainError(f"--amp must be bf16 (or absent), got {opts.amp!r}")
    if opts.input_size is not None and opts.input_size < 1:
        raise TrainError("--input-size must be >= 1")

    # -- what to train ---------------------------------------------------------------------
    state = resume_state(out) if opts.resume else None
    if opts.resume and state is None:
        log(f"odg train: no checkpoint in {out} to resume from; starting a new run")
    elif not opts.resume and (out / "last.pt").exists():
        log(f"odg train: {out} holds an earlier run; starting over (its last.pt and metrics are replaced)")
    recipe = opts.recipe
    init_ck = None
    if state is not None:
        cfg = ModelConfig.from_dict(state["model_config"])
        if opts.model is not None and opts.model != cfg:
            raise TrainError(f"--resume: {out}/last.pt trains {cfg.name} ({cfg.to_dict()}), not "
                             f"{opts.model.to_dict()}")
        old = Recipe.from_dict(state["recipe"])
        diff = [f.name for f in dataclasses.fields(Recipe)
                if f.name not in ("epochs", "description", "source", "name")
                and getattr(old, f.name) != getattr(recipe, f.name)]
        if diff:
            raise TrainError("--resume with a different recipe: " + ", ".join(
                f"{k} {getattr(old, k)!r} -> {getattr(recipe, k)!r}" for k in diff))
        saved = state.get("options", {})
        for key in ("seed", "input_size", "limit_steps", "train_split", "images", "method", "augment"):
            if key in saved and saved[key] != _option(opts, key):
                raise TrainError(f"--resume with a different {key}: the run used {saved[key]!r}, "
                                 f"now {_option(opts, key)!r}")
    else:
        cfg = opts.model
        if opts.init is not None:
            init_ck = ckpt_io.load(opts.init)
            init_cfg = ModelConfig.from_dict(init_ck["model_config"])
            if cfg is None:
                cfg = init_cfg
            elif cfg.name != init_cfg.name or cfg.ann != init_cfg.ann:
                raise TrainError(f"--init {opts.init} holds {'ANN ' if init_cfg.ann else ''}{init_cfg.name}, "
                                 f"not {'ANN ' if cfg.ann else ''}{cfg.name}")
        if cfg is None:
            raise TrainError("name a model (--model) or a checkpoint to start from (--init)")
    check_model_input(cfg)

    if (opts.images is None) == (opts.store is None):
        raise TrainError("train on a store or on images (--images), one of the two")
    skip_log = out / "skipped.tsv"
    if opts.images is not None:
        if not opts.resume and env.is_main and skip_log.exists():
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
    top = max(int(train_ds.labels.max()), int(val_ds.labels.max()) if val_ds is not None and len(val_ds) else -1)
    if top >= cfg.num_classes:
        raise TrainError(f"the store has labels up to {top} but the network has {cfg.num_classes} classes")
    if cfg.input != "ei":
        odg_params = None
    else:
        odg_params = train_ds.params if opts.images is not None else odg_params_of(opts.store)
    if cfg.input == "ei" and odg_params is None:
        raise TrainError("input 'ei' (Edge-Integral) needs an ES-ImageNet store")

    # -- network, optimiser, schedule ------------------------------------------------------
    ckpt_io.seed_everything(opts.seed)
    model = cfg.build()
    if init_ck is not None:
        load_init(model, opts.init, init_ck)
    if state is not None:
        model.load_state_dict(state["model"], strict=True)
    net = wrap(model, env)
    model = unwrap(net)                         # SyncBN conversion replaces modules: the live ones
    optimizer = make_optimizer(model.parameters(), recipe)
    scheduler = make_scheduler(optimizer, recipe)
    stem_opt = None
    if recipe.stem_warmup > 0:
        stem_opt = make_optimizer(_stem_parameters(model), recipe)
    epoch0, step, clock, best = 0, 0, {"wall": 0.0, "train": 0.0}, None
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if stem_opt is not None and state.get("stem_optimizer") is not None:
            stem_opt.load_state_dict(state["stem_optimizer"])
        epoch0, step = int(state["epoch"]), int(state["step"])
        clock = dict(state.get("clock", clock))
        best = state.get("best")
        ckpt_io.set_rng_state(state["rng"])
    sharpen_epochs = cfg.ann
    if sharpen_epochs:
        from ..pretrain.sharpened_relu import set_sharpness

    gen = torch.Generator()
    bs = recipe.batch_size
    pin = env.device.type == "cuda"
    tl = train_loader(train_ds, bs, opts.seed, opts.workers, env.rank, env.world_size, gen, pin)
    vl = eval_loader(val_ds, opts.eval_batch_size or bs, opts.workers, env.rank, env.world_size,
                     torch.Generator(), pin) if val_ds is not None else None

    metrics = MetricsLog(out / "metrics.jsonl")
    options = {k: _option(opts, k) for k in ("store", "images", "method", "augment", "seed", "workers", "limit_steps",
                                             "input_size", "amp", "train_split", "val_split", "init", "time_budget")}
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        metrics.truncate(epoch0)
        (out / "config.json").write_text(json.dumps(
            {"model_config": cfg.to_dict(), "recipe": recipe.to_dict(), "options": options,
             "world_size": env.world_size, "device": str(env.device)}, indent=2) + "\n")
        log(f"odg train: {cfg.name}{' (sharpened-ReLU ANN)' if cfg.ann else ''}, input {cfg.input}, "
            f"{len(train_ds)} training samples, {len(val_ds) if val_ds is not None else 0} validation, "
            f"{env.world_size} process(es) on {env.device}, recipe {recipe.name}, epochs {epoch0 + 1}..{recipe.epochs}")

    from odg.pipelines.progress import progress_bar
    rows = metrics.rows() if env.is_main else []
    stopped, done = False, epoch0
    session_start = time.perf_counter()
    wall_base = clock["wall"]
    for epoch in range(epoch0, recipe.epochs):
        if opts.time_budget is not None and env.all_sum(
                [float(wall_base + time.perf_counter() - session_start >= opts.time_budget)])[0] > 0:
            stopped = True                  # the budget ran out during the last evaluation
            log(f"odg train: time budget of {opts.time_budget:g} s reached after epoch {epoch}")
            break
        phase = "stem" if epoch < recipe.stem_warmup else "all"
        opt = stem_opt if phase == "stem" else optimizer
        if sharpen_epochs:
            set_sharpness(model, epoch)
        tl.sampler.set_epoch(epoch)
        gen.manual_seed(opts.seed * 1_000_003 + epoch)
        net.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=env.device)
        n_steps = n_samples = 0
        t_epoch = time.perf_counter()
        bar = progress_bar(len(tl), f"epoch {epoch + 1}/{recipe.epochs}" + (" (stem)" if phase == "stem" else ""),
                           "batch", opts.progress and env.is_main, leave=False)
        for batch, labels in tl:
            x = prepare(batch, cfg, opts.input_size, env.device, odg_params)
            labels = labels.to(env.device, non_blocking=True)
            with torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=opts.amp == "bf16"):
                logits = net(x)
            loss = F.cross_entropy(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            if stem_opt is not None:
                stem_opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            n_steps += 1
            n_samples += len(labels)
            loss_sum += loss.detach().double()
            bar.update()
            if env.is_main and opts.progress and n_steps % 10 == 1:
                bar.set_postfix(loss=f"{float(loss):.3f}")
            if opts.limit_steps is not None and n_steps >= opts.limit_steps:
                break
            if opts.time_budget is not None:
                over = float(wall_base + time.perf_counter() - session_start >= opts.time_budget)
                if env.all_sum([over])[0] > 0:
                    stopped = True
                    break
        bar.close()
        train_s = time.perf_counter() - t_epoch
        if phase == "all":
            scheduler.step()
        lr_used = _lr(opt)
        env.broadcast_buffers(model)
        tot_loss, tot_steps, tot_samples, tot_time = env.all_sum([float(loss_sum), n_steps, n_samples, train_s])
        top1 = top5 = vloss = None
        if vl is not None:
            top1, top5, vloss = evaluate(model, vl, cfg, opts.input_size, env, odg_params, opts.amp)
        clock["train"] += tot_time / env.world_size
        clock["wall"] = wall_base + time.perf_counter() - session_start
        row = {"epoch": epoch + 1, "step": step, "phase": phase, "wall_time": round(clock["wall"], 4),
               "train_time": round(clock["train"], 4),
               "train_loss": tot_loss / tot_steps if tot_steps else None,
               "val_top1": top1, "val_top5": top5, "val_loss": vloss,
               "samples_per_s": tot_samples / (tot_time / env.world_size) if tot_time > 0 else None,
               "lr": lr_used}
        if stopped:
            row["partial"] = True
        if top1 is not None and (best is None or top1 > best):
            best = top1
        if env.is_main:
            state_out = {
                "format": ckpt_io.FORMAT, "model_config": cfg.to_dict(), "model": model.state_dict(),
                "recipe": recipe.to_dict(), "options": options, "optimizer": optimizer.state_dict(),
                "stem_optimizer": stem_opt.state_dict() if stem_opt is not None else None,
                "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "step": step,
                "sampler_epoch": epoch + 1, "rng": ckpt_io.rng_state(), "clock": dict(clock), "best": best,
                "partial_epoch": stopped, "world_size": env.world_size,
            }
            ckpt_io.save(state_out, out / "last.pt")
            if opts.keep_checkpoints:
                ckpt_io.save(state_out, out / f"epoch-{epoch + 1:03d}.pt")
            metrics.append(row)
            rows.append(row)
            plot_accuracy_vs_time({opts.name or cfg.name: rows}, out / "accuracy_vs_time.png",
                                  title=f"{cfg.name} on {Path(opts.store or opts.images).name} ({recipe.name})")
            fmt = (lambda v: "-" if v is None else f"{v:.2f}")
            log(f"epoch {epoch + 1}/{recipe.epochs} [{phase}] loss {fmt(row['train_loss'])} "
                f"val top-1 {fmt(top1)}% top-5 {fmt(top5)}% lr {lr_used:.4g} "
                f"{fmt(row['samples_per_s'])} samples/s, {clock['wall']:.1f} s")
        env.barrier()
        done = epoch + 1
        if stopped:
            log(f"odg train: time budget of {opts.time_budget:g} s reached during epoch {epoch + 1}")
            break
    if opts.images is not None and env.is_main and skip_log.exists():
        n_skip = len({ln.split("\t")[1] for ln in skip_log.read_text().splitlines() if "\t" in ln})
        log(f"odg train: {n_skip} inputs skipped (rejected, or under the ODG event floor): see {skip_log}")
    digest = ckpt_io.state_hash(model.state_dict())
    if env.distributed:                     # every rank's own weights, gathered: they must agree
        hashes = [None] * env.world_size
        torch.distributed.all_gather_object(hashes, digest)
        if env.is_main:
            (out / "ranks.json").write_text(json.dumps(
                {"world_size": env.world_size, "weights_sha256": hashes}, indent=1) + "\n")
            if len(set(hashes)) != 1:
                log("odg train: WARNING: the processes ended with different weights: " + ", ".join(hashes))
    return {"run_dir": str(out), "rows": rows, "final": rows[-1] if rows else None, "epochs": done,
            "steps": step, "model_config": cfg.to_dict(), "hash": digest,
            "rank": env.rank, "world_size": env.world_size, "best_top1": best, "stopped": stopped}

