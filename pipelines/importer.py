"""`odg import es-imagenet DIR STORE`: the published download, read in parallel into a store, losslessly.

Reads `DIR/trainlabel.txt` + `DIR/train/classK/classK_n.npz` and `DIR/vallabel.txt` + `DIR/val/*.npz`.
Nothing in a download is trusted; every problem is a reject with its reason, and the import goes on:

- label lines: `FILE K a b` with `0 <= K < 1000`, `1 <= a, b <= 254` and `max(a, b) == 254` (the
  published resize: the long side is 254), train files named `classK/classK_n.npz` with
  `1 <= n < 2^31`; a file named on two lines is a reject (both lines, when they disagree); a file
  must lie inside its split folder (`DIR/val/`, `DIR/train/`) once `..` and symlinks are resolved
  (checked where it is opened);
- sample files: read with `odg.pipelines.safe_npz` (sizes checked before inflating), `pos` and
  `neg` `(N, 3)` uint8 with `N <= T x window` each (every `(row, col, t)` at most once per
  polarity), events inside the event window, the `(a + 4) x (b + 4)` canvas and steps `1..T`, at
  least the 1000-event floor (the published generator wrote no file under it), no duplicates;
- `.npz` files no label line names.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from odg import ODGParams, events_to_words, published_to_events

from .outcome import Outcome
from .safe_npz import load_npz

_TRAIN_NAME = re.compile(r"^class(\d+)/class(\d+)_(\d+)\.npz$")
_INT = re.compile(r"^-?[0-9]+$")
MAX_NUMBER = 2 ** 31 - 1          # the store's number column is int32
N_CLASSES = 1000


@dataclass(frozen=True)
class NpzItem:
    """A published sample file: `name` relative to its split folder, `label`, `number`, `shape` (a, b),
    `path` on disk, `folder` the split folder it must lie in, or `problem` (why it cannot be imported)."""
    name: str
    label: int
    number: int
    path: str
    shape: tuple = (0, 0)
    problem: str = ""
    folder: str = ""


def inside(path: str, folder: str) -> bool:
    """Whether `path`, with `..` and symlinks resolved, lies inside `folder` (also resolved)."""
    real, top = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, top]) == top and real != top


def _line_problem(rel: str, k: int, a: int, b: int, split: str, split_dir: str, params: ODGParams) -> str:
    """Why a label line's fields cannot describe a published sample ('' when they can)."""
    if not 0 <= k < N_CLASSES:
        return f"class {k} outside 0..{N_CLASSES - 1}"
    L = params.long_side
    if not (1 <= a <= L and 1 <= b <= L and max(a, b) == L):
        return f"shape ({a}, {b}) is not a published resize (1 <= a, b <= {L}, the long side {L})"
    if split == "train":
        m = _TRAIN_NAME.match(rel)
        if not m or int(m.group(1)) != k or int(m.group(2)) != k:
            return f"'{rel}' is not classK/classK_n.npz of class {k}"
        if not 1 <= int(m.group(3)) <= MAX_NUMBER:
            return f"sample number {m.group(3)} outside 1..{MAX_NUMBER}"
    if os.path.isabs(rel) or rel == ".." or rel.startswith("../"):
        return f"'{rel}' lies outside {split}/"
    return ""


def _parse_label_file(path: str, split: str, split_dir: str, params: ODGParams = ODGParams()):
    """(importable items, rejects, every file name a well-formed line gives)."""
    label_name = os.path.basename(path)
    items, bad, first = [], [], {}        # first: normalised name -> (line number, fields, item index)
    mentioned = set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 4 or not all(_INT.match(p) for p in parts[1:]):
                bad.append(NpzItem(f"{label_name}:{ln}", -1, 0, path,
                                   problem=f"malformed label line {ln}: {line.strip()[:80]!r} (want 'FILE K a b')"))
                continue
            rel, k, a, b = os.path.normpath(parts[0]).replace(os.sep, "/"), int(parts[1]), int(parts[2]), int(parts[3])
            mentioned.add(rel)
            why = _line_problem(rel, k, a, b, split, split_dir, params)
            if why:
                bad.append(NpzItem(f"{label_name}:{ln}", -1, 0, path, problem=f"label line {ln}: {why}"))
                continue
            if rel in first:
                ln0, fields0, idx = first[rel]
                same = fields0 == (k, a, b)
                bad.append(NpzItem(f"{label_name}:{ln}", -1, 0, path, problem=(
                    f"label line {ln} names {rel} again (line {ln0})" if same else
                    f"label line {ln} names {rel} again with other fields than line {ln0}: both rejected")))
                if not same and idx is not None:
                    it = items[idx]
                    items[idx] = NpzItem(it.name, -1, 0, it.path, problem=(
                        f"label line {ln0}: {rel} is named again on line {ln} with other fields"))
                    first[rel] = (ln0, fields0, None)
                continue
            number = int(_TRAIN_NAME.match(rel).group(3)) if split == "train" else 0
            first[rel] = (ln, (k, a, b), len(items))
            items.append(NpzItem(rel, k, number, os.path.join(split_dir, rel), (a, b), folder=split_dir))
    good = [it for it in items if not it.problem]
    return good, bad + [it for it in items if it.problem], mentioned


