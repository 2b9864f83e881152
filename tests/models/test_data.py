"""`odg.models.data`: ESDataset, ShardSampler, collate and unpacking, on real stores built from real
photographs (the ODG test-vector images and scikit-image's photographs) and from the ES-UCF101
test clip (the published generator's output); DataLoaders with real worker processes."""
from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from odg import pack_frames
from odg.models.data import ESDataset, ShardSampler, collate_events, unpack_batch
from odg.pipelines.store import KIND_UCF101, open_store

DATA = Path(__file__).resolve().parent.parent / "data"
VECTORS = {"n01440764": ["astronaut", "cell", "clock_motion", "page"], "n01443537": ["coffee"]}
# more real photographs, one class each (class indices 2..7 of the sorted wnids)
SKIMAGE = {"n01484850": "camera", "n01491361": "chelsea", "n01494475": "coins", "n01496331": "rocket",
           "n01498041": "moon", "n01514668": "text"}


def _vector_image(name: str) -> Path:
    p = DATA / "odg" / "images" / f"{name}.png"
    assert p.exists(), f"test-vector image {p} is missing from the repository"
    return p


def make_tree(root: Path) -> Path:
    """train/<wnid>/*.JPEG of real photographs: the 5 test vectors (clock_motion is discarded) and 6
    of scikit-image's photographs."""
    import skimage.data as skdata
    for wnid, stems in VECTORS.items():
        (root / "train" / wnid).mkdir(parents=True, exist_ok=True)
        for s in stems:
            shutil.copy(_vector_image(s), root / "train" / wnid / f"{s}.JPEG")
    for wnid, name in SKIMAGE.items():
        img = getattr(skdata, name)()
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if img.ndim == 3 else img
        (root / "train" / wnid).mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(root / "train" / wnid / f"{name}.JPEG"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return root


def build_store(tmp: Path, shard_size: int = 2) -> str:
    from odg.pipelines.cli import main as odg
    tree = make_tree(tmp / "tree")
    url = str(tmp / "store.zarr")
    assert odg(["build", "imagenet", str(tree), url, "--split", "train", "--dask-workers", "1",
                "--shard-size", str(shard_size), "--quiet"]) == 0
    return url


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("esdata"))


@pytest.fixture(scope="module")
def reader(store):
    return open_store(store)["train"]


# -- items -------------------------------------------------------------------------------------

def test_store_has_kept_and_discarded(reader):
    assert len(reader) == 11 and reader.n_shards == 6
    assert 0 < len(reader.kept_indices()) < len(reader)          # clock_motion is discarded


def test_items_equal_reader_frames(store, reader):
    ds = ESDataset(store)
    kept = reader.kept_indices()
    assert len(ds) == len(kept) and np.array_equal(ds.indices, kept)
    for i in range(len(ds)):
        frames, label = ds[i]
        assert frames.dtype == torch.uint8 and tuple(frames.shape) == (8, 2, 224, 224)
        assert np.array_equal(frames.numpy(), reader.frames(int(kept[i])))
        assert label == reader.label(int(kept[i]))
    assert ds[-1][1] == ds[len(ds) - 1][1]
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_layouts_dtype_and_centre(store, reader):
    tchw, cthw = ESDataset(store), ESDataset(store, layout="CTHW")
    f32 = ESDataset(store, dtype=torch.float32)
    raw = ESDataset(store, centre=False)
    for i in range(len(tchw)):
        j = int(tchw.indices[i])
        a = tchw[i][0]
        assert torch.equal(cthw[i][0], a.permute(1, 0, 2, 3))      # published [2, T, H, W]
        b = f32[i][0]
        assert b.dtype == torch.float32 and torch.equal(b, a.float())
        assert np.array_equal(raw[i][0].numpy(), reader.frames(j, centre=False))
    with pytest.raises(ValueError):
        ESDataset(store, layout="THWC")


def test_all_samples_and_subsets(store, reader):
    ds = ESDataset(store, kept_only=False)
    assert len(ds) == len(reader)
    for i in range(len(ds)):
        assert np.array_equal(ds[i][0].numpy(), reader.frames(i))
    sub = ESDataset(store, samples=[5, 1, 3, 4])
    assert list(sub.indices) == [i for i in (1, 3, 4, 5) if reader.statuses[i] == 0]


