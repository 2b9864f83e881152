"""PyTorch input pipeline over odg stores: dense or bit-packed event frames, shard-ordered sampling.

    from odg.models.data import ESDataset, unpack_batch
    ds = ESDataset("es-imagenet.zarr", "train")           # items: (uint8 [T, 2, 224, 224], label)
    dl = ds.loader(batch_size=64, shuffle=True, seed=0, num_workers=4)
    for epoch in range(E):
        dl.sampler.set_epoch(epoch)
        for frames, labels in dl:                         # frames: uint8 [T, B, 2, 224, 224]
            ...

    packed = ESDataset("es-imagenet.zarr", "train", packed=True)
    for words, labels in packed.loader(64, num_workers=4, pin_memory=True):
        frames = unpack_batch(words.cuda(non_blocking=True))   # [T, B, 2, 224, 224] uint8 on the GPU

`ds.loader(...)` is a plain `DataLoader` with a `ShardSampler`, `ds.collate_fn`, persistent workers
and pooled worker buffers; the pieces can be used separately (`DataLoader(ds, batch_size=B,
sampler=ShardSampler(ds, ...), collate_fn=ds.collate_fn)`, or any sampler and collate function).
Every way of batching dense `"TCHW"` items gives time-first `[T, B, 2, H, W]` frames, the layout of
the zoo's models: `ds.loader`, `collate_events` / `ds.collate_fn`, the batch tensor of
`__getitems__`, and a plain `DataLoader(ds, batch_size=B)` too (its `default_collate` stacks the
items batch first, and the items' type, `TimeFirstItem`, turns that into a time-first view).

Stores are read only through `odg.pipelines.store` (`open_store`, `SplitReader.words_block`), opened lazily
in each process on first use (nothing of zarr is pickled into DataLoader workers). Reads are served
from whole shards: a shard's words block is read with one request and kept in a small per-process
cache, so in a `ShardSampler` order (shards one after another, shuffled within a buffer of shards;
with its `num_workers` hint, each DataLoader worker gets batches from its own shards) every shard
is read and decoded once per epoch. `DataLoader` batches go through `ESDataset.__getitems__`, which
unpacks the whole batch straight from the cached words into one tensor with a numba kernel (in a
worker, a shared-memory buffer, reused across batches with `ds.loader`); `collate_fn` passes it on
without another copy.

Frames: ES-ImageNet samples are the published loader's dense `[T, 2, 224, 224]` (`centre=True`:
events shifted by `((254 - a) // 2, (254 - b) // 2)`, cropped at 16; equal to
`SplitReader.frames(i)`), ON in channel 0. I2E samples are the module's `[8, 2, 224, 224]`.
ES-UCF101 clips are `[S, 2, H, W]` (`layout="CTHW"`: the published `[2, S, H, W]`, equal to
`SplitReader.frames(i)`).

`packed=True` gives each sample as its per-pixel words in frame coordinates (ES-ImageNet:
uint16 `[224, 224]`, bit `2 * k + c` = frame `[k, c]` at that pixel, `c = 0` ON, i.e.
`odg.pack_frames` of the dense frames; ES-UCF101: uint64 `[H, W]`, same bit order): 8 times fewer
bytes than dense uint8 for T = 8. `unpack_batch` turns a batch `[B, H, W]` of words into uint8
`[T, B, 2, H, W]` with torch bit operations on whatever device the words are (move the words to
the GPU first: an 8x smaller host-to-device copy).
"""
from __future__ import annotations

import copy
import functools
import math
import os
import weakref
from collections import OrderedDict

import numba as nb
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from odg.events import words_frame_shift
from odg.pipelines.store import KIND_I2E, KIND_IMAGENET, KIND_UCF101, open_store

LAYOUTS = ("TCHW", "CTHW")

__all__ = ["ESDataset", "ShardSampler", "TimeFirstItem", "collate_events", "unpack_batch", "LAYOUTS"]


# -- numba kernels: words block -> batch ----------------------------------------------------

