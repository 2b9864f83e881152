"""Pretraining as a bridge: from scratch vs pipeS / pipeD for the same wall-time budget.

Two tasks, side by side, each method given the same wall-clock budget (--budget seconds):

(a) static task: the split's source images (ILSVRC2012 JPEGs, read from the folder the store was
    built from; the time-averaged event frames when the sources are not reachable), fed to a LIF
    SNN repeated over T = 6 steps with the fixed leak 0.25 of pipeS.
    - scratch: that SNN trained from random weights (the published from-scratch recipe, Adam);
    - pipeS:   the sharpened-ReLU ANN (preset pipes-ann) for --ann-share of the budget, its weights
               transferred to the SNN, which is fine-tuned (preset pipes-finetune) for the rest.
               The ANN's time counts against the budget; its curve is drawn dotted.
(b) event task: the store's event frames.
    - scratch: the LIF SNN on events from random weights (Adam, the published recipe);
    - pipeD:   the network pretrained on static images in (a) (standing in for an ImageNet-pretrained
               3-channel network, whose training time the paper does not count either: it is
               listed separately in the table), its stem swapped for a fresh 2-channel event stem,
               the stem trained alone for one epoch, then everything (preset piped).

Prints a table and writes OUT/accuracy_vs_time.png (the two tasks side by side), OUT/results.json
and each run's RUN_DIR (metrics.jsonl, checkpoints).

Without --store, a store is built (once, cached under $TMPDIR/odg-bench-pretrain) from the JPEGs
bundled in pipelines/data/sample (7 photographs of 7 classes): the originals and their mirror
images for training, centre crops for validation. On so little data the accuracies mean little;
the benchmark shows the machinery and the relative cost of the phases. Give --store for a real
store (an ES-ImageNet store built from a folder, so that its source JPEGs can be read).

The LIF networks use the opt-in surrogate window 0.75 (--surrogate-halfwidth): with the published
0.5 a LIF-ResNet's blocks pass no gradient and only the classifier would learn.

    python benchmarks/bench_pretrain.py --budget 20
    python benchmarks/bench_pretrain.py --store es.zarr --model lif_resnet18 \
        --input-size 112 --budget 3600
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sample_store(cache: Path) -> str:
    """The bundled sample as an ES-ImageNet store with train (originals + mirrors) and val (crops)."""
    import cv2
    import numpy as np

    from odg.pipelines.cli import main as odg
    url = cache / "sample.zarr"
    if (url / "zarr.json").exists() and (cache / "done").exists():
        return str(url)
    tree = cache / "tree"
    for jpg in sorted((ROOT / "pipelines" / "data" / "sample" / "train").glob("*/*.JPEG")):
        img = cv2.imread(str(jpg), cv2.IMREAD_COLOR)
        wnid = jpg.parent.name
        h, w = img.shape[:2]
        for split in ("train", "val"):
            (tree / split / wnid).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tree / "train" / wnid / jpg.name), img)
        cv2.imwrite(str(tree / "train" / wnid / f"m_{jpg.name}"), np.ascontiguousarray(img[:, ::-1]))
        cv2.imwrite(str(tree / "val" / wnid / f"c_{jpg.name}"), img[h // 8:h - h // 8, w // 8:w - w // 8])
    for split in ("train", "val"):
        if odg(["build", "imagenet", str(tree), str(url), "--split", split, "--workers", "1", "--quiet"]) != 0:
            raise SystemExit(f"building the sample store's {split} split failed")
    (cache / "done").write_text("ok\n")
    return str(url)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", help="an ES-ImageNet store with train and val splits (default: the bundled sample)")
    ap.add_argument("--model", default="lif_tiny", help="a LIF ResNet: lif_tiny (default), lif_resnet18, ...")
    ap.add_argument("--budget", type=float, default=30.0, help="wall-clock seconds per method and task (default 30)")
    ap.add_argument("--ann-share", type=float, default=0.5, help="pipeS: share of the budget for the ANN (default 0.5)")
    ap.add_argument("--input-size", type=int, default=32, help="frames/images average-pooled to S x S (default 32)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--surrogate-halfwidth", type=float, default=0.75)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="output folder (default $TMPDIR/odg-bench-pretrain/run)")
    args = ap.parse_args(argv)

    import torch

    from odg.models import LIFParams
    from odg.models.pretrain import transfer_checkpoint
    from odg.models.train import (
        ModelConfig,
        TrainOptions,
        fixed_decay_params,
        get_preset,
        load_checkpoint,
        plot_accuracy_vs_time,
        save_checkpoint,
        train,
    )
    from odg.models.train.inputs import SourceImages
    from odg.pipelines.store import open_store

    torch.set_num_threads(args.threads)
    cache = Path(tempfile.gettempdir()) / "odg-bench-pretrain"
    cache.mkdir(parents=True, exist_ok=True)
    store = args.store or sample_store(cache)
    out = Path(args.out) if args.out else cache / "run"
    out.mkdir(parents=True, exist_ok=True)
    st = open_store(store)
    n_classes = len(st.classes)
    try:
        SourceImages(store, "train"), SourceImages(store, "val")
        static = "rgb"
    except ValueError as e:
        print(f"note: {e}; the static task uses the time-averaged event frames instead", file=sys.stderr)
        static = "mean"
    ch = {"rgb": 3, "mean": 2}[static]
    wide = dict(surrogate_halfwidth=args.surrogate_halfwidth)
    pipes_params = dataclasses.asdict(fixed_decay_params(0.25, **wide))
    B = args.budget

    def run(name, cfg, preset, budget, init=None, **recipe):
        recipe = get_preset(preset).override(epochs=100000, batch_size=args.batch_size, **recipe)
        t = time.perf_counter()
        res = train(TrainOptions(store=store, out=str(out / name), recipe=recipe, model=cfg, init=init,
                                 input_size=args.input_size, time_budget=budget, seed=args.seed,
                                 workers=args.workers, progress=False, name=name, log=lambda m: None))
        res["elapsed"] = time.perf_counter() - t
        f = res["final"] or {}
        print(f"  {name:<16} {res['epochs']:>4} epochs {res['steps']:>5} steps  {res['elapsed']:6.1f} s  "
              f"top-1 {f.get('val_top1', float('nan')):5.1f}%", file=sys.stderr)
        return res

    for name in [n for n in os.listdir(out) if (out / n / "last.pt").exists()]:
        for f in ("last.pt", "metrics.jsonl"):
            (out / name / f).unlink(missing_ok=True)         # fresh runs every time

    print(f"store {store}: {len(st['train'])} train / {len(st['val'])} val samples, {n_classes} classes; "
          f"model {args.model}, input {args.input_size}x{args.input_size}, budget {B:g} s per method",
          file=sys.stderr)
    results = {}
    # (a) static task
    snn_static = ModelConfig(args.model, n_classes, in_channels=ch, input=static, steps=6, neuron=pipes_params)
    results["static/scratch"] = run("static-scratch", snn_static, "es-imagenet-resnet18", B)
    ann_cfg = ModelConfig(args.model, n_classes, in_channels=ch, input=static,
                          neuron=dataclasses.asdict(LIFParams(learn_decay=False, **wide)), ann=True)
    ann = run("static-pipeS-ann", ann_cfg, "pipes-ann", B * args.ann_share)
    t0 = time.perf_counter()
    ck, report = transfer_checkpoint(load_checkpoint(out / "static-pipeS-ann" / "last.pt"),
                                     surrogate_halfwidth=args.surrogate_halfwidth)
    init = save_checkpoint(ck, out / "pipeS-init.pt")
    t_transfer = time.perf_counter() - t0
    left = max(B - ann["final"]["wall_time"] - t_transfer, 1.0)
    results["static/pipeS"] = run("static-pipeS-ft", None, "pipes-finetune", left, init=str(init))
    results["static/pipeS"]["pretrain_s"] = ann["final"]["wall_time"] + t_transfer
    results["static/pipeS-ann"] = ann
    # (b) event task
    snn_events = ModelConfig(args.model, n_classes, in_channels=2, input="events",
                             neuron=dataclasses.asdict(LIFParams(**wide)))
    results["events/scratch"] = run("events-scratch", snn_events, "es-imagenet-resnet18", B)
    src = load_checkpoint(out / "static-pipeS-ft" / "last.pt")
    ck, rep_d = transfer_checkpoint(src, stem=2, learn_decay=True)
    init_d = save_checkpoint(ck, out / "pipeD-init.pt")
    results["events/pipeD"] = run("events-pipeD", None, "piped", B, init=str(init_d))
    results["events/pipeD"]["pretrain_s"] = (results["static/pipeS"]["pretrain_s"]
                                             + results["static/pipeS"]["final"]["wall_time"])

    # plot: the two tasks side by side
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(12, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    plot_accuracy_vs_time({"scratch SNN": results["static/scratch"]["rows"],
                           "pipeS SNN (fine-tune)": results["static/pipeS"]["rows"]}, None,
                          title=f"static task ({static}, T = 6): same {B:g} s budget", ax=ax1,
                          offsets={"pipeS SNN (fine-tune)": results["static/pipeS"]["pretrain_s"]})
    ann_rows = [r for r in ann["rows"] if r.get("val_top1") is not None]
    scale = 60.0 if max(B, results["static/pipeS"]["pretrain_s"] + results["static/pipeS"]["final"]["wall_time"]) >= 180 else 1.0
    ax1.plot([r["wall_time"] / scale for r in ann_rows], [r["val_top1"] for r in ann_rows], ":", color="C1",
             label="pipeS ANN top-1")
    ax1.legend(fontsize=7)
    plot_accuracy_vs_time({"scratch SNN": results["events/scratch"]["rows"],
                           "pipeD SNN": results["events/pipeD"]["rows"]}, None,
                          title=f"event task: same {B:g} s budget (pipeD's pretraining not counted)", ax=ax2)
    fig.suptitle(f"{args.model} on {Path(store).name}: from scratch vs pretraining as a bridge", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_time.png", format="png")

    # table
    def time_to(key, target, offset=0.0):
        """Wall seconds (from the task's start) until val top-1 first reached `target`, or None."""
        for r in results[key]["rows"]:
            if r.get("val_top1") is not None and r["val_top1"] >= target - 1e-9:
                return offset + r["wall_time"]
        return None

    print(f"\n{'task':<8} {'method':<22} {'pretrain s':>10} {'train s':>8} {'epochs':>6} {'steps':>6} "
          f"{'top-1 %':>8} {'best %':>7} {'top-5 %':>8} {'s to scratch best':>18}")
    labels = {"static/scratch": ("static", "scratch"), "static/pipeS-ann": ("static", "pipeS ANN (in budget)"),
              "static/pipeS": ("static", "pipeS SNN fine-tune"), "events/scratch": ("events", "scratch"),
              "events/pipeD": ("events", "pipeD")}
    summary = {}
    for key in ("static/scratch", "static/pipeS-ann", "static/pipeS", "events/scratch", "events/pipeD"):
        r = results[key]
        f = r["final"] or {}
        task, method = labels[key]
        pre = r.get("pretrain_s")
        pre_txt = "-" if pre is None else (f"{pre:.1f}" + ("*" if key == "events/pipeD" else ""))
        target = results[f"{task}/scratch"]["best_top1"] or 0.0
        off = pre if key == "static/pipeS" else 0.0
        reach = time_to(key, target, off) if key != "static/pipeS-ann" else None
        reach_txt = "-" if reach is None else f"{reach:.1f}"
        print(f"{task:<8} {method:<22} {pre_txt:>10} {f.get('wall_time', 0):>8.1f} {r['epochs']:>6} "
              f"{r['steps']:>6} {f.get('val_top1', float('nan')):>8.1f} {r['best_top1'] or 0:>7.1f} "
              f"{f.get('val_top5', float('nan')):>8.1f} {reach_txt:>18}")
        summary[key] = {"seconds_to_scratch_best": reach, "pretrain_s": pre, "train_s": f.get("wall_time"),
                        "epochs": r["epochs"], "steps": r["steps"],
                        "val_top1": f.get("val_top1"), "best_top1": r["best_top1"], "val_top5": f.get("val_top5")}
    print("\n's to scratch best': wall seconds from the task's start (pipeS: ANN time included) until the "
          "validation top-1 first reached the best top-1 of the from-scratch run of the same task.")
    print(f"pipeS: the ANN's time is inside the static task's budget ({B:g} s in all); "
          f"* pipeD's pretraining (the static-task pipeS run) is not inside the event task's budget.")
    print(f"transfer (pipeS): {report.counts()}; stem swap (pipeD): {rep_d.counts()}")
    (out / "results.json").write_text(json.dumps({"store": store, "model": args.model, "budget_s": B,
                                                  "static_input": static, "results": summary}, indent=1) + "\n")
    print(f"wrote {out / 'accuracy_vs_time.png'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