def test_getitems_batches_and_collate(store):
    ds = ESDataset(store)
    items = [3, 0, 5, 2, 7]
    batch = ds.__getitems__(items)
    frames, labels = collate_events(batch)
    assert tuple(frames.shape) == (8, 5, 2, 224, 224)             # [T, B, 2, H, W]
    for b, i in enumerate(items):
        assert torch.equal(frames[:, b], ds[i][0]) and labels[b] == ds[i][1]
    # a plain list of items (the single-item path) collates the same
    f2, l2 = ds.collate_fn([ds[i] for i in items])
    assert torch.equal(f2, frames) and torch.equal(l2, labels)
    # CTHW batches are the published [B, 2, T, H, W]
    c = ESDataset(store, layout="CTHW")
    f3, _ = c.collate_fn(c.__getitems__(items))
    assert torch.equal(f3, frames.permute(1, 2, 0, 3, 4))
    # torch's default collate gives the same time-first batch (the items' type sees to it)
    f4, l4 = torch.utils.data.default_collate(ds.__getitems__(items))
    assert torch.equal(f4, frames) and torch.equal(l4, labels)
    f5, _ = torch.utils.data.default_collate([ds[i] for i in items])
    assert torch.equal(f5, frames)


def test_every_way_of_batching_reaches_the_models_time_first(store):
    """A plain DataLoader (in the main process and in a worker), `ds.loader`, `collate_fn` and
    `__getitems__` all give [T, B, 2, H, W]; a model takes the uint8 batch as it is."""
    from odg.models.small import build_small
    ds = ESDataset(store)
    want, labels = collate_events(ds.__getitems__([0, 1]))
    assert tuple(want.shape) == (8, 2, 2, 224, 224) and torch.equal(ds.__getitems__([0, 1]).tensor, want)
    batches = [next(iter(DataLoader(ds, batch_size=2))), next(iter(DataLoader(ds, batch_size=2, num_workers=1))),
               next(iter(ds.loader(2, shuffle=False)))]
    for frames, lab in batches:
        assert torch.equal(frames, want) and torch.equal(lab, labels)
    # an item stays an item: copied, pickled, or through default_convert (batch_size=None)
    item = ds[0]
    assert tuple(item[0].shape) == (8, 2, 224, 224) and isinstance(item[1], int)
    for same in (pickle.loads(pickle.dumps(item)), next(iter(DataLoader(ds, batch_size=None)))):
        assert torch.equal(same[0], item[0]) and same[1] == item[1]
    torch.manual_seed(0)
    net = build_small("lif_tiny", num_classes=5).eval()
    with torch.no_grad():
        logits = net(batches[0][0])                                    # uint8, converted
        assert logits.shape == (2, 5) and torch.equal(logits, net(want.float()))


def test_packed_words_and_unpack(store, reader):
    dense, packed = ESDataset(store), ESDataset(store, packed=True)
    for i in range(len(dense)):
        w, label = packed[i]
        assert w.dtype == torch.uint16 and tuple(w.shape) == (224, 224)
        f = dense[i][0]
        assert np.array_equal(w.numpy(), pack_frames(f.numpy()))      # bit 2k + c = frame[k, c]
        assert torch.equal(unpack_batch(w, 8), f)                     # one sample: [T, 2, H, W]
    items = list(range(len(dense)))[::-1]
    words, labels = packed.collate_fn(packed.__getitems__(items))
    assert tuple(words.shape) == (len(items), 224, 224)
    frames, labels2 = dense.collate_fn(dense.__getitems__(items))
    assert torch.equal(unpack_batch(words, 8), frames) and torch.equal(labels, labels2)
    assert torch.equal(unpack_batch(words.view(torch.int16).numpy(), 8), frames)
    with pytest.raises(ValueError):
        unpack_batch(words, 9)                                        # 18 bits do not fit uint16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_unpack_batch_cuda(store):
    dense, packed = ESDataset(store), ESDataset(store, packed=True)
    items = list(range(len(dense)))
    words, _ = packed.collate_fn(packed.__getitems__(items))
    frames, _ = dense.collate_fn(dense.__getitems__(items))
    out = unpack_batch(words.cuda(), 8)
    assert out.is_cuda and torch.equal(out.cpu(), frames)


