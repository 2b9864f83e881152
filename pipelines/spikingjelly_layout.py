"""Arrange an `odg export es-imagenet` folder as the dataset root SpikingJelly's `ESImageNet` reads.

SpikingJelly (`spikingjelly.datasets.es_imagenet.ESImageNet`, checked against spikingjelly 2.0.0)
prepares a root in three stages: `ROOT/download/` (the 25 `ES-imagenet-0.18.partNN.rar` files,
md5-checked), `ROOT/extract/ES-imagenet-0.18/` (the extracted download: `train/classK/*.npz`,
`val/*.npz`, `vallabel.txt`) and `ROOT/events_np/` (its "raw" folder, made by
`ESImageNet.create_raw_from_extracted`). When `ROOT/events_np/` exists, the first two stages are
skipped entirely, so this module writes exactly what `create_raw_from_extracted` would:

    ROOT/events_np/train/classK/classK_n.npz   -> EXPORT/train/classK/classK_n.npz   (symlinks)
    ROOT/events_np/test/classK/<stem>.npz      -> EXPORT/val/<stem>.npz  for each vallabel.txt line
                                                  "<stem>.npz K a b" (K: the line's 2nd column)
    ROOT/events_np/test/classK/                   one folder per train class folder, even if empty

Then `ESImageNet(ROOT, train=True, data_type="event")` (or `train=False` for the validation set)
loads each file with its own `_load_events`: `pos`/`neg` rows `(row, col, t)` become events
`x = col`, `y = row`, `t` (1..8 as stored), `p = 1` (pos) / `0` (neg), as float64 arrays sorted by
`t` (not stably: the order within a step is not the published one). Frames (`data_type="frame"`)
are integrated on a 256 x 256 sensor with no centring shift and no crop.

Labels: `ESImageNet` is a torchvision `DatasetFolder`, whose targets are the positions of the class
folder names in sorted (string) order: "class0", "class1", "class10", "class100", ... so a target
is NOT the class index K in general; `dataset.class_to_idx` (and `class_index_map` here) maps
between them. `DatasetFolder` also refuses a split in which some class folder holds no file, so
`train=False` needs a validation sample in every class present in train (true of the full dataset).
"""
from __future__ import annotations

import os
import re
import shutil

_CLASS_DIR = re.compile(r"^class(\d+)$")


def class_index_map(class_dirs) -> dict:
    """SpikingJelly/torchvision target -> ES-ImageNet class index K, for the given `classK` folder names."""
    names = sorted(class_dirs)
    out = {}
    for target, name in enumerate(names):
        m = _CLASS_DIR.match(name)
        if not m:
            raise ValueError(f"{name!r} is not a classK folder")
        out[target] = int(m.group(1))
    return out


def _place(src: str, dst: str, mode: str) -> None:
    if os.path.lexists(dst):
        os.remove(dst)
    if mode == "symlink":
        os.symlink(os.path.abspath(src), dst)
    elif mode == "hardlink":
        os.link(src, dst)
    else:
        shutil.copyfile(src, dst)


def spikingjelly_layout(export_dir: str, root: str, mode: str = "symlink") -> dict:
    """Make `root/events_np/{train,test}` from the export `export_dir` (see module docstring).

    `mode`: "symlink" (default, as SpikingJelly itself does), "hardlink" or "copy". An existing
    `root/events_np` is refused (SpikingJelly would use it as it is). Returns the counts of files
    per split, the class folders and `class_index_map` of the train split.
    """
    if mode not in ("symlink", "hardlink", "copy"):
        raise ValueError(f"mode must be 'symlink', 'hardlink' or 'copy', got {mode!r}")
    raw = os.path.join(root, "events_np")
    if os.path.lexists(raw):
        raise FileExistsError(f"{raw} exists; SpikingJelly would use it as it is (remove it to rebuild)")
    src_train = os.path.join(export_dir, "train")
    src_val = os.path.join(export_dir, "val")
    vallabel = os.path.join(export_dir, "vallabel.txt")
    if not os.path.isdir(src_train) and not os.path.isfile(vallabel):
        raise ValueError(f"{export_dir} holds no published layout (no train/ folder, no vallabel.txt)")
    os.makedirs(raw)
    classes = []
    counts = {"train": 0, "test": 0}
    if os.path.isdir(src_train):
        classes = sorted(d for d in os.listdir(src_train) if os.path.isdir(os.path.join(src_train, d)))
        for d in classes:
            if not _CLASS_DIR.match(d):
                raise ValueError(f"unexpected folder {d!r} in {src_train} (want classK)")
            os.makedirs(os.path.join(raw, "train", d))
            for f in sorted(os.listdir(os.path.join(src_train, d))):
                _place(os.path.join(src_train, d, f), os.path.join(raw, "train", d, f), mode)
                counts["train"] += 1
    if os.path.isfile(vallabel):
        test = os.path.join(raw, "test")
        os.makedirs(test)
        for d in classes:                       # SpikingJelly mirrors the train class folders
            os.makedirs(os.path.join(test, d))
        with open(vallabel) as f:
            for ln, line in enumerate(f, 1):
                if not line.strip():
                    continue
                parts = line.split()
                if len(parts) < 2 or not parts[1].isdigit():
                    raise ValueError(f"{vallabel}:{ln}: malformed line {line.strip()!r}")
                name, k = parts[0], int(parts[1])
                d = os.path.join(test, f"class{k}")
                os.makedirs(d, exist_ok=True)
                _place(os.path.join(src_val, name), os.path.join(d, name), mode)
                counts["test"] += 1
    return {"root": root, "raw": raw, "files": counts, "classes": classes,
            "class_index_map": class_index_map(classes) if classes else {}}
