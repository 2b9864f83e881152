"""Interoperability with tonic and SpikingJelly, on a real store (real photographs) and its
`odg export es-imagenet` export.

- tonic: `ToFrame` on odg events gives odg's frames (correspondence documented in the test).
- SpikingJelly: an export arranged by `odg.pipelines.spikingjelly_layout` is what `ESImageNet` reads.
  `spikingjelly.datasets` imports torchvision at module level; where torchvision cannot be
  imported (it has no build for every torch), the test through the `ESImageNet` class is skipped
  and `test_spikingjelly_own_preparation_and_loader` runs SpikingJelly's own layout preparation
  (`ESImageNet.create_raw_from_extracted`, `utils.create_same_directory_structure`) and per-file
  loader (`es_imagenet._load_events`), compiled unchanged from its installed source.
"""
from __future__ import annotations

import ast
import importlib.util
import logging
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from odg import events_to_frames
from odg.pipelines.spikingjelly_layout import class_index_map, spikingjelly_layout
from odg.pipelines.store import open_store

DATA = Path(__file__).resolve().parent.parent / "data"
TRAIN = {"n01440764": ["astronaut", "cell", "clock_motion", "page"], "n01443537": ["coffee"],
         "n01484850": ["camera"]}                          # class 0, 1, 2 (camera: scikit-image)
VAL = {"n01440764": "astronaut", "n01443537": "coffee", "n01484850": "camera"}   # mirrored copies


def _image(name: str) -> np.ndarray:
    p = DATA / "odg" / "images" / f"{name}.png"          # the test vectors' photographs
    if p.exists():
        return cv2.imread(str(p), cv2.IMREAD_COLOR)
    import skimage.data  # a test dependency: its photographs
    img = getattr(skimage.data, name)()
    return cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(store url, export dir): train and val splits of real photographs, exported to the published layout."""
    from odg.pipelines.cli import main as odg
    tmp = tmp_path_factory.mktemp("interop")
    for wnid, names in TRAIN.items():
        (tmp / "tree" / "train" / wnid).mkdir(parents=True)
        for n in names:               # PNG content named .JPEG (as the ILSVRC2012 tree's one PNG)
            ok, buf = cv2.imencode(".png", _image(n))
            assert ok
            (tmp / "tree" / "train" / wnid / f"{n}.JPEG").write_bytes(buf.tobytes())
    for wnid, n in VAL.items():
        (tmp / "tree" / "val" / wnid).mkdir(parents=True)
        assert cv2.imwrite(str(tmp / "tree" / "val" / wnid / f"{n}_mirror.JPEG"), _image(n)[:, ::-1].copy(),
                           [cv2.IMWRITE_JPEG_QUALITY, 92])
    url = str(tmp / "store.zarr")
    for split in ("train", "val"):
        assert odg(["build", "imagenet", str(tmp / "tree"), url, "--split", split, "--dask-workers", "1",
                    "--shard-size", "2", "--quiet"]) == 0
    out = str(tmp / "ES-imagenet-0.18")
    assert odg(["export", "es-imagenet", url, out, "--quiet"]) == 0
    return url, out


def _event_set(x, y, t, p) -> set:
    return set(zip(np.asarray(x).astype(int).tolist(), np.asarray(y).astype(int).tolist(),
                   np.asarray(t).astype(int).tolist(), np.asarray(p).astype(int).tolist()))


# -- tonic -------------------------------------------------------------------------------------

def test_tonic_to_frame_matches_odg(exported):
    import tonic
    url, _ = exported
    st = open_store(url)
    T = st.params.steps
    # odg events are canvas coordinates (x = col, y = row, both 17..239), t = 1..T, p = 1 ON / 0 OFF,
    # sorted by t: a (256, 256, 2) sensor holds every event, one time window per step.
    to_frame = tonic.transforms.ToFrame(sensor_size=(256, 256, 2), time_window=1, start_time=1, end_time=T + 1)
    checked = 0
    for split in st.splits:
        sr = st[split]
        for i in sr.kept_indices():
            ev = sr.events(int(i))
            shape = tuple(int(v) for v in sr.shapes[i])
            tf = to_frame(ev)                                     # int16 [T, 2 (p = 0, 1), 256 (y), 256 (x)]
            assert tf.shape == (T, 2, 256, 256) and tf.max() == 1 and tf.sum() == len(ev)
            # odg's uncentred frames: tonic's channels flipped (odg puts ON, p = 1, first), crop at 16
            ours = events_to_frames(ev, shape, st.params, centre=False)
            assert np.array_equal(tf[:, ::-1, 16:240, 16:240], ours)
            # the published loader's frames (= SplitReader.frames): shift by the centring offset first
            dr, dc = st.params.centring(*shape)
            shifted = ev.copy()
            shifted["x"] += dc
            shifted["y"] += dr
            tc = to_frame(shifted)
            assert tc.sum() == len(ev)                            # still inside 256 x 256
            assert np.array_equal(tc[:, ::-1, 16:240, 16:240], sr.frames(int(i)))
            checked += 1
    assert checked >= 6


def test_tonic_n_time_bins_does_not_bin_by_step(exported):
    """Documented pitfall: n_time_bins=T cuts (t_last - t_first) // T = 0-wide bins for t in 1..8."""
    import tonic
    url, _ = exported
    sr = open_store(url)["train"]
    ev = sr.events(int(sr.kept_indices()[0]))
    tf = tonic.transforms.ToFrame(sensor_size=(256, 256, 2), n_time_bins=8)(ev)
    assert tf.sum() != len(ev)


