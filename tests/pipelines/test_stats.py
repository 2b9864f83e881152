"""`odg stats` / `odg.pipelines.stats.write_report` on real stores built from real images (and a UCF
store holding the published test clip): every number of stats.json is recomputed here from the
decoded samples, the HTML references only files that exist (and Chromium draws every image),
rejects are listed, and a validation split is compared with the published list."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections import Counter
from functools import partial
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

from odg import ODGParams, word_dtype
from odg.pipelines.store import DISCARDED, KEPT, REJECTED, open_store

IMAGES = Path("/work/shared/testvectors/odg/images")
UCF_CLIP = Path(__file__).resolve().parent.parent / "data" / "ucf" / "expected" / "v_Panning_g02_c01.npz"
CHROMIUM = "/usr/bin/chromium"
BROKEN = b"\xff\xd8\xff\xe0 not really a jpeg"

pytestmark = pytest.mark.skipif(not IMAGES.is_dir(), reason=f"test images not found at {IMAGES}")


# -- stores ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def client():
    """An in-process Dask cluster (threads), fast to start; one test uses real worker processes."""
    import logging

    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0",
                           silence_logs=logging.ERROR)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


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
    from odg.video import UCFParams, pack_clip
    from odg.pipelines.store import writer
    from odg.pipelines.store.schema import KIND_UCF101
    clip = np.load(UCF_CLIP)["arr_0"]                      # uint8 [2, 30, 240, 320]
    H, W = clip.shape[2:]
    words = np.stack([pack_clip(clip), pack_clip(clip[::-1, ::-1].copy()), np.zeros((H, W), np.uint64)])
    url = str(tmp_path_factory.mktemp("ucf") / "ucf.zarr")
    writer.init_store(url, KIND_UCF101, dataclasses.asdict(UCFParams()), [[0, "ApplyEyeMakeup"], [1, "Panning"]], "test")
    writer.init_split(url, "train", 3, 2, (H, W), np.uint64, {"test": 1}, {"layout": "folder", "path": "/nowhere"}, False)
    cols = {"label": np.array([1, 0, 1], np.int16), "number": np.array([1, 1, 2], np.int32),
            "name": np.array(["v_Panning_g02_c01", "v_ApplyEyeMakeup_g01_c01", "v_Panning_g03_c01"]),
            "status": np.array([KEPT, KEPT, REJECTED], np.int8),
            "reason": np.array(["", "", "cannot decode: no frames"]),
            "shape": np.array([[H, W], [H, W], [0, 0]], np.int16),
            "count": np.array([[int(w.sum()) for w in (c[0], c[1])] for c in (clip, clip[::-1, ::-1])] + [[0, 0]], np.int32),
            "words": words}
    for s in (0, 1):
        writer.write_shard(url, "train", s, {k: v[2 * s:2 * s + 2] for k, v in cols.items()}, {})
    writer.finish_split(url, "train")
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


def summary(v):
    v = np.asarray(v, np.int64)
    return {"mean": v.mean(), "median": np.median(v), "min": v.min(), "max": v.max(), "std": v.std()}


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
            pos, neg = sr.published(i)
            np.savez_compressed(buf, pos=pos, neg=neg)
        else:
            f = sr.frames(i)                                   # [2, S, H, W]
            per = f.sum((2, 3)).T.astype(np.int64)             # [S, 2]
            dens = f.sum((0, 1)).astype(np.int64)
            np.savez_compressed(buf, f)
        out.append({"status": st, "label": label, "shape": shape, "name": names[i], "reason": reasons[i],
                    "per": per, "n": int(per.sum()), "dens": dens, "npz": len(buf.getvalue())})
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
    assert s["events_per_sample"] == pytest.approx(summary(n), rel=1e-12)
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
    s = stats["splits"]["train"]
    assert (s["samples"]["kept"], s["samples"]["discarded"], s["samples"]["rejected"]) == (4, 1, 1)
    assert "val_comparison" not in s


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
    for line in (Path(__file__).resolve().parents[2] / "pipelines" / "data" / "es_imagenet_published_vallabel.txt").read_text().splitlines():
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


class Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.imgs = [], []

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href") and v is not None:
                self.refs.append(v)
                if tag == "img":
                    self.imgs.append(v)


def test_html_references_only_existing_files(train_report, val_report, ucf_report):
    for path, _ in (train_report, val_report, ucf_report):
        out = Path(path).parent
        p = Refs()
        p.feed(Path(path).read_text())
        files = [r for r in p.refs if not r.startswith("#")]
        assert files and p.imgs
        for r in files:
            assert "://" not in r and not r.startswith("/"), f"not a relative reference: {r}"
            assert (out / r).is_file(), f"{r} referenced by {path} does not exist"
        pngs = {f.name for f in out.glob("*.png")}
        assert set(p.imgs) == pngs, "every PNG written is shown, and only those"
        assert "stats.json" in files


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
              "shapes_train.png", "reasons_train.png", "edge_integral_train.png", "frames_train.png", "sizes.png"):
        assert (out / f).stat().st_size > 5000, f
    assert "sources read from the split" in html
    assert "tench" in html and "n01440764" in html and "goldfish" in html


def test_ucf_store(ucf_store, ucf_report):
    path, stats = ucf_report
    store = open_store(ucf_store)
    assert stats["kind"] == "es-ucf101" and stats["steps"] == 30
    s = stats["splits"]["train"]
    check_split(store, "train", s, ucf_store)
    check_totals(stats)
    assert s["rejects"][0]["reason"] == "cannot decode: no frames"
    # the published clip holds about 15 % of its difference values as events, so about 0.075
    assert 0.05 < s["event_rate"] <= 0.075
    assert s["per_class"]["highest"][0]["wnid"] is None
    html = Path(path).read_text()
    assert "v_Panning_g03_c01" in html and "cannot decode: no frames" in html
    out = Path(path).parent
    assert (out / "frames_train.png").is_file() and not (out / "edge_integral_train.png").exists()


def test_two_worker_processes_give_the_same_numbers(train_store, train_report, tmp_path):
    """A real LocalCluster of 2 worker processes (the default path of `odg stats --workers 2`)."""
    _, want = train_report
    _, got = report(train_store, tmp_path / "r2", workers=2)
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
    s = compute_stats(url, client=client, progress=False).stats["splits"]["train"]
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
    assert not (tmp_path / "x").exists()


def test_chromium_draws_every_image(train_report, tmp_path):
    """Open report.html in headless Chromium: every <img> must load (naturalWidth > 0)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium) - the headless rendering check needs it")
    path, _ = train_report
    out = Path(path).parent
    check = out / "_chromium_check.html"
    script = ("<script>window.addEventListener('load',function(){var im=Array.from(document.images);"
              "var bad=im.filter(function(i){return !(i.complete&&i.naturalWidth>0)}).map(function(i){return i.getAttribute('src')});"
              "var p=document.createElement('pre');p.id='odg-check';p.textContent=JSON.stringify({n:im.length,bad:bad});"
              "document.body.appendChild(p);});</script>")
    check.write_text(Path(path).read_text().replace("</body>", script + "</body>"))
    try:
        r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync", "--no-first-run",
                            f"--user-data-dir={tmp_path / 'profile'}", "--run-all-compositor-stages-before-draw",
                            "--virtual-time-budget=10000", "--dump-dom", check.as_uri()],
                           capture_output=True, text=True, timeout=90)
    finally:
        check.unlink()
    dom = r.stdout
    assert 'id="odg-check"' in dom, f"Chromium did not run the check (rc {r.returncode}): {r.stderr[-2000:]}"
    result = json.loads(dom.split('id="odg-check">', 1)[1].split("</pre>", 1)[0].replace("&quot;", '"'))
    p = Refs()
    p.feed(Path(path).read_text())
    assert result == {"n": len(p.imgs), "bad": []}
