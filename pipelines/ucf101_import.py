"""`odg import es-ucf101 DIR STORE`: published per-clip ES-UCF101 files read into a store, losslessly.

Reads every `*.npz` under DIR (`<clip>.npz` holding `arr_0`, uint8 `[2, 30, H, W]` of 0/1, as
the published generator saved it). A clip's label comes from the class in its name
(`v_<Class>_gNN_cNN`) looked up in a UCF101 `classInd.txt` (given with `--classes`, or
`DIR/classInd.txt`); the lookup ignores case as a fallback, because UCF101 spells some clip names
differently from their class (`v_HandStandPushups_g01_c01` of class `HandstandPushups`).

Samples are ordered `(label, clip name)` like a build, numbered by rank within their class; files
that cannot be imported (name not `v_<Class>_gNN_cNN`, unknown class, not an npz, no `arr_0`,
wrong dtype or shape, values other than 0/1, a clip name twice) follow as rejects with their
reasons, and the import goes on. The split's `[H, W]` is that of the first readable file.
Files are read with `odg.pipelines.safe_npz` (declared sizes checked before inflating: frames of
at most `MAX_FRAME_PIXELS`, then exactly the split's size); a file whose path resolves outside
DIR (a symlink) is a reject.
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from odg.video import UCFParams

from .outcome import Outcome
from .safe_npz import load_npz
from .ucf101 import MAX_FRAME_PIXELS

CLIP_NAME = re.compile(r"^v_(.+)_g(\d+)_c(\d+)$")


@dataclass(frozen=True)
class ClipFile:
    """A published clip file: `name` the clip (file stem), `label` (-1 when unknown), `number`
    (rank within class), `path`, `problem` (why it cannot be imported, '' if none), `folder` the
    imported folder it must lie in."""
    name: str
    label: int
    number: int
    path: str
    problem: str = ""
    folder: str = ""


def read_classes(path) -> tuple[list[str], str]:
    """Class names (position = 0-based label) of a classInd.txt file or of a folder holding one."""
    from .ucf101 import read_class_index
    p = Path(path)
    if p.is_dir():
        return read_class_index(p), str(p / "classInd.txt")
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such classInd.txt file")
    if p.name == "classInd.txt":
        return read_class_index(p.parent), str(p)
    with tempfile.TemporaryDirectory() as d:          # read_class_index wants the UCF101 file name
        (Path(d) / "classInd.txt").write_bytes(p.read_bytes())
        try:
            return read_class_index(d), str(p)
        except ValueError as e:
            raise ValueError(str(e).replace(str(Path(d) / "classInd.txt"), str(p))) from None


def find_classes(root, classes=None) -> tuple[list[str], str]:
    if classes is not None:
        return read_classes(classes)
    if (Path(root) / "classInd.txt").is_file():
        return read_classes(Path(root) / "classInd.txt")
    raise FileNotFoundError(f"no classInd.txt in {root}: give the UCF101 class list with --classes FILE "
                            "(ucfTrainTestlist/classInd.txt)")


def class_lookup(classes: list[str]):
    exact = {c: k for k, c in enumerate(classes)}
    folded: dict[str, int] = {}
    for k, c in enumerate(classes):
        folded.setdefault(c.lower(), k)

    def label_of(cls: str) -> int:
        if cls in exact:
            return exact[cls]
        return folded.get(cls.lower(), -1)
    return label_of


def clip_files(root, classes: list[str], classes_path: str = "classInd.txt") -> list[ClipFile]:
    """Every `.npz` under `root` as `ClipFile`s: importable ones in store order, then the rejects
    (absolute paths: Dask workers open them in their own working directory)."""
    root = os.path.abspath(root)
    label_of = class_lookup(classes)
    good, bad, seen = [], [], {}
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for fn in sorted(files):
            if not fn.endswith(".npz"):
                continue
            path = os.path.join(dirpath, fn)
            rel = os.path.relpath(path, root)
            name = fn[:-4]
            if name in seen:
                bad.append(ClipFile(rel, -1, 0, path, f"clip {name} is already imported from {seen[name]}"))
                continue
            seen[name] = rel
            m = CLIP_NAME.match(name)
            if not m:
                bad.append(ClipFile(name, -1, 0, path, "file name is not an ES-UCF101 clip name v_<Class>_gNN_cNN.npz"))
                continue
            label = label_of(m.group(1))
            if label < 0:
                bad.append(ClipFile(name, -1, 0, path, f"class '{m.group(1)}' (from the clip name) is not in "
                                                       f"{classes_path}"))
                continue
            good.append((label, name, path))
    good.sort()
    items, last, n = [], None, 0
    for label, name, path in good:
        n = n + 1 if label == last else 1
        last = label
        items.append(ClipFile(name, label, n, path, folder=str(root)))
    bad.sort(key=lambda it: it.name)
    return items + bad


def load_clip(path: str, steps: int, size: tuple | None = None, max_pixels: int = MAX_FRAME_PIXELS) -> np.ndarray:
    """`arr_0` of a published clip file, checked before it is inflated (`odg.pipelines.safe_npz`):
    uint8 `[2, steps, H, W]`, `H x W` equal to `size` when given, else at most `max_pixels`.
    Raises ValueError saying why not."""
    def check(name, shape, dtype):
        if dtype != np.uint8:
            return f"arr_0 must be uint8, got {dtype}"
        if len(shape) != 4 or shape[0] != 2 or shape[1] != steps or 0 in shape:
            return f"arr_0 must be [2, {steps}, H, W], got {list(shape)}"
        hw = (int(shape[2]), int(shape[3]))
        if size is not None and hw != tuple(size):
            from .ucf101_build import size_reason
            return size_reason(hw, size).split(";")[0]
        if hw[0] * hw[1] > max_pixels:
            return f"arr_0 frames of {hw[1]} x {hw[0]} = {hw[0] * hw[1]} pixels > limit {max_pixels}"
        return None
    pixels = size[0] * size[1] if size is not None else max_pixels
    try:
        return load_npz(path, ("arr_0",), check, 2 * (2 * steps * pixels + 4096) + 65536)["arr_0"]
    except (FileNotFoundError, IsADirectoryError):
        raise ValueError("file does not exist") from None
    except PermissionError as e:
        raise ValueError(f"cannot read: {e.strerror or e}") from None


def probe_size(items: list[ClipFile], steps: int) -> tuple[tuple[int, int] | None, str, list]:
    """`((H, W), name, tried)` of the first importable file, or `(None, '', tried)`."""
    from .importer import inside
    tried = []
    for it in items:
        if it.problem or not inside(it.path, it.folder):
            continue
        try:
            ev = load_clip(it.path, steps)
        except ValueError as e:
            tried.append((it.name, str(e)))
            continue
        return (int(ev.shape[2]), int(ev.shape[3])), it.name, tried
    return None, "", tried


def convert_clip_file(item: ClipFile, steps: int, size: tuple) -> Outcome:
    """Load one published clip file into the store's words: kept, or rejected with the reason.
    Never raises for a bad file."""
    from odg.video import pack_clip

    from .importer import inside
    if item.problem:
        return Outcome.rejected(item.problem)
    if not inside(item.path, item.folder):
        return Outcome.rejected(f"resolves outside the imported folder (to {os.path.realpath(item.path)})")
    try:
        ev = load_clip(item.path, steps, size)
    except ValueError as e:
        return Outcome.rejected(str(e))
    hw = (int(ev.shape[2]), int(ev.shape[3]))
    try:
        words = pack_clip(ev)
    except ValueError:
        return Outcome.rejected("arr_0 holds values other than 0 and 1")
    return Outcome.kept(hw, (np.count_nonzero(ev[0]), np.count_nonzero(ev[1])), words)


def import_spec(url: str, root, split: str = "all", classes=None, shard_size: int = 64, resume: bool = False):
    """The `BuildSpec` importing DIR into split `split` of `url`. Raises ValueError/FileNotFoundError."""
    from functools import partial

    from .build import BuildSpec
    from .store.schema import KIND_UCF101
    from .ucf101_build import _existing_payload_shape
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: no such folder")
    names, classes_path = find_classes(root, classes)
    params = UCFParams()
    items = clip_files(root, names, classes_path)
    if not items:
        raise ValueError(f"no .npz files under {root}")
    size = _existing_payload_shape(url, split) if resume else None
    probed = ""
    if size is None:
        size, probed, tried = probe_size(items, params.steps)
        if size is None:
            first = next(((it.name, it.problem) for it in items if it.problem), None)
            why = "; ".join(f"{n}: {r}" for n, r in (tried[:3] or ([first] if first else [])))
            raise ValueError(f"none of the {len(items)} .npz files under {root} is an importable ES-UCF101 clip "
                             f"(first: {why})")
    source = {"layout": "published", "path": os.path.abspath(str(root)), "classes": os.path.abspath(classes_path),
              "files": sum(not it.problem for it in items), "frame_size": list(size),
              "frame_size_from": f"{probed} (first readable file)"}
    return BuildSpec(url=url, split=split, kind=KIND_UCF101, items=items,
                     convert=partial(convert_clip_file, steps=params.steps, size=tuple(size)),
                     payload_shape=tuple(size), payload_dtype=np.uint64, params=params.to_dict(),
                     classes=[[k, c] for k, c in enumerate(names)], source=source, shard_size=shard_size)
