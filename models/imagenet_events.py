"""ILSVRC2012 JPEGs converted to events on the fly, in the DataLoader's workers: no event store at all.

    from odg.models.imagenet_events import ImageNetEvents
    from odg import Augment
    ds = ImageNetEvents("/data/ILSVRC2012", "train", method="odg")             # = the store, sample for sample
    aug = ImageNetEvents("/data/ILSVRC2012", "train", method="i2e", augment=Augment(seed=0))
    dl = aug.loader(batch_size=64, shuffle=True, seed=0, num_workers=8)
    for epoch in range(E):
        dl.sampler.set_epoch(epoch)                                          # new crops, flips, directions
        for frames, labels in dl:                                            # uint8 [T, B, 2, 224, 224]
            ...

Inputs are read through `odg.pipelines.imagenet` (an extracted tree or the original tars, the same
order as a store build: item `i` is the store's sample `i`) and decoded and rejected by the build's
own rules (`imagenet.item_outcome`). Frames have the layout, dtype and packed form of `ESDataset`
(`layout`, `dtype`, `packed`), and batches go through the same batch buffers and `collate_fn`.

Methods:
- `"odg"`: ES-ImageNet's ODG (`odg.odg_events`, `ODGParams`), framed as the published loader
  (`centre`). With `augment=None`, item `i` equals `ESDataset(store, split, kept_only=False)[i]` of
  a store built from the same source, for every kept sample;
- `"i2e"`: I2E (`odg.i2e`, `I2EParams`), preprocessed as published for the split (train: resize to
  224 x 224; val: resize to 256, centre crop 224), evaluation-mode directions without augmentation.

Augmentation (`odg.Augment`, applied to the decoded image before the conversion): a random resized
crop and a horizontal flip, and for I2E the training-mode random directions; every draw depends only
on the augmentation's seed, the epoch and the input's index (see `odg.augment`), whatever the number
of workers. The epoch comes with each index from the loader's `EpochSampler` (`(epoch, i)` pairs),
so persistent workers follow `sampler.set_epoch`; plain integer indices use `ds.epoch`
(`set_epoch`).

Inputs that give no sample: a rejected input (unreadable, not an image, outside the validation
ground truth: the build's reject rules) and, with ODG, a discarded one (fewer events than the
published floor of 1000) are not in the dataset, as the published ES-ImageNet holds no file for
them. Their place is taken by the next input (in dataset order, cyclically) that gives a kept sample,
so batches keep their size and every worker goes on (`skips="replace"`, for training); or they leave
their batch (`skips="drop"`, for evaluation: every kept sample counted once, the metrics of the
store's kept samples). Either way, each skipped input is recorded with its reason
(`ds.skipped` in the process that converted it, and one line per skip in `skip_log` when given).
A rejected input, and without augmentation a discarded one, is remembered by the process and not
decoded again. `samples=` restricts the dataset to given input indices (e.g. a store's
`kept_indices()`: exactly the published sample set).
"""
from __future__ import annotations

import math
import os

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from odg import odg_events
from odg.augment import apply as apply_draw
from odg.bits import packed_batch
from odg.i2e import i2e_words, preprocess, write_planes
from odg.odg import odg_frames_into
from odg.pipelines import imagenet as inet
from odg.pipelines.outcome import Outcome
from odg.pipelines.store.schema import KEPT

from .data.collate import LAYOUTS, TimeFirstItem, as_batch, batch_shape, collate_events, fill_batch, new_batch, plane_strides
from .data.pool import SharedBatchPool, release
from .data.sampler import rank_and_world

__all__ = ["ImageNetEvents", "EpochSampler"]

_KEPT = Outcome.kept()          # the events went straight into the batch