# -- SpikingJelly ------------------------------------------------------------------------------

def _check_layout(exported, root: Path):
    url, out = exported
    st = open_store(url)
    info = spikingjelly_layout(out, str(root))
    raw = root / "events_np"
    n_train = len(st["train"].kept_indices())
    n_val = len(st["val"].kept_indices())
    assert info["files"] == {"train": n_train, "test": n_val}
    assert sorted(os.listdir(raw / "train")) == sorted(os.listdir(raw / "test")) == info["classes"]
    return info


def _odg_events_by_file(exported):
    """Published file (relative to events_np/{train,test}) -> (class K, odg event set)."""
    from odg.pipelines.export import published_relpath
    url, _ = exported
    st = open_store(url)
    out = {}
    for split, folder in (("train", "train"), ("val", "test")):
        sr = st[split]
        names = sr.names()
        for i in sr.kept_indices():
            i = int(i)
            k = int(sr.labels[i])
            rel = published_relpath(split, k, int(sr.numbers[i]), names[i])
            if split == "val":
                rel = f"class{k}/{rel}"
            ev = sr.events(i)
            out[f"{folder}/{rel}"] = (k, _event_set(ev["x"], ev["y"], ev["t"], ev["p"]))
    return out


def test_spikingjelly_esimagenet_class(exported, tmp_path):
    """Through SpikingJelly's own dataset class (needs spikingjelly and torchvision importable)."""
    es = pytest.importorskip("spikingjelly.datasets.es_imagenet", exc_type=ImportError)
    info = _check_layout(exported, tmp_path)
    expected = _odg_events_by_file(exported)
    for train, folder in ((True, "train"), (False, "test")):
        ds = es.ESImageNet(str(tmp_path), train=train, data_type="event")
        mine = {k: v for k, v in expected.items() if k.startswith(folder + "/")}
        assert len(ds) == len(mine)
        assert {v: int(k[5:]) for k, v in ds.class_to_idx.items()} == info["class_index_map"]
        for j, (path, target) in enumerate(ds.samples):
            rel = f"{folder}/{Path(path).parent.name}/{Path(path).name}"
            k, events = mine[rel]
            assert info["class_index_map"][target] == k
            e, tgt = ds[j]
            assert tgt == target
            assert _event_set(e["x"], e["y"], e["t"], e["p"]) == events
    # frames: SpikingJelly integrates on 256 x 256, no shift, no crop
    def per_step(events, H, W):
        f = np.zeros((8, 2, H, W), np.float32)
        t, p = events["t"].astype(int), events["p"].astype(int)
        f[t - 1, 1 - p, events["y"].astype(int), events["x"].astype(int)] = 1
        return f
    fr = es.ESImageNet(str(tmp_path), train=True, data_type="frame", custom_integrate_function=per_step,
                       custom_integrated_frames_dir_name="per_step")
    url, _ = exported
    sr = open_store(url)["train"]
    frames, target = fr[0]
    k, events = expected[f"train/{Path(fr.samples[0][0]).parent.name}/{Path(fr.samples[0][0]).name}"]
    idx = [int(i) for i in sr.kept_indices() if _event_set(*[sr.events(int(i))[f] for f in "xytp"]) == events][0]
    assert np.array_equal(np.asarray(frames)[:, :, 16:240, 16:240],
                          events_to_frames(sr.events(idx), tuple(sr.shapes[idx]), centre=False))


