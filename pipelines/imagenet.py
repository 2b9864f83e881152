"""ILSVRC2012 as users hold it: an extracted tree or the original tar archives, read in place.

Layouts:
- `ROOT/train/<wnid>/*.JPEG`;
- `ROOT/val/ILSVRC2012_val_*.JPEG` (flat, labelled from the shipped ground truth) or
  `ROOT/val/<wnid>/*.JPEG`;
- `ROOT/ILSVRC2012_img_train.tar` (a tar of 1000 per-class tars) and `ROOT/ILSVRC2012_img_val.tar`,
  never extracted: each image is a byte range of the outer archive (tar members are stored
  uncompressed), so workers read it with one seek.

The class index is the wnid's position in the sorted list of the 1000 ILSVRC2012 wnids. The order
is fixed before any conversion: sorted by (class, file name), and a sample's published number `n`
is its 1-based rank in its class (discarded and rejected files count).
"""
from __future__ import annotations

import io
import os
import tarfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .outcome import Outcome

TRAIN_TAR = "ILSVRC2012_img_train.tar"
VAL_TAR = "ILSVRC2012_img_val.tar"


@dataclass(frozen=True)
class Item:
    """One input image: `name` its path relative to the split's source (`<wnid>/<file>`, or the
    file name in a flat folder or archive), `label` 0-based class (-1: unknown), `number` its
    1-based rank in its class, `path` the file (or archive), `offset`/`size` its byte range in an
    archive (-1 for a plain file)."""
    name: str
    label: int
    number: int
    path: str
    offset: int = -1
    size: int = -1

    @property
    def file_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    def read(self) -> bytes:
        with open(self.path, "rb") as f:
            if self.offset < 0:
                return f.read()
            f.seek(self.offset)
            return f.read(self.size)


@dataclass(frozen=True)
class ClassTable:
    """The 1000 ILSVRC2012 classes: `wnids[k]`, `names[k]` for class index k."""
    wnids: tuple
    names: tuple

    def index(self, wnid: str) -> int:
        try:
            return self._lookup[wnid]
        except KeyError:
            raise ValueError(f"unknown ILSVRC2012 class '{wnid}' (not one of the 1000 wnids)") from None

    @property
    def _lookup(self) -> dict:
        return _lookup(self.wnids)

    def as_list(self) -> list:
        return [[k, w, n] for k, (w, n) in enumerate(zip(self.wnids, self.names))]


@lru_cache(maxsize=4)
def _lookup(wnids: tuple) -> dict:
    return {w: k for k, w in enumerate(wnids)}


def _data_text(name: str) -> str:
    return resources.files("odg.pipelines").joinpath("data", name).read_text()


@lru_cache(maxsize=1)
def load_classes() -> ClassTable:
    rows = [line.split("\t") for line in _data_text("ilsvrc2012_classes.tsv").splitlines() if line.strip()]
    wnids = tuple(r[1] for r in rows)
    if list(wnids) != sorted(wnids) or len(wnids) != 1000:
        raise RuntimeError("the shipped class table is damaged")
    return ClassTable(wnids, tuple(r[2] for r in rows))


@lru_cache(maxsize=1)
def load_val_labels() -> dict:
    """Validation file name -> class index, from the shipped ground truth (50,000 images)."""
    out = {}
    for line in _data_text("ilsvrc2012_val_labels.txt").splitlines():
        if line.strip():
            name, k = line.split()
            out[name] = int(k)
    return out


def _rank(entries) -> list[Item]:
    """entries: (name, label, path, offset, size) -> Items sorted by (label, file name) with numbers."""
    entries = sorted(entries, key=lambda e: (e[1], e[0].rsplit("/", 1)[-1], e[0]))
    items, last, n = [], None, 0
    for name, label, path, off, size in entries:
        n = n + 1 if label == last else 1
        last = label
        items.append(Item(name, label, n, path, off, size))
    return items


def _listdir_files(d: str) -> list[str]:
    return sorted(f for f in os.listdir(d) if not f.startswith(".") and os.path.isfile(os.path.join(d, f)))