@nb.njit(nogil=True, cache=True)
def _place(block, row, dr, dc, S0, S1, dst):
    """dst[r * S1 + c] = block[row, r - dr, c - dc] inside the block, 0 outside."""
    G0, G1 = block.shape[1], block.shape[2]
    c_lo = min(max(dc, 0), S1)
    c_hi = max(min(G1 + dc, S1), c_lo)
    r_lo = min(max(dr, 0), S0)
    r_hi = max(min(G0 + dr, S0), r_lo)
    dst[:r_lo * S1] = 0
    dst[r_hi * S1:] = 0
    src = block[row]
    for r in range(r_lo, r_hi):
        base = r * S1
        dst[base:base + c_lo] = 0
        dst[base + c_lo:base + c_hi] = src[r - dr, c_lo - dc:c_hi - dc]
        dst[base + c_hi:base + S1] = 0


@nb.njit(nogil=True, cache=True)
def _packed_batch(block, rows, bpos, dr, dc, S0, S1, out):
    """out[bpos[n]] (flattened [S0 * S1]) = words of block[rows[n]] shifted by (dr[n], dc[n])."""
    for n in range(rows.shape[0]):
        _place(block, rows[n], dr[n], dc[n], S0, S1, out[bpos[n]])


@nb.njit(nogil=True, cache=True)
def _dense_batch(block, rows, bpos, dr, dc, steps, S0, S1, out, sk, sb, sc):
    """Dense 0/1 planes of block[rows[n]] into out[k * sk + bpos[n] * sb + c * sc] (planes of S0 * S1)."""
    tmp = np.empty(S0 * S1, block.dtype)
    P = S0 * S1
    for n in range(rows.shape[0]):
        _place(block, rows[n], dr[n], dc[n], S0, S1, tmp)
        b = bpos[n]
        for k in range(steps):
            for c in range(2):
                sh = 2 * k + c               # plain int shift and mask: numba vectorises this form best
                dst = out[k * sk + b * sb + c * sc]
                for p in range(P):
                    dst[p] = (tmp[p] >> sh) & 1


# -- batch buffers shared with the main process, reused --------------------------------------

