"""Reading an odg store: random access to samples and fast sequential iteration over shards.

    store = open_store("es-imagenet.zarr")
    val = store["val"]
    len(val), val.label(0), val.events(0), val.frames(0)     # frames: uint8 [T, 2, 224, 224]
    for shard in val.iter_shards(): shard.words, shard.label  # one read per shard (the fast path)

Every read is checked (docs/STORE.md, "Integrity"): only built shards are served, an incomplete
split is refused unless asked (`store.split("train", allow_incomplete=True)`), and a missing or
damaged chunk raises `DamagedShard` naming split, shard and array.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import zarr

from odg import ODGParams, events_to_published, words_to_events

from .integrity import (
    DamagedShard,
    IncompleteSplit,
    NotBuilt,
    chunk_crc,
    chunk_problem,
    damaged,
    read_markers,
    shard_range,
)
from .keys import StoreKeys
from .markers import MarkerState
from .schema import (
    KEPT,
    KIND_I2E,
    KIND_IMAGENET,
    KIND_UCF101,
    NO_LABEL,
    NOT_BUILT,
    READABLE_FORMATS,
    STATUS_NAMES,
    per_sample_arrays,
)
from .shard_read import ChunkDamage, chunk_key
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
    """One split of a store, read only where it was built and checked as it is read.

    Only shards with a valid completion marker (`markers.parse_marker`) are served. A split whose
    build did not finish raises `IncompleteSplit` unless `allow_incomplete`; then `kept_indices`,
    `indices`, `iter_shards` and the columns cover the built shards only (the columns read
    `NOT_BUILT` status and label -1 elsewhere, and any other access to an unbuilt shard raises
    `NotBuilt`). Sample indices stay positions in the whole split (`len(reader)` is its planned
    size; `n_built` counts the samples of built shards). A missing chunk of a built shard, or one
    that does not match its checksum, raises `DamagedShard` naming split, shard and array.
    Opening reads every marker and (`check`) lists every array's chunks (`check_chunks`); a reader
    of a few shards only (a Dask task) passes `allow_incomplete=True, check=False` and reads just
    their markers.
    """

    def __init__(self, store: "EventStore", name: str, allow_incomplete: bool = False, check: bool = True):
        self.store = store
        self.name = name
        self.allow_incomplete = bool(allow_incomplete)
        self._g = store.root[name]
        self._arrays = {}
        self._words_reader = None
        self._markers = {}          # shard -> MarkerState, read as needed (all of them for built_shards)
        self._all_markers = False
        self._checked = set()       # (array, shard): chunk present (and, format 1, its sha256 matched)
        self.attrs = dict(self._g.attrs)
        if not self.allow_incomplete and not self.complete:
            built = len(self.built_shards)
            state = ("every shard is built but the split is not marked complete" if built == self.n_shards
                     else f"{built} of {self.n_shards} shards are built")
            raise IncompleteSplit(
                f"split '{name}' of {store.url} is incomplete ({state}): finish its build with --resume, "
                "or pass --allow-incomplete to use the built shards only")
        if check:
            self.check_chunks()

    def __len__(self) -> int:
        return int(self.attrs["n"])

    def __repr__(self) -> str:
        return f"<split {self.name!r} of {self.store.url}: {len(self)} samples>"

    @property
    def complete(self) -> bool:
        """Marked complete by its build and every shard's marker valid."""
        return bool(self.attrs.get("complete")) and len(self.built_shards) == self.n_shards

    @property
    def shard_size(self) -> int:
        return int(self.attrs["shard_size"])

    @property
    def n_shards(self) -> int:
        return -(-len(self) // self.shard_size)

    # -- what is built ----------------------------------------------------------------------
    def marker(self, s: int) -> MarkerState:
        """Shard `s`'s completion marker (read once)."""
        if s not in self._markers:
            self._markers.update(read_markers(self._g.store, self.name, [s], self.shard_size, len(self)))
        return self._markers[s]

    @property
    def markers(self) -> dict:
        """shard -> `MarkerState` of every shard."""
        if not self._all_markers:
            todo = [s for s in range(self.n_shards) if s not in self._markers]
            self._markers.update(read_markers(self._g.store, self.name, todo, self.shard_size, len(self)))
            self._all_markers = True
        return self._markers

    @cached_property
    def built_shards(self) -> list[int]:
        """Shards with a valid completion marker, in order."""
        return [s for s, m in sorted(self.markers.items()) if m.built]

    @cached_property
    def built_rows(self) -> np.ndarray:
        """bool `[n]`: samples of built shards."""
        rows = np.zeros(len(self), bool)
        for s in self.built_shards:
            rows[slice(*self._range(s))] = True
        return rows

    @property
    def n_built(self) -> int:
        return int(self.built_rows.sum())

    def indices(self) -> np.ndarray:
        """Indices of the samples of built shards (all samples of a complete split)."""
        return np.flatnonzero(self.built_rows)

    def _range(self, s: int) -> tuple[int, int]:
        return shard_range(s, self.shard_size, len(self))

    def _need_built(self, s: int) -> None:
        m = self.marker(s)
        if not m.built:
            raise NotBuilt(f"store {self.store.url} split '{self.name}' shard {s} is not built (its marker is "
                           f"{m.why}): finish the build with --resume")

    def _damaged(self, s: int, array: str, why: str) -> DamagedShard:
        return damaged(self.store.url, self.name, s, array, why)

    # -- checked reads ----------------------------------------------------------------------
    def array(self, name: str):
        """The underlying zarr array (label, number, name, status, reason, shape, count, words).
        Reading it directly bypasses the checks above."""
        if name not in self._arrays:
            self._arrays[name] = self._g[name]
        return self._arrays[name]

    def _check_chunks(self, name: str, shards) -> None:
        """Every chunk of `name` in built `shards` exists; in format 1 (no crc32c in the chunks), its
        bytes match the sha256 of the shard's marker. Each (array, shard) is checked once."""
        todo = [s for s in shards if (name, s) not in self._checked]
        if not todo:
            return
        arr = self.array(name)
        store, base = arr.store_path.store, arr.store_path.path
        keys = [f"{base}/{chunk_key(arr, s)}" for s in todo]
        digest = not chunk_crc(arr)
        raw_keys = StoreKeys(store)
        if digest:
            found = raw_keys.get_many(keys)
        else:
            present = set(raw_keys.list(base + "/")) if len(todo) > 8 else \
                {k for k, ok in zip(keys, raw_keys.exists_many(keys)) if ok}
            found = [k in present for k in keys]
        for s, raw in zip(todo, found):
            why = chunk_problem(raw, self.marker(s).marker["sha256"].get(name), digest)
            if why:
                raise self._damaged(s, name, why)
        self._checked.update((name, s) for s in todo)

    def check_chunks(self) -> None:
        """Every chunk of every built shard exists where its marker says one was written (one key
        listing per array; their contents are checked when read). Done on opening (`check`)."""
        built = self.built_shards
        for name in per_sample_arrays((), np.uint8):
            arr = self.array(name)
            present = set(StoreKeys(arr.store_path.store).list(arr.store_path.path + "/"))
            for s in built:
                want = self.marker(s).marker["sha256"].get(name)
                why = chunk_problem(f"{arr.store_path.path}/{chunk_key(arr, s)}" in present, want, digest=False)
                if why:
                    raise self._damaged(s, name, why)
            if chunk_crc(arr):          # format 2: nothing more to check before reading (crc32c then)
                self._checked.update((name, s) for s in built)

    def _read(self, name: str, shards, sel, orthogonal: bool = False):
        """`array(name)[sel]` (`.oindex[sel]` if `orthogonal`) after checking the chunks of `shards`;
        a decoding error (crc32c mismatch, corrupt zstd frame) names the first shard whose chunk fails."""
        self._check_chunks(name, shards)
        arr = self.array(name)
        try:
            return arr.oindex[sel] if orthogonal else arr[sel]
        except (ValueError, RuntimeError) as e:
            for s in shards:
                try:
                    arr[slice(*self._range(s))]
                except (ValueError, RuntimeError) as e1:
                    raise self._damaged(s, name, f"cannot be decoded: {e1}") from None
            raise self._damaged(shards[0], name, f"cannot be decoded: {e}") from None

    def take(self, name: str, indices) -> np.ndarray:
        """`array(name)` at sample `indices` (of built shards), reading and checking only their chunks."""
        idx = np.asarray(indices, np.int64).reshape(-1)
        if not idx.size:
            return np.asarray(self.array(name)[0:0])
        shards = sorted(set((idx // self.shard_size).tolist()))
        for s in shards:
            self._need_built(s)
        return np.asarray(self._read(name, shards, idx, orthogonal=True))

    def _column(self, name: str) -> np.ndarray:
        """The whole array `name`, checked, with the fill value (NOT_BUILT status, label -1, 0, '')
        wherever the shard is not built (whose chunks, perhaps half-written, are never read)."""
        built = self.built_shards
        if len(built) == self.n_shards:
            return self._read(name, built, slice(None))
        arr = self.array(name)
        if arr.dtype.kind in "OTU":
            out = np.full(arr.shape, "", dtype=object)
        else:
            out = np.full(arr.shape, NOT_BUILT if name == "status" else NO_LABEL if name == "label" else 0, arr.dtype)
        runs = np.split(np.asarray(built, int), np.flatnonzero(np.diff(built) != 1) + 1) if built else []
        for run in runs:                # consecutive built shards: one read each
            a, b = self._range(int(run[0]))[0], self._range(int(run[-1]))[1]
            out[a:b] = self._read(name, [int(s) for s in run], slice(a, b))
        return out

    def _shard_column(self, name: str, s: int) -> np.ndarray:
        self._need_built(s)
        return self._read(name, [s], slice(*self._range(s)))

    # small per-sample columns, read once
    @cached_property
    def labels(self) -> np.ndarray:
        return self._column("label")

    @cached_property
    def statuses(self) -> np.ndarray:
        return self._column("status")

    @cached_property
    def shapes(self) -> np.ndarray:
        return self._column("shape")

    @cached_property
    def counts(self) -> np.ndarray:
        return self._column("count")

    @cached_property
    def numbers(self) -> np.ndarray:
        return self._column("number")

    def names(self) -> np.ndarray:
        return np.asarray(self._column("name"), dtype=object)

    def reasons(self) -> np.ndarray:
        return np.asarray(self._column("reason"), dtype=object)

    def kept_indices(self) -> np.ndarray:
        """Kept samples of built shards."""
        return np.flatnonzero(self.statuses == KEPT)

    def _check(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sample {i} out of range for split '{self.name}' of {n} samples")
        i %= n
        self._need_built(i // self.shard_size)
        return i

    def label(self, i: int) -> int:
        return int(self.labels[self._check(i)])

    def sample(self, i: int) -> Sample:
        i = self._check(i)
        s = [i // self.shard_size]
        return Sample(i, int(self.labels[i]), int(self.numbers[i]), str(self._read("name", s, i)),
                      STATUS_NAMES[int(self.statuses[i])], str(self._read("reason", s, i)),
                      tuple(int(v) for v in self.shapes[i]), tuple(int(v) for v in self.counts[i]))

    def words(self, i: int) -> np.ndarray:
        """Sample `i`'s words: two byte-range reads (the shard's cached index, one inner chunk)."""
        i = self._check(i)
        try:
            return self._words_fast().read_one(i)
        except ChunkDamage as e:
            raise self._damaged(e.shard, "words", e.why) from None

    def _words_fast(self):
        if self._words_reader is None:
            from .shard_read import ShardWordsReader
            words = self.array("words")
            digest = None if chunk_crc(words) else (lambda s: self.marker(s).marker["sha256"].get("words"))
            self._words_reader = ShardWordsReader(words, digest)
        return self._words_reader

    def words_block(self, shard: int, rows=None) -> np.ndarray:
        """The words of every sample of `shard`, read with one request and decoded in one pass.

        With `rows` (indices within the shard) only the inner chunks holding them are decoded and
        the other rows are undefined. Equal to `array("words")[a:b]`, several times faster.
        """
        if not 0 <= shard < self.n_shards:
            raise IndexError(f"shard {shard} out of range for split '{self.name}' of {self.n_shards} shards")
        self._need_built(shard)
        try:
            return self._words_fast().read(shard, self.shard_size, rows)
        except ChunkDamage as e:
            raise self._damaged(e.shard, "words", e.why) from None

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
        """Yield `Shard`s in order (every built shard, or the given shard indices, which must be
        built), each read with one request per array."""
        for s in (self.built_shards if shards is None else shards):
            a, b = self._range(s)
            yield Shard(s, a, b, self.words_block(s), self._shard_column("label", s),
                        self._shard_column("status", s), self._shard_column("shape", s),
                        self._shard_column("count", s))


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
        if meta.get("format_version", 1) not in READABLE_FORMATS:
            raise StoreError(f"{url} is an odg store of format {meta.get('format_version')}, which this odg "
                             f"cannot read (it reads formats {', '.join(map(str, READABLE_FORMATS))}): upgrade odg")
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

    def split(self, split: str, allow_incomplete: bool = False, check: bool = True) -> SplitReader:
        """The split's reader (`SplitReader`); an incomplete split raises `IncompleteSplit` unless
        `allow_incomplete`."""
        if split not in self.splits:
            raise KeyError(f"store {self.url} has no split '{split}' (it has: {', '.join(self.splits) or 'none'})")
        return SplitReader(self, split, allow_incomplete, check)

    def __getitem__(self, split: str) -> SplitReader:
        """`split(split)`: a complete split (else `IncompleteSplit`)."""
        return self.split(split)

    def __contains__(self, split: str) -> bool:
        return split in self.splits

    def _need(self, kind: str):
        if self.kind != kind:
            raise StoreError(f"this is an {self.kind} store; the operation needs an {kind} store")


def open_store(url: str) -> EventStore:
    return EventStore(url)
