"""`ImageNetEvents`: ILSVRC2012 images converted on the fly, against stores built from the same inputs.

Real inputs: the test-vector photographs (one discarded under the ODG floor), a CMYK JPEG and every
kind of bad file (`tests/pipelines/trees.py`), as an extracted tree, as the original nested tars and
as a validation folder; real Dask builds; DataLoaders with 2 real worker processes.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from distributed import Client, LocalCluster

from odg import Augment
from odg.models.data import ESDataset
from odg.models.imagenet_events import EpochSampler, ImageNetEvents
from odg.pipelines.build import run_build
from odg.pipelines.imagenet import build_spec
from odg.pipelines.store import KEPT, KIND_I2E, STATUS_NAMES, open_store

from ..pipelines.trees import VEC, WNID0, WNID1, bad_tree, tar_from_tree


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The bad tree (train), the same as nested tars, a val/<wnid>/ folder, and its stores."""
    base = tmp_path_factory.mktemp("otf")
    tree = bad_tree(str(base / "tree"))
    val = base / "tree" / "val"
    for wnid, stems in ((WNID0, ("page", "cell")), (WNID1, ("coffee", "astronaut"))):
        (val / wnid).mkdir(parents=True)
        for s in stems:
            shutil.copy(os.path.join(VEC, "images", s + ".png"), val / wnid / f"{s}.JPEG")
    arch = tar_from_tree(tree, str(base / "arch"))
    stores = {}
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        for name, method, split in (("odg", "odg", "train"), ("i2e", "i2e", "train"), ("i2e", "i2e", "val")):
            url = str(base / f"{name}.zarr")
            report = run_build(build_spec(url, tree, split, shard_size=3, method=method), client=client, progress=False)
            assert not report.failed
            stores[name] = url
    return {"tree": tree, "arch": arch, "base": base, **stores}


def next_kept(statuses: np.ndarray) -> np.ndarray:
    """For every input, the first kept input at or after it (cyclically): what the dataset gives."""
    kept = np.flatnonzero(statuses == KEPT)
    n = len(statuses)
    return np.array([kept[np.searchsorted(kept, i)] if i <= kept[-1] else kept[0] for i in range(n)])


def test_odg_equals_the_store_sample_for_sample(inputs):
    sr = open_store(inputs["odg"])["train"]
    ds = ImageNetEvents(inputs["tree"], "train")
    store_all = ESDataset(inputs["odg"], "train", kept_only=False)
    assert len(ds) == len(sr) == len(store_all)
    assert [it.name for it in ds.items] == list(sr.names())
    statuses = sr.statuses
    assert {STATUS_NAMES[int(s)] for s in statuses} == {"kept", "discarded", "rejected"}
    target = next_kept(statuses)
    for i in range(len(ds)):
        frames, label = ds[i]
        want, want_label = store_all[int(target[i])]
        assert torch.equal(frames, want), i
        assert label == want_label == sr.label(int(target[i]))
    # every skipped input recorded once (remembered afterwards), with the build's own reason
    rec = {n: (status, reason) for _, n, _, status, reason in ds.skipped}
    skipped = np.flatnonzero(statuses != KEPT)
    assert sorted(rec) == skipped.tolist() and len(ds.skipped) == len(skipped)
    reasons = sr.reasons()
    for n in skipped:
        assert rec[n] == (STATUS_NAMES[int(statuses[n])], reasons[n])


