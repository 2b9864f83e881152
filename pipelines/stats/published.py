"""The published datasets' figures, and a validation split compared image by image with the
published ES-ImageNet validation list (`pipelines/data/es_imagenet_published_vallabel.txt`,
lines `ILSVRC2012_val_XXXXXXXX.npz K a b`, the 49,881 kept images)."""
from __future__ import annotations

import os
import re
from functools import lru_cache
from importlib import resources

import numpy as np

from ..store import KEPT, KIND_I2E, KIND_UCF101, REJECTED, STATUS_NAMES

PUBLISHED_VAL_LIST = "es_imagenet_published_vallabel.txt"

# the ES-ImageNet release (docs/ALGORITHMS.md): 1000 classes, T = 8, 224 x 224 frames, 49,881 of 50,000
# validation images kept, about 1.26 M training samples, about 100 GB of npz files.
ES_IMAGENET = {"classes": 1000, "steps": 8, "frame": 224, "train_samples": 1_260_000, "val_kept": 49_881,
               "val_total": 50_000, "bytes": 100e9}
# UCF101 and the published ES-UCF101 method: 101 classes, 13,320 clips, 30 difference frames,
# event ratio 0.15 of the difference values (7.5 % per tail).
ES_UCF101 = {"classes": 101, "clips": 13_320, "steps": 30, "event_ratio": 0.15}
# The I2E README's dataset catalogue (Ruichen0424/I2E): I2E-ImageNet, 224 x 224, ratio 0.12, event
# rate 6.66 %, 1.28 M / 50 k samples; 8 steps (the module's direction groups).
I2E_IMAGENET = {"classes": 1000, "steps": 8, "frame": 224, "event_rate": 0.0666, "train_samples": 1_280_000,
                "val_samples": 50_000}

VAL_NAME = re.compile(r"ILSVRC2012_val_\d{8}")
LISTED = 1000          # disagreements listed by name at most (all are counted)


@lru_cache(maxsize=1)
def published_val() -> dict:
    """Image stem -> (class K, a, b) of every image the published validation set kept."""
    text = resources.files("odg.pipelines").joinpath("data", PUBLISHED_VAL_LIST).read_text()
    out = {}
    for line in text.splitlines():
        if line.strip():
            name, k, a, b = line.split()
            out[os.path.splitext(name)[0]] = (int(k), int(a), int(b))
    return out


def is_val_split(store, split: str, reader) -> bool:
    src = reader.attrs.get("source") or {}
    return store.layout.odg_params is not None and (split == "val" or src.get("split") == "val")


def compare_val(store, sj) -> dict | None:
    """Kept decisions, labels and resized shapes of a validation split vs the published list.

    Only images present in the store (and in completed shards) are compared; names that are not
    ILSVRC2012 validation names are counted as `not_comparable`."""
    sr = sj.reader
    if not is_val_split(store, sj.name, sr):
        return None
    from odg import ODGParams
    pub = published_val()
    names = sr.names()
    status, labels, shapes = sr.statuses, sr.labels, sr.shapes
    c = {"compared": 0, "not_comparable": 0, "kept_here": 0, "kept_published": 0, "kept_agree": 0,
         "kept_disagree": 0, "kept_only_here": 0, "kept_only_published": 0, "both_kept": 0, "shape_agree": 0,
         "shape_disagree": 0, "label_agree": 0, "label_disagree": 0}
    listed = []
    for i in np.flatnonzero(sj.rows):
        stem = os.path.splitext(str(names[i]).rsplit("/", 1)[-1])[0]
        if not VAL_NAME.fullmatch(stem):
            c["not_comparable"] += 1
            continue
        c["compared"] += 1
        here = bool(status[i] == KEPT)
        p = pub.get(stem)
        c["kept_here"] += here
        c["kept_published"] += p is not None
        what = []
        if here == (p is not None):
            c["kept_agree"] += 1
        else:
            c["kept_disagree"] += 1
            c["kept_only_here" if here else "kept_only_published"] += 1
            what.append("kept")
        a, b = (int(v) for v in shapes[i])
        if here and p is not None:
            c["both_kept"] += 1
            if (a, b) == p[1:]:
                c["shape_agree"] += 1
            else:
                c["shape_disagree"] += 1
                what.append("shape")
            if int(labels[i]) == p[0]:
                c["label_agree"] += 1
            else:
                c["label_disagree"] += 1
                what.append("label")
        if what and len(listed) < LISTED:
            listed.append({"name": str(names[i]), "differs": what,
                           "here": {"status": STATUS_NAMES[int(status[i])], "label": int(labels[i]),
                                    "shape": [a, b] if status[i] != REJECTED else None},
                           "published": {"kept": p is not None, "label": p[0] if p else None,
                                         "shape": list(p[1:]) if p else None}})
    c["disagreements"] = listed
    c["disagreements_listed"] = len(listed)
    c["params_published"] = store.meta["params"] == ODGParams().to_dict()
    c["published_list"] = f"pipelines/data/{PUBLISHED_VAL_LIST} ({len(pub):,} kept images)"
    return c


def _gb(v) -> str:
    return "—" if v is None else f"{v / 1e9:,.3g} GB" if v >= 1e8 else f"{v / 1e6:,.3g} MB"


def _pct(a, b) -> str:
    return f"{a:,} of {b:,} ({100 * a / b:.2f} %)" if b else "—"