class _BatchPool:
    """Shared-memory batch buffers of one DataLoader worker, reused once the main process frees a batch.

    A fresh shared-memory tensor per batch (what default_collate does) costs about 1 ms per MB on
    Linux (allocating the shm file, then a page fault per 4 KiB page on first write): as much as
    the rest of the read path for dense frames. A slot is one shared buffer holding the batch, its
    labels and, in its last byte, an in-use flag. The worker sets the flag when it fills the slot;
    the main process clears it when the last tensor of the batch it received is freed (a
    `weakref.finalize` on the array its tensors are made from), and only then is the slot refilled.
    One buffer per batch crosses the process boundary (one file descriptor). A batch that never
    reaches the main process (an iterator abandoned mid-epoch) keeps its slot; once all `cap`
    slots are taken, batches get ordinary fresh shared memory.
    """

    def __init__(self, cap: int = 8):
        self.cap = cap
        self.bufs: list[tuple[torch.Tensor, np.ndarray]] = []

    def take(self, nbytes: int):
        """A free slot buffer (flat uint8 shared tensor, capacity >= nbytes + 1, flag set), or None."""
        for b, f in self.bufs:
            if f[-1] == 0 and b.numel() > nbytes:
                f[-1] = 1
                return b
        if len(self.bufs) < self.cap:
            size = (nbytes // (1 << 20) + 1) << 20          # whole MiB: a short last batch fits too
            b = _new_shared(size)
            f = b.numpy()
            f[-1] = 1
            self.bufs.append((b, f))
            return b
        return None


_POOL: dict = {}


def _worker_pool() -> _BatchPool:
    pid = os.getpid()
    if _POOL.get("pid") != pid:
        _POOL.clear()
        _POOL.update(pid=pid, pool=_BatchPool())
    return _POOL["pool"]


def _new_shared(nbytes: int) -> torch.Tensor:
    proto = torch.empty(0, dtype=torch.uint8)
    return proto.new(proto._typed_storage()._new_shared(nbytes, device="cpu"))


def _release(raw: torch.Tensor) -> None:
    raw[-1] = 0


def _rebuild_pooled(raw: torch.Tensor, shape: tuple, dtype: torch.dtype, nbytes: int, loff: int, B: int):
    """Main process side of a pooled batch: `(frames, labels)` over the slot's memory; when the last
    tensor over it is freed, the slot's flag is cleared."""
    arr = raw.numpy()
    t = torch.from_numpy(arr)            # its storage holds `arr`: released with the last view
    weakref.finalize(arr, _release, raw)
    frames = t[:nbytes].view(dtype).view(shape)
    labels = t[loff:loff + 8 * B].view(torch.int64)
    return frames, labels


class _PooledBatch(tuple):
    """`(frames, labels)` in a worker's pool slot: a plain tuple to any code in the worker; pickled to
    the main process it rebuilds as `(frames, labels)` whose release returns the slot to the pool."""

    def __new__(cls, frames, labels, raw, nbytes, loff):
        obj = super().__new__(cls, (frames, labels))
        obj._raw, obj._nbytes, obj._loff = raw, nbytes, loff
        return obj

    def __reduce__(self):
        frames, labels = self
        return _rebuild_pooled, (self._raw, tuple(frames.shape), frames.dtype, self._nbytes, self._loff, len(labels))


# -- the dataset ----------------------------------------------------------------------------

class TimeFirstItem(tuple):
    """A dense `"TCHW"` item `(frames [T, 2, H, W], label)`, a plain tuple to any code, whose batches
    are time first under torch's `default_collate` too.

    `default_collate` batches an item type with `_fields` (a named tuple) by calling the type on
    the batched fields: here `(frames [B, T, 2, H, W], labels int64 [B])`, and this type returns
    `(frames [T, B, 2, H, W] (a transposed view), labels)`, a plain tuple, as `collate_events` does.
    Called with an item's own fields (an int label: building, copying, pickling, `default_convert`)
    it is an item.
    """

    _fields = ("frames", "label")

    def __new__(cls, frames, label):
        if isinstance(label, torch.Tensor) and label.dim() == 1 and frames.dim() == 5:
            return frames.transpose(0, 1), label
        return super().__new__(cls, (frames, label))

    def __getnewargs__(self):
        return tuple(self)


class _Batch(list):
    """What `ESDataset.__getitems__` returns: the list of `(frames, label)` items a collate function
    expects (views into one batch tensor), carrying that tensor so `collate_events` needs no copy."""
    tensor: torch.Tensor
    labels: torch.Tensor
    pool = None                 # (slot buffer, payload bytes, labels offset) of a pooled batch


class ESDataset(Dataset):
    """Samples of one split of an odg store as `(frames, label)`.

    - `store`: the store's path or URL (an opened `EventStore` is accepted and only its URL kept);
    - `layout`: `"TCHW"` gives `[T, 2, H, W]`, `"CTHW"` the published `[2, T, H, W]`;
    - `dtype`: of dense frames (uint8 0/1 by default; a float dtype converts after unpacking);
    - `packed`: return the bit-packed words (see module docstring) instead of dense frames;
    - `kept_only`: index only kept samples (default; discarded and rejected samples have no events
      of use), else every sample of the split;
    - `centre`: ES-ImageNet frames as the published loader (True) or the uncentred canvas crop
      (`odg.events_to_frames(..., centre=False)`);
    - `cache_shards`: whole shards kept per process (LRU); a `ShardSampler` reads each shard once
      per epoch and worker when `cache_shards >= 2 * buffer_shards`;
    - `samples`: optional store sample indices to restrict to (a subset; `kept_only` still applies);
    - `shm_pool`: in DataLoader workers, reuse shared-memory batch buffers (see `_BatchPool`); only
      with `collate_fn=ds.collate_fn` (`ds.loader(...)` sets both). Off by default.
    - `allow_incomplete`: index the built shards of a split whose build did not finish (by default
      such a split raises `IncompleteSplit`). A damaged shard raises `DamagedShard` when read.

    `len(ds)`, `ds.labels` (int64 numpy), `ds.indices` (store sample of each item), `ds.shard_ids`
    (store shard of each item), `ds.steps`, `ds.frame_shape` (H, W), `ds.kind`, `ds.classes` are
    read once at construction; zarr is opened again lazily in each process that reads samples.
    """

    def __init__(self, store, split: str = "train", layout: str = "TCHW", dtype: torch.dtype = torch.uint8,
                 packed: bool = False, kept_only: bool = True, centre: bool = True, cache_shards: int = 4,
                 samples=None, shm_pool: bool = False, allow_incomplete: bool = False):
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"dtype must be a torch.dtype, got {dtype!r}")
        if cache_shards < 1:
            raise ValueError(f"cache_shards must be >= 1, got {cache_shards}")
        self.url = os.fspath(store if isinstance(store, (str, os.PathLike)) else store.url)
        self.split = split
        self.layout = layout
        self.dtype = dtype
        self.packed = bool(packed)
        self.kept_only = bool(kept_only)
        self.centre = bool(centre)
        self.cache_shards = int(cache_shards)
        self.shm_pool = bool(shm_pool)
        self.allow_incomplete = bool(allow_incomplete)

        st = open_store(self.url)
        sr = st.split(split, self.allow_incomplete)
        self.kind = st.kind
        if self.kind not in (KIND_IMAGENET, KIND_UCF101, KIND_I2E):
            raise ValueError(f"unsupported store kind {self.kind!r}")
        self.classes = list(st.classes)
        self.shard_size = sr.shard_size
        self.n_shards = sr.n_shards
        self.indices = (sr.kept_indices() if kept_only else sr.indices()).astype(np.int64)
        if samples is not None:
            want = np.unique(np.asarray(samples, np.int64))
            if want.size and (want[0] < 0 or want[-1] >= len(sr)):
                raise IndexError(f"samples out of range for split '{split}' of {len(sr)} samples")
            self.indices = self.indices[np.isin(self.indices, want)]
        self.labels = sr.labels[self.indices].astype(np.int64)
        self.shard_ids = self.indices // self.shard_size
        words = sr.array("words")
        self.word_dtype = np.dtype(words.dtype)
        G0, G1 = (int(v) for v in words.shape[1:])
        if self.kind == KIND_IMAGENET:
            params = st.params
            self.steps = params.steps
            S = params.frame_size
            self.frame_shape = (S, S)
            shapes = sr.shapes[self.indices].astype(np.int64)
            dr = np.empty(len(shapes), np.int64)
            dc = np.empty(len(shapes), np.int64)
            for n, (a, b) in enumerate(shapes):
                dr[n], dc[n] = words_frame_shift((int(a), int(b)), params, centre)
        else:   # ES-UCF101 / I2E: the words are the frame (H, W), bit 2 * s + c (c = 0 ON)
            self.steps = st.params.steps if self.kind == KIND_I2E else int(st.meta["params"]["n_frames"]) - 1
            self.frame_shape = (G0, G1)
            dr = np.zeros(len(self.indices), np.int64)
            dc = np.zeros(len(self.indices), np.int64)
        if 2 * self.steps > 8 * self.word_dtype.itemsize:
            raise ValueError(f"{self.steps} steps do not fit the store's {self.word_dtype} words")
        self._dr, self._dc = dr, dc
        rel = self.indices - self.shard_ids * self.shard_size
        cut = np.flatnonzero(np.diff(self.shard_ids)) + 1
        self._rows = {int(sh[0]): r.astype(np.int64) for sh, r in zip(np.split(self.shard_ids, cut), np.split(rel, cut))
                      if len(sh)}
        self._pid = None
        self._words = None
        self._cache = None

    # -- per-process state (never pickled) --------------------------------------------------
    def __getstate__(self):
        d = self.__dict__.copy()
        d["_pid"], d["_words"], d["_cache"] = None, None, None
        return d

    def _reader(self):
        if self._pid != os.getpid():
            self._words = open_store(self.url).split(self.split, self.allow_incomplete)
            self._cache = OrderedDict()
            self._pid = os.getpid()
        return self._words

    def _shard_block(self, s: int):
        """(start, words block) of store shard `s`, read whole once and cached (LRU)."""
        reader = self._reader()
        hit = self._cache.get(s)
        if hit is not None:
            self._cache.move_to_end(s)
            return hit
        blk = (s * self.shard_size, reader.words_block(s, self._rows.get(s)))
        self._cache[s] = blk
        while len(self._cache) > self.cache_shards:
            self._cache.popitem(last=False)
        return blk

    @property
    def collate_fn(self):
        """Collate for a DataLoader over this dataset (see `collate_events`)."""
        return functools.partial(collate_events, layout=self.layout, packed=self.packed)

    def loader(self, batch_size: int, shuffle: bool = True, seed: int = 0, num_workers: int = 0,
               buffer_shards: int = 2, rank: int | None = None, world_size: int | None = None,
               **kwargs) -> DataLoader:
        """A DataLoader in shard order: `ShardSampler` (as `loader.sampler`: call its `set_epoch`),
        `collate_fn`, persistent workers and pooled worker buffers; `kwargs` go to the DataLoader."""
        ds = copy.copy(self)
        ds._pid = ds._words = ds._cache = None         # its own per-process state
        ds.shm_pool = True
        ds.cache_shards = max(self.cache_shards, 2 * buffer_shards)
        sampler = ShardSampler(ds, shuffle=shuffle, seed=seed, buffer_shards=buffer_shards, rank=rank,
                               world_size=world_size, batch_size=batch_size, num_workers=num_workers)
        kwargs.setdefault("persistent_workers", num_workers > 0)
        return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                          collate_fn=ds.collate_fn, **kwargs)

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        form = "packed words" if self.packed else f"{self.layout} {self.dtype}"
        return f"<ESDataset {self.kind} {self.split!r} of {self.url}: {len(self)} samples, {form}>"

    # -- reads ------------------------------------------------------------------------------
    def _fill(self, items: np.ndarray, out: np.ndarray) -> None:
        """Unpack dataset items `items` into the numpy view `out` of a batch (positions 0..B-1)."""
        T = self.steps
        H, W = self.frame_shape
        B = len(items)
        shards = self.shard_ids[items]
        for s in np.unique(shards):
            sel = np.flatnonzero(shards == s)
            start, block = self._shard_block(int(s))
            rows = (self.indices[items[sel]] - start).astype(np.int64)
            bpos = sel.astype(np.int64)
            dr, dc = self._dr[items[sel]], self._dc[items[sel]]
            if self.packed:
                _packed_batch(block, rows, bpos, dr, dc, H, W, out.reshape(B, H * W))
            else:
                _dense_batch(block, rows, bpos, dr, dc, T, H, W, out.reshape(T * B * 2, H * W),
                             *plane_strides(self.layout, B, T))

    def _read(self, items: np.ndarray, pooled: bool = False):
        """(batch tensor, labels tensor, pool slot buffer or None, payload bytes, labels offset)."""
        shape = batch_shape(self.layout, self.packed, self.steps, self.frame_shape, len(items))
        t, labels, raw, nbytes, loff = new_batch(shape, self.word_dtype, self.packed, self.dtype, len(items), pooled)
        labels.numpy()[:] = self.labels[items]
        fill_batch(t, self.packed, self.dtype, lambda out: self._fill(items, out))
        return t, labels, raw, nbytes, loff

    def __getitem__(self, i: int):
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"item {i} out of range for {n} samples")
        i %= n
        t = self._read(np.array([i], np.int64))[0]
        if not self.packed and self.layout == "TCHW":
            return TimeFirstItem(t[:, 0], int(self.labels[i]))
        return t[0], int(self.labels[i])

    def __getitems__(self, items) -> _Batch:
        """A whole batch (DataLoader calls this): one unpacking pass into one batch tensor."""
        items = np.asarray(items, np.int64).reshape(-1)
        n = len(self)
        if items.size and (items.min() < -n or items.max() >= n):
            raise IndexError(f"items out of range for {n} samples")
        items = items % max(n, 1)
        return as_batch(*self._read(items, pooled=self.shm_pool), layout=self.layout, packed=self.packed)