class ImageNetEvents(Dataset):
    """ILSVRC2012 images of `root`'s `split` as `(frames, label)`, converted with `method` on the fly.

    - `method`: "odg" or "i2e"; `params`: its parameters (default the published `ODGParams()` /
      `I2EParams()`);
    - `augment`: an `odg.Augment`, or None (the published conversion of every image);
    - `layout`, `dtype`, `packed`, `centre`: as `ESDataset` (`centre` applies to ODG);
    - `limit`: at most that many images per class (as `odg build imagenet --limit`);
    - `samples`: input indices to restrict to (in the split's order);
    - `max_pixels`: the decoder's pixel limit (the build's default);
    - `skip_log`: a file that gets one tab-separated line per skipped input
      (epoch, index, name, status, reason), appended by every worker;
    - `skips`: "replace" (a skipped input's place in a batch goes to the next kept input: batches
      keep their size, for training) or "drop" (it leaves its batch, which gets smaller: every kept
      sample counted once, for evaluation; `ds[i]` of a skipped input then raises ValueError).

    `len(ds)`, `ds.labels` (int64 numpy, of each item's own input), `ds.indices` (input of each
    item), `ds.items` (every input of the split), `ds.steps`, `ds.frame_shape`, `ds.classes`,
    `ds.source` are set at construction; nothing is decoded before an item is read.
    """

    def __init__(self, root, split: str = "train", method: str = "odg", augment=None, params=None,
                 layout: str = "TCHW", dtype: torch.dtype = torch.uint8, packed: bool = False, centre: bool = True,
                 limit: int | None = None, samples=None, max_pixels: int | None = None, skip_log=None,
                 skips: str = "replace"):
        from odg.pipelines.decode import MAX_PIXELS
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"dtype must be a torch.dtype, got {dtype!r}")
        if skips not in ("replace", "drop"):
            raise ValueError(f"skips must be 'replace' or 'drop', got {skips!r}")
        self.method, self.skips = method, skips
        self.params = params or inet.default_params(method)
        if type(self.params) is not type(inet.default_params(method)):
            raise ValueError(f"method {method!r} takes {type(inet.default_params(method)).__name__}, "
                             f"got {type(self.params).__name__}")
        self.root, self.split, self.augment = os.fspath(root), split, augment
        self.layout, self.dtype, self.packed, self.centre = layout, dtype, bool(packed), bool(centre)
        self.max_pixels = max_pixels or MAX_PIXELS
        self.skip_log = None if skip_log is None else os.fspath(skip_log)
        self.items, self.source = inet.imagenet_items(self.root, split, limit)
        self.indices = np.arange(len(self.items), dtype=np.int64)
        if samples is not None:
            want = np.unique(np.asarray(samples, np.int64))
            if want.size and (want[0] < 0 or want[-1] >= len(self.items)):
                raise IndexError(f"samples out of range for split '{split}' of {len(self.items)} inputs")
            self.indices = want
        self.labels = np.array([self.items[i].label for i in self.indices], np.int64)
        self.classes = inet.load_classes().as_list()
        self.steps = self.params.steps
        S = self.params.frame_size if method == "odg" else self.params.size
        self.frame_shape = (S, S)
        self.word_dtype = inet.store_layout(self.params)[2]
        self.epoch = 0
        self.shm_pool = False
        self.batch_pool = SharedBatchPool()
        self.skipped: list = []
        self._known: dict = {}          # input -> (status, reason) of inputs that never give a sample

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        form = "packed words" if self.packed else f"{self.layout} {self.dtype}"
        aug = "augmented" if self.augment is not None else "not augmented"
        return (f"<ImageNetEvents {self.method} {self.split!r} of {self.root}: {len(self)} inputs, {form}, {aug}>")

    def set_epoch(self, epoch: int) -> None:
        """The epoch of plain integer indices (the loader's `(epoch, i)` pairs carry their own)."""
        self.epoch = int(epoch)

    @property
    def collate_fn(self):
        """Collate for a DataLoader over this dataset (`odg.models.data.collate_events`)."""
        import functools
        return functools.partial(collate_events, layout=self.layout, packed=self.packed)

    def loader(self, batch_size: int, shuffle: bool = True, seed: int = 0, num_workers: int = 0,
               rank: int | None = None, world_size: int | None = None, **kwargs) -> DataLoader:
        """A DataLoader: `EpochSampler` (as `loader.sampler`: call its `set_epoch`), `collate_fn`,
        persistent workers and pooled worker buffers; `kwargs` go to the DataLoader."""
        import copy
        ds = copy.copy(self)
        ds.shm_pool, ds.batch_pool = True, SharedBatchPool()
        ds.skipped, ds._known = [], {}
        sampler = EpochSampler(len(ds), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size)
        kwargs.setdefault("persistent_workers", num_workers > 0)
        return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                          collate_fn=ds.collate_fn, **kwargs)

    # -- conversion of one input into its batch slot -------------------------------------------
    def _draw(self, epoch: int, n: int, image: np.ndarray):
        if self.augment is None:
            return None
        groups = [len(g) for g in self.params.directions] if self.method == "i2e" else None
        return self.augment.draw(epoch, n, image.shape[0], image.shape[1], groups)

    def _odg(self, epoch, n, b, out, B):
        """Convert input `n` with ODG into slot `b` of the batch array `out`; its outcome."""
        def convert(image):
            d = self._draw(epoch, n, image)
            image = image if d is None else apply_draw(image, d)
            if self.packed:
                r = odg_events(image, self.params)
                if r.kept:
                    self._place(r.words, *self.params.words_shift(*r.shape, self.centre), b, out, B)
            else:                         # frames written in the conversion's own pass
                sk, sb, sc = plane_strides(self.layout, B, self.steps)
                H, W = self.frame_shape
                r = odg_frames_into(image, out.reshape(-1, H * W), b * sb, sk, sc, self.params, self.centre)
            return _KEPT if r.kept else inet.odg_outcome(r, self.params)
        return inet.item_outcome(self.items[n], convert, self.max_pixels)

    def _i2e(self, epoch, n, b, out, B):
        """Convert input `n` with I2E into slot `b` of the batch array `out`; its outcome."""
        def convert(image):
            d = self._draw(epoch, n, image)
            box, flip, choice = (None, False, None) if d is None else (d.box, d.flip, d.choice)
            split = "train" if box is not None else self.split
            value = preprocess(image, self.params, split, box=box, flip=flip)
            if self.packed:
                self._place(i2e_words(value, self.params, choice), 0, 0, b, out, B)
            else:
                H, W = self.frame_shape
                sk, sb, sc = plane_strides(self.layout, B, self.steps)
                write_planes(value, out.reshape(-1, H * W), b * sb, sk, sc, self.params, choice)
            return _KEPT
        return inet.item_outcome(self.items[n], convert, self.max_pixels)

    def _place(self, words, dr, dc, b, out, B):
        """Words of one sample (shifted by (dr, dc) into the frame) into slot `b` of a packed batch."""
        H, W = self.frame_shape
        v = np.array([0, b, dr, dc], np.int64)           # row 0 of the one-sample block, slot, shift
        packed_batch(words[None], v[0:1], v[1:2], v[2:3], v[3:4], H, W, out.reshape(B, H * W))

    def _record(self, epoch: int, n: int, res: Outcome) -> None:
        status, reason = res.status_name, res.reason
        rec = (epoch, n, self.items[n].name, status, reason)
        self.skipped.append(rec)
        if self.augment is None or status == "rejected":
            self._known[n] = (status, reason)
        if self.skip_log:
            os.makedirs(os.path.dirname(os.path.abspath(self.skip_log)), exist_ok=True)
            line = "\t".join(str(v).replace("\t", " ").replace("\n", " ") for v in rec) + "\n"
            fd = os.open(self.skip_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())         # one write per line: whole lines from every worker
            finally:
                os.close(fd)

    def _fill(self, epoch: int, pos: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Convert dataset positions `pos` into the batch array `out`; the labels of what was placed
        (slots 0.. in order: with `skips="drop"` fewer than `len(pos)` when inputs were skipped)."""
        B = len(pos)
        convert = self._odg if self.method == "odg" else self._i2e
        labels = []
        tries = 1 if self.skips == "drop" else len(self.indices)
        for p in pos:
            b = len(labels)
            for step in range(tries):
                n = int(self.indices[(int(p) + step) % len(self.indices)])
                if n in self._known:
                    continue
                res = convert(epoch, n, b, out, B)
                if res.status == KEPT:
                    labels.append(self.items[n].label)
                    break
                self._record(epoch, n, res)
            else:
                if self.skips == "replace":
                    raise RuntimeError(f"no input of split '{self.split}' of {self.root} gives a kept sample "
                                       f"(see the skipped inputs' reasons: {self.skipped[-3:]})")
        return np.array(labels, np.int64)

    def _read(self, epoch: int, pos: np.ndarray, pooled: bool = False):
        """(batch tensor, labels tensor, pool slot buffer or None, payload bytes, labels offset);
        every slot's planes are written whole (words with their zero margins, or I2E planes)."""
        shape = batch_shape(self.layout, self.packed, self.steps, self.frame_shape, len(pos))
        t, labels, raw, nbytes, loff = new_batch(shape, self.word_dtype, self.packed, self.dtype, len(pos),
                                                 self.batch_pool if pooled else None)
        got = []
        fill_batch(t, self.packed, self.dtype, lambda out: got.append(self._fill(epoch, pos, out)))
        k = len(got[0])
        if k == len(pos):
            labels.numpy()[:] = got[0]
            return t, labels, raw, nbytes, loff
        if raw is not None:                             # dropped inputs: a batch of the k samples left
            release(raw)
        small = torch.tensor(got[0], dtype=torch.int64)
        kept = t[:, :k] if (not self.packed and self.layout == "TCHW") else t[:k]
        return kept.contiguous(), small, None, 0, 0

    def _positions(self, items) -> tuple[int, np.ndarray]:
        """(epoch, dataset positions) of a batch of indices: ints, or `(epoch, i)` pairs of one epoch."""
        items = list(items)
        n = len(self)
        if items and isinstance(items[0], (tuple, list)):
            epochs = {int(e) for e, _ in items}
            if len(epochs) != 1:
                raise ValueError(f"a batch mixes epochs {sorted(epochs)}")
            epoch, idx = epochs.pop(), np.array([int(i) for _, i in items], np.int64)
        else:
            epoch, idx = self.epoch, np.asarray(items, np.int64).reshape(-1)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"items out of range for {n} samples")
        return epoch, idx % max(n, 1)

    def __getitem__(self, i):
        epoch, pos = self._positions([i])
        t, labels = self._read(epoch, pos)[:2]
        if len(labels) == 0:
            n = int(self.indices[pos[0]])
            raise ValueError(f"input {n} ({self.items[n].name}) is not in the dataset: {self._known.get(n)}")
        if not self.packed and self.layout == "TCHW":
            return TimeFirstItem(t[:, 0], int(labels[0]))
        return t[0], int(labels[0])

    def __getitems__(self, items):
        """A whole batch (DataLoader calls this) converted into one batch tensor."""
        epoch, pos = self._positions(items)
        return as_batch(*self._read(epoch, pos, pooled=self.shm_pool), layout=self.layout, packed=self.packed)