def published_rows(store, stats: dict) -> list[dict]:
    """The comparison table: quantity, the published figure, this store's figure, a note."""
    sp, tot = stats["splits"], stats["totals"]
    rate = tot["event_rate"]
    rows = []

    def row(q, pub, here, note=""):
        rows.append({"quantity": q, "published": pub, "here": here, "note": note})

    present = set()
    for s in sp.values():
        present |= {k for k, v in enumerate(s["per_class"]["kept"]) if v}
    if store.kind == KIND_UCF101:
        P = ES_UCF101
        row("classes", f"{P['classes']}", f"{len(present)} with kept clips (class table {len(store.classes)})")
        row("clips", f"{P['clips']:,} (UCF101)", f"{tot['samples']['kept']:,} kept of {tot['samples']['total']:,}")
        row("time steps", f"{P['steps']} difference frames", f"{stats['steps']}")
        row("event rate (events / (H·W·S·2))",
            f"≤ {P['event_ratio'] / 2:g} by construction", "—" if rate is None else f"{rate:.4f}",
            "15 % of the difference values lie beyond the two clip thresholds (7.5 % per tail)")
        row("size", "—", f"store {_gb(tot['bytes']['store'])}; published npz {_gb(tot['bytes']['published_npz'])}",
            "published npz measured or estimated for these clips (see bytes)")
        return rows
    if store.kind == KIND_I2E:
        P = I2E_IMAGENET
        row("classes", f"{P['classes']:,}", f"{len(present)} with kept samples (class table {len(store.classes)})")
        row("time steps T", f"{P['steps']}", f"{stats['steps']}")
        fs = store.meta["params"]["size"]
        row("frame", f"{P['frame']} × {P['frame']}", f"{fs} × {fs}")
        row("samples (train / val)", f"{P['train_samples'] / 1e6:.2f} M / {P['val_samples'] / 1e3:.0f} k",
            f"{tot['samples']['kept']:,} kept of {tot['samples']['total']:,}")
        row("event rate (events / (224·224·8·2))", f"{100 * P['event_rate']:.2f} % (I2E README)",
            "—" if rate is None else f"{100 * rate:.2f} %", "mean over kept samples")
        return rows
    P = ES_IMAGENET
    row("classes", f"{P['classes']:,}", f"{len(present)} with kept samples (class table {len(store.classes)})")
    row("time steps T", f"{P['steps']}", f"{stats['steps']}")
    fs = store.meta["params"].get("frame_size", 224)
    row("frame (loader)", f"{P['frame']} × {P['frame']}", f"{fs} × {fs}")
    if "train" in sp:
        t = sp["train"]["samples"]
        row("training samples (kept)", f"≈ {P['train_samples'] / 1e6:.2f} M", _pct(t["kept"], t["total"]),
            "" if t["total"] > 1_000_000 else "a subset: compare the kept fraction, not the count")
    if "val" in sp:
        v = sp["val"]["samples"]
        row("validation kept", _pct(P["val_kept"], P["val_total"]), _pct(v["kept"], v["total"]))
    row("event rate (events / (224·224·8·2))", "not published", "—" if rate is None else f"{rate:.4f}",
        "mean over kept samples, all events of the stored window")
    eps = tot["events_per_sample"]["mean"]
    row("events per sample (mean)", "not published", "—" if eps is None else f"{eps:,.0f}")
    bps = tot["bytes_per_sample"]
    row("size", f"≈ {P['bytes'] / 1e9:.0f} GB (npz files)",
        f"store {_gb(tot['bytes']['store'])}; these samples as published npz {_gb(tot['bytes']['published_npz'])}")
    n_pub = P["train_samples"] + P["val_kept"]
    if bps["published_npz"]:
        row("size at the published sample count",
            f"≈ {P['bytes'] / 1e9:.0f} GB", f"npz ≈ {_gb(bps['published_npz'] * n_pub)}; "
            f"this store's format ≈ {_gb(bps['store'] * n_pub)}",
            f"this store's mean bytes per kept sample × {n_pub:,} samples")
    return rows


# -- other neuromorphic classification datasets -------------------------------------------------

OTHER_DATASETS = "neuromorphic_datasets.json"
COLUMNS = ("classes", "samples", "resolution", "time", "size")


@lru_cache(maxsize=1)
def _other_datasets() -> dict:
    import json
    return json.loads(resources.files("odg.pipelines").joinpath("data", OTHER_DATASETS).read_text())


def this_store_row(store, stats: dict) -> dict:
    """This store in the columns of the comparison table (display strings)."""
    tot, sp = stats["totals"], stats["splits"]
    present = set()
    for s in sp.values():
        present |= {k for k, v in enumerate(s["per_class"]["kept"]) if v}
    kept = ", ".join(f"{s['samples']['kept']:,} {name}" for name, s in sp.items())
    if store.layout.clip:
        shapes = {tuple(s["density"]["shape"]) for s in sp.values()}
        res = ", ".join(f"{h} × {w}" for h, w in sorted(shapes)) + " (clip frames)"
        time = f"{stats['steps']} difference frames"
    else:
        fs = store.meta["params"].get("frame_size", 224)
        res = f"{fs} × {fs} (loader frames)"
        time = f"T = {stats['steps']} time steps"
    return {"name": "this store", "classes": f"{len(present):,} with kept samples",
            "samples": f"{tot['samples']['kept']:,} kept ({kept})", "resolution": res, "time": time,
            "size": f"{_gb(tot['bytes']['store'])} (store); {_gb(tot['bytes']['published_npz'])} as published npz"}


def other_datasets(store, stats: dict) -> dict:
    """The comparison table: published figures of other datasets (from `pipelines/data/neuromorphic_datasets.json`,
    each fact with its source and whether it was verified) and this store's row."""
    data = _other_datasets()
    return {"columns": list(COLUMNS), "datasets": data["datasets"], "sources": data["sources"],
            "this_store": this_store_row(store, stats), "data_file": f"pipelines/data/{OTHER_DATASETS}"}
