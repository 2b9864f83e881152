"""One `Outcome` from every converter, one `SourceItem` protocol for every input type.

Real inputs: the sample tree's JPEGs, the test vectors, the UCF101 test clip and its published
file, and broken files written here.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from odg import ODGParams
from odg.i2e import I2EParams
from odg.pipelines.build import _build_shard
from odg.pipelines.convert import convert_files
from odg.pipelines.decode import MAX_PIXELS
from odg.pipelines.demo import sample_root
from odg.pipelines.imagenet import Item, convert_item, convert_item_i2e, imagenet_items
from odg.pipelines.importer import NpzItem, convert_npz
from odg.pipelines.outcome import Outcome, SourceItem
from odg.pipelines.store import DISCARDED, KEPT, REJECTED
from odg.pipelines.ucf101_build import UCFItem, convert_ucf_item
from odg.pipelines.ucf101_import import ClipFile, convert_clip_file
from odg.video import UCFParams, pack_clip

from .trees import BAD_FILES, WNID0

UCF = Path(__file__).parent.parent / "data" / "ucf"
CLIP = "v_Panning_g02_c01"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """train/<WNID0>/ with a sample-tree JPEG (kept), a flat grey image (no edges: discarded by
    ODG) and a corrupt JPEG (rejected); its Items in split order, by file name."""
    root = tmp_path_factory.mktemp("outcome")
    d = root / "train" / WNID0
    d.mkdir(parents=True)
    shutil.copy(next(Path(sample_root(), "train").glob("*/*.JPEG")), d / "a_photo.JPEG")
    assert cv2.imwrite(str(d / "b_flat.png"), np.full((300, 400, 3), 128, np.uint8))
    (d / "c_corrupt.JPEG").write_bytes(BAD_FILES["corrupt.JPEG"][0])
    items, _ = imagenet_items(str(root), "train")
    return root, {it.file_name: it for it in items}


def test_outcome_constructors_state_their_contract():
    k = Outcome.kept(np.array([3, 4], np.int16), (np.int64(5), 6), np.zeros(2))
    assert (k.status, k.reason, k.shape, k.count, k.converted, k.status_name) == (KEPT, "", (3, 4), (5, 6), True, "kept")
    assert all(type(v) is int for v in k.shape + k.count)
    d = Outcome.discarded("7 events < 1000", (3, 4), (5, 2))
    assert (d.status, d.converted, d.status_name, d.words) == (DISCARDED, True, "discarded", None)
    r = Outcome.rejected("cannot read: gone")
    assert (r.status, r.reason, r.converted, r.status_name, r.shape, r.words) == (REJECTED, "cannot read: gone", False,
                                                                                 "rejected", None, None)
    assert Outcome.rejected("").reason == "rejected (the conversion gave no reason)"   # never an empty reason
    with pytest.raises(ValueError, match="reason"):
        Outcome.discarded("", (3, 4), (0, 0))


def test_every_input_type_is_a_source_item(images, tmp_path):
    _, items = images
    inputs = [items["a_photo.JPEG"], UCFItem(CLIP, 1, 1, str(UCF / f"{CLIP}.avi"), None),
              NpzItem("class0/class0_1.npz", 0, 1, str(tmp_path / "x.npz")), ClipFile(CLIP, 1, 1, str(tmp_path / "x.npz"))]
    assert [type(it) for it in inputs] == [Item, UCFItem, NpzItem, ClipFile]
    for it in inputs:
        assert isinstance(it, SourceItem), type(it).__name__
    assert not isinstance(Path("x"), SourceItem)            # the check can fail: a path has no label/number


def test_imagenet_converters_give_outcomes(images):
    _, items = images
    p = ODGParams()
    kept, flat, bad = (convert_item(items[n], p, MAX_PIXELS) for n in ("a_photo.JPEG", "b_flat.png", "c_corrupt.JPEG"))
    assert all(isinstance(o, Outcome) for o in (kept, flat, bad))
    assert kept.status == KEPT and sum(kept.count) >= p.min_events and max(kept.shape) == p.long_side
    assert kept.words.shape == (p.grid, p.grid)
    assert flat.status == DISCARDED and flat.reason == f"{sum(flat.count)} events < {p.min_events}"
    assert flat.words is not None and max(flat.shape) == p.long_side
    assert bad.status == REJECTED and bad.reason and bad.words is None
    q = I2EParams()
    i2e = [convert_item_i2e(items[n], q, MAX_PIXELS, "val") for n in ("a_photo.JPEG", "b_flat.png", "c_corrupt.JPEG")]
    assert [o.status for o in i2e] == [KEPT, KEPT, REJECTED]           # I2E has no event floor
    assert i2e[0].shape == (q.size, q.size) and i2e[0].words.shape == (q.size, q.size) and sum(i2e[0].count) > 0
    assert i2e[2].reason == bad.reason
    unknown = Item("ILSVRC2012_val_99999999.JPEG", -1, 1, items["a_photo.JPEG"].path)
    assert convert_item(unknown, p, MAX_PIXELS) == Outcome.rejected("not in the ILSVRC2012 validation ground truth")


def test_odg_convert_rows_hold_the_shared_outcome(images, tmp_path):
    root, _ = images
    rows = convert_files([str(root / "train")], str(tmp_path / "out"), ODGParams(), progress=False)
    by = {os.path.basename(r.path): r for r in rows}
    assert [by[n].status for n in ("a_photo.JPEG", "b_flat.png", "c_corrupt.JPEG")] == ["kept", "discarded", "unreadable"]
    assert [by[n].outcome.status for n in ("a_photo.JPEG", "b_flat.png", "c_corrupt.JPEG")] == [KEPT, DISCARDED, REJECTED]
    assert by["a_photo.JPEG"].output == f"{WNID0}/a_photo.npz" and (tmp_path / "out" / by["a_photo.JPEG"].output).is_file()
    row = by["b_flat.png"].row()
    assert row[1:5] == ["discarded", sum(by["b_flat.png"].count), *by["b_flat.png"].count]
    assert row[7] == by["b_flat.png"].reason
    assert by["c_corrupt.JPEG"].row()[2:7] == [0, 0, 0, 0, 0]
    assert not (tmp_path / "out" / WNID0 / "b_flat.npz").exists()


def test_importer_gives_outcomes(images, tmp_path):
    _, items = images
    p = ODGParams()
    res = convert_item(items["a_photo.JPEG"], p, MAX_PIXELS)
    rows = convert_files([items["a_photo.JPEG"].path], str(tmp_path), p, progress=False)
    npz = tmp_path / rows[0].output
    item = NpzItem("class0/class0_1.npz", 0, 1, str(npz), res.shape, folder=str(tmp_path))
    kept = convert_npz(item, p)
    assert isinstance(kept, Outcome) and kept.status == KEPT
    assert (kept.shape, kept.count) == (res.shape, res.count) and np.array_equal(kept.words, res.words)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(npz.read_bytes()[:100])
    bad = convert_npz(NpzItem("class0/class0_2.npz", 0, 2, str(broken), res.shape, folder=str(tmp_path)), p)
    assert isinstance(bad, Outcome) and bad.status == REJECTED and bad.reason
    listed = convert_npz(NpzItem("class0/class0_3.npz", 0, 3, str(npz), problem="class 1000 outside 0..999"), p)
    assert listed == Outcome.rejected("class 1000 outside 0..999")


def test_ucf101_converters_give_outcomes(tmp_path):
    params = UCFParams()
    item = UCFItem(CLIP, 1, 1, None, str(UCF / "frames" / CLIP))
    kept = convert_ucf_item(item, params, True, (240, 320))
    assert isinstance(kept, Outcome) and kept.status == KEPT and kept.shape == (240, 320)
    assert kept.words.shape == (240, 320) and sum(kept.count) > 0
    wrong = convert_ucf_item(item, params, True, (120, 160))
    assert wrong.status == REJECTED and "differs from the split's 120x160" in wrong.reason
    truncated = tmp_path / f"{CLIP}.avi"
    truncated.write_bytes((UCF / f"{CLIP}.avi").read_bytes()[:2000])
    bad = convert_ucf_item(UCFItem(CLIP, 1, 1, str(truncated), None), params, False, (240, 320))
    assert isinstance(bad, Outcome) and bad.status == REJECTED and bad.reason

    published = UCF / "expected" / f"{CLIP}.npz"
    ev = np.load(published)["arr_0"]
    f = convert_clip_file(ClipFile(CLIP, 1, 1, str(published), folder=str(UCF)), ev.shape[1], ev.shape[2:])
    assert isinstance(f, Outcome) and f.status == KEPT and f.shape == ev.shape[2:]
    assert f.count == (np.count_nonzero(ev[0]), np.count_nonzero(ev[1])) and np.array_equal(f.words, pack_clip(ev))
    twos = tmp_path / "twos.npz"
    np.savez(twos, ev * 2)
    g = convert_clip_file(ClipFile(CLIP, 1, 1, str(twos), folder=str(tmp_path)), ev.shape[1], ev.shape[2:])
    assert g == Outcome.rejected("arr_0 holds values other than 0 and 1")


def test_a_shard_refuses_a_result_that_is_not_an_outcome(images, tmp_path):
    _, items = images
    small = {"url": str(tmp_path / "never.zarr"), "split": "train", "payload_shape": [2, 2], "payload_dtype": "<u2"}
    with pytest.raises(TypeError, match="returned dict, not an Outcome"):
        _build_shard(small, 0, [items["a_photo.JPEG"]], lambda it: {"status": KEPT})
    assert not (tmp_path / "never.zarr").exists()
