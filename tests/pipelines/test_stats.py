"""`odg stats` / `odg.pipelines.stats.write_report` on real stores built from real images (and a UCF
store holding the published test clip): every number of stats.json is recomputed here from the
decoded samples (the reader's per-sample events, not compute.py's code), the HTML references only
files that exist (every PNG with its SVG; headless Chromium draws every image and a screenshot of
the page is checked), rejects are listed, and a validation split is compared with the published list."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from collections import Counter
from functools import partial
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

from odg import ODGParams, word_dtype
from odg.pipelines.store import DISCARDED, KEPT, REJECTED, open_store

from .render import check_files, check_render

DATA = Path(__file__).resolve().parent.parent / "data"
IMAGES = DATA / "odg" / "images"
UCF_CLIP = DATA / "ucf" / "expected" / "v_Panning_g02_c01.npz"
BROKEN = b"\xff\xd8\xff\xe0 not really a jpeg"


# -- stores ---------------------------------------------------------------------------------

def build(root, url, split, client, shard_size=2):
    from odg.pipelines.build import BuildSpec, run_build
    from odg.pipelines.decode import MAX_PIXELS
    from odg.pipelines.imagenet import convert_item, imagenet_items, load_classes
    from odg.pipelines.store.schema import KIND_IMAGENET
    params = ODGParams()
    items, source = imagenet_items(str(root), split)
    spec = BuildSpec(url=str(url), split=split, kind=KIND_IMAGENET, items=items,
                     convert=partial(convert_item, params=params, max_pixels=MAX_PIXELS),
                     payload_shape=(params.grid, params.grid), payload_dtype=word_dtype(params.steps),
                     params=params.to_dict(), classes=load_classes().as_list(), source=source, shard_size=shard_size)
    report = run_build(spec, progress=False, client=client)
    assert not report.failed
    return str(url)


@pytest.fixture(scope="session")
def train_store(tmp_path_factory, client):
    """6 inputs: 4 kept, clock_motion discarded (710 events), broken.JPEG rejected; shards of 2."""
    root = tmp_path_factory.mktemp("imagenet")
    a, b = root / "train" / "n01440764", root / "train" / "n01443537"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    for n in ("astronaut", "cell", "clock_motion", "page"):
        shutil.copy(IMAGES / f"{n}.png", a / f"{n}.JPEG")
    shutil.copy(IMAGES / "coffee.png", b / "coffee.JPEG")
    (a / "broken.JPEG").write_bytes(BROKEN)
    return build(root, root / "store.zarr", "train", client)


VAL_FILES = {  # ILSVRC2012 validation name -> test image (labels come from the shipped ground truth)
    "ILSVRC2012_val_00000001.JPEG": "clock_motion",   # published kept (190, 254); discarded here
    "ILSVRC2012_val_00000002.JPEG": "astronaut",      # both kept; published (190, 254), here (254, 254)
    "ILSVRC2012_val_00000005.JPEG": "coffee",         # both kept; (169, 254) both
    "ILSVRC2012_val_00000063.JPEG": "page",           # not in the published list; kept here
    "ILSVRC2012_val_00000540.JPEG": None,             # not in the published list; rejected here
}


@pytest.fixture(scope="session")
def val_store(tmp_path_factory, client):
    root = tmp_path_factory.mktemp("imagenet_val")
    (root / "val").mkdir()
    for name, img in VAL_FILES.items():
        if img:
            shutil.copy(IMAGES / f"{img}.png", root / "val" / name)
        else:
            (root / "val" / name).write_bytes(BROKEN)
    return build(root, root / "store.zarr", "val", client)


@pytest.fixture(scope="session")
def ucf_store(tmp_path_factory):
    """An ES-UCF101 store written with the store writer: the published test clip, the same clip
    reversed in time with ON/OFF swapped, and a rejected clip; shards of 2."""
    from odg.pipelines.store import SplitWriter
    from odg.pipelines.store.schema import KIND_UCF101
    from odg.video import UCFParams, pack_clip
    clip = np.load(UCF_CLIP)["arr_0"]                      # uint8 [2, 30, 240, 320]
    H, W = clip.shape[2:]
    words = np.stack([pack_clip(clip), pack_clip(clip[::-1, ::-1].copy()), np.zeros((H, W), np.uint64)])
    url = str(tmp_path_factory.mktemp("ucf") / "ucf.zarr")
    SplitWriter(url, "").create_store(KIND_UCF101, dataclasses.asdict(UCFParams()),
                                      [[0, "ApplyEyeMakeup"], [1, "Panning"]], "test")
    SplitWriter(url, "train").create(3, 2, (H, W), np.uint64, {"test": 1}, {"layout": "folder", "path": "/nowhere"})
    cols = {"label": np.array([1, 0, 1], np.int16), "number": np.array([1, 1, 2], np.int32),
            "name": np.array(["v_Panning_g02_c01", "v_ApplyEyeMakeup_g01_c01", "v_Panning_g03_c01"]),
            "status": np.array([KEPT, KEPT, REJECTED], np.int8),
            "reason": np.array(["", "", "cannot decode: no frames"]),
            "shape": np.array([[H, W], [H, W], [0, 0]], np.int16),
            "count": np.array([[int(w.sum()) for w in (c[0], c[1])] for c in (clip, clip[::-1, ::-1])] + [[0, 0]], np.int32),
            "words": words}
    for s in (0, 1):
        SplitWriter(url, "train").write_shard(s, {k: v[2 * s:2 * s + 2] for k, v in cols.items()}, {})
    SplitWriter(url, "train").finish()
    return url


def report(store, out, **kw):
    from odg.pipelines.stats import write_report
    path = write_report(store, str(out), progress=False, **kw)
    with open(os.path.join(out, "stats.json")) as f:
        return path, json.load(f)


@pytest.fixture(scope="session")
def train_report(train_store, client, tmp_path_factory):
    return report(train_store, tmp_path_factory.mktemp("train_report"), client=client)


@pytest.fixture(scope="session")
def val_report(val_store, client, tmp_path_factory):
    return report(val_store, tmp_path_factory.mktemp("val_report"), client=client)


@pytest.fixture(scope="session")
def ucf_report(ucf_store, client, tmp_path_factory):
    return report(ucf_store, tmp_path_factory.mktemp("ucf_report"), client=client)


# -- the numbers, recomputed from the decoded samples -------------------------------------

def du(path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


QS = {"p5": 5, "p25": 25, "median": 50, "p75": 75, "p95": 95}


def summary(v):
    v = np.asarray(v, np.float64)
    if len(v) == 0:
        return dict.fromkeys(["mean", "std", "min", "max"] + list(QS))
    return dict({"mean": v.mean(), "min": v.min(), "max": v.max(), "std": v.std()},
                **{k: np.percentile(v, q) for k, q in QS.items()})


def decoded(store, split):
    """Per sample: (status, label, shape, name, reason, per-step [T, 2] counts, density [H, W], npz bytes)."""
    sr = store[split]
    kind = store.kind
    names, reasons = sr.names(), sr.reasons()
    out = []
    for i in range(len(sr)):
        st, label, shape = int(sr.statuses[i]), int(sr.labels[i]), tuple(int(v) for v in sr.shapes[i])
        buf = BytesIO()
        if kind == "es-imagenet":
            p = store.params
            T, G = p.steps, p.grid
            ev = sr.events(i)
            per = np.zeros((T, 2), np.int64)
            np.add.at(per, (ev["t"] - 1, 1 - ev["p"]), 1)
            r0, c0 = p.window_origin(*shape) if st != REJECTED else (17, 17)
            dens = np.zeros((G, G), np.int64)
            np.add.at(dens, (ev["y"] - r0, ev["x"] - c0), 1)
            canvas = np.zeros((256, 256), np.int64)              # the event record's own coordinates
            np.add.at(canvas, (ev["y"], ev["x"]), 1)
            pos, neg = sr.published(i)
            np.savez_compressed(buf, pos=pos, neg=neg)
        else:
            f = sr.frames(i)                                   # [2, S, H, W]
            per = f.sum((2, 3)).T.astype(np.int64)             # [S, 2]
            dens = f.sum((0, 1)).astype(np.int64)
            canvas = dens
            np.savez_compressed(buf, f)
        out.append({"status": st, "label": label, "shape": shape, "name": names[i], "reason": reasons[i],
                    "per": per, "n": int(per.sum()), "dens": dens, "canvas": canvas, "npz": len(buf.getvalue())})
    return out


def volume(store, shape):
    if store.kind == "es-imagenet":
        return 224 * 224 * store.params.steps * 2
    return shape[0] * shape[1] * (store.params.n_frames - 1) * 2


def check_split(store, split, s, url):
    """Every number of a split's stats.json section, against the decoded samples."""
    rows = decoded(store, split)
    kept = [r for r in rows if r["status"] == KEPT]
    nk = len(kept)
    T = rows[0]["per"].shape[0]
    assert s["samples"] == {"total": len(rows), "kept": nk,
                            "discarded": sum(r["status"] == DISCARDED for r in rows),
                            "rejected": sum(r["status"] == REJECTED for r in rows), "planned": len(rows),
                            "complete": True, "shards": -(-len(rows) // store[split].shard_size),
                            "shards_counted": -(-len(rows) // store[split].shard_size)}
    n = [r["n"] for r in kept]
    approx_summary(s["events_per_sample"], n)
    per = sum(r["per"] for r in kept)
    assert s["events_total"] == int(per.sum())
    assert s["events_per_step"] == pytest.approx((per.sum(1) / nk).tolist(), rel=1e-12)
    np.testing.assert_allclose(s["events_per_step_polarity"], per / nk, rtol=1e-12)
    assert np.asarray(s["events_per_step_polarity"]).shape == (T, 2)
    assert s["events_per_polarity"] == pytest.approx((per.sum(0) / nk).tolist(), rel=1e-12)
    assert s["event_rate"] == pytest.approx(np.mean([r["n"] / volume(store, r["shape"]) for r in kept]), rel=1e-12)
    # histogram with the reported bin width
    h = s["events_histogram"]
    w = h["bin_width"]
    assert h["edges"] == [w * k for k in range(len(h["kept"]) + 1)]
    for key, status in (("kept", KEPT), ("discarded", DISCARDED)):
        want = np.bincount([r["n"] // w for r in rows if r["status"] == status], minlength=len(h[key]))
        assert h[key] == want.tolist()
    assert max(r["n"] for r in rows if r["status"] != REJECTED) < h["edges"][-1]
    # per class
    classes = store.classes
    pc = s["per_class"]
    cn = Counter(r["label"] for r in kept)
    csum = Counter()
    for r in kept:
        csum[r["label"]] += r["n"]
    assert pc["classes"] == len(classes) and pc["with_kept_samples"] == len(cn)
    assert pc["kept"] == [cn.get(k, 0) for k in range(len(classes))]
    assert pc["mean_events"] == pytest.approx([csum[k] / cn[k] if cn.get(k) else None for k in range(len(classes))])
    order = sorted(cn, key=lambda k: (csum[k] / cn[k], k))
    assert [e["label"] for e in pc["lowest"]] == order[:10]
    assert [e["label"] for e in pc["highest"]] == order[::-1][:10]
    for e in pc["highest"] + pc["lowest"]:
        assert e["kept"] == cn[e["label"]] and e["mean_events"] == pytest.approx(csum[e["label"]] / cn[e["label"]])
        assert e["name"] == classes[e["label"]][-1]
        assert e["wnid"] == (classes[e["label"]][1] if len(classes[e["label"]]) == 3 else None)
    # density
    dens = sum(r["dens"] for r in kept) / nk
    d = s["density"]
    assert d["shape"] == list(dens.shape)
    assert d["mean"] == pytest.approx(dens.mean(), rel=1e-12)
    assert d["min"] == pytest.approx(dens.min()) and d["max"] == pytest.approx(dens.max())
    assert d["argmax"] == list(np.unravel_index(int(np.argmax(dens)), dens.shape))
    # shapes
    sc = Counter(r["shape"] for r in kept)
    assert s["shapes"]["distinct"] == len(sc)
    assert s["shapes"]["landscape"] == sum(v for (a, b), v in sc.items() if a < b)
    assert s["shapes"]["portrait"] == sum(v for (a, b), v in sc.items() if a > b)
    assert s["shapes"]["square"] == sum(v for (a, b), v in sc.items() if a == b)
    assert s["shapes"]["most_common"] == [[a, b, v] for (a, b), v in sorted(sc.items(), key=lambda kv: (-kv[1], kv[0]))[:10]]
    # discards and rejects
    rej = [(i, r) for i, r in enumerate(rows) if r["status"] == REJECTED]
    assert s["rejects"] == [{"index": i, "name": r["name"], "reason": r["reason"]} for i, r in rej]
    assert sum(s["rejects_by_reason"].values()) == len(rej)
    min_events = store.meta["params"].get("min_events")
    disc = [r for r in rows if r["status"] == DISCARDED]
    if disc:
        assert s["discards_by_reason"] == {f"fewer than {min_events} events": len(disc)}
        assert all(r["reason"] == f"{r['n']} events < {min_events}" for r in disc)
    # sizes
    store_bytes = du(os.path.join(url, split))
    npz = sum(r["npz"] for r in kept)
    assert s["bytes"] == {"store": store_bytes, "published_npz": npz, "npz_measured": nk, "npz_method": "all kept samples"}
    assert s["bytes_per_sample"] == pytest.approx({"store": store_bytes / nk, "published_npz": npz / nk,
                                                   "store_over_npz": store_bytes / npz})
    assert s["consistency"] == {"count_column_mismatches": 0, "stray_bits": 0}
    assert [list(map(int, c)) for c in store[split].counts[[i for i, r in enumerate(rows) if r["status"] == KEPT]]] == \
        [r["per"].sum(0).tolist() for r in kept]
    check_distributions(store, s, rows)


def approx_summary(got, values):
    want = summary(values)
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k] == (None if v is None else pytest.approx(v, rel=1e-12, abs=1e-15)), k


def check_distributions(store, s, rows):
    """The per-sample distributions, per-step spread, events against the shape, class balance and the
    density map's coordinates, recomputed from the decoded samples."""
    kept = [r for r in rows if r["status"] == KEPT]
    nk = len(kept)
    approx_summary(s["event_rate_distribution"], [r["n"] / volume(store, r["shape"]) for r in kept])
    # events per step: exact mean and std; each quantile inside its reported bin
    steps = np.array([r["per"].sum(1) for r in kept])                 # [n_kept, T]
    sp = s["events_per_step_spread"]
    np.testing.assert_allclose(sp["mean"], steps.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sp["std"], steps.std(0), rtol=1e-9, atol=1e-9)
    w = sp["bin_width"]
    assert w >= 1 and w <= max(1, steps.max())
    for name, q in QS.items():
        exact = np.sort(steps, 0)[max(1, math.ceil(q / 100 * nk)) - 1]    # the ceil(q n)-th smallest value
        lo = np.asarray(sp["q_bin_lo"][name])
        assert (lo % w == 0).all() and (lo <= exact).all() and (exact < lo + w).all(), name
    # ON / OFF
    on = np.array([r["per"][:, 0].sum() for r in kept], float)
    off = np.array([r["per"][:, 1].sum() for r in kept], float)
    oo = s["on_off"]
    approx_summary(oo["ratio"], on[off > 0] / off[off > 0])
    approx_summary(oo["on_fraction"], on / (on + off))
    assert oo["undefined"] == int((off == 0).sum()) and oo["of_totals"] == pytest.approx(on.sum() / off.sum())
    # events against the resized shape
    ev = s["events_vs_shape"]
    n = np.array([r["n"] for r in kept], float)
    a = np.array([r["shape"][0] for r in kept])
    b = np.array([r["shape"][1] for r in kept])
    if len(set((a * b).tolist())) > 1:
        assert ev["pearson_events_area"] == pytest.approx(np.corrcoef(n, a * b)[0, 1])
    else:
        assert ev["pearson_events_area"] is None
    approx_summary(ev["events_per_pixel"], n / (a * b))
    short = np.minimum(a, b)
    g = ev["short_side_bin"]
    want = [{"short_side": [k * g, (k + 1) * g], "kept": int((short // g == k).sum()),
             "mean_events": pytest.approx(n[short // g == k].mean()), "std_events": pytest.approx(n[short // g == k].std())}
            for k in sorted(set((short // g).tolist()))]
    assert ev["by_short_side"] == want
    # class balance
    pc = s["per_class"]
    C = pc["classes"]
    by = {st: Counter(r["label"] for r in rows if r["status"] == st and 0 <= r["label"] < C)
          for st in (KEPT, DISCARDED, REJECTED)}
    assert pc["discarded"] == [by[DISCARDED].get(k, 0) for k in range(C)]
    assert pc["rejected"] == [by[REJECTED].get(k, 0) for k in range(C)]
    assert pc["unlabelled"] == {name: sum(1 for r in rows if r["status"] == st and not 0 <= r["label"] < C)
                                for name, st in (("kept", KEPT), ("discarded", DISCARDED), ("rejected", REJECTED))}
    present = sorted({r["label"] for r in rows if 0 <= r["label"] < C})
    assert pc["classes_present"] == len(present)
    sizes = [by[KEPT].get(k, 0) for k in present]
    cs = pc["class_sizes"]
    approx_summary({k: v for k, v in cs.items() if k != "histogram"}, sizes)
    h = cs["histogram"]
    assert sum(h["classes"]) == len(present)
    assert h["classes"] == [sum(1 for v in sizes if h["edges"][k] <= v < h["edges"][k + 1]) for k in range(len(h["classes"]))]
    losing = [k for k in present if by[DISCARDED].get(k)]
    frac = {k: by[DISCARDED][k] / (by[DISCARDED][k] + by[KEPT].get(k, 0)) for k in losing}
    order = sorted(losing, key=lambda k: (-frac[k], -by[DISCARDED][k], k))[:10]
    assert [e["label"] for e in pc["most_discarded"]] == order
    for e in pc["most_discarded"]:
        assert (e["kept"], e["discarded"], e["rejected"]) == (by[KEPT].get(e["label"], 0), by[DISCARDED][e["label"]],
                                                             by[REJECTED].get(e["label"], 0))
        assert e["discard_fraction"] == pytest.approx(frac[e["label"]])
    # the density map in the event record's coordinates: x = column, y = row
    d = s["density"]
    assert d["axes"] == {"x": "column", "y": "row"}
    canvas = sum(r["canvas"] for r in kept)
    y, x = np.unravel_index(int(np.argmax(canvas)), canvas.shape)
    assert d["argmax_xy"] == {"x": int(x), "y": int(y)}
    if store.kind == "es-imagenet":
        r0, c0 = store.params.window_origin(254, 254)
        assert d["origin"] == {"x": c0, "y": r0} == {"x": 17, "y": 17}
    else:
        assert d["origin"] == {"x": 0, "y": 0}


def check_method(store, stats):
    """The method section names every stored parameter with its published value."""
    from odg.video import UCFParams
    m = stats["method"]
    pub = (ODGParams() if store.kind == "es-imagenet" else UCFParams()).to_dict()
    pub = json.loads(json.dumps(pub))
    assert [r["name"] for r in m["params"]] == list(store.meta["params"])
    for r in m["params"]:
        assert r["value"] == store.meta["params"][r["name"]] and r["published"] == pub[r["name"]]
        assert r["deviates"] is (r["value"] != pub[r["name"]])
    assert m["published_params"] is (store.meta["params"] == pub)
    assert ("ODG" in m["name"]) is (store.kind == "es-imagenet")


def check_totals(stats):
    """A single-split store: the totals equal the split's numbers."""
    (s,) = stats["splits"].values()
    t = stats["totals"]
    assert t["samples"] == {k: s["samples"][k] for k in ("total", "kept", "discarded", "rejected")}
    for k in ("events_per_sample", "events_total", "events_per_step", "events_per_polarity", "event_rate"):
        assert t[k] == pytest.approx(s[k], rel=1e-12), k
    np.testing.assert_allclose(t["events_per_step_polarity"], s["events_per_step_polarity"], rtol=1e-12)
    assert t["bytes"] == pytest.approx({"store": s["bytes"]["store"], "published_npz": s["bytes"]["published_npz"]})
    assert t["bytes_per_sample"] == pytest.approx(s["bytes_per_sample"])


def test_stats_json_equals_the_decoded_samples(train_store, train_report):
    _, stats = train_report
    store = open_store(train_store)
    assert stats["format"] == "odg-stats" and stats["kind"] == "es-imagenet" and stats["steps"] == 8
    assert list(stats["splits"]) == ["train"]
    check_split(store, "train", stats["splits"]["train"], train_store)
    check_totals(stats)
    check_method(store, stats)
    s = stats["splits"]["train"]
    assert (s["samples"]["kept"], s["samples"]["discarded"], s["samples"]["rejected"]) == (4, 1, 1)
    assert "val_comparison" not in s
    assert s["per_class"]["most_discarded"][0]["name"] == "tench"               # clock_motion, under the floor
    card = json.loads((Path(train_store) / "train" / "_odg" / "card.json").read_text())
    assert stats["cards"] == {"train": card} and card["counts"] == {"samples": 6, "kept": 4, "discarded": 1, "rejected": 1}
    od = stats["other_datasets"]
    names = [d["name"] for d in od["datasets"]]
    for want in ("N-MNIST", "N-Caltech101", "CIFAR10-DVS", "DVS128 Gesture", "N-ImageNet", "ES-ImageNet (as published)",
                 "I2E-ImageNet"):
        assert want in names
    for d in od["datasets"]:
        for c in od["columns"]:
            assert d[c]["source"] in od["sources"] and isinstance(d[c]["verified"], bool)
            assert d[c]["value"] is not None or not d[c]["verified"]
    assert od["this_store"]["samples"].startswith("4 kept")


def test_val_split_numbers_and_comparison(val_store, val_report):
    path, stats = val_report
    store = open_store(val_store)
    s = stats["splits"]["val"]
    check_split(store, "val", s, val_store)
    c = s["val_comparison"]
    assert {k: c[k] for k in ("compared", "not_comparable", "kept_here", "kept_published", "kept_agree", "kept_disagree",
                              "kept_only_here", "kept_only_published", "both_kept", "shape_agree", "shape_disagree",
                              "label_agree", "label_disagree")} == {
        "compared": 5, "not_comparable": 0, "kept_here": 3, "kept_published": 3, "kept_agree": 3, "kept_disagree": 2,
        "kept_only_here": 1, "kept_only_published": 1, "both_kept": 2, "shape_agree": 1, "shape_disagree": 1,
        "label_agree": 2, "label_disagree": 0}
    assert c["params_published"] is True
    diffs = {d["name"]: d for d in c["disagreements"]}
    assert set(diffs) == {"ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG", "ILSVRC2012_val_00000063.JPEG"}
    assert diffs["ILSVRC2012_val_00000001.JPEG"]["differs"] == ["kept"]
    assert diffs["ILSVRC2012_val_00000001.JPEG"]["here"]["status"] == "discarded"
    assert diffs["ILSVRC2012_val_00000001.JPEG"]["published"] == {"kept": True, "label": 65, "shape": [190, 254]}
    assert diffs["ILSVRC2012_val_00000002.JPEG"]["differs"] == ["shape"]
    assert diffs["ILSVRC2012_val_00000002.JPEG"]["here"]["shape"] == [254, 254]
    assert diffs["ILSVRC2012_val_00000063.JPEG"]["published"]["kept"] is False
    # the same comparison, straight from the shipped list and the store's columns
    pub = {}
    vallabel = Path(__file__).resolve().parents[2] / "pipelines" / "data" / "es_imagenet_published_vallabel.txt"
    for line in vallabel.read_text().splitlines():
        nm, k, a, b = line.split()
        pub[nm[:-4]] = (int(k), int(a), int(b))
    sr = store["val"]
    for i, nm in enumerate(sr.names()):
        p = pub.get(nm[:-5])
        here = sr.statuses[i] == KEPT
        assert (nm in diffs and "kept" in diffs[nm]["differs"]) == (here != (p is not None))
        if here and p:
            assert (nm in diffs and "shape" in diffs[nm]["differs"]) == (tuple(sr.shapes[i]) != p[1:])
    html = Path(path).read_text()
    assert "Compared with the published validation list" in html
    for nm in diffs:
        assert nm in html
    rows = {r["quantity"]: r for r in stats["published"]}
    assert rows["validation kept"]["published"] == "49,881 of 50,000 (99.76 %)"
    assert rows["validation kept"]["here"] == "3 of 5 (60.00 %)"


def test_html_references_only_existing_files(train_report, val_report, ucf_report):
    for path, _ in (train_report, val_report, ucf_report):
        p = check_files(path)
        assert "stats.json" in p.refs


def test_report_lists_rejects_and_discards(train_report):
    path, stats = train_report
    html = Path(path).read_text()
    (rej,) = stats["splits"]["train"]["rejects"]
    assert rej["name"] == "n01440764/broken.JPEG"
    assert rej["reason"] and rej["reason"] in html
    assert "n01440764/broken.JPEG" in html
    assert "n01440764/clock_motion.JPEG" in html            # the discard, with its reason
    assert "fewer than 1000 events" in html
    out = Path(path).parent
    for f in ("events_per_sample_train.png", "events_per_step_train.png", "classes_train.png", "density_train.png",
              "shapes_train.png", "reasons_train.png", "edge_integral_train.png", "frames_train.png", "sizes.png",
              "class_balance_train.png", "events_vs_shape_train.png", "distributions.png"):
        assert (out / f).stat().st_size > 5000, f
        assert (out / f.replace(".png", ".svg")).stat().st_size > 5000, f
    assert "sources read from the split" in html
    assert "tench" in html and "n01440764" in html and "goldfish" in html


def test_ucf_store(ucf_store, ucf_report):
    path, stats = ucf_report
    store = open_store(ucf_store)
    assert stats["kind"] == "es-ucf101" and stats["steps"] == 30
    s = stats["splits"]["train"]
    check_split(store, "train", s, ucf_store)
    check_totals(stats)
    check_method(store, stats)
    assert s["rejects"][0]["reason"] == "cannot decode: no frames"
    # the published clip holds about 15 % of its difference values as events, so about 0.075
    assert 0.05 < s["event_rate"] <= 0.075
    assert s["per_class"]["highest"][0]["wnid"] is None
    html = Path(path).read_text()
    assert "v_Panning_g03_c01" in html and "cannot decode: no frames" in html
    out = Path(path).parent
    assert (out / "frames_train.png").is_file() and not (out / "edge_integral_train.png").exists()


def test_two_worker_processes_give_the_same_numbers(train_store, train_report):
    """A real LocalCluster of 2 worker processes (the cluster `odg stats --workers 2` starts)."""
    from odg.pipelines.build import dask_client
    from odg.pipelines.stats import compute_stats
    from odg.pipelines.stats.report import json_default
    _, want = train_report
    with dask_client(workers=2, quiet=True) as cl:
        got = json.loads(json.dumps(compute_stats(train_store, client=cl, progress=False).stats, default=json_default))
    for d in (want, got):
        d.pop("generated")
    assert got == want


def test_incomplete_split_counts_completed_shards_only(train_store, client, tmp_path):
    import zarr
    url = str(tmp_path / "partial.zarr")
    shutil.copytree(train_store, url)
    g = zarr.open_group(url, mode="r+")["train"]
    g.attrs["complete"] = False
    os.remove(os.path.join(url, "train", "_odg", "shards", "000001.json"))   # shard 1: cell, clock_motion
    from odg.pipelines.stats import compute_stats
    from odg.pipelines.store import IncompleteSplit
    with pytest.raises(IncompleteSplit, match="2 of 3 shards"):
        compute_stats(url, client=client, progress=False)
    s = compute_stats(url, client=client, progress=False, allow_incomplete=True).stats["splits"]["train"]
    assert s["samples"] == {"total": 4, "kept": 3, "discarded": 0, "rejected": 1, "planned": 6, "complete": False,
                            "shards": 3, "shards_counted": 2}
    full = open_store(train_store)["train"]
    n = full.counts.sum(1)[[0, 4, 5]]
    assert s["events_per_sample"]["median"] == float(np.median(n))
    assert s["events_total"] == int(n.sum())


def test_cli(train_store, tmp_path, capsys):
    from odg.pipelines.cli import main
    assert main(["stats", train_store, "--out", str(tmp_path / "x"), "--split", "nope", "--quiet"]) == 2
    assert "no split 'nope'" in capsys.readouterr().err
    assert main(["stats", str(tmp_path / "missing.zarr"), "--out", str(tmp_path / "y"), "--quiet"]) == 2
    assert "no store" in capsys.readouterr().err
    assert main(["stats", train_store, "--out", str(tmp_path / "z"), "--compare", str(tmp_path / "missing.zarr"),
                 "--quiet"]) == 2
    assert "no store" in capsys.readouterr().err and not (tmp_path / "z").exists()
    assert not (tmp_path / "x").exists()


def test_chromium_renders_the_report(train_report, tmp_path):
    """Headless Chromium: every <img> drawn, every in-page link resolving, the sections present, and a
    screenshot of the page that is not blank."""
    path, _ = train_report
    check_render(path, tmp_path, ["method", "card", "published", "datasets", "split-train"])


def test_each_kind_has_one_layout(train_store, ucf_store):
    """`store.layout`: steps, frame shape, frame shifts and words -> frames of each kind, the answers
    the loader, the statistics and the report take from it (checked against the kernels directly)."""
    from odg import words_to_events, words_to_frames
    from odg.pipelines.store.layout import layout_of, unit_of
    from odg.video import UCFParams, unpack_clip
    st = open_store(train_store)
    sr, lay = st["train"], st.layout
    p = st.params
    assert sr.layout is lay and lay.kind == st.kind == "es-imagenet" and lay.odg_params == p
    assert lay.steps == 8 and lay.frame_shape(sr.array("words").shape[1:]) == (224, 224)
    assert (lay.unit, lay.dense, lay.clip, lay.min_events, lay.long_side) == ("step", "TCHW", False, 1000, 254)
    dr, dc = lay.frame_shifts(sr.shapes, centre=True)
    for i in sr.kept_indices():
        a, b = (int(v) for v in sr.shapes[i])
        assert (dr[i], dc[i]) == (17 + (254 - a) // 2 - 16, 17 + (254 - b) // 2 - 16)
        w = sr.words(int(i))
        for centre in (True, False):
            assert np.array_equal(lay.frames(w, sr.shapes[i], centre), words_to_frames(w, (a, b), p, centre=centre))
        ev = words_to_events(w, (a, b), p)
        pub = lay.published_arrays(w, sr.shapes[i])
        assert sorted(pub) == ["neg", "pos"] and len(pub["pos"]) == (ev["p"] == 1).sum()
    assert np.all(lay.event_volume(sr.shapes) == 224 * 224 * 8 * 2)
    u = open_store(ucf_store)
    lay, ur = u.layout, u["train"]
    assert lay.params == UCFParams() and lay.odg_params is None
    assert (lay.steps, lay.unit, lay.dense, lay.clip, lay.min_events) == (30, "difference frame", "CTHW", True, 0)
    assert lay.frame_shape(ur.array("words").shape[1:]) == (240, 320)
    assert not any(v.any() for v in lay.frame_shifts(ur.shapes))
    assert np.array_equal(lay.frames(ur.words(0), ur.shapes[0]), unpack_clip(ur.words(0), 30))
    assert np.array_equal(lay.event_volume(ur.shapes[:2]), [240 * 320 * 30 * 2] * 2)
    assert unit_of("es-ucf101") == "difference frame" and unit_of("not-a-kind") == "step"

    class Unknown:
        kind = "not-a-kind"
    with pytest.raises(ValueError, match="unknown store kind 'not-a-kind'"):
        layout_of(Unknown())
