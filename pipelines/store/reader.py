"""Reading an odg store: random access to samples and fast sequential iteration over shards.

    store = open_store("es-imagenet.zarr")
    val = store["val"]
    len(val), val.label(0), val.events(0), val.frames(0)     # frames: uint8 [T, 2, 224, 224]
    for shard in val.iter_shards(): shard.words, shard.label  # one read per shard (the fast path)
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import zarr

from odg import ODGParams, events_to_published, words_to_events

from .schema import KEPT, KIND_I2E, KIND_IMAGENET, KIND_UCF101, STATUS_NAMES
from .urls import check_url
from .writer import StoreError


@dataclass(frozen=True)
class Sample:
    """Per-sample record: `label` 0-based class, `number` the published running number, `name` the
    source, `status` ('kept'/'discarded'/'rejected'), `reason`, `shape` (a, b) or clip (H, W),
    `count` (ON, OFF) events."""
    index: int
    label: int
    number: int
    name: str
    status: str
    reason: str
    shape: tuple
    count: tuple


@dataclass(frozen=True)
class Shard:
    """The arrays of samples `[start, stop)`, read whole: the sequential fast path."""
    index: int
    start: int
    stop: int
    words: np.ndarray
    label: np.ndarray
    status: np.ndarray
    shape: np.ndarray
    count: np.ndarray


class SplitReader:
    def __init__(self, store: "EventStore", name: str):
        self.store = store
        self.name = name
        self._g = store.root[name]
        self._arrays = {}
        self._words_reader = None
        self.attrs = dict(self._g.attrs)

    def __len__(self) -> int:
        return int(self.attrs["n"])

    def __repr__(self) -> str:
        return f"<split {self.name!r} of {self.store.url}: {len(self)} samples>"

    @property
    def complete(self) -> bool:
        return bool(self.attrs.get("complete"))

    @property
    def shard_size(self) -> int:
        return int(self.attrs["shard_size"])

    @property
    def n_shards(self) -> int:
        return -(-len(self) // self.shard_size)

    def array(self, name: str):
        """The underlying zarr array (label, number, name, status, reason, shape, count, words)."""
        if name not in self._arrays:
            self._arrays[name] = self._g[name]
        return self._arrays[name]

    # small per-sample columns, read once
    @cached_property
    def labels(self) -> np.ndarray:
        return self.array("label")[:]

    @cached_property
    def statuses(self) -> np.ndarray:
        return self.array("status")[:]

    @cached_property
    def shapes(self) -> np.ndarray:
        return self.array("shape")[:]

    @cached_property
    def counts(self) -> np.ndarray:
        return self.array("count")[:]

    @cached_property
    def numbers(self) -> np.ndarray:
        return self.array("number")[:]

    def names(self) -> np.ndarray:
        return np.asarray(self.array("name")[:], dtype=object)

    def reasons(self) -> np.ndarray:
        return np.asarray(self.array("reason")[:], dtype=object)

    def kept_indices(self) -> np.ndarray:
        return np.flatnonzero(self.statuses == KEPT)

    def _check(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sample {i} out of range for split '{self.name}' of {n} samples")
        return i % n

    def label(self, i: int) -> int:
        return int(self.labels[self._check(i)])

    def sample(self, i: int) -> Sample:
        i = self._check(i)
        return Sample(i, int(self.labels[i]), int(self.numbers[i]), str(self.array("name")[i]),
                      STATUS_NAMES[int(self.statuses[i])], str(self.array("reason")[i]),
                      tuple(int(v) for v in self.shapes[i]), tuple(int(v) for v in self.counts[i]))

    def words(self, i: int) -> np.ndarray:
        """Sample `i`'s words: two byte-range reads (the shard's cached index, one inner chunk)."""
        return self._words_fast().read_one(self._check(i))

    def _words_fast(self):
        if self._words_reader is None:
            from .shard_read import ShardWordsReader
            self._words_reader = ShardWordsReader(self.array("words"))
        return self._words_reader

    def words_block(self, shard: int, rows=None) -> np.ndarray:
        """The words of every sample of `shard`, read with one request and decoded in one pass.

        With `rows` (indices within the shard) only the inner chunks holding them are decoded and
        the other rows are undefined. Equal to `array("words")[a:b]`, several times faster.
        """
        if not 0 <= shard < self.n_shards:
            raise IndexError(f"shard {shard} out of range for split '{self.name}' of {self.n_shards} shards")
        return self._words_fast().read(shard, self.shard_size, rows)

    # ES-ImageNet (and I2E) views
    def events(self, i: int) -> np.ndarray:
        """The sample's events (`odg.EVENT_DTYPE`, canonical order): ES-ImageNet in canvas
        coordinates; I2E in frame coordinates (x = column, y = row of the 224 x 224 frame)."""
        if self.store.kind == KIND_I2E:
            from odg import frames_to_events
            return frames_to_events(self.frames(i))
        self.store._need(KIND_IMAGENET)
        i = self._check(i)
        return words_to_events(self.words(i), tuple(self.shapes[i]), self.store.params)

    def published(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The published `pos`, `neg` arrays of the sample (ES-ImageNet)."""
        self.store._need(KIND_IMAGENET)
        return events_to_published(self.events(i))

    def frames(self, i: int, centre: bool = True) -> np.ndarray:
        """Dense frames: `[T, 2, 224, 224]` uint8 as the published loader (ES-ImageNet; I2E: the
        published module's output, `centre` does not apply), or `[2, S, H, W]` uint8 as published
        (ES-UCF101)."""
        i = self._check(i)
        return self.layout.frames(self.words(i), self.shapes[i], centre)

    @property
    def layout(self):
        """The store's per-kind `layout.Layout` (steps, frame shape, words -> frames)."""
        return self.store.layout

    def iter_shards(self, shards=None):
        """Yield `Shard`s in order (all, or the given shard indices), each read with one request per array."""
        K = self.shard_size
        for s in (range(self.n_shards) if shards is None else shards):
            a, b = s * K, min((s + 1) * K, len(self))
            yield Shard(s, a, b, self.words_block(s), self.array("label")[a:b], self.array("status")[a:b],
                        self.array("shape")[a:b], self.array("count")[a:b])


