"""Per-sample distributions and class balance of a split: from the small per-sample columns the
reader already holds (label, status, shape, count) and, for the events per step, from the fixed-bin
histograms the shard tasks return (`compute.shard_partial`). Keys are documented in docs/STATS.md.

Quantiles of values the client holds are exact (`np.percentile`, linear interpolation). Those of the
events per step are read off the histograms: `q_bin_lo[q][t]` is the lower edge of the bin
`[lo, lo + bin_width)` holding the `ceil(q n)`-th smallest value (n kept samples).
"""
from __future__ import annotations

import math

import numpy as np

from ..store import DISCARDED, KEPT, REJECTED

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
Q_NAMES = ("p5", "p25", "median", "p75", "p95")
STEP_BINS = 500            # about this many bins in each step's histogram (resolution of its quantiles)
SHORT_SIDE_BIN = 16        # pixels per short-side group of "events against the resized shape"
CLASS_SIZE_BINS = 30       # about this many bins in the histogram of class sizes
TOP = 10                   # classes listed as losing most to the floor


def nice_width(upper: int, bins: int) -> int:
    """An integer bin width of 1, 2 or 5 x 10^k giving about `bins` bins over [0, upper]."""
    raw = max(1.0, upper / bins)
    k = 10 ** int(np.floor(np.log10(raw)))
    for m in (1, 2, 5, 10):
        if m * k >= raw:
            return int(m * k)
    return int(10 * k)


def distribution(values) -> dict:
    """mean, std, min, p5, p25, median, p75, p95, max of `values` (all None when empty)."""
    v = np.asarray(values, np.float64)
    keys = ("mean", "std", "min") + Q_NAMES + ("max",)
    if len(v) == 0:
        return dict.fromkeys(keys)
    q = np.percentile(v, [100 * x for x in QUANTILES])
    return dict(zip(keys, [float(v.mean()), float(v.std()), float(v.min())] + [float(x) for x in q] + [float(v.max())]))


def hist_quantile_bin(hist: np.ndarray, q: float) -> int:
    """Index of the histogram bin holding the ceil(q n)-th smallest value (n = hist.sum() > 0)."""
    n = int(hist.sum())
    rank = max(1, math.ceil(q * n))
    return int(np.searchsorted(np.cumsum(hist), rank))


def step_spread(hist: np.ndarray, sums: np.ndarray, sumsq: np.ndarray, n: int, width: int) -> dict:
    """Events per kept sample at each step: exact mean and std; quantiles from the histograms `hist` `[T, bins]`."""
    T = len(sums)
    if n == 0:
        return {"mean": [None] * T, "std": [None] * T, "bin_width": width, "q_bin_lo": dict.fromkeys(Q_NAMES)}
    mean = sums / n
    std = np.sqrt(np.maximum(sumsq / n - mean ** 2, 0.0))
    lo = {name: [int(hist_quantile_bin(hist[t], q) * width) for t in range(T)] for q, name in zip(QUANTILES, Q_NAMES)}
    return {"mean": mean.tolist(), "std": std.tolist(), "bin_width": int(width), "q_bin_lo": lo}


def on_off(counts: np.ndarray) -> dict:
    """ON/OFF ratio per kept sample (`counts` `[n, 2]`): its distribution over samples with OFF events,
    how many have none (`undefined`), the ratio of the totals and the ON fraction ON / (ON + OFF)."""
    on, off = counts[:, 0].astype(np.float64), counts[:, 1].astype(np.float64)
    ok = off > 0
    both = on + off
    return {"ratio": distribution(on[ok] / off[ok]), "undefined": int((~ok).sum()),
            "of_totals": float(on.sum() / off.sum()) if off.sum() else None,
            "on_fraction": distribution(on[both > 0] / both[both > 0])}


def events_vs_shape(total: np.ndarray, shapes: np.ndarray) -> dict:
    """Events of kept samples against their resized shape (a, b) (ES-UCF101: the clip's (H, W))."""
    a, b = shapes[:, 0].astype(np.int64), shapes[:, 1].astype(np.int64)
    area = a * b
    short = np.minimum(a, b)
    t = total.astype(np.float64)
    r = None
    if len(t) >= 2 and t.std() > 0 and area.std() > 0:
        r = float(np.corrcoef(t, area)[0, 1])
    groups = []
    for g in np.unique(short // SHORT_SIDE_BIN).tolist():
        m = short // SHORT_SIDE_BIN == g
        groups.append({"short_side": [g * SHORT_SIDE_BIN, (g + 1) * SHORT_SIDE_BIN], "kept": int(m.sum()),
                       "mean_events": float(t[m].mean()), "std_events": float(t[m].std())})
    pos = area > 0
    return {"pearson_events_area": r, "events_per_pixel": distribution(t[pos] / area[pos]),
            "short_side_bin": SHORT_SIDE_BIN, "by_short_side": groups}


def class_balance(labels: np.ndarray, status: np.ndarray, classes: int, names: list) -> dict:
    """Kept / discarded / rejected per class (labels outside the class table count as `unlabelled`),
    the distribution and histogram of class sizes (kept samples of each class with any sample),
    and the `TOP` classes losing the largest fraction of their samples to the event floor."""
    lab = labels.astype(np.int64)
    inside = (lab >= 0) & (lab < classes)
    per = {k: np.bincount(lab[inside & (status == code)], minlength=classes)[:classes]
           for k, code in (("kept", KEPT), ("discarded", DISCARDED), ("rejected", REJECTED))}
    unlabelled = {k: int((~inside & (status == code)).sum())
                  for k, code in (("kept", KEPT), ("discarded", DISCARDED), ("rejected", REJECTED))}
    present = (per["kept"] + per["discarded"] + per["rejected"]) > 0
    sizes = per["kept"][present]
    width = nice_width(int(sizes.max()) if len(sizes) else 0, CLASS_SIZE_BINS)
    nb = (int(sizes.max()) // width + 1) if len(sizes) else 1
    hist = np.bincount(sizes // width, minlength=nb) if len(sizes) else np.zeros(1, np.int64)
    kd = per["kept"] + per["discarded"]
    losing = [k for k in range(classes) if per["discarded"][k]]
    frac = {k: per["discarded"][k] / kd[k] for k in losing}
    losing.sort(key=lambda k: (-frac[k], -int(per["discarded"][k]), k))

    def entry(k):
        wnid, name = names[k] if k < len(names) else (None, str(k))
        return {"label": k, "wnid": wnid, "name": name, "kept": int(per["kept"][k]),
                "discarded": int(per["discarded"][k]), "rejected": int(per["rejected"][k]),
                "discard_fraction": float(frac[k])}
    return {"discarded": per["discarded"].tolist(), "rejected": per["rejected"].tolist(), "unlabelled": unlabelled,
            "classes_present": int(present.sum()),
            "class_sizes": dict(distribution(sizes), histogram={
                "bin_width": width, "edges": (width * np.arange(len(hist) + 1)).tolist(), "classes": hist.tolist()}),
            "most_discarded": [entry(k) for k in losing[:TOP]]}