def test_two_workers_equal_the_store_and_log_skips(inputs, tmp_path):
    sr = open_store(inputs["odg"])["train"]
    log = tmp_path / "skipped.tsv"
    ds = ImageNetEvents(inputs["tree"], "train", skip_log=log)
    dl = ds.loader(batch_size=4, shuffle=False, num_workers=2)
    dl.sampler.set_epoch(0)
    store_all = ESDataset(inputs["odg"], "train", kept_only=False)
    target = next_kept(sr.statuses)
    got_frames, got_labels = [], []
    for frames, labels in dl:
        assert frames.dtype == torch.uint8 and frames.shape[1:] == (4, 2, 224, 224) or frames.shape[1] < 4
        got_frames.append(frames)
        got_labels.append(labels)
    frames = torch.cat(got_frames, dim=1)
    want = torch.stack([store_all[int(t)][0] for t in target], dim=1)
    assert torch.equal(frames, want)
    assert torch.cat(got_labels).tolist() == [sr.label(int(t)) for t in target]
    lines = [ln.split("\t") for ln in log.read_text().splitlines()]
    names = list(sr.names())
    assert {ln[2] for ln in lines} == {names[i] for i in np.flatnonzero(sr.statuses != KEPT)}
    assert all(ln[3] in ("rejected", "discarded") and ln[4] for ln in lines)


def test_archive_source_and_published_sample_set(inputs):
    sr = open_store(inputs["odg"])["train"]
    arch = ImageNetEvents(inputs["arch"], "train", samples=sr.kept_indices())
    assert arch.source["layout"] == "archive"
    kept = ESDataset(inputs["odg"], "train")                       # the published set: kept samples only
    assert len(arch) == len(kept) and np.array_equal(arch.labels, kept.labels)
    dl = arch.loader(batch_size=2, shuffle=False, num_workers=2)    # members read at their offsets in workers
    frames, labels = (torch.cat(x, dim=d) for x, d in zip(zip(*dl), (1, 0)))
    want = kept.__getitems__(list(range(len(kept))))
    assert torch.equal(frames, want.tensor) and torch.equal(labels, want.labels)
    assert arch.skipped == []


@pytest.mark.parametrize("opts", [{"layout": "CTHW"}, {"packed": True}, {"dtype": torch.float32},
                                  {"centre": False}])
def test_layouts_dtypes_and_packed_as_esdataset(inputs, opts):
    sr = open_store(inputs["odg"])["train"]
    kept = sr.kept_indices()
    ds = ImageNetEvents(inputs["tree"], "train", samples=kept, **opts)
    ref = ESDataset(inputs["odg"], "train", **opts)
    got, want = ds.__getitems__([0, 2, 1]), ref.__getitems__([0, 2, 1])
    assert got.tensor.dtype == want.tensor.dtype and torch.equal(got.tensor, want.tensor)
    f, lab = ds[1]
    g, lab2 = ref[1]
    assert torch.equal(f, g) and lab == lab2


@pytest.mark.parametrize("split", ["train", "val"])
def test_i2e_equals_the_i2e_store(inputs, split):
    st = open_store(inputs["i2e"])
    assert st.kind == KIND_I2E and st.method == "i2e" and st.params.ratio == 0.12
    sr = st[split]
    ds = ImageNetEvents(inputs["tree"], split, method="i2e")
    ref = ESDataset(inputs["i2e"], split, kept_only=False)
    target = next_kept(sr.statuses)
    batch = ds.__getitems__(list(range(len(ds))))
    want = ref.__getitems__(target.tolist())
    assert torch.equal(batch.tensor, want.tensor) and torch.equal(batch.labels, want.labels)
    for i in np.flatnonzero(sr.statuses == KEPT)[:3]:
        assert np.array_equal(sr.frames(int(i)), ds[int(i)][0].numpy())
    assert all(status == "rejected" for _, _, _, status, _ in ds.skipped)        # I2E has no event floor