class EventStore:
    """An odg store opened read-only; `store[split]` gives a `SplitReader`."""

    def __init__(self, url: str):
        self.url = url
        check_url(url)
        try:
            self.root = zarr.open_group(url, mode="r")
        except FileNotFoundError:
            raise StoreError(f"no store at {url}") from None
        meta = self.root.attrs.get("odg")
        if meta is None:
            raise StoreError(f"{url} is not an odg store (no 'odg' attributes)")
        self.meta = meta

    @property
    def kind(self) -> str:
        return self.meta["kind"]

    @cached_property
    def params(self):
        """The conversion's parameters: `ODGParams`, `odg.i2e.I2EParams` or `odg.video.UCFParams`."""
        if self.kind == KIND_IMAGENET:
            return ODGParams.from_dict(self.meta["params"])
        if self.kind == KIND_I2E:
            from odg.i2e import I2EParams
            return I2EParams.from_dict(self.meta["params"])
        from odg.video import UCFParams
        return UCFParams.from_dict(self.meta["params"])

    @cached_property
    def layout(self):
        """The per-kind `layout.Layout` of this store's words (steps, frame shape, words -> frames)."""
        from .layout import layout_of
        return layout_of(self)

    @property
    def method(self) -> str:
        """The conversion method: the params' "method" ("i2e"), else "odg" (ES-ImageNet) or "es-ucf101"."""
        return self.meta["params"].get("method") or ("es-ucf101" if self.kind == KIND_UCF101 else "odg")

    @property
    def classes(self) -> list:
        return self.meta["classes"]

    @property
    def splits(self) -> list[str]:
        return sorted(k for k in self.root.group_keys())

    def __getitem__(self, split: str) -> SplitReader:
        if split not in self.splits:
            raise KeyError(f"store {self.url} has no split '{split}' (it has: {', '.join(self.splits) or 'none'})")
        return SplitReader(self, split)

    def __contains__(self, split: str) -> bool:
        return split in self.splits

    def _need(self, kind: str):
        if self.kind != kind:
            raise StoreError(f"this is an {self.kind} store; the operation needs an {kind} store")


def open_store(url: str) -> EventStore:
    return EventStore(url)