class EpochSampler(Sampler):
    """Every item once per epoch as `(epoch, i)` pairs (the epoch travels with the index, so
    persistent DataLoader workers follow `set_epoch`).

    With `shuffle`, a permutation drawn from `(seed, epoch)` (the same on every rank); padded by
    repeating its start to a multiple of `world_size` (or cut, `drop_last`), rank `rank` taking every
    `world_size`-th item from its rank on, as `DistributedSampler`. `rank`/`world_size` default to
    torch.distributed's when it is initialised, else 0 / 1.
    """

    def __init__(self, n: int, shuffle: bool = True, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None, drop_last: bool = False):
        rank, world_size = rank_and_world(rank, world_size)
        self.n, self.shuffle, self.seed = int(n), bool(shuffle), int(seed)
        self.rank, self.world_size, self.epoch = int(rank), int(world_size), 0
        self.num_samples = self.n // self.world_size if drop_last else math.ceil(self.n / self.world_size)
        self.total_size = self.num_samples * self.world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def indices(self) -> np.ndarray:
        """This rank's items for the current epoch, in order."""
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.n) if self.shuffle
                 else np.arange(self.n))
        if self.n and self.total_size > self.n:
            order = np.tile(order, -(-self.total_size // self.n))
        return order[:self.total_size][self.rank::self.world_size]

    def __iter__(self):
        return iter([(self.epoch, int(i)) for i in self.indices()])
