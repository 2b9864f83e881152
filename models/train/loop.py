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

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint as ckpt_io
from .distributed import DistEnv, setup, unwrap, wrap
from .inputs import eval_loader, prepare, train_loader
from .metrics import MetricsLog, plot_accuracy_vs_time, topk_correct
from .model_config import INPUT_CHANNELS, ModelConfig, stem_prefixes  # noqa: F401 (INPUT_CHANNELS: re-export)
from .options import TrainError, TrainOptions  # noqa: F401 (re-exported)
from .presets import Recipe
from .resolve import Resolved, check_model_input, option_value, resolve, resume_state  # noqa: F401 (re-exported)

# the options recorded in config.json and every checkpoint
RECORDED = ("store", "images", "method", "augment", "seed", "workers", "limit_steps", "input_size", "amp",
            "train_split", "val_split", "init", "time_budget")


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


def _stem_parameters(model: nn.Module) -> list[nn.Parameter]:
    prefixes = stem_prefixes(model)
    return [p for n, p in model.named_parameters() if n.startswith(prefixes)]


def _lr(opt) -> float:
    return float(opt.param_groups[0]["lr"])


@dataclass
class Training:
    """The live state of a run: the network (`model`; `net`: as trained, DDP-wrapped under
    torchrun), optimisers, schedule, and the counters a checkpoint records."""

    model: nn.Module
    net: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    stem_opt: torch.optim.Optimizer | None
    epoch0: int = 0
    step: int = 0
    clock: dict | None = None
    best: float | None = None


def start(run: Resolved, opts: TrainOptions, env: DistEnv) -> Training:
    """The network (seeded, from `init` or the resumed run), its optimisers and schedule."""
    ckpt_io.seed_everything(opts.seed)
    model = run.cfg.build()
    if run.init is not None:
        load_init(model, opts.init, run.init)
    state = run.state
    if state is not None:
        model.load_state_dict(state["model"], strict=True)
    net = wrap(model, env)
    model = unwrap(net)                         # SyncBN conversion replaces modules: the live ones
    optimizer = make_optimizer(model.parameters(), run.recipe)
    stem_opt = make_optimizer(_stem_parameters(model), run.recipe) if run.recipe.stem_warmup > 0 else None
    t = Training(model, net, optimizer, make_scheduler(optimizer, run.recipe), stem_opt,
                 clock={"wall": 0.0, "train": 0.0})
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        t.scheduler.load_state_dict(state["scheduler"])
        if stem_opt is not None and state.get("stem_optimizer") is not None:
            stem_opt.load_state_dict(state["stem_optimizer"])
        t.epoch0, t.step = int(state["epoch"]), int(state["step"])
        t.clock = dict(state.get("clock", t.clock))
        t.best = state.get("best")
        ckpt_io.set_rng_state(state["rng"])
    return t


class _Budget:
    """Wall time of the run (this session's plus the earlier sessions' `wall_base` seconds) against
    `seconds` (None: no budget); `spent()` agrees over all processes."""

    def __init__(self, seconds: float | None, wall_base: float, env: DistEnv):
        self.seconds, self.base, self.env = seconds, wall_base, env
        self.start = time.perf_counter()

    def wall(self) -> float:
        return self.base + time.perf_counter() - self.start

    def spent(self) -> bool:
        return self.seconds is not None and self.env.all_sum([float(self.wall() >= self.seconds)])[0] > 0


@dataclass
class EpochResult:
    loss_sum: float              # summed over this process's steps
    steps: int
    samples: int
    seconds: float
    stopped: bool                # the time budget ran out during the epoch


def train_one_epoch(t: Training, loader, cfg: ModelConfig, opt: torch.optim.Optimizer, label: str,
                    opts: TrainOptions, env: DistEnv, odg_params, budget: _Budget) -> EpochResult:
    """One pass over this process's share of `loader` (at most `opts.limit_steps` steps), stepping
    `opt` (the whole network's optimiser, or the stem's during the warm-up)."""
    from odg.pipelines.progress import progress_bar

    t.net.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=env.device)
    n_steps = n_samples = 0
    stopped = False
    t0 = time.perf_counter()
    bar = progress_bar(len(loader), label, "batch", opts.progress and env.is_main, leave=False)
    for batch, labels in loader:
        x = prepare(batch, cfg, opts.input_size, env.device, odg_params)
        labels = labels.to(env.device, non_blocking=True)
        with torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=opts.amp == "bf16"):
            logits = t.net(x)
        loss = F.cross_entropy(logits.float(), labels)
        t.optimizer.zero_grad(set_to_none=True)
        if t.stem_opt is not None:
            t.stem_opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        t.step += 1
        n_steps += 1
        n_samples += len(labels)
        loss_sum += loss.detach().double()
        bar.update()
        if env.is_main and opts.progress and n_steps % 10 == 1:
            bar.set_postfix(loss=f"{float(loss):.3f}")
        if opts.limit_steps is not None and n_steps >= opts.limit_steps:
            break
        if budget.spent():
            stopped = True
            break
    bar.close()
    return EpochResult(float(loss_sum), n_steps, n_samples, time.perf_counter() - t0, stopped)


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