def test_pickles_without_zarr(store):
    ds = ESDataset(store)
    before = ds[0][0]
    assert ds._words is not None
    blob = pickle.dumps(ds)
    assert b"zarr.core" not in blob and b"zarr.storage" not in blob and b"SplitReader" not in blob
    ds2 = pickle.loads(blob)
    assert ds2._words is None and torch.equal(ds2[0][0], before)


# -- sampling ----------------------------------------------------------------------------------

def _windows_ok(ds, order, buffer):
    """Shard order: between the first and the last item of any shard lie items of at most `buffer` shards."""
    shards = ds.shard_ids[order]
    for sh in np.unique(shards):
        pos = np.flatnonzero(shards == sh)
        assert len(np.unique(shards[pos[0]:pos[-1] + 1])) <= buffer


def test_sampler_covers_every_item_once(store):
    ds = ESDataset(store)
    for shuffle in (False, True):
        s = ShardSampler(ds, shuffle=shuffle, seed=3, buffer_shards=2)
        orders = []
        for epoch in range(3):
            s.set_epoch(epoch)
            order = list(s)
            assert len(order) == len(s) == len(ds)
            assert sorted(order) == list(range(len(ds)))
            _windows_ok(ds, np.array(order), 2)
            orders.append(order)
        if shuffle:
            assert orders[0] != orders[1]
            s.set_epoch(1)
            assert list(s) == orders[1]                               # reproducible
        else:
            assert orders[0] == list(np.argsort(ds.shard_ids, kind="stable"))


