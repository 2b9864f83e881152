"""Per-epoch metrics (RUN_DIR/metrics.jsonl) and the accuracy-against-wall-time plot.

metrics.jsonl holds one JSON object per epoch:

    epoch        epochs completed (1-based)
    step         optimiser steps taken so far
    phase        "stem" (pipeD stem warm-up: only the stem trained) or "all"
    wall_time    seconds since the run started (over resumes), training and evaluation included
    train_time   seconds spent in training steps only (over resumes)
    train_loss   mean cross-entropy over the epoch's training steps (all processes)
    val_top1, val_top5   % of the validation split's kept samples (null without a val split)
    val_loss     mean cross-entropy on the validation split
    samples_per_s  training samples per second of training time, all processes together
    lr           learning rate during the epoch
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

FIELDS = ("epoch", "step", "phase", "wall_time", "train_time", "train_loss", "val_top1", "val_top5",
          "val_loss", "samples_per_s", "lr")


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> list[int]:
    """Number of samples whose label is among the top-k logits, for each k (k capped at classes)."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hit = top == labels.view(-1, 1)
    return [int(hit[:, :min(k, kmax)].any(dim=1).sum()) for k in ks]


class MetricsLog:
    """Appends rows to `path` (JSON lines); `truncate(epoch)` drops rows past a resumed epoch."""

    def __init__(self, path):
        self.path = Path(path)

    def rows(self) -> list[dict]:
        return read_metrics(self.path)

    def truncate(self, epoch: int) -> None:
        if not self.path.exists():
            return
        keep = [r for r in self.rows() if int(r.get("epoch", 0)) <= epoch]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in keep))

    def append(self, row: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def read_metrics(path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


ACC_TOP = 105          # the accuracy axis ends here, leaving room above 100 % for curves and markers


def plot_accuracy_vs_time(series: dict[str, list[dict]], path, title: str = "", offsets: dict | None = None,
                          ax=None, loss_ax=None):
    """Validation accuracy (top-1 solid, top-5 dashed) and training loss against wall time
    (seconds, or minutes past 3 minutes), one colour per entry of `series` (label -> metrics rows).

    `offsets`: seconds added to a series' times (e.g. the pretraining it needed). The accuracy
    axis runs from 0 to `ACC_TOP` % (ticks up to 100). Without `ax` a figure with two panels,
    accuracy above and training loss below, is written to `path` (PNG) and beside it as SVG
    (`path` with `.svg`); with `ax` (a matplotlib Axes) the accuracy is drawn there, and the loss
    on `loss_ax` if given. Returns (accuracy Axes, loss Axes or None). Uses
    `matplotlib.figure.Figure` with the Agg canvas: no global backend change."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = None
    if ax is None:
        fig = Figure(figsize=(7, 6.2), dpi=110)
        FigureCanvasAgg(fig)
        ax, loss_ax = fig.subplots(2, 1, sharex=True, height_ratios=[1.6, 1])
    offsets = offsets or {}
    longest = max((offsets.get(k, 0.0) + r["wall_time"] for k, rows in series.items() for r in rows), default=0.0)
    scale, unit = (60.0, "min") if longest >= 180 else (1.0, "s")
    for i, (label, rows) in enumerate(series.items()):
        pts = [r for r in rows if r.get("val_top1") is not None]
        colour = f"C{i}"
        if loss_ax is not None:
            lp = [r for r in rows if r.get("train_loss") is not None]
            loss_ax.plot([(offsets.get(label, 0.0) + r["wall_time"]) / scale for r in lp],
                         [r["train_loss"] for r in lp], "-o", color=colour, ms=3, label=label)
        if not pts:
            ax.plot([], [], color=colour, label=f"{label} (no val)")
            continue
        t = [(offsets.get(label, 0.0) + r["wall_time"]) / scale for r in pts]
        ax.plot(t, [r["val_top1"] for r in pts], "-o", color=colour, ms=3, label=f"{label} top-1")
        ax.plot(t, [r["val_top5"] for r in pts], "--", color=colour, alpha=0.6, label=f"{label} top-5")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_ylim(0, ACC_TOP)
    ax.set_yticks(range(0, 101, 20))
    ax.axhline(100, color="0.6", lw=0.8, ls=":")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    bottom = ax
    if loss_ax is not None:
        loss_ax.set_ylabel("training loss (cross-entropy)")
        loss_ax.set_ylim(bottom=0)
        loss_ax.grid(alpha=0.3)
        loss_ax.legend(fontsize=7)
        bottom = loss_ax
    bottom.set_xlabel(f"wall time ({unit})")
    if loss_ax is not None and loss_ax is not ax and fig is not None:
        ax.tick_params(labelbottom=False)
    if fig is not None:
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
        fig.savefig(path.with_suffix(".svg"), format="svg")
    return ax, loss_ax
