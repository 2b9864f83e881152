"""`odg export es-imagenet`: a store split back to the published per-sample layout.

    DIR/train/classK/classK_n.npz   pos, neg: (N, 3) uint8 (row, col, t)
    DIR/trainlabel.txt              lines "classK/classK_n.npz K a b"
    DIR/val/<image stem>.npz
    DIR/vallabel.txt                lines "<image stem>.npz K a b"

Only kept samples are written (the published dataset has no files for discards). The files
are byte-for-byte what `np.savez_compressed(path, pos=pos, neg=neg)` writes for the published
arrays, so existing loaders (the published one, SpikingJelly's `ESImageNet`) read them unchanged.
Every file is written through `OutputFolder` (no symlink in DIR is ever followed).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from odg import events_to_published, words_to_events

from .output_folder import OutputFolder
from .progress import progress_bar
from .store import EventStore, KEPT
from .store.schema import KIND_I2E, KIND_IMAGENET


def published_relpath(split: str, label: int, number: int, name: str) -> str:
    """The sample's file, relative to its split folder (train/ or val/)."""
    if split == "train":
        return f"class{label}/class{label}_{number}.npz"
    stem = os.path.splitext(name.rsplit("/", 1)[-1])[0]
    return f"{stem}.npz"


def export_es_imagenet(url: str, out_dir: str, splits=None, workers: int = 4, progress: bool = True) -> dict:
    """Write the published layout of the given (default: all) splits; return files written per split."""
    store = EventStore(url)
    if store.kind == KIND_I2E:
        raise ValueError(f"{url} holds I2E events (dense [8, 2, 224, 224] frames of the I2E method); the "
                         "ES-ImageNet layout holds ODG event lists in ODG's canvas coordinates, which I2E "
                         "frames have none of: there is nothing meaningful to export into it")
    store._need(KIND_IMAGENET)
    params = store.params
    out = OutputFolder(out_dir)
    written = {}
    for split in splits or store.splits:
        if split not in ("train", "val"):
            raise ValueError(f"the published ES-ImageNet layout has train and val splits only, not '{split}'")
        sr = store[split]
        if not sr.complete:
            raise ValueError(f"split '{split}' is incomplete; finish its build with --resume first")
        names = sr.names()
        lines = []
        jobs = []
        bar = progress_bar(int((sr.statuses == KEPT).sum()), f"export {split}", "file", progress)

        def save(rel, pos, neg):
            out.write(rel, lambda f: np.savez_compressed(f, pos=pos, neg=neg))
            bar.update()

        with bar, ThreadPoolExecutor(max(1, workers)) as ex:
            for shard in sr.iter_shards():
                for j in np.flatnonzero(shard.status == KEPT):
                    i = shard.start + j
                    label, number = int(shard.label[j]), int(sr.numbers[i])
                    a, b = (int(v) for v in shard.shape[j])
                    rel = published_relpath(split, label, number, names[i])
                    out.folder(os.path.dirname(f"{split}/{rel}"))
                    pos, neg = events_to_published(words_to_events(shard.words[j], (a, b), params))
                    jobs.append(ex.submit(save, f"{split}/{rel}", pos, neg))
                    lines.append(f"{rel} {label} {a} {b}\n")
            for j in jobs:
                j.result()
        out.write_text(f"{split}label.txt", "".join(lines))
        written[split] = len(lines)
    return written
