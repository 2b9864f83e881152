"""`ESDataset`: the samples of one split of an odg store, read a whole shard and a whole batch at a time."""
from __future__ import annotations

import copy
import functools
import os
from collections import OrderedDict

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from odg.bits import dense_batch, packed_batch
from odg.pipelines.store import open_store

from .collate import LAYOUTS, Batch, TimeFirstItem, as_batch, batch_shape, collate_events, fill_batch, new_batch, plane_strides
from .pool import SharedBatchPool
from .sampler import ShardSampler


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
    - `shm_pool`: in DataLoader workers, reuse shared-memory batch buffers (a `SharedBatchPool`); only
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
        lay = st.layout                               # ValueError for a kind this package cannot read
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
        self.steps = lay.steps
        self.frame_shape = lay.frame_shape(words.shape[1:])
        if 2 * self.steps > 8 * self.word_dtype.itemsize:
            raise ValueError(f"{self.steps} steps do not fit the store's {self.word_dtype} words")
        self._dr, self._dc = lay.frame_shifts(sr.shapes[self.indices], centre)
        self.batch_pool = SharedBatchPool()
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
        ds.shm_pool, ds.batch_pool = True, SharedBatchPool()
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
                packed_batch(block, rows, bpos, dr, dc, H, W, out.reshape(B, H * W))
            else:
                dense_batch(block, rows, bpos, dr, dc, T, H, W, out.reshape(T * B * 2, H * W),
                             *plane_strides(self.layout, B, T))

    def _read(self, items: np.ndarray, pooled: bool = False):
        """(batch tensor, labels tensor, pool slot buffer or None, payload bytes, labels offset)."""
        shape = batch_shape(self.layout, self.packed, self.steps, self.frame_shape, len(items))
        t, labels, raw, nbytes, loff = new_batch(shape, self.word_dtype, self.packed, self.dtype, len(items),
                                                 self.batch_pool if pooled else None)
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

    def __getitems__(self, items) -> Batch:
        """A whole batch (DataLoader calls this): one unpacking pass into one batch tensor."""
        items = np.asarray(items, np.int64).reshape(-1)
        n = len(self)
        if items.size and (items.min() < -n or items.max() >= n):
            raise IndexError(f"items out of range for {n} samples")
        items = items % max(n, 1)
        return as_batch(*self._read(items, pooled=self.shm_pool), layout=self.layout, packed=self.packed)


