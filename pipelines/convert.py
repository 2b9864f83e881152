"""`odg convert`: image files to published per-sample files, with a full account.

ODG (`ODGParams`): the ES-ImageNet files (`pos`, `neg` event arrays). I2E (`odg.i2e.I2EParams`): the
files of the published I2E conversion (`np.savez_compressed` of one bool array `[8, 2, 224, 224]`,
as Ruichen0424/I2E's "Dataset Transformation" notebook writes them), preprocessed as published for
`split`. Every input gets one row in `convert.tsv`: kept (its `.npz` was written), discarded (under
the ODG event floor, no file, as published) or unreadable (with the reason). Outputs mirror the input
layout: a file given directly lands at `OUT/<stem>.npz`, files found under a directory at
`OUT/<path relative to it>.npz`.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from odg import ODGParams, odg_events

from .decode import MAX_PIXELS, read_image
from .errors import Reject

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".jp2")
TSV_HEADER = "input\tstatus\tevents\ton\toff\ta\tb\toutput_or_reason\n"


@dataclass(frozen=True)
class Outcome:
    path: str
    status: str          # "kept" | "discarded" | "unreadable"
    on: int = 0
    off: int = 0
    shape: tuple = (0, 0)
    output: str = ""
    reason: str = ""

    def tsv(self) -> str:
        a, b = self.shape
        last = self.output if self.status == "kept" else self.reason
        return f"{self.path}\t{self.status}\t{self.on + self.off}\t{self.on}\t{self.off}\t{a}\t{b}\t{last}\n"


def find_inputs(paths) -> list[tuple[str, str]]:
    """`(path, output stem relative to OUT)` for every file given or image file found under a directory."""
    found = []
    for p in paths:
        if os.path.isdir(p):
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames.sort()
                for fn in sorted(filenames):
                    if fn.lower().endswith(IMAGE_EXTENSIONS):
                        full = os.path.join(dirpath, fn)
                        found.append((full, os.path.splitext(os.path.relpath(full, p))[0]))
        else:
            found.append((p, os.path.splitext(os.path.basename(p))[0]))
    return found


def convert_one(path: str, stem: str, out_dir: str, params=ODGParams(), max_pixels: int = MAX_PIXELS,
                split: str = "train") -> Outcome:
    from odg.i2e import I2EParams, i2e_frames, preprocess
    i2e = isinstance(params, I2EParams)
    try:
        img = read_image(path, max_pixels)
        if i2e:
            frames = i2e_frames(preprocess(img, params, split), params)
        else:
            r = odg_events(img, params)
    except Reject as e:
        return Outcome(path, "unreadable", reason=str(e))
    except ValueError as e:        # e.g. a side that resizes to 0 pixels
        return Outcome(path, "unreadable", reason=str(e))
    if i2e:
        on, off = (int(v) for v in frames.sum(axis=(0, 2, 3), dtype=np.int64))
        shape, arrays = (params.size, params.size), {"arr_0": frames.astype(bool)}
    else:
        on, off = (int(v) for v in r.counts.sum(0))
        if not r.kept:
            return Outcome(path, "discarded", on, off, r.shape, reason=f"{on + off} events < {params.min_events}")
        pos, neg = r.published()
        shape, arrays = r.shape, {"pos": pos, "neg": neg}
    out = os.path.join(out_dir, stem + ".npz")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    np.savez_compressed(out, **arrays)
    return Outcome(path, "kept", on, off, shape, output=os.path.relpath(out, out_dir))


def convert_files(paths, out_dir: str, params=ODGParams(), workers: int = 1,
                  progress: bool = True, max_pixels: int = MAX_PIXELS, split: str = "train") -> list[Outcome]:
    """Convert every input; write `out_dir/convert.tsv`; return the outcomes in input order."""
    inputs = find_inputs(paths)
    os.makedirs(out_dir, exist_ok=True)
    stems = [s for _, s in inputs]
    if len(set(stems)) != len(stems):
        dup = sorted({s for s in stems if stems.count(s) > 1})
        raise ValueError(f"several inputs would write the same output: {', '.join(dup[:5])}")
    job = lambda ps: convert_one(ps[0], ps[1], out_dir, params, max_pixels, split)  # noqa: E731
    bar = tqdm(total=len(inputs), unit="img", disable=not progress or not inputs)
    outcomes = []
    with ThreadPoolExecutor(max(1, workers)) as ex:
        for o in ex.map(job, inputs):
            outcomes.append(o)
            bar.update()
    bar.close()
    with open(os.path.join(out_dir, "convert.tsv"), "w") as f:
        f.write(TSV_HEADER)
        f.writelines(o.tsv() for o in outcomes)
    return outcomes