def save_epoch(t: Training, run: Resolved, opts: TrainOptions, env: DistEnv, row: dict, options: dict,
               metrics: MetricsLog, rows: list, log) -> None:
    """On rank 0: RUN_DIR/last.pt (and epoch-NNN.pt with `keep_checkpoints`), the row appended to
    metrics.jsonl and `rows`, the accuracy plot redrawn, one log line."""
    if not env.is_main:
        return
    epoch, cfg, recipe = row["epoch"], run.cfg, run.recipe
    state = {
        "format": ckpt_io.FORMAT, "model_config": cfg.to_dict(), "model": t.model.state_dict(),
        "recipe": recipe.to_dict(), "options": options, "optimizer": t.optimizer.state_dict(),
        "stem_optimizer": t.stem_opt.state_dict() if t.stem_opt is not None else None,
        "scheduler": t.scheduler.state_dict(), "epoch": epoch, "step": t.step,
        "sampler_epoch": epoch, "rng": ckpt_io.rng_state(), "clock": dict(t.clock), "best": t.best,
        "partial_epoch": bool(row.get("partial")), "world_size": env.world_size,
    }
    ckpt_io.save(state, run.out / "last.pt")
    if opts.keep_checkpoints:
        ckpt_io.save(state, run.out / f"epoch-{epoch:03d}.pt")
    metrics.append(row)
    rows.append(row)
    plot_accuracy_vs_time({opts.name or cfg.name: rows}, run.out / "accuracy_vs_time.png",
                          title=f"{cfg.name} on {Path(opts.store or opts.images).name} ({recipe.name})")
    def fmt(v):
        return "-" if v is None else f"{v:.2f}"
    log(f"epoch {epoch}/{recipe.epochs} [{row['phase']}] loss {fmt(row['train_loss'])} "
        f"val top-1 {fmt(row['val_top1'])}% top-5 {fmt(row['val_top5'])}% lr {row['lr']:.4g} "
        f"{fmt(row['samples_per_s'])} samples/s, {row['wall_time']:.1f} s")


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
    run = resolve(opts, env.is_main, log)
    cfg, recipe, out = run.cfg, run.recipe, run.out
    t = start(run, opts, env)
    if cfg.ann:
        from ..pretrain.sharpened_relu import set_sharpness

    gen = torch.Generator()
    bs = recipe.batch_size
    pin = env.device.type == "cuda"
    tl = train_loader(run.train_ds, bs, opts.seed, opts.workers, env.rank, env.world_size, gen, pin)
    vl = eval_loader(run.val_ds, opts.eval_batch_size or bs, opts.workers, env.rank, env.world_size,
                     torch.Generator(), pin) if run.val_ds is not None else None

    metrics = MetricsLog(out / "metrics.jsonl")
    options = _begin(run, t, opts, env, metrics, log)
    rows = metrics.rows() if env.is_main else []
    stopped, done = False, t.epoch0
    budget = _Budget(opts.time_budget, t.clock["wall"], env)
    for epoch in range(t.epoch0, recipe.epochs):
        if budget.spent():
            stopped = True                  # the budget ran out during the last evaluation
            log(f"odg train: time budget of {opts.time_budget:g} s reached after epoch {epoch}")
            break
        phase = "stem" if epoch < recipe.stem_warmup else "all"
        opt = t.stem_opt if phase == "stem" else t.optimizer
        if cfg.ann:
            set_sharpness(t.model, epoch)
        tl.sampler.set_epoch(epoch)
        gen.manual_seed(opts.seed * 1_000_003 + epoch)
        label = f"epoch {epoch + 1}/{recipe.epochs}" + (" (stem)" if phase == "stem" else "")
        res = train_one_epoch(t, tl, cfg, opt, label, opts, env, run.odg_params, budget)
        stopped = res.stopped
        if phase == "all":
            t.scheduler.step()
        lr_used = _lr(opt)
        env.broadcast_buffers(t.model)
        totals = env.all_sum([res.loss_sum, res.steps, res.samples, res.seconds])
        scores = (None, None, None)
        if vl is not None:
            scores = evaluate(t.model, vl, cfg, opts.input_size, env, run.odg_params, opts.amp)
        row = _epoch_row(t, epoch, phase, totals, scores, lr_used, stopped, env.world_size, budget)
        save_epoch(t, run, opts, env, row, options, metrics, rows, log)
        env.barrier()
        done = epoch + 1
        if stopped:
            log(f"odg train: time budget of {opts.time_budget:g} s reached during epoch {epoch + 1}")
            break
    return _finish(t, run, opts, env, rows, done, stopped, log)


