"""`odg export es-imagenet`: a store split back to the published per-sample layout.

    DIR/train/classK/classK_n.npz   pos, neg: (N, 3) uint8 (row, col, t)
    DIR/trainlabel.txt              lines "classK/classK_n.npz K a b"
    DIR/val/<image stem>.npz
    DIR/vallabel.txt                lines "<image stem>.npz K a b"

Only kept samples are written (the published dataset has no files for discards). The files
are byte-for-byte what `np.savez_compressed(path, pos=pos, neg=neg)` writes for the published
arrays, so existing loaders (the published one, SpikingJelly's `ESImageNet`) read them unchanged.
Every file is written through `OutputFolder` (no symlink in DIR is ever followed). Val files are
named after their image stems; stems that collide get the whole source name instead
(`unique_relpaths`), decided before anything is written. The label file is written last, and a
split whose export fails leaves none of its files behind.
"""
from __future__ import annotations

import contextlib
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from odg import events_to_published, words_to_events

from .output_folder import OutputFolder
from .progress import progress_bar
from .store import KEPT, EventStore
from .store.schema import KIND_I2E, KIND_IMAGENET


def published_relpath(split: str, label: int, number: int, name: str) -> str:
    """The sample's file, relative to its split folder (train/ or val/)."""
    if split == "train":
        return f"class{label}/class{label}_{number}.npz"
    stem = os.path.splitext(name.rsplit("/", 1)[-1])[0]
    return f"{stem}.npz"


def unique_relpaths(split: str, rows) -> list[str]:
    """`published_relpath` of each `(label, number, name)` in `rows`, made unique: val files whose
    stems collide (`img.JPEG` in two folders, `x.JPEG` beside `x.png`) are named after their whole
    source name instead (`n01440764__img.JPEG.npz`). Raises ValueError naming what still collides."""
    rels = [published_relpath(split, *r) for r in rows]
    seen = Counter(rels)
    if split == "val" and len(seen) < len(rels):
        rels = [rel if seen[rel] == 1 else name.replace("/", "__") + ".npz"
                for rel, (_, _, name) in zip(rels, rows)]
        seen = Counter(rels)
    clash = sorted(rel for rel, k in seen.items() if k > 1)
    if clash:
        who = {rel: [name for r, (_, _, name) in zip(rels, rows) if r == rel] for rel in clash[:3]}
        raise ValueError(f"split '{split}': {len(clash)} output names would be written by several samples, "
                         "e.g. " + "; ".join(f"{rel} by {', '.join(map(str, names))}" for rel, names in who.items())
                         + ": nothing was written")
    return rels


@contextlib.contextmanager
def all_or_nothing(out: OutputFolder, finished: str):
    """Export into `out` so that a failure leaves no folder that looks finished: the old `finished`
    file (the label list, written last) is removed first, and on failure every file written so far
    is removed again. Yields `written`, a list the export appends each relative path it writes to."""
    written = []
    _remove(out, finished)
    try:
        yield written
    except BaseException:
        for rel in written:
            _remove(out, rel)
        raise


def _remove(out: OutputFolder, rel: str) -> None:
    d, _, name = rel.rpartition("/")
    try:
        os.unlink(os.path.join(out.folder(d), name))
    except FileNotFoundError:
        pass


def export_es_imagenet(url: str, out_dir: str, splits=None, workers: int = 4, progress: bool = True,
                       allow_incomplete: bool = False) -> dict:
    """Write the published layout of the given (default: all) splits; return files written per split.

    An incomplete split is refused (`IncompleteSplit`) unless `allow_incomplete`, which writes the
    kept samples of its built shards only. A damaged shard raises `DamagedShard`; the split's
    files written until then are removed and its label file is not written."""
    store = EventStore(url)
    if store.kind == KIND_I2E:
        raise ValueError(f"{url} holds I2E events (dense [8, 2, 224, 224] frames of the I2E method); the "
                         "ES-ImageNet layout holds ODG event lists in ODG's canvas coordinates, which I2E "
                         "frames have none of: there is nothing meaningful to export into it")
    store._need(KIND_IMAGENET)
    params = store.params
    splits = list(splits or store.splits)
    for split in splits:
        if split not in ("train", "val"):
            raise ValueError(f"the published ES-ImageNet layout has train and val splits only, not '{split}'")
    readers = {split: store.split(split, allow_incomplete) for split in splits}    # refuse before writing
    names = {split: sr.names() for split, sr in readers.items()}
    rels = {}
    for split, sr in readers.items():
        kept = sr.kept_indices()
        rels[split] = dict(zip(kept.tolist(), unique_relpaths(
            split, [(int(sr.labels[i]), int(sr.numbers[i]), str(names[split][i])) for i in kept])))
    out = OutputFolder(out_dir)
    written = {}
    for split, sr in readers.items():
        lines = []
        jobs = []
        bar = progress_bar(len(rels[split]), f"export {split}", "file", progress)

        def save(rel, pos, neg):
            out.write(rel, lambda f: np.savez_compressed(f, pos=pos, neg=neg))
            bar.update()

        with all_or_nothing(out, f"{split}label.txt") as files, bar, ThreadPoolExecutor(max(1, workers)) as ex:
            for shard in sr.iter_shards():
                for j in np.flatnonzero(shard.status == KEPT):
                    i = shard.start + j
                    label = int(shard.label[j])
                    a, b = (int(v) for v in shard.shape[j])
                    rel = rels[split][i]
                    out.folder(os.path.dirname(f"{split}/{rel}"))
                    pos, neg = events_to_published(words_to_events(shard.words[j], (a, b), params))
                    files.append(f"{split}/{rel}")
                    jobs.append(ex.submit(save, f"{split}/{rel}", pos, neg))
                    lines.append(f"{rel} {label} {a} {b}\n")
            for j in jobs:
                j.result()
            out.write_text(f"{split}label.txt", "".join(lines))
        written[split] = len(lines)
    return written
