"""`odg.models.ESImageNet` / `ESUCF101` (torchvision-style datasets) and `odg.to_tonic`, on stores built
by `odg build` from the bundled real photographs and the repository's ES-UCF101 test clip; tonic's
own transforms on the events."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tonic
import torch
from torch.utils.data import DataLoader

from odg import EVENT_DTYPE, STEP_US, TONIC_DTYPE, to_tonic
from odg.models import ESUCF101, ESImageNet
from odg.models.data import ESDataset
from odg.pipelines.cli import main as odg
from odg.pipelines.store import open_store

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "pipelines" / "data" / "sample"
UCF = REPO / "tests" / "data" / "ucf"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """train: the seven bundled photographs (ILSVRC2012 layout), shards of 3."""
    url = str(tmp_path_factory.mktemp("tv") / "es.zarr")
    assert odg(["build", "imagenet", str(SAMPLE), url, "--split", "train", "--dask-workers", "1", "--shard-size", "3",
                "--quiet"]) == 0
    return url


def test_attributes_as_torchvision(store):
    st = open_store(store)
    ds = ESImageNet(store)                                         # split="train", frames
    base = ESDataset(store, "train")
    assert len(ds) == len(base) > 3 and ds.data_type == "frame"
    assert ds.classes == [c[1] for c in st.classes] and len(ds.classes) == 1000
    assert all(isinstance(c, str) and c.startswith("n") for c in ds.classes)
    assert ds.class_names == [c[2] for c in st.classes]
    assert ds.class_to_idx == {w: k for k, w in enumerate(ds.classes)}
    assert ds.targets == base.labels.tolist() and all(type(t) is int for t in ds.targets)
    # every item's target is the class of its source folder
    names = st["train"].names()
    assert [ds.class_to_idx[str(names[i]).split("/")[0]] for i in ds.indices] == ds.targets
    assert ds.sensor_size == (256, 256, 2)                         # the published loader's canvas
    with pytest.raises(KeyError, match="no split 'val'"):
        ESImageNet(store, split="val")
    with pytest.raises(ValueError, match="data_type"):
        ESImageNet(store, data_type="frames")


def test_frames_transforms_and_default_collate(store):
    base = ESDataset(store, "train")
    calls = []
    ds = ESImageNet(store, transform=lambda f: (calls.append(1), f.float().mean(0))[1],
                    target_transform=lambda y: y + 1000)
    for i in range(len(ds)):
        f, y = ds[i]
        want, label = base[i]
        assert f.dtype == torch.float32 and f.shape == (2, 224, 224)
        assert torch.equal(f, want.float().mean(0)) and y == label + 1000
    assert len(calls) == len(ds)
    # a plain DataLoader: untransformed frames come time first, as the zoo's models take them
    # (TimeFirstItem); transformed items are stacked along a new first axis, as torchvision's
    plain = ESImageNet(store)
    frames, labels = next(iter(DataLoader(plain, batch_size=4)))
    assert frames.shape == (8, 4, 2, 224, 224)
    assert torch.equal(frames, torch.stack([base[i][0] for i in range(4)], dim=1))
    assert labels.tolist() == plain.targets[:4]
    means, ys = next(iter(DataLoader(ds, batch_size=4)))
    assert means.shape == (4, 2, 224, 224) and ys.tolist() == [t + 1000 for t in plain.targets[:4]]
    words, _ = ESImageNet(store, data_type="packed")[0]
    assert torch.equal(words, ESDataset(store, "train", packed=True)[0][0])


def _step_frames(ev_tonic, sensor_size, T):
    return tonic.transforms.ToFrame(sensor_size=sensor_size, time_window=STEP_US, start_time=0,
                                    end_time=T * STEP_US)(ev_tonic)


def test_events_are_tonic_records_giving_odg_frames(store):
    st = open_store(store)
    T = st.params.steps
    sr = st["train"]
    ev_ds = ESImageNet(store, data_type="event")
    raw = ESImageNet(store, data_type="event", centre=False)
    frames = ESImageNet(store)
    flat = ESDataset(store, "train", centre=False)
    for i in range(len(ev_ds)):
        ev, y = ev_ds[i]
        idx = int(ev_ds.indices[i])
        assert ev.dtype == tonic.io.events_struct and y == frames.targets[i]
        assert np.all(np.diff(ev["t"]) >= 0) and len(ev) == int(sr.counts[idx].sum())
        assert set(np.unique(ev["t"])) <= {k * STEP_US for k in range(T)}
        tf = _step_frames(ev, ev_ds.sensor_size, T)            # int16 [T, 2 (OFF, ON), 256, 256]
        assert tf.shape == (T, 2, 256, 256) and tf.max() == 1 and tf.sum() == len(ev)   # nothing cropped
        assert np.array_equal(tf[:, ::-1, 16:240, 16:240], frames[i][0].numpy())
        # centre=False: the stored (uncentred canvas) events themselves, SpikingJelly's coordinates
        ev0, _ = raw[i]
        assert np.array_equal(ev0, to_tonic(sr.events(idx)))
        tf0 = _step_frames(ev0, raw.sensor_size, T)
        assert np.array_equal(tf0[:, ::-1, 16:240, 16:240], flat[i][0].numpy())


def test_tonic_n_time_bins_spans_first_to_last_event(store):
    """What the README says: n_time_bins=T bins (t_last - t_first) = (T - 1) steps; with T = 8 and
    1000 us steps, bin k holds step k + 1 for k < 7, and the last step is in no bin."""
    ds = ESImageNet(store, data_type="event", centre=False)
    T = open_store(store).params.steps
    ev, _ = ds[0]
    assert ev["t"][0] == 0 and ev["t"][-1] == (T - 1) * STEP_US
    by_step = _step_frames(ev, ds.sensor_size, T)
    binned = tonic.transforms.ToFrame(sensor_size=ds.sensor_size, n_time_bins=T)(ev)
    assert binned.shape == by_step.shape
    assert np.array_equal(binned[:T - 1], by_step[:T - 1])
    assert binned[T - 1].sum() == 0 and by_step[T - 1].sum() > 0
    assert binned.sum() == len(ev) - int((ev["t"] == (T - 1) * STEP_US).sum())


def test_tonic_transform_in_dataloader_workers(store):
    """tonic's ToFrame as the dataset's transform, batched by a DataLoader with two worker processes."""
    T = open_store(store).params.steps
    to_frame = tonic.transforms.ToFrame(sensor_size=(256, 256, 2), time_window=STEP_US, start_time=0,
                                        end_time=T * STEP_US)
    ds = ESImageNet(store, data_type="event", transform=to_frame)
    frames = ESImageNet(store)
    got = [(f, y) for f, y in DataLoader(ds, batch_size=3, num_workers=2)]
    f = torch.cat([b for b, _ in got])
    assert f.shape == (len(ds), T, 2, 256, 256)
    assert torch.equal(f.flip(2)[:, :, :, 16:240, 16:240].to(torch.uint8),
                       torch.stack([frames[i][0] for i in range(len(ds))]))
    assert torch.cat([y for _, y in got]).tolist() == ds.targets
    # ds.loader: ShardSampler order, torch's default collate for transformed items
    dl = ds.loader(batch_size=3, shuffle=False)
    batches = list(dl)
    assert [b.shape for b, _ in batches][0] == (3, T, 2, 256, 256)
    assert torch.equal(torch.cat([b for b, _ in batches]), f)


def test_to_tonic_fields_and_order():
    ev = np.zeros(5, EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = [5, 1, 2, 7, 3], [9, 8, 7, 6, 5], [3, 1, 3, 2, 1], [1, 0, 0, 1, 1]
    out = to_tonic(ev, step_us=250)
    assert out.dtype == TONIC_DTYPE == tonic.io.events_struct
    assert out["t"].tolist() == [0, 0, 250, 500, 500]                       # stable: input order within a step
    assert out["x"].tolist() == [1, 3, 7, 5, 2] and out["y"].tolist() == [8, 5, 6, 9, 7]
    assert out["p"].tolist() == [False, True, True, True, False]
    assert len(to_tonic(ev[:0])) == 0
    with pytest.raises(ValueError, match="dtype"):
        to_tonic(out)
    with pytest.raises(ValueError, match="step_us"):
        to_tonic(ev, step_us=0)
    bad = ev.copy()
    bad["t"][0] = 0
    with pytest.raises(ValueError, match="start at 1"):
        to_tonic(bad)


@pytest.fixture(scope="module")
def ucf_store(tmp_path_factory):
    """`odg build ucf101` of the test clip's frame folder (UCF101 layout, official split 1, train part)."""
    tmp = tmp_path_factory.mktemp("tvucf")
    clip = "v_Panning_g02_c01"
    root = tmp / "UCF101"
    (root / "UCF-101" / "Panning").mkdir(parents=True)
    shutil.copy(UCF / f"{clip}.avi", root / "UCF-101" / "Panning" / f"{clip}.avi")
    (root / "ucfTrainTestlist").mkdir()
    (root / "ucfTrainTestlist" / "classInd.txt").write_text("1 Panning\n")
    (root / "ucfTrainTestlist" / "trainlist01.txt").write_text(f"Panning/{clip}.avi 1\n")
    (root / "ucfTrainTestlist" / "testlist01.txt").write_text("")
    url = str(tmp / "ucf.zarr")
    assert odg(["build", "ucf101", str(root), url, "--fold", "1", "--subset", "train", "--frames",
                str(UCF / "frames"), "--dask-workers", "1", "--quiet"]) == 0
    return url, np.load(UCF / "expected" / f"{clip}.npz")["arr_0"]       # published uint8 [2, 30, 240, 320]


def test_ucf101_frames_events_and_attributes(ucf_store):
    url, expected = ucf_store
    ds = ESUCF101(url, fold=1, train=True)
    assert ds.split == "train1" and len(ds) == 1
    assert ds.classes == ds.class_names == ["Panning"] and ds.class_to_idx == {"Panning": 0}
    assert ds.targets == [0] and ds.sensor_size == (320, 240, 2)
    f, y = ds[0]
    assert y == 0 and np.array_equal(f.numpy(), expected.transpose(1, 0, 2, 3))
    ev, _ = ESUCF101(url, data_type="event")[0]
    assert ev.dtype == tonic.io.events_struct and np.all(np.diff(ev["t"]) >= 0)
    assert len(ev) == int(expected.sum())
    tf = _step_frames(ev, ds.sensor_size, 30)
    assert np.array_equal(tf[:, ::-1], expected.transpose(1, 0, 2, 3))
    with pytest.raises(KeyError, match="test1"):
        ESUCF101(url, fold=1, train=False)
    with pytest.raises(ValueError, match="fold"):
        ESUCF101(url, fold=4)
    with pytest.raises(ValueError, match="es-ucf101 store"):
        ESImageNet(url, split="train1")