def _begin(run: Resolved, t: Training, opts: TrainOptions, env: DistEnv, metrics: MetricsLog, log) -> dict:
    """The options the run records; on rank 0, RUN_DIR/config.json, metrics.jsonl cut back to the
    epochs done, and the run's first log line."""
    cfg, recipe, out = run.cfg, run.recipe, run.out
    options = {k: option_value(opts, k) for k in RECORDED}
    if run.state is not None:
        options["init"] = None                  # a resumed run starts from its own last.pt
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
        metrics.truncate(t.epoch0)
        (out / "config.json").write_text(json.dumps(
            {"model_config": cfg.to_dict(), "recipe": recipe.to_dict(), "options": options,
             "world_size": env.world_size, "device": str(env.device)}, indent=2) + "\n")
        n_val = len(run.val_ds) if run.val_ds is not None else 0
        log(f"odg train: {cfg.name}{' (sharpened-ReLU ANN)' if cfg.ann else ''}, input {cfg.input}, "
            f"{len(run.train_ds)} training samples, {n_val} validation, {env.world_size} process(es) on "
            f"{env.device}, recipe {recipe.name}, epochs {t.epoch0 + 1}..{recipe.epochs}")
    return options


def _epoch_row(t: Training, epoch: int, phase: str, totals: list, scores: tuple, lr: float, stopped: bool,
               world_size: int, budget: _Budget) -> dict:
    """The metrics row of epoch `epoch` (0-based) from the summed training figures `totals` (loss,
    steps, samples, seconds) and the validation `scores`; advances the clocks and the best top-1."""
    loss, steps, samples, seconds = totals
    top1, top5, vloss = scores
    t.clock["train"] += seconds / world_size
    t.clock["wall"] = budget.wall()
    row = {"epoch": epoch + 1, "step": t.step, "phase": phase, "wall_time": round(t.clock["wall"], 4),
           "train_time": round(t.clock["train"], 4), "train_loss": loss / steps if steps else None,
           "val_top1": top1, "val_top5": top5, "val_loss": vloss,
           "samples_per_s": samples / (seconds / world_size) if seconds > 0 else None, "lr": lr}
    if stopped:
        row["partial"] = True
    if top1 is not None and (t.best is None or top1 > t.best):
        t.best = top1
    return row


def _finish(t: Training, run: Resolved, opts: TrainOptions, env: DistEnv, rows: list, done: int, stopped: bool,
            log) -> dict:
    """The run's summary; logs the skipped inputs and, under torchrun, checks every rank's weights."""
    out = run.out
    skip_log = out / "skipped.tsv"
    if opts.images is not None and env.is_main and skip_log.exists():
        n_skip = len({ln.split("\t")[1] for ln in skip_log.read_text().splitlines() if "\t" in ln})
        log(f"odg train: {n_skip} inputs skipped (rejected, or under the ODG event floor): see {skip_log}")
    digest = ckpt_io.state_hash(t.model.state_dict())
    if env.distributed:                     # every rank's own weights, gathered: they must agree
        hashes = [None] * env.world_size
        torch.distributed.all_gather_object(hashes, digest)
        if env.is_main:
            (out / "ranks.json").write_text(json.dumps(
                {"world_size": env.world_size, "weights_sha256": hashes}, indent=1) + "\n")
            if len(set(hashes)) != 1:
                log("odg train: WARNING: the processes ended with different weights: " + ", ".join(hashes))
    return {"run_dir": str(out), "rows": rows, "final": rows[-1] if rows else None, "epochs": done,
            "steps": t.step, "model_config": run.cfg.to_dict(), "hash": digest,
            "rank": env.rank, "world_size": env.world_size, "best_top1": t.best, "stopped": stopped}