def published_items(root: str, split: str) -> tuple[list[NpzItem], dict]:
    """The samples of one split of a published download, in store order (class, then number or name).
    Their paths are absolute (Dask workers open them in their own working directory)."""
    root = os.path.abspath(root)
    label_file = os.path.join(root, f"{split}label.txt")
    split_dir = os.path.join(root, split)
    if not os.path.isfile(label_file):
        raise ValueError(f"{root} has no {split}label.txt")
    items, bad, listed = _parse_label_file(label_file, split, split_dir)

    def unlistable(e: OSError):
        rel = os.path.relpath(e.filename, split_dir).replace(os.sep, "/") + "/"
        bad.append(NpzItem(rel, -1, 0, e.filename, problem=f"cannot list folder: {e.strerror or e}"))
    if os.path.isdir(split_dir):
        for dirpath, _, files in os.walk(split_dir, onerror=unlistable):
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
            ranked.append(NpzItem(it.name, it.label, n, it.path, it.shape, folder=it.folder))
        items = ranked
    bad.sort(key=lambda it: it.name)
    return items + bad, {"layout": "published", "path": os.path.abspath(root), "split": split, "files": len(items)}


def published_npz_check(params: ODGParams):
    """`(check, max file bytes)` for `safe_npz.load_npz` on a published sample's `pos` / `neg`:
    `(N, 3)` uint8, `N <= T x window`."""
    most = params.steps * params.grid * params.grid

    def check(name, shape, dtype):
        if dtype != np.uint8 or len(shape) != 2 or shape[1] != 3:
            return f"{name} must be (N, 3) uint8, got {tuple(shape)} {dtype}"
        if shape[0] > most:
            return (f"{name} declares {shape[0]} events, more than T x window = {params.steps} x "
                    f"{params.grid} x {params.grid} = {most} (each event at most once per polarity)")
        return None
    return check, 2 * (3 * most + 4096) + 65536


def _event_problem(events: np.ndarray, shape: tuple, params: ODGParams) -> str:
    """Why events cannot come from an ODG conversion of a sample of resized shape (a, b) ('' if they can)."""
    if len(events) < max(1, params.min_events):
        return (f"{len(events)} events, under the {params.min_events}-event floor (the published generator "
                "writes no file for such a sample)")
    t = events["t"]
    if t.min() < 1 or t.max() > params.steps:
        return f"event time steps {int(t.min())}..{int(t.max())} outside 1..{params.steps}"
    a, b = shape
    rows, cols = int(events["y"].max()), int(events["x"].max())
    if rows >= a + params.canvas_pad or cols >= b + params.canvas_pad:
        return (f"events at row {rows} / column {cols}, outside the {a + params.canvas_pad} x "
                f"{b + params.canvas_pad} canvas of a sample of shape ({a}, {b})")
    return ""


def convert_npz(item: NpzItem, params: ODGParams) -> Outcome:
    """Load one published sample file into the store's words: kept, or rejected with the reason.
    Never raises for a bad file (a transient I/O error does, so that the task is retried)."""
    if item.problem:
        return Outcome.rejected(item.problem)
    if not inside(item.path, item.folder):
        return Outcome.rejected(f"resolves outside {os.path.basename(item.folder)}/ "
                                f"(to {os.path.realpath(item.path)})")
    check, max_bytes = published_npz_check(params)
    try:
        z = load_npz(item.path, ("pos", "neg"), check, max_bytes)
    except (FileNotFoundError, IsADirectoryError):
        return Outcome.rejected("file named in the label file does not exist")
    except PermissionError as e:
        return Outcome.rejected(f"cannot read: {e.strerror or e}")
    except ValueError as e:
        return Outcome.rejected(str(e))
    pos, neg = z["pos"], z["neg"]
    events = published_to_events(pos, neg)
    why = _event_problem(events, item.shape, params)
    if why:
        return Outcome.rejected(why)
    try:
        words = events_to_words(events, item.shape, params)
    except ValueError as e:
        return Outcome.rejected(str(e))
    if len(np.unique(events[["x", "y", "t", "p"]])) != len(events):
        return Outcome.rejected("duplicate events (a published sample has each event once)")
    return Outcome.kept(item.shape, (len(pos), len(neg)), words)