def _spikingjelly_source_functions():
    """SpikingJelly's `create_raw_from_extracted`, `create_same_directory_structure` and
    `es_imagenet._load_events`, compiled unchanged from its installed source files (its package
    modules import torchvision at the top, which may not import beside this torch)."""
    spec = importlib.util.find_spec("spikingjelly")
    if spec is None:
        pytest.skip("spikingjelly is not installed (pip install --no-deps spikingjelly)")
    base = Path(spec.origin).parent / "datasets"

    def grab(path: Path, name: str, cls: str | None = None) -> ast.FunctionDef:
        tree = ast.parse(path.read_text())
        body = tree.body
        if cls:
            body = next(n for n in body if isinstance(n, ast.ClassDef) and n.name == cls).body
        fn = next(n for n in body if isinstance(n, ast.FunctionDef) and n.name == name)
        fn.decorator_list = []                                  # the @classmethod: called with cls=None
        return fn

    try:
        from spikingjelly.logger import logger
    except ImportError:                                         # loguru missing: any logger will do
        logger = logging.getLogger("spikingjelly")
    ns = {"np": np, "os": os, "time": time, "Path": Path, "logger": logger}
    from typing import Callable, Optional, Tuple, Union
    ns.update(Union=Union, Callable=Callable, Optional=Optional, Tuple=Tuple)
    mod = ast.Module(body=[grab(base / "utils.py", "create_same_directory_structure"),
                           grab(base / "es_imagenet.py", "_load_events"),
                           grab(base / "es_imagenet.py", "create_raw_from_extracted", "ESImageNet")],
                     type_ignores=[])
    exec(compile(ast.fix_missing_locations(mod), str(base / "es_imagenet.py"), "exec"), ns)

    class _Utils:
        create_same_directory_structure = staticmethod(ns["create_same_directory_structure"])
    ns["utils"] = _Utils
    return ns["create_raw_from_extracted"], ns["_load_events"]


def _tree(root: Path) -> dict:
    out = {}
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        out[rel] = None
        for f in files:
            p = os.path.join(d, f)
            out[os.path.join(rel, f)] = os.path.realpath(p)
    return out


def test_spikingjelly_own_preparation_and_loader(exported, tmp_path):
    create_raw_from_extracted, load_events = _spikingjelly_source_functions()
    url, out = exported
    # SpikingJelly's own preparation, from ROOT/extract/ES-imagenet-0.18 (the extracted download)
    theirs = tmp_path / "sj"
    (theirs / "extract").mkdir(parents=True)
    os.symlink(out, theirs / "extract" / "ES-imagenet-0.18")
    (theirs / "events_np").mkdir()
    create_raw_from_extracted(None, theirs / "extract", theirs / "events_np")
    # ours
    info = _check_layout(exported, tmp_path / "odg")
    assert _tree(tmp_path / "odg" / "events_np") == _tree(theirs / "events_np")
    # every file read with SpikingJelly's loader: odg's events, labels by sorted class folder
    expected = _odg_events_by_file(exported)
    raw = tmp_path / "odg" / "events_np"
    n = 0
    for folder in ("train", "test"):
        classes = sorted(os.listdir(raw / folder))                 # torchvision DatasetFolder's order
        assert class_index_map(classes) == info["class_index_map"]
        for target, cname in enumerate(classes):
            for f in sorted(os.listdir(raw / folder / cname)):
                e = load_events(raw / folder / cname / f)
                assert set(e) == {"x", "y", "t", "p"}
                k, events = expected[f"{folder}/{cname}/{f}"]
                assert info["class_index_map"][target] == k
                assert _event_set(e["x"], e["y"], e["t"], e["p"]) == events
                assert np.all(np.diff(e["t"]) >= 0)                 # sorted by t (x = col, y = row)
                n += 1
    assert n == len(expected) >= 8


def test_spikingjelly_layout_refusals(exported, tmp_path):
    _, out = exported
    spikingjelly_layout(out, str(tmp_path), mode="copy")
    assert not os.path.islink(next((tmp_path / "events_np" / "train" / "class0").iterdir()))
    with pytest.raises(FileExistsError):
        spikingjelly_layout(out, str(tmp_path))
    with pytest.raises(ValueError):
        spikingjelly_layout(str(tmp_path / "nothing"), str(tmp_path / "other"))
    with pytest.raises(ValueError):
        class_index_map(["class1", "n01440764"])
    shutil.rmtree(tmp_path / "events_np")


def test_dataset_frames_match_tonic_uncentred(exported):
    """ESDataset(centre=False) is the tonic frame crop too (same correspondence as above)."""
    import tonic

    from odg.models.data import ESDataset
    url, _ = exported
    ds = ESDataset(url, "val", centre=False)
    sr = open_store(url)["val"]
    to_frame = tonic.transforms.ToFrame(sensor_size=(256, 256, 2), time_window=1, start_time=1, end_time=9)
    for i in range(len(ds)):
        tf = to_frame(sr.events(int(ds.indices[i])))
        want = torch.from_numpy(np.ascontiguousarray(tf[:, ::-1, 16:240, 16:240])).to(torch.uint8)
        assert torch.equal(ds[i][0], want)