def test_augmentation_reproducible_whatever_the_workers(inputs):
    sr = open_store(inputs["odg"])["train"]
    kept = sr.kept_indices()
    for method in ("odg", "i2e"):
        ds = ImageNetEvents(inputs["tree"], "train", method=method, augment=Augment(seed=5), samples=kept)
        plain = ImageNetEvents(inputs["tree"], "train", method=method, samples=kept)
        epochs = {}
        for workers in (0, 2):
            dl = ds.loader(batch_size=3, shuffle=True, seed=1, num_workers=workers)
            for epoch in (0, 1):
                dl.sampler.set_epoch(epoch)
                frames = torch.cat([f for f, _ in dl], dim=1)
                order = dl.sampler.indices()
                expect = ds.__getitems__([(epoch, int(i)) for i in order]).tensor
                assert torch.equal(frames, expect), (method, workers, epoch)
                epochs.setdefault(epoch, []).append(frames)
        assert torch.equal(epochs[0][0], epochs[0][1]) and torch.equal(epochs[1][0], epochs[1][1])
        order = list(range(len(ds)))
        e0 = ds.__getitems__([(0, i) for i in order]).tensor
        e1 = ds.__getitems__([(1, i) for i in order]).tensor
        assert not torch.equal(e0, e1)
        assert not torch.equal(e0, plain.__getitems__(order).tensor)
        ds.set_epoch(1)                                   # plain indices take the dataset's epoch
        assert torch.equal(ds.__getitems__(order).tensor, e1)


def test_augment_options_change_only_what_they_name(inputs):
    kept = open_store(inputs["odg"])["train"].kept_indices()
    plain = ImageNetEvents(inputs["tree"], "train", method="i2e", samples=kept)
    flip = ImageNetEvents(inputs["tree"], "train", method="i2e", samples=kept,
                          augment=Augment(crop=False, flip=1.0, directions=False))
    f, _ = flip[0]
    p, _ = plain[0]
    from odg.i2e import i2e_frames, preprocess
    from odg.pipelines.decode import decode_image
    img = decode_image(plain.items[int(kept[0])].read())
    np.testing.assert_array_equal(f.numpy(), i2e_frames(preprocess(img, flip=True)))
    assert not torch.equal(f, p)
    dirs = ImageNetEvents(inputs["tree"], "train", method="i2e", samples=kept,
                          augment=Augment(crop=False, flip=0.0, directions=True, seed=2))
    d = dirs.augment.draw(0, int(kept[0]), *img.shape[:2], [len(g) for g in plain.params.directions])
    np.testing.assert_array_equal(dirs[0][0].numpy(), i2e_frames(preprocess(img), choice=d.choice))


def test_refusals(inputs):
    with pytest.raises(ValueError, match="method"):
        ImageNetEvents(inputs["tree"], "train", method="dvs")
    with pytest.raises(ValueError, match="takes I2EParams"):
        from odg import ODGParams
        ImageNetEvents(inputs["tree"], "train", method="i2e", params=ODGParams())
    with pytest.raises(ValueError, match="neither"):
        ImageNetEvents(inputs["base"], "train")
    ds = ImageNetEvents(inputs["tree"], "train")
    with pytest.raises(IndexError):
        ds[len(ds)]
    with pytest.raises(ValueError, match="mixes epochs"):
        ds.__getitems__([(0, 1), (1, 2)])
    with pytest.raises(IndexError):
        ImageNetEvents(inputs["tree"], "train", samples=[10 ** 6])


def test_no_kept_input_is_a_clear_error(tmp_path):
    d = tmp_path / "train" / WNID0
    d.mkdir(parents=True)
    (d / "a.JPEG").write_bytes(b"")
    (d / "b.JPEG").write_bytes(b"not an image")
    ds = ImageNetEvents(tmp_path, "train")
    with pytest.raises(RuntimeError, match="no input"):
        ds[0]


def test_epoch_sampler_ranks_and_epochs():
    full = set(range(10))
    for world in (1, 2, 3):
        parts = [EpochSampler(10, seed=4, rank=r, world_size=world) for r in range(world)]
        for p in parts:
            p.set_epoch(2)
        got = [list(p) for p in parts]
        assert all(len(g) == -(-10 // world) for g in got)
        assert set(i for g in got for _, i in g) == full and all(e == 2 for g in got for e, _ in g)
    a, b = EpochSampler(10, seed=4), EpochSampler(10, seed=4)
    b.set_epoch(1)
    assert list(a) != list(b) and sorted(i for _, i in b) == list(range(10))
    assert [i for _, i in EpochSampler(5, shuffle=False)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        EpochSampler(4, rank=2, world_size=2)