def _class_folders(d: str, classes: ClassTable):
    entries = []
    for sub in sorted(os.listdir(d)):
        full = os.path.join(d, sub)
        if sub.startswith("."):
            continue
        if not os.path.isdir(full):
            raise ValueError(f"unexpected file {full}: {d} should hold only <wnid>/ class folders")
        k = classes.index(sub)
        entries += [(f"{sub}/{f}", k, os.path.join(full, f), -1, -1) for f in _listdir_files(full)]
    return entries


class _Window(io.RawIOBase):
    """A read-only view of bytes [start, start + size) of a file, for nested tar archives."""

    def __init__(self, f, start: int, size: int):
        self.f, self.start, self.size, self.pos = f, start, size, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, pos, whence=0):
        self.pos = {0: pos, 1: self.pos + pos, 2: self.size + pos}[whence]
        return self.pos

    def readinto(self, b):
        n = max(0, min(len(b), self.size - self.pos))
        self.f.seek(self.start + self.pos)
        data = self.f.read(n)
        b[:len(data)] = data
        self.pos += len(data)
        return len(data)


def _tar_files(tar: tarfile.TarFile, base: int):
    """(basename, absolute offset, size) of the regular files of an uncompressed tar."""
    for m in tar:
        if m.isfile():
            yield os.path.basename(m.name), base + m.offset_data, m.size


def _archive_entries(path: str, split: str, classes: ClassTable):
    entries = []
    with open(path, "rb") as f:
        outer = tarfile.open(fileobj=f, mode="r:")
        if split == "train":
            for m in outer:
                if not m.isfile():
                    continue
                wnid = os.path.basename(m.name)
                if not wnid.endswith(".tar"):
                    raise ValueError(f"unexpected member {m.name} in {path}: expected <wnid>.tar class archives")
                k = classes.index(wnid[:-4])
                inner = tarfile.open(fileobj=_Window(f, m.offset_data, m.size), mode="r:")
                entries += [(f"{wnid[:-4]}/{n}", k, path, off, size) for n, off, size in _tar_files(inner, m.offset_data)]
        else:
            labels = load_val_labels()
            entries += [(n, labels.get(n, -1), path, off, size) for n, off, size in _tar_files(outer, 0)]
    return entries


def imagenet_items(root: str, split: str, limit: int | None = None) -> tuple[list[Item], dict]:
    """The ordered inputs of a split and a description of the source.

    `limit`: at most that many images per class (the first in order; numbers keep their rank in
    the full class). Files of a flat `val/` missing from the ground truth get label -1 and are
    recorded as rejects by the build.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got '{split}'")
    classes = load_classes()
    root = os.path.abspath(root)        # items are opened by Dask workers, in their own working directory
    d = os.path.join(root, split)
    tar = os.path.join(root, TRAIN_TAR if split == "train" else VAL_TAR)
    if os.path.isdir(d):
        kind = "folder"
        subdirs = [s for s in os.listdir(d) if os.path.isdir(os.path.join(d, s)) and not s.startswith(".")]
        if split == "train" or subdirs:
            entries = _class_folders(d, classes)
        else:
            labels = load_val_labels()
            entries = [(f, labels.get(f, -1), os.path.join(d, f), -1, -1) for f in _listdir_files(d)]
        source = os.path.abspath(d)
    elif os.path.isfile(tar):
        kind = "archive"
        entries = _archive_entries(tar, split, classes)
        source = os.path.abspath(tar)
    else:
        raise ValueError(f"{root} holds neither {split}/ nor {os.path.basename(tar)}")
    items = _rank(entries)
    if limit is not None:
        items = [it for it in items if it.number <= limit]
    return items, {"layout": kind, "path": source, "split": split, "limit": limit, "files": len(items)}


def item_outcome(item: Item, convert, max_pixels: int) -> Outcome:
    """Decode one input and convert it with `convert(image) -> Outcome`; the build's reject rules.

    Never raises for a bad input: an input outside the validation ground truth, an unreadable file,
    a decoding failure (`Reject`) or an image the conversion refuses (`ValueError`) gives a rejected
    `Outcome` with its reason (transient I/O errors do raise, so that a build task is retried).
    `convert` returns the outcome of a decoded BGR image (see `odg_outcome`).
    """
    from .decode import decode_image
    from .errors import Reject
    from .outcome import Outcome
    if item.label < 0:
        return Outcome.rejected("not in the ILSVRC2012 validation ground truth")
    try:
        return convert(decode_image(item.read(), max_pixels))
    except (Reject, ValueError) as e:
        return Outcome.rejected(str(e))
    except (FileNotFoundError, PermissionError, IsADirectoryError) as e:
        return Outcome.rejected(f"cannot read: {e.strerror or e}")
    # any other OSError (a network file system's hiccup) propagates: Dask retries the task


def odg_outcome(r, params) -> Outcome:
    """The outcome of an ODG conversion `r` (`odg.ODGResult`): kept, or discarded under the event
    floor (with the reason); shape (a, b), count (ON, OFF), words."""
    from .outcome import Outcome
    on, off = (int(v) for v in r.counts.sum(0))
    if r.kept:
        return Outcome.kept(r.shape, (on, off), r.words)
    return Outcome.discarded(f"{on + off} events < {params.min_events}", r.shape, (on, off), r.words)


def i2e_outcome(r, params) -> Outcome:
    """The outcome of an I2E conversion `r` (`odg.i2e.I2EResult`): always kept (I2E has no event
    floor), shape the frame's (S, S), count (ON, OFF), words."""
    from .outcome import Outcome
    on, off = (int(v) for v in r.counts.sum(0))
    return Outcome.kept((params.size, params.size), (on, off), r.words)