def test_sampler_splits_ranks_disjointly(store):
    ds = ESDataset(store)
    n = len(ds)
    for drop_last in (False, True):
        parts = []
        for rank in range(2):
            s = ShardSampler(ds, shuffle=True, seed=1, rank=rank, world_size=2, drop_last=drop_last)
            s.set_epoch(4)
            parts.append(list(s))
        assert len(parts[0]) == len(parts[1])
        if drop_last:
            assert len(parts[0]) == n // 2
            assert not set(parts[0]) & set(parts[1]) and len(set(parts[0] + parts[1])) == 2 * (n // 2)
        else:
            assert len(parts[0]) == -(-n // 2)
            assert set(parts[0]) | set(parts[1]) == set(range(n))
            # padded like DistributedSampler: only the padding repeats an item
            assert len(parts[0]) + len(parts[1]) - len(set(parts[0]) | set(parts[1])) == len(parts[0]) * 2 - n
        # ranks share at most their boundary shards
        shards = [set(ds.shard_ids[p].tolist()) for p in parts]
        assert len(shards[0] & shards[1]) <= 1 + (0 if drop_last else 1)
    with pytest.raises(ValueError):
        ShardSampler(ds, rank=2, world_size=2)


def test_sampler_worker_streams_read_disjoint_shards(store):
    ds = ESDataset(store)
    s = ShardSampler(ds, shuffle=True, seed=0, batch_size=2, num_workers=2)
    order = np.array(list(s))
    assert sorted(order.tolist()) == list(range(len(ds)))
    batches = [order[i:i + 2] for i in range(0, len(order), 2)]
    per_worker = [set(), set()]
    for b, items in enumerate(batches[:-2]):                          # the tails may mix
        per_worker[b % 2] |= set(ds.shard_ids[items].tolist())
    assert not per_worker[0] & per_worker[1]


# -- DataLoader with real worker processes -----------------------------------------------------

def _expected(reader, ds, items):
    return np.stack([reader.frames(int(ds.indices[i])) for i in items], axis=1)


def test_dataloader_two_workers(store, reader):
    ds = ESDataset(store)
    kept = reader.kept_indices()
    # pooled buffers (ds.loader): every batch is kept alive to the end, so a reused buffer would show
    dl = ds.loader(batch_size=3, shuffle=True, seed=5, num_workers=2)
    for epoch in range(2):
        dl.sampler.set_epoch(epoch)
        order = list(dl.sampler)
        got = [(f, y) for f, y in dl]
        assert sum(len(y) for _, y in got) == len(ds)
        for b, (frames, labels) in enumerate(got):
            items = order[3 * b:3 * b + 3]
            assert frames.shape == (8, len(items), 2, 224, 224) and frames.dtype == torch.uint8
            assert np.array_equal(frames.numpy(), _expected(reader, ds, items))
            assert labels.tolist() == [int(reader.labels[kept[i]]) for i in items]
    # plain DataLoader, no pool, packed words, non-persistent workers
    packed = ESDataset(store, packed=True)
    s = ShardSampler(packed, shuffle=False, batch_size=4, num_workers=2)
    dl2 = DataLoader(packed, batch_size=4, sampler=s, num_workers=2, collate_fn=packed.collate_fn)
    order = list(s)
    for b, (words, labels) in enumerate(dl2):
        items = order[4 * b:4 * b + 4]
        assert words.dtype == torch.uint16
        assert np.array_equal(unpack_batch(words, 8).numpy(), _expected(reader, ds, items))


def test_dataloader_default_collate_in_workers(store, reader):
    ds = ESDataset(store, layout="CTHW")
    dl = DataLoader(ds, batch_size=2, num_workers=2, shuffle=False)
    n = 0
    for frames, labels in dl:
        for b in range(len(labels)):
            assert np.array_equal(frames[b].numpy(), reader.frames(int(ds.indices[n])).transpose(1, 0, 2, 3))
            n += 1
    assert n == len(ds)


# -- ES-UCF101 ---------------------------------------------------------------------------------

def _ucf_vector():
    p = DATA / "ucf" / "expected" / "v_Panning_g02_c01.npz"
    assert p.exists(), f"ES-UCF101 test vector {p} is missing from the repository"
    return np.load(p)["arr_0"]


@pytest.fixture(scope="module")
def ucf_store(tmp_path_factory):
    """An es-ucf101 store written through the store writer (three clips, a partial last shard): the
    published generator's output for a real clip, its mirror image and its time reversal."""
    from odg import video
    from odg.pipelines.store import SplitWriter
    ev = _ucf_vector()                                              # uint8 [2, 30, 240, 320]
    clips = [ev, ev[:, :, :, ::-1], ev[::-1, ::-1]]                  # mirrored; reversed (ON <-> OFF)
    url = str(tmp_path_factory.mktemp("ucf") / "ucf.zarr")
    params = video.UCFParams()
    SplitWriter(url, "").create_store(KIND_UCF101, params.to_dict(), ["Panning", "Mirrored"], "test")
    H, W = ev.shape[2:]
    SplitWriter(url, "train").create(3, 2, (H, W), np.uint64, {"test": 1}, {"layout": "test"})
    for shard, idx in ((0, [0, 1]), (1, [2])):
        n = len(idx)
        cols = {"label": np.array([i % 2 for i in idx], np.int16), "number": np.arange(1, n + 1, dtype=np.int32),
                "name": np.array([f"clip{i}" for i in idx]), "status": np.zeros(n, np.int8),
                "reason": np.array([""] * n), "shape": np.array([[H, W]] * n, np.int16),
                "count": np.array([[clips[i][0].sum(), clips[i][1].sum()] for i in idx], np.int32),
                "words": np.stack([video.pack_clip(np.ascontiguousarray(clips[i])) for i in idx])}
        SplitWriter(url, "train").write_shard(shard, cols, {"kept": n, "discarded": 0, "rejected": 0})
    SplitWriter(url, "train").finish()
    return url, clips


def test_ucf_clips(ucf_store):
    url, clips = ucf_store
    reader = open_store(url)["train"]
    cthw, tchw = ESDataset(url, layout="CTHW"), ESDataset(url)
    packed = ESDataset(url, packed=True)
    assert cthw.kind == KIND_UCF101 and cthw.steps == 30 and cthw.frame_shape == (240, 320)
    for i in range(3):
        f, label = cthw[i]
        assert np.array_equal(f.numpy(), reader.frames(i)) and np.array_equal(f.numpy(), clips[i])
        assert torch.equal(tchw[i][0], f.permute(1, 0, 2, 3)) and label == i % 2
        w = packed[i][0]
        assert w.dtype == torch.uint64 and torch.equal(unpack_batch(w, 30), tchw[i][0])
    words, _ = packed.collate_fn(packed.__getitems__([2, 0, 1]))
    frames, _ = tchw.collate_fn(tchw.__getitems__([2, 0, 1]))
    assert frames.shape == (30, 3, 2, 240, 320) and torch.equal(unpack_batch(words, 30), frames)
    dl = tchw.loader(batch_size=2, shuffle=False, num_workers=2)
    got = torch.cat([f for f, _ in dl], dim=1)
    assert torch.equal(got, torch.from_numpy(np.stack(clips, 0).transpose(2, 0, 1, 3, 4)))


def test_ucf_store_built_by_odg(tmp_path):
    """`odg build ucf101` from the test clip's frame folder: the published array, through ESDataset."""
    from odg.pipelines.cli import main as odg
    clip = "v_Panning_g02_c01"
    frames = DATA / "ucf" / "frames"
    assert (frames / clip).is_dir(), f"ES-UCF101 test clip frames {frames / clip} are missing from the repository"
    expected = _ucf_vector()
    root = tmp_path / "UCF101"
    (root / "UCF-101" / "Panning").mkdir(parents=True)
    (root / "UCF-101" / "Panning" / f"{clip}.avi").write_bytes((DATA / "ucf" / f"{clip}.avi").read_bytes())
    (root / "ucfTrainTestlist").mkdir()
    (root / "ucfTrainTestlist" / "classInd.txt").write_text("1 Panning\n")
    (root / "ucfTrainTestlist" / "trainlist01.txt").write_text(f"Panning/{clip}.avi 1\n")
    (root / "ucfTrainTestlist" / "testlist01.txt").write_text("")
    url = str(tmp_path / "ucf.zarr")
    assert odg(["build", "ucf101", str(root), url, "--fold", "1", "--subset", "train", "--frames", str(frames),
                "--dask-workers", "1", "--quiet"]) == 0
    ds = ESDataset(url, "train1", layout="CTHW")
    f, label = ds[0]
    assert label == 0 and np.array_equal(f.numpy(), expected)
    assert np.array_equal(f.numpy(), open_store(url)["train1"].frames(0))
    w, _ = ESDataset(url, "train1", packed=True)[0]
    assert torch.equal(unpack_batch(w, 30), f.permute(1, 0, 2, 3))


def test_float_pooled_in_workers(store, reader):
    ds = ESDataset(store, dtype=torch.float16)
    dl = ds.loader(batch_size=4, shuffle=False, num_workers=1)
    order = list(dl.sampler)
    got = list(dl)
    for b, (frames, _) in enumerate(got):
        assert frames.dtype == torch.float16
        assert np.array_equal(frames.numpy(), _expected(reader, ds, order[4 * b:4 * b + 4]).astype(np.float16))



def _child_pool_state(pool, q):
    """In a forked process: the inherited pool starts empty, and its slots are its own."""
    from odg.models.data.pool import release
    n0 = len(pool)
    raw = pool.take(10)
    q.put((n0, len(pool), raw is not None))
    release(raw)


def test_shared_batch_pool_reuses_slots_within_its_process():
    """`SharedBatchPool`: a slot comes back once released, `cap` bounds the slots, and a copy in another
    process (pickled, or forked: a real child process) holds none of the original's slots."""
    import multiprocessing as mp

    from odg.models.data import SharedBatchPool
    from odg.models.data.pool import TORCH_CHECKED, release
    assert TORCH_CHECKED and all(isinstance(v, str) for v in TORCH_CHECKED)
    pool = SharedBatchPool(cap=2)
    a, b = pool.take(100), pool.take(3 << 20)
    assert a.is_shared() and b.is_shared() and a.numel() == 1 << 20 and b.numel() == 4 << 20
    assert pool.take(100) is None and len(pool) == 2              # both slots in use
    release(a)
    assert pool.take(50).data_ptr() == a.data_ptr()               # the released slot, reused
    release(b)
    assert pool.take(2 << 20).data_ptr() == b.data_ptr()
    copy = pickle.loads(pickle.dumps(pool))
    assert copy.cap == 2 and len(copy) == 0
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_pool_state, args=(pool, q))
    p.start()
    got = q.get(timeout=60)
    p.join(60)
    assert p.exitcode == 0 and got == (0, 1, True)
    assert len(pool) == 2 and pool.take(10) is None               # the parent's slots are untouched


def test_loader_pools_only_in_its_workers(store):
    """`ds.loader` gives the workers' copies of the dataset their own pools: nothing accumulates in the
    main process, and there is no module state to reset between loaders."""
    ds = ESDataset(store)
    for _ in range(2):
        dl = ds.loader(batch_size=3, shuffle=False, num_workers=1)
        assert sum(len(y) for _, y in dl) == len(ds)
        assert len(dl.dataset.batch_pool) == 0 and len(ds.batch_pool) == 0
