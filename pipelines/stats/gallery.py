"""The samples shown in the report: Edge-Integral reconstructions beside their source images, and
frame strips over time. Deterministic picks: kept samples evenly spaced over the split."""
from __future__ import annotations

import os

import numpy as np

from ..store import KEPT
from .compute import class_table

STRIP_STEPS = 8        # columns of a frame strip (all T = 8 steps of ES-ImageNet; 8 of the 30 of ES-UCF101)


def pick(sj, n: int) -> np.ndarray:
    kept = np.flatnonzero(sj.rows & (sj.reader.statuses == KEPT))
    if len(kept) == 0 or n <= 0:
        return kept[:0]
    return np.unique(kept[np.round(np.linspace(0, len(kept) - 1, min(n, len(kept)))).astype(np.int64)])


def source_path(reader, name: str) -> str | None:
    """The sample's source file when the split was built from a folder that is still reachable."""
    src = reader.attrs.get("source") or {}
    if src.get("layout") != "folder" or not src.get("path"):
        return None
    path = os.path.join(src["path"], name)
    return path if os.path.isfile(path) else None


def source_view(path: str, shape, params) -> np.ndarray | None:
    """The source image framed as the published loader frames its events (`odg.framing.frame_image`:
    resized to (a, b), centred on the 254 canvas, 224 x 224 crop at 16), RGB uint8; None if it cannot be read."""
    import cv2

    from odg.framing import frame_image
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    return None if img is None else frame_image(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), shape, params)


def _label(store, label: int) -> str:
    names = class_table(store)
    if 0 <= label < len(names):
        wnid, name = names[label]
        return f"{name} ({wnid})" if wnid else name
    return str(label)


def edge_integrals(store, sj, n: int = 9) -> dict:
    """Up to `n` kept samples: Edge-Integral image (uint8 grey) and, when reachable, the source."""
    if store.layout.odg_params is None:
        return {"items": [], "note": "Edge-Integral is defined for ES-ImageNet samples only"}
    from odg import edge_integral, edge_integral_image
    sr = sj.reader
    params = store.params
    items, missing = [], 0
    for i in pick(sj, n):
        s = sr.sample(int(i))
        relief = edge_integral(sr.frames(int(i)), params)
        path = source_path(sr, s.name)
        src = source_view(path, s.shape, params) if path else None
        missing += src is None
        items.append({"index": int(i), "name": s.name, "class": _label(store, s.label), "events": sum(s.count),
                      "ei": edge_integral_image(relief), "relief_range": (int(relief.min()), int(relief.max())),
                      "source": src})
    layout = (sr.attrs.get("source") or {}).get("layout")
    if not items:
        note = "no kept samples"
    elif missing == 0:
        note = "sources read from the split's source folder"
    elif layout == "archive":
        note = "sources are inside the original archive: not shown"
    elif layout != "folder":
        note = f"no source images: the split's source layout is '{layout}'"
    else:
        note = f"{missing} of {len(items)} sources not reachable (the split's source folder moved or is elsewhere)"
    return {"items": items, "note": note}


def frame_strips(store, sj, n: int = 3) -> dict:
    """Up to `n` kept samples as frames over time: `frames` uint8 `[steps, 2, H, W]` (ON, OFF)."""
    sr, lay = sj.reader, store.layout
    items = []
    for i in pick(sj, n):
        s = sr.sample(int(i))
        f = sr.frames(int(i))
        if lay.dense == "CTHW":                        # [2, S, H, W] -> [S, 2, H, W]
            f = f.transpose(1, 0, 2, 3)
        if lay.clip:                                   # STRIP_STEPS of a clip's difference frames
            steps = np.unique(np.round(np.linspace(0, f.shape[0] - 1, STRIP_STEPS)).astype(np.int64))
        else:                                          # every step of ES-ImageNet, I2E
            steps = np.arange(f.shape[0])
        items.append({"index": int(i), "name": s.name, "class": _label(store, s.label), "steps": steps + 1,
                      "frames": np.ascontiguousarray(f[steps])})
    return {"items": items}
