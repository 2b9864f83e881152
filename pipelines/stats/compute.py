"""The numbers of `stats.json`: one Dask task per shard returns small partial sums, merged on the client.

A task reads its shard whole (`SplitReader.iter_shards`) and returns fixed-size sums: samples
per status, events per step and polarity, each step's histogram of events per sample and sum of
squares, the per-pixel density map, per-class sums, the events-per-sample histogram (fixed bins
chosen on the client from the count column), the (a, b) shape counts, the published npz size of
its sampled samples and a consistency check of the words against the count column. Nothing per
sample leaves a task, so the client's memory does not grow with the store; order statistics
(exact quantiles), the per-sample distributions and the class balance come from the small
per-sample columns the reader already holds (`distributions`). Keys are documented in docs/STATS.md.
"""
from __future__ import annotations

import io
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from odg.bits import bit_counts

from ..store import DISCARDED, KEPT, REJECTED, open_store
from . import distributions as dist
from .distributions import nice_width

FORMAT = "odg-stats"
FORMAT_VERSION = 1
NPZ_SAMPLE = 2000          # published npz size: every kept sample up to this many, else this many evenly spaced
HIST_BINS = 60             # about this many bins in the events-per-sample histogram
TOP = 10                   # classes named at each end


def class_table(store) -> list[tuple[str | None, str]]:
    """(wnid or None, name) per class index, from the store's class list (`[k, wnid, name]` or `[k, name]`)."""
    out = []
    for entry in store.classes:
        e = list(entry) if isinstance(entry, (list, tuple)) else [entry]
        if len(e) >= 3:
            out.append((str(e[1]), str(e[2])))
        else:
            out.append((None, str(e[-1])))
    return out


def npz_rows(kept: np.ndarray, limit: int = NPZ_SAMPLE) -> np.ndarray:
    """The kept samples whose published npz size is measured: all, or `limit` evenly spaced ones
    (`kept[round(linspace(0, n - 1, limit))]`), deterministic."""
    if len(kept) <= limit:
        return kept
    return kept[np.round(np.linspace(0, len(kept) - 1, limit)).astype(np.int64)]


def published_npz_size(layout, words: np.ndarray, shape) -> int:
    """Bytes of the sample's file in the published layout (`np.savez_compressed`, as `odg export` writes)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **layout.published_arrays(words, shape))
    return len(buf.getvalue())


# -- the per-shard task ---------------------------------------------------------------------

def shard_partial(job: dict) -> dict:
    """Worker task: the partial sums of one shard (see the module docstring)."""
    store = open_store(job["url"])
    sr = store.split(job["split"], allow_incomplete=True, check=False)    # the client checked the split
    shard = next(sr.iter_shards([job["shard"]]))
    steps, C, width, nbins = job["steps"], job["classes"], job["bin_width"], job["bins"]
    sw, sb = job["step_width"], job["step_bins"]
    status = shard.status
    kept = status == KEPT
    disc = status == DISCARDED
    per, density, stray = bit_counts(shard.words, steps, kept)
    words_count = per.sum(1)                                   # [n, 2] from the words
    mismatch = int((words_count != shard.count).any(1).sum())
    total = shard.count.astype(np.int64).sum(1)
    label = shard.label.astype(np.int64)
    ok = kept & (label >= 0) & (label < C)
    class_n = np.bincount(label[ok], minlength=C)[:C]
    class_sum = np.zeros(C, np.int64)
    np.add.at(class_sum, label[ok], total[ok])
    hist_kept = np.bincount(np.minimum(total[kept] // width, nbins - 1), minlength=nbins)
    hist_disc = np.bincount(np.minimum(total[disc] // width, nbins - 1), minlength=nbins)
    per_step = per[kept].sum(2)                                # [n_kept, T]: events at each step
    step_hist = np.stack([np.bincount(np.minimum(per_step[:, t] // sw, sb - 1), minlength=sb) for t in range(steps)])
    shapes = Counter((int(a), int(b)) for a, b in shard.shape[kept])
    npz_bytes, npz_n = 0, 0
    if job["npz_rows"]:
        for row in job["npz_rows"]:
            j = row - shard.start
            npz_bytes += published_npz_size(store.layout, shard.words[j], shard.shape[j])
            npz_n += 1
    return {"n": np.array([kept.sum(), disc.sum(), (status == REJECTED).sum()], np.int64),
            "per_step_pol": per[kept].sum(0), "step_hist": step_hist, "step_sumsq": (per_step ** 2).sum(0),
            "density": density, "class_n": class_n, "class_sum": class_sum,
            "hist_kept": hist_kept, "hist_disc": hist_disc, "shapes": shapes, "npz_bytes": npz_bytes,
            "npz_n": npz_n, "mismatch": mismatch, "stray": stray}


def merge(acc: dict | None, part: dict) -> dict:
    if acc is None:
        return {k: (Counter(v) if isinstance(v, Counter) else v) for k, v in part.items()}
    for k, v in part.items():
        if isinstance(v, Counter):
            acc[k].update(v)
        else:
            acc[k] = acc[k] + v
    return acc


# -- per split: preparation on the client, then the derived numbers ------------------------

@dataclass
class SplitJob:
    """The client's view of one split while its tasks run."""
    name: str
    reader: object
    rows: np.ndarray            # bool [n]: samples of completed shards (all, for a complete split)
    shards: list
    jobs: list
    npz_measured: int
    acc: dict | None = None
    arrays: dict = field(default_factory=dict)