def convert_item(item: Item, params, max_pixels: int) -> Outcome:
    """Decode and convert one input with ODG (see `item_outcome`): kept, discarded or rejected."""
    from odg import odg_events
    return item_outcome(item, lambda img: odg_outcome(odg_events(img, params), params), max_pixels)


def convert_item_i2e(item: Item, params, max_pixels: int, split: str) -> Outcome:
    """Decode and convert one input with I2E, preprocessed as published for `split` (see `item_outcome`)."""
    from odg.i2e import i2e_events, preprocess
    return item_outcome(item, lambda img: i2e_outcome(i2e_events(preprocess(img, params, split), params), params),
                        max_pixels)


METHODS = ("odg", "i2e")


def store_layout(params) -> tuple[str, tuple, object]:
    """`(store kind, words shape, words dtype)` of a store of ImageNet events converted with `params`
    (`ODGParams`: ES-ImageNet, words over the event window; `I2EParams`: I2E, words over the frame)."""
    from odg import word_dtype
    from odg.i2e import I2EParams

    from .store.schema import KIND_I2E, KIND_IMAGENET
    if isinstance(params, I2EParams):
        return KIND_I2E, (params.size, params.size), word_dtype(params.steps)
    return KIND_IMAGENET, (params.grid, params.grid), word_dtype(params.steps)


def es_imagenet_spec(url: str, split: str, items: list, source: dict, convert, shard_size: int, params):
    """A `BuildSpec` for an ImageNet event store split (any inputs: images, published files)."""
    from .build import BuildSpec
    kind, payload_shape, payload_dtype = store_layout(params)
    return BuildSpec(url=url, split=split, kind=kind, items=items, convert=convert,
                     payload_shape=payload_shape, payload_dtype=payload_dtype,
                     params=params.to_dict(), classes=load_classes().as_list(), source=source,
                     shard_size=shard_size)


def default_params(method: str):
    """The published parameters of a conversion method ("odg": `ODGParams()`, "i2e": `I2EParams()`)."""
    from odg import ODGParams
    from odg.i2e import I2EParams
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    return ODGParams() if method == "odg" else I2EParams()


def build_spec(url: str, root: str, split: str, limit: int | None = None, shard_size: int = 256,
               params=None, max_pixels: int | None = None, method: str = "odg"):
    """The `BuildSpec` of a build of `root`'s split into the store at `url`, converted with `method`
    ("odg": ES-ImageNet; "i2e": I2E, preprocessed as published for the split)."""
    from functools import partial

    from .decode import MAX_PIXELS
    params = params or default_params(method)
    items, source = imagenet_items(root, split, limit)
    mp = max_pixels or MAX_PIXELS
    if method == "i2e":
        convert = partial(convert_item_i2e, params=params, max_pixels=mp, split=split)
    else:
        convert = partial(convert_item, params=params, max_pixels=mp)
    return es_imagenet_spec(url, split, items, source, convert, shard_size, params)
