"""`odg export es-ucf101`: an es-ucf101 store split back to the published per-clip files.

    DIR/<clip>.npz      arr_0: uint8 [2, 30, H, W] (0/1; channel 0 ON, 1 OFF), as the published
                        generator wrote it: np.savez_compressed(path, events)
    DIR/labels.txt      lines "<clip> <label>" (0-based label, the store's), in store order
    DIR/classInd.txt    "<index> <ClassName>" (1-based, UCF101's format) so that
                        `odg import es-ucf101 DIR STORE` finds the classes without --classes

Only kept clips are written (rejected clips have no events). Every file is written through
`OutputFolder` (no symlink in DIR is ever followed).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .output_folder import OutputFolder
from .progress import progress_bar
from .store import KEPT, EventStore
from .store.schema import KIND_UCF101


def choose_split(store: EventStore, split: str | None) -> str:
    if split is not None:
        if split not in store.splits:
            raise ValueError(f"store {store.url} has no split '{split}' (it has: {', '.join(store.splits) or 'none'})")
        return split
    if len(store.splits) == 1:
        return store.splits[0]
    if not store.splits:
        raise ValueError(f"store {store.url} has no splits")
    raise ValueError(f"store {store.url} has splits {', '.join(store.splits)}: choose one with --split")


def export_es_ucf101(url: str, out_dir: str, split: str | None = None, workers: int = 4,
                     progress: bool = True, allow_incomplete: bool = False) -> tuple[str, int]:
    """Write the kept clips of one split (the only one, or `split`); return (split, files written).

    An incomplete split is refused unless `allow_incomplete` (then: the built shards' clips). A
    damaged shard raises `DamagedShard`, and the files written until then are removed again."""
    from odg.video import unpack_clip

    from .export import all_or_nothing
    from .ucf101 import save_published
    store = EventStore(url)
    store._need(KIND_UCF101)
    split = choose_split(store, split)
    sr = store.split(split, allow_incomplete)
    steps = store.params.steps
    names = sr.names()
    out = OutputFolder(out_dir)
    lines = []
    bar = progress_bar(len(sr.kept_indices()), f"export {split}", "clip", progress)

    def save(rel, words):
        out.write(rel, lambda f: save_published(f, unpack_clip(words, steps)))
        bar.update()

    with all_or_nothing(out, "labels.txt") as files, bar, ThreadPoolExecutor(max(1, workers)) as ex:
        jobs = []
        for shard in sr.iter_shards():
            for j in np.flatnonzero(shard.status == KEPT):
                name = str(names[shard.start + j])
                files.append(f"{name}.npz")
                jobs.append(ex.submit(save, f"{name}.npz", shard.words[j]))
                lines.append(f"{name} {int(shard.label[j])}\n")
            for job in jobs:        # one shard's words in memory at a time
                job.result()
            jobs.clear()
        out.write_text("labels.txt", "".join(lines))
    classes = store.classes
    if classes:
        out.write_text("classInd.txt", "".join(f"{int(k) + 1} {name}\n" for k, name in classes))
    return split, len(lines)
