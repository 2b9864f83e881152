"""`odg import es-imagenet DIR STORE`: the published download, read in parallel into a store, losslessly.

Reads `DIR/trainlabel.txt` + `DIR/train/classK/classK_n.npz` and `DIR/vallabel.txt` + `DIR/val/*.npz`.
Malformed label lines, unreadable or malformed sample files and files no label line names are
recorded as rejects with their reasons; the import goes on.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from odg import ODGParams, events_to_words, published_to_events

from .store.schema import KEPT, REJECTED

_TRAIN_NAME = re.compile(r"^class(\d+)/class(\d+)_(\d+)\.npz$")


@dataclass(frozen=True)
class NpzItem:
    """A published sample file: `name` relative to its split folder, `label`, `number`, `shape` (a, b),
    `path` on disk, or `problem` (why it cannot be imported)."""
    name: str
    label: int
    number: int
    path: str
    shape: tuple = (0, 0)
    problem: str = ""


def _parse_label_file(path: str, split: str, split_dir: str):
    items, bad = [], []
    with open(path) as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 4 or not all(p.lstrip("-").isdigit() for p in parts[1:]):
                bad.append(NpzItem(f"{os.path.basename(path)}:{ln}", -1, 0, path,
                                   problem=f"malformed label line {ln}: {line.strip()[:80]!r} (want 'FILE K a b')"))
                continue
            rel, k, a, b = parts[0], int(parts[1]), int(parts[2]), int(parts[3])
            number = 0
            if split == "train":
                m = _TRAIN_NAME.match(rel)
                if not m or int(m.group(1)) != k or int(m.group(2)) != k:
                    bad.append(NpzItem(rel, -1, 0, path, problem=f"label line {ln}: '{rel}' is not classK/classK_n.npz of class {k}"))
                    continue
                number = int(m.group(3))
            if not (0 <= k < 1000) or a < 1 or b < 1:
                bad.append(NpzItem(rel, -1, 0, path, problem=f"label line {ln}: class {k} or shape ({a}, {b}) out of range"))
                continue
            items.append(NpzItem(rel, k, number, os.path.join(split_dir, rel), (a, b)))
    return items, bad


def published_items(root: str, split: str) -> tuple[list[NpzItem], dict]:
    """The samples of one split of a published download, in store order (class, then number or name)."""
    label_file = os.path.join(root, f"{split}label.txt")
    split_dir = os.path.join(root, split)
    if not os.path.isfile(label_file):
        raise ValueError(f"{root} has no {split}label.txt")
    items, bad = _parse_label_file(label_file, split, split_dir)
    listed = {it.name for it in items}
    if os.path.isdir(split_dir):
        for dirpath, _, files in os.walk(split_dir):
            for fn in files:
                rel = os.path.relpath(os.path.join(dirpath, fn), split_dir).replace(os.sep, "/")
                if rel.endswith(".npz") and rel not in listed:
                    bad.append(NpzItem(rel, -1, 0, os.path.join(split_dir, rel), problem=f"not named in {split}label.txt"))
    items.sort(key=lambda it: (it.label, it.number, it.name))
    if split != "train":          # val numbers: rank within class, as a build would give
        last, n, ranked = None, 0, []
        for it in items:
            n = n + 1 if it.label == last else 1
            last = it.label
            ranked.append(NpzItem(it.name, it.label, n, it.path, it.shape))
        items = ranked
    bad.sort(key=lambda it: it.name)
    return items + bad, {"layout": "published", "path": os.path.abspath(root), "split": split, "files": len(items)}


def convert_npz(item: NpzItem, params: ODGParams) -> dict:
    """Load one published sample file into the store's words. Never raises for a bad file."""
    if item.problem:
        return {"status": REJECTED, "reason": item.problem}
    try:
        with np.load(item.path) as z:
            pos, neg = z["pos"], z["neg"]
    except FileNotFoundError:
        return {"status": REJECTED, "reason": "file named in the label file does not exist"}
    except KeyError as e:
        return {"status": REJECTED, "reason": f"not a published sample: no array {e}"}
    except Exception as e:  # noqa: BLE001 - zip/pickle errors of a damaged file
        return {"status": REJECTED, "reason": f"unreadable npz: {type(e).__name__}: {e}"}
    for nm, arr in (("pos", pos), ("neg", neg)):
        if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != 3:
            return {"status": REJECTED, "reason": f"{nm} must be (N, 3) uint8, got {arr.shape} {arr.dtype}"}
    try:
        events = published_to_events(pos, neg)
        words = events_to_words(events, item.shape, params)
    except ValueError as e:
        return {"status": REJECTED, "reason": str(e)}
    if len(np.unique(events[["x", "y", "t", "p"]])) != len(events):
        return {"status": REJECTED, "reason": "duplicate events (a published sample has each event once)"}
    return {"status": KEPT, "reason": "", "shape": item.shape, "count": (len(pos), len(neg)), "words": words}