def batch_shape(layout: str, packed: bool, steps: int, frame_shape: tuple, B: int) -> tuple:
    """Shape of a batch of B samples: words `[B, H, W]`, `[T, B, 2, H, W]` (TCHW), `[B, 2, T, H, W]`."""
    H, W = frame_shape
    if packed:
        return (B, H, W)
    if layout == "TCHW":
        return (steps, B, 2, H, W)
    return (B, 2, steps, H, W)


def plane_strides(layout: str, B: int, steps: int) -> tuple[int, int, int]:
    """`(sk, sb, sc)`: plane `k sk + b sb + c sc` of a dense batch (its `H x W` planes in order) is
    step k, sample b, channel c. TCHW `[T, B, 2, ...]`: (2B, 2, 1); CTHW `[B, 2, T, ...]`: (1, 2T, T)."""
    return (2 * B, 2, 1) if layout == "TCHW" else (1, 2 * steps, steps)


def new_batch(shape: tuple, word_dtype, packed: bool, dtype: torch.dtype, n: int, pooled: bool):
    """A batch's tensors: `(frames [shape], labels int64 [n], pool slot or None, payload bytes,
    labels offset)`. Frames are of the words' dtype when `packed`, else `dtype`. In a DataLoader
    worker they are shared memory: a `_BatchPool` slot when `pooled`, else a fresh buffer."""
    final = torch.from_numpy(np.empty(0, word_dtype)).dtype if packed else dtype
    nbytes = math.prod(shape) * torch.empty(0, dtype=final).element_size()
    loff = -(-nbytes // 8) * 8
    in_worker = get_worker_info() is not None
    raw = _worker_pool().take(loff + 8 * n) if (in_worker and pooled) else None
    if raw is not None:
        t = raw[:nbytes].view(final).view(shape)
        labels = raw[loff:loff + 8 * n].view(torch.int64)
    else:
        t = (_new_shared(nbytes).view(final).view(shape) if in_worker     # shared memory, as default_collate
             else torch.empty(shape, dtype=final))
        labels = torch.empty(n, dtype=torch.int64)
    return t, labels, raw, nbytes, loff


def fill_batch(t: torch.Tensor, packed: bool, dtype: torch.dtype, fill) -> None:
    """`fill(out)` writes the batch's uint8 frames (or its words, `packed`) into the numpy array `out`;
    a float `dtype` is filled through a uint8 buffer and converted into `t`."""
    if packed or dtype == torch.uint8:
        fill(t.numpy())
    else:
        tmp = torch.empty(tuple(t.shape), dtype=torch.uint8)
        fill(tmp.numpy())
        t.copy_(tmp)


def as_batch(t, labels, raw, nbytes, loff, layout: str, packed: bool) -> "_Batch":
    """The `_Batch` of `(frames, label)` item views over a batch tensor (what `collate_events` passes on)."""
    B = len(labels)
    if packed or layout == "CTHW":
        b = _Batch((t[j], lab) for j, lab in enumerate(labels.tolist()))
    else:                        # time-first items: batched time first by default_collate too
        b = _Batch(TimeFirstItem(t[:, j], lab) for j, lab in enumerate(labels.tolist()))
    b.tensor, b.labels = t, labels
    if raw is not None:
        b.pool = (raw, nbytes, loff)
    return b


def collate_events(samples, layout: str = "TCHW", packed: bool = False):
    """Batch `(frames, label)` items: `(frames, labels int64 [B])` with frames

    - dense `"TCHW"` items: `[T, B, 2, H, W]` (time first, the layout of this package's models);
    - dense `"CTHW"` items: `[B, 2, T, H, W]` (the published loader's batches);
    - packed items: words `[B, H, W]` (give them to `unpack_batch`, best on the GPU).

    A batch from `ESDataset.__getitems__` is passed on as is (it is already in this layout).
    """
    if isinstance(samples, _Batch):
        if samples.pool is not None:
            return _PooledBatch(samples.tensor, samples.labels, *samples.pool)
        return samples.tensor, samples.labels
    labels = torch.as_tensor([int(s[1]) for s in samples], dtype=torch.int64)
    frames = [s[0] if isinstance(s[0], torch.Tensor) else torch.from_numpy(np.asarray(s[0])) for s in samples]
    if packed or layout == "CTHW":
        return torch.stack(frames), labels
    return torch.stack(frames, dim=1), labels


_SIGNED = {torch.uint8: torch.int8, torch.uint16: torch.int16, torch.uint32: torch.int32, torch.uint64: torch.int64}


def unpack_batch(words: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """Bit-packed words `[B, H, W]` (or `[H, W]`) -> uint8 0/1 frames `[T, B, 2, H, W]` (`[T, 2, H, W]`).

    Bit `2 * k + c` of a word is frame `[k, c]` (c = 0 ON). Pure torch bit operations on the words'
    device; unsigned words are reinterpreted as signed of the same width (torch shifts no unsigned
    16/32/64-bit integers), which leaves every bit below the top one unchanged.
    """
    if not isinstance(words, torch.Tensor):
        words = torch.as_tensor(np.asarray(words))
    if words.is_floating_point() or words.is_complex() or words.dtype == torch.bool:
        raise ValueError(f"words must be an integer tensor, got {words.dtype}")
    if not 1 <= steps <= words.element_size() * 4:
        raise ValueError(f"{steps} steps do not fit {words.dtype} words ({words.element_size() * 8} bits)")
    single = words.dim() == 2
    if single:
        words = words.unsqueeze(0)
    if words.dim() != 3:
        raise ValueError(f"words must be [B, H, W] or [H, W], got shape {tuple(words.shape)}")
    w = words.view(_SIGNED.get(words.dtype, words.dtype))
    B, H, W = w.shape
    out = torch.empty((steps, B, 2, H, W), dtype=torch.uint8, device=w.device)
    if w.element_size() <= 2:      # one broadcast op; the intermediate is at most 2x the output
        sh = torch.arange(2 * steps, device=w.device, dtype=w.dtype).view(steps, 1, 2, 1, 1)
        torch.bitwise_and(torch.bitwise_right_shift(w.unsqueeze(0).unsqueeze(2), sh), 1, out=out)
    else:                          # plane by plane: no [T, B, 2, H, W] intermediate of wide ints
        for k in range(steps):
            for c in range(2):
                torch.bitwise_and(torch.bitwise_right_shift(w, 2 * k + c), 1, out=out[k, :, c])
    return out[:, 0] if single else out


# -- sampling in shard order ----------------------------------------------------------------

def rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """`(rank, world_size)`, each defaulting to torch.distributed's when it is initialised, else 0 / 1."""
    if world_size is None or rank is None:
        dist = torch.distributed
        ready = dist.is_available() and dist.is_initialized()
        world_size = (dist.get_world_size() if ready else 1) if world_size is None else world_size
        rank = (dist.get_rank() if ready else 0) if rank is None else rank
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    return int(rank), int(world_size)


class ShardSampler(Sampler):
    """Dataset items in shard order, for reads of whole shards.

    Each epoch: the store shards holding items are taken in order (with `shuffle`, in a random
    order drawn from `(seed, epoch)`: the same on every rank), their items one shard after
    another; that sequence is padded by repeating its start (or cut, with `drop_last`) to a
    multiple of `world_size` (as DistributedSampler does), and rank `rank` takes its own contiguous
    part, so every rank gets `num_samples` items and ranks share at most their boundary shards.
    With `shuffle`, items are shuffled within windows of `buffer_shards` consecutive shards of the
    rank's part (a dataset with `cache_shards >= 2 * buffer_shards` then reads each shard once).
    Any dataset with a `shard_ids` array (one store shard per item) can be sampled.

    `batch_size` and `num_workers` (those of the DataLoader) are optional hints: with both, and
    `num_workers > 1`, the rank's shards are dealt to `num_workers` streams and the sequence
    interleaves `batch_size` items of each stream in turn, so the DataLoader (which hands batch `i`
    to worker `i % num_workers`) lets every worker read only its own shards.
    `rank`/`world_size` default to torch.distributed's when it is initialised, else 0 / 1.
    """

    def __init__(self, dataset: ESDataset, shuffle: bool = True, seed: int = 0, buffer_shards: int = 2,
                 rank: int | None = None, world_size: int | None = None, drop_last: bool = False,
                 batch_size: int | None = None, num_workers: int = 0):
        rank, world_size = rank_and_world(rank, world_size)
        if buffer_shards < 1:
            raise ValueError(f"buffer_shards must be >= 1, got {buffer_shards}")
        self.shuffle, self.seed, self.buffer_shards = bool(shuffle), int(seed), int(buffer_shards)
        self.rank, self.world_size, self.drop_last = int(rank), int(world_size), bool(drop_last)
        self.batch_size = batch_size
        self.num_workers = int(num_workers)
        self.epoch = 0
        shard_ids = np.asarray(dataset.shard_ids)
        self._shards = np.unique(shard_ids)
        order = np.argsort(shard_ids, kind="stable")
        bounds = np.searchsorted(shard_ids[order], self._shards)
        self._members = np.split(order.astype(np.int64), bounds[1:])
        n = len(shard_ids)
        if self.drop_last:
            self.num_samples = n // self.world_size
        else:
            self.num_samples = -(-n // self.world_size)
        self.total_size = self.num_samples * self.world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def _epoch_sequence(self) -> tuple[np.ndarray, np.ndarray]:
        """(items, shard position) of all ranks for this epoch, before the rank split."""
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self._members)) if self.shuffle else np.arange(len(self._members))
        if not len(order):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        items = np.concatenate([self._members[s] for s in order])
        pos = np.repeat(np.arange(len(order)), [len(self._members[s]) for s in order])
        return items, pos

    def indices(self) -> np.ndarray:
        """This rank's items for the current epoch, in sampling order."""
        items, pos = self._epoch_sequence()
        if len(items) == 0:
            return items
        if self.total_size > len(items):              # pad like DistributedSampler
            reps = -(-self.total_size // len(items))
            items = np.tile(items, reps)[:self.total_size]
            pos = np.concatenate([pos + r * (pos[-1] + 1) for r in range(reps)])[:self.total_size]
        else:
            items, pos = items[:self.total_size], pos[:self.total_size]
        a = self.rank * self.num_samples
        mine, mpos = items[a:a + self.num_samples], pos[a:a + self.num_samples]
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, 1])
        # runs of one shard, in order
        cuts = np.flatnonzero(np.diff(mpos)) + 1
        runs = np.split(mine, cuts)
        nw = self.num_workers if (self.batch_size and self.num_workers > 1) else 1
        streams = []
        for w in range(nw):
            mine_w = runs[w::nw]
            parts = []
            for g in range(0, len(mine_w), self.buffer_shards):
                chunk = np.concatenate(mine_w[g:g + self.buffer_shards])
                parts.append(rng.permutation(chunk) if self.shuffle else chunk)
            streams.append(np.concatenate(parts) if parts else np.zeros(0, np.int64))
        if nw == 1:
            return streams[0]
        B = int(self.batch_size)
        out, offs = [], [0] * nw
        while any(offs[w] < len(streams[w]) for w in range(nw)):
            for w in range(nw):
                if offs[w] < len(streams[w]):
                    out.append(streams[w][offs[w]:offs[w] + B])
                    offs[w] += B
        return np.concatenate(out)

    def __iter__(self):
        return iter(self.indices().tolist())