def prepare_split(store, split: str, npz_limit: int = NPZ_SAMPLE, allow_incomplete: bool = False) -> SplitJob:
    sr = store.split(split, allow_incomplete)      # an incomplete split: refused, or its built shards
    K = sr.shard_size
    shards, rows = sr.built_shards, sr.built_rows
    status, counts = sr.statuses, sr.counts
    total = counts.astype(np.int64).sum(1)
    counted = rows & (status != REJECTED)
    upper = int(total[counted].max()) if counted.any() else 0
    width = nice_width(upper, HIST_BINS)
    nbins = upper // width + 1
    sw = nice_width(upper, dist.STEP_BINS)           # a step holds at most the sample's events
    sample = npz_rows(np.flatnonzero(rows & (status == KEPT)), npz_limit)
    by_shard: dict[int, list] = {}
    for r in sample.tolist():
        by_shard.setdefault(r // K, []).append(r)
    base = {"url": store.url, "split": split, "steps": store.layout.steps, "classes": max(1, len(store.classes)),
            "bin_width": width, "bins": nbins, "step_width": sw, "step_bins": upper // sw + 1}
    jobs = [dict(base, shard=s, npz_rows=by_shard.get(s, [])) for s in shards]
    sj = SplitJob(split, sr, rows, shards, jobs, len(sample))
    sj.arrays["bin_width"], sj.arrays["bins"] = width, nbins
    sj.arrays["step_width"], sj.arrays["step_bins"] = sw, upper // sw + 1
    return sj


def _summary(values: np.ndarray) -> dict:
    """Events per sample: `dist.distribution` (exact quantiles), min and max as integers."""
    out = dist.distribution(values)
    if len(values):
        out["min"], out["max"] = int(values.min()), int(values.max())
    return out


def reason_group(status: int, reason: str) -> str:
    """Reasons grouped for counting: a discard's '<n> events < <m>' becomes 'fewer than <m> events';
    other numbers become '#' (sizes, offsets), so one cause is one row."""
    m = re.fullmatch(r"\s*\d+ events < (\d+)\s*", reason)
    if status == DISCARDED and m:
        return f"fewer than {m.group(1)} events"
    return re.sub(r"\d+(\.\d+)?", "#", reason).strip() or "(no reason recorded)"


def _take(sr, name: str, idx: np.ndarray) -> list:
    return [str(v) for v in sr.take(name, idx)]


def finish_split(store, sj: SplitJob, store_bytes: int) -> dict:
    """The split's section of stats.json from the merged sums and the small per-sample columns."""
    sr, acc, T = sj.reader, sj.acc, store.layout.steps
    status, counts, labels, shapes = sr.statuses, sr.counts, sr.labels, sr.shapes
    rows = sj.rows
    kept = rows & (status == KEPT)
    nk = int(kept.sum())
    total = counts.astype(np.int64).sum(1)
    H, W = sr.array("words").shape[1:3]
    if acc is None:                                            # no completed shard
        acc = {"n": np.zeros(3, np.int64), "per_step_pol": np.zeros((T, 2), np.int64),
               "density": np.zeros((H, W), np.int64), "class_n": np.zeros(len(store.classes), np.int64),
               "class_sum": np.zeros(len(store.classes), np.int64), "hist_kept": np.zeros(sj.arrays["bins"], np.int64),
               "hist_disc": np.zeros(sj.arrays["bins"], np.int64), "shapes": Counter(), "npz_bytes": 0, "npz_n": 0,
               "mismatch": 0, "stray": 0, "step_hist": np.zeros((T, sj.arrays["step_bins"]), np.int64),
               "step_sumsq": np.zeros(T, np.int64)}
    d = max(nk, 1)
    psp = acc["per_step_pol"]
    out: dict = {}
    out["samples"] = {"total": int(rows.sum()), "kept": int(acc["n"][0]), "discarded": int(acc["n"][1]),
                      "rejected": int(acc["n"][2]), "planned": len(sr), "complete": sr.complete,
                      "shards": sr.n_shards, "shards_counted": len(sj.shards)}
    out["events_per_sample"] = _summary(total[kept])
    out["events_total"] = int(psp.sum())
    out["events_per_step"] = (psp.sum(1) / d).tolist()
    out["events_per_step_polarity"] = (psp / d).tolist()
    out["events_per_polarity"] = (psp.sum(0) / d).tolist()
    vol = store.layout.event_volume(shapes[kept])
    out["event_rate"] = float((total[kept] / vol).mean()) if nk else None
    width = sj.arrays["bin_width"]
    out["events_histogram"] = {"bin_width": width, "edges": (width * np.arange(sj.arrays["bins"] + 1)).tolist(),
                               "kept": acc["hist_kept"].tolist(), "discarded": acc["hist_disc"].tolist()}
    # per-sample distributions (kept samples)
    rates = total[kept] / vol
    out["event_rate_distribution"] = dist.distribution(rates)
    out["events_per_step_spread"] = dist.step_spread(acc["step_hist"], psp.sum(1).astype(np.float64),
                                                     acc["step_sumsq"].astype(np.float64), nk, sj.arrays["step_width"])
    out["on_off"] = dist.on_off(counts[kept])
    out["events_vs_shape"] = dist.events_vs_shape(total[kept], shapes[kept])
    on, off = counts[kept, 0], counts[kept, 1]
    sj.arrays.update(kept_totals=total[kept], rates=rates, on_off_ratio=on[off > 0] / off[off > 0],
                     kept_shapes=shapes[kept], step_spread=out["events_per_step_spread"])
    # per class
    names = class_table(store)
    cn, cs = acc["class_n"], acc["class_sum"]
    means = [float(cs[k] / cn[k]) if cn[k] else None for k in range(len(cn))]
    present = [k for k in range(len(cn)) if cn[k]]
    order = sorted(present, key=lambda k: (means[k], k))

    def entry(k):
        wnid, name = names[k] if k < len(names) else (None, str(k))
        return {"label": k, "wnid": wnid, "name": name, "kept": int(cn[k]), "mean_events": means[k]}
    out["per_class"] = {"classes": len(cn), "with_kept_samples": len(present), "kept": cn.tolist(),
                        "mean_events": means, "highest": [entry(k) for k in order[::-1][:TOP]],
                        "lowest": [entry(k) for k in order[:TOP]],
                        **dist.class_balance(labels[rows], status[rows], len(cn), names)}
    # spatial density: events per kept sample at each pixel of the window / clip
    dens = acc["density"] / d
    r, c = np.unravel_index(int(np.argmax(dens)), dens.shape)
    origin, frame = store.layout.density_frame(int(H), int(W))
    out["density"] = {"shape": [int(H), int(W)], "mean": float(dens.mean()), "min": float(dens.min()),
                      "max": float(dens.max()), "argmax": [int(r), int(c)], "axes": {"x": "column", "y": "row"},
                      "origin": origin, "frame": frame,
                      "argmax_xy": None if origin is None else {"x": origin["x"] + int(c), "y": origin["y"] + int(r)}}
    sj.arrays["density"] = dens
    # shapes
    sc = acc["shapes"]
    common = sorted(sc.items(), key=lambda kv: (-kv[1], kv[0]))
    out["shapes"] = {"distinct": len(sc), "landscape": sum(v for (a, b), v in sc.items() if a < b),
                     "portrait": sum(v for (a, b), v in sc.items() if a > b),
                     "square": sum(v for (a, b), v in sc.items() if a == b),
                     "most_common": [[a, b, v] for (a, b), v in common[:TOP]]}
    sj.arrays["shapes"] = sc
    # discards and rejects
    disc_idx = np.flatnonzero(rows & (status == DISCARDED))
    rej_idx = np.flatnonzero(rows & (status == REJECTED))
    disc_reasons = _take(sr, "reason", disc_idx)
    rej_reasons = _take(sr, "reason", rej_idx)
    rej_names = _take(sr, "name", rej_idx)
    out["discards_by_reason"] = dict(sorted(Counter(reason_group(DISCARDED, r) for r in disc_reasons).items(),
                                            key=lambda kv: (-kv[1], kv[0])))
    out["rejects_by_reason"] = dict(sorted(Counter(reason_group(REJECTED, r) for r in rej_reasons).items(),
                                           key=lambda kv: (-kv[1], kv[0])))
    out["rejects"] = [{"index": int(i), "name": nm, "reason": rs} for i, nm, rs in zip(rej_idx, rej_names, rej_reasons)]
    sj.arrays["discards"] = list(zip(disc_idx.tolist(), _take(sr, "name", disc_idx[:50]), disc_reasons[:50]))
    # sizes
    npz_n = int(acc["npz_n"])
    npz_mean = acc["npz_bytes"] / npz_n if npz_n else None
    method = ("all kept samples" if npz_n == nk else
              f"{npz_n} kept samples evenly spaced over the split (indices round(linspace(0, {nk - 1}, {npz_n})) "
              "of the kept samples), mean scaled to all kept samples")
    npz_total = npz_mean * nk if npz_mean is not None else None
    if npz_n == nk:
        npz_total = float(acc["npz_bytes"])
    out["bytes"] = {"store": int(store_bytes), "published_npz": npz_total, "npz_measured": npz_n,
                    "npz_method": method if nk else "no kept samples"}
    out["bytes_per_sample"] = {"store": store_bytes / nk if nk else None, "published_npz": npz_mean,
                               "store_over_npz": (store_bytes / nk) / npz_mean if nk and npz_mean else None}
    out["consistency"] = {"count_column_mismatches": int(acc["mismatch"]), "stray_bits": int(acc["stray"])}
    sj.arrays["per_step_pol"] = psp / d
    return out


def totals(store, splits: dict, parts: dict) -> dict:
    """Top-level totals over all splits (same keys as a split where they add up)."""
    nk = sum(s["samples"]["kept"] for s in splits.values())
    d = max(nk, 1)
    T = store.layout.steps
    psp = sum((np.asarray(s["events_per_step_polarity"]) * s["samples"]["kept"] for s in splits.values()),
              np.zeros((T, 2)))
    kept_totals, vols = [], []
    for name, sj in parts.items():
        k = sj.rows & (sj.reader.statuses == KEPT)
        kept_totals.append(sj.reader.counts[k].astype(np.int64).sum(1))
        vols.append(store.layout.event_volume(sj.reader.shapes[k]))
    tot = np.concatenate(kept_totals) if kept_totals else np.zeros(0, np.int64)
    vol = np.concatenate(vols) if vols else np.zeros(0)
    store_bytes = sum(s["bytes"]["store"] for s in splits.values())
    npz = [s["bytes"]["published_npz"] for s in splits.values() if s["samples"]["kept"]]
    npz_total = float(sum(npz)) if npz and all(v is not None for v in npz) else None
    return {
        "samples": {k: sum(s["samples"][k] for s in splits.values()) for k in ("total", "kept", "discarded", "rejected")},
        "events_per_sample": _summary(tot),
        "events_total": int(sum(s["events_total"] for s in splits.values())),
        "events_per_step": (psp.sum(1) / d).tolist(),
        "events_per_step_polarity": (psp / d).tolist(),
        "events_per_polarity": (psp.sum(0) / d).tolist(),
        "event_rate": float((tot / vol).mean()) if len(tot) else None,
        "bytes": {"store": int(store_bytes), "published_npz": npz_total},
        "bytes_per_sample": {"store": store_bytes / nk if nk else None,
                             "published_npz": npz_total / nk if nk and npz_total is not None else None,
                             "store_over_npz": store_bytes / npz_total if npz_total else None},
    }


def split_bytes(url: str, split: str) -> int:
    """Bytes the split occupies in the store (every array and bookkeeping file under it)."""
    from ..info import split_bytes as du
    return du(url, split)


# -- the whole store ------------------------------------------------------------------------

@dataclass
class StoreStats:
    stats: dict                 # what stats.json holds
    splits: dict                # split -> SplitJob (columns, arrays for the plots)
    store: object


def compute_stats(url: str, splits=None, client=None, progress: bool = True, npz_limit: int = NPZ_SAMPLE,
                  allow_incomplete: bool = False) -> StoreStats:
    """Statistics of the store's splits (default all), one Dask task per shard on `client`; an
    incomplete split is refused unless `allow_incomplete` (then: its built shards)."""
    from distributed import as_completed

    from ..card import method_of, read_cards
    from ..progress import progress_bar
    from .published import compare_val, other_datasets, published_rows
    store = open_store(url)
    names = list(splits) if splits else store.splits
    parts = {s: prepare_split(store, s, npz_limit, allow_incomplete) for s in names}
    total = sum(int(p.rows.sum()) for p in parts.values())
    bar = progress_bar(total, "stats", "sample", progress)
    futures = {}
    stamp = f"{os.getpid()}-{time.time_ns()}"
    for p in parts.values():
        for job in p.jobs:
            fut = client.submit(shard_partial, job, key=f"odg-stats-{p.name}-{job['shard']}-{stamp}", pure=False)
            futures[fut] = (p.name, job["shard"])
    for fut in as_completed(futures):
        split, s = futures.pop(fut)
        part = fut.result()
        sj = parts[split]
        sj.acc = merge(sj.acc, part)
        K = sj.reader.shard_size
        bar.update(min(K, len(sj.reader) - s * K))
        fut.release()
    bar.close()
    out_splits = {}
    for name, sj in parts.items():
        out_splits[name] = finish_split(store, sj, split_bytes(url, name))
        cmp = compare_val(store, sj)
        if cmp is not None:
            out_splits[name]["val_comparison"] = cmp
    params = store.meta["params"]
    stats = {"format": FORMAT, "format_version": FORMAT_VERSION, "store": url, "kind": store.kind,
             "odg_version": store.meta.get("odg_version"), "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
             "steps": store.layout.steps, "params": params, "splits": out_splits,
             "totals": totals(store, out_splits, parts)}
    stats["published"] = published_rows(store, stats)
    stats["method"] = method_of(store.kind, params)
    stats["cards"] = read_cards(store, names)
    stats["other_datasets"] = other_datasets(store, stats)
    return StoreStats(stats, parts, store)
