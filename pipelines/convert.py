"""`odg convert`: image files to published per-sample files, with a full account.

ODG (`ODGParams`): the ES-ImageNet files (`pos`, `neg` event arrays). I2E (`odg.i2e.I2EParams`): the
files of the published I2E conversion (`np.savez_compressed` of one bool array `[8, 2, 224, 224]`,
as Ruichen0424/I2E's "Dataset Transformation" notebook writes them), preprocessed as published for
`split`. Every input gets one row in `convert.tsv` (tab-separated, written by the csv module: a
field holding a tab, a newline or a quote is quoted): kept (its `.npz` was written), discarded
(under the ODG event floor, no file, as published), unreadable (with the reason), or unlistable (a
folder that could not be searched, with the reason). Outputs mirror the input layout: a file given
directly lands at `OUT/<stem>.npz`, files found under a directory at
`OUT/<path relative to it>.npz`; they are written through `OutputFolder` (no symlink in OUT is
followed).
"""
from __future__ import annotations

import csv
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from odg import ODGParams, odg_events

from .decode import MAX_PIXELS, read_image
from .errors import Reject
from .imagenet import odg_outcome
from .outcome import Outcome
from .output_folder import OutputFolder
from .progress import progress_bar
from .store.schema import KEPT

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".jp2")
TSV_COLUMNS = ("input", "status", "events", "on", "off", "a", "b", "output_or_reason")


@dataclass(frozen=True)
class ConvertRow:
    """One row of `convert.tsv`: the input `path`, its conversion `outcome` (kept, discarded or
    rejected, `odg.pipelines.outcome.Outcome`), the `output` written for a kept input (relative to
    OUT), and `unlistable` (a folder that could not be searched: a rejected outcome, not an input)."""
    path: str
    outcome: Outcome
    output: str = ""
    unlistable: bool = False

    @property
    def status(self) -> str:
        """The TSV's status word: "kept" | "discarded" | "unreadable" (a rejected input) | "unlistable"."""
        if self.outcome.converted:
            return self.outcome.status_name
        return "unlistable" if self.unlistable else "unreadable"

    @property
    def reason(self) -> str:
        return self.outcome.reason

    @property
    def count(self) -> tuple:
        """(ON, OFF) events, (0, 0) when not converted."""
        return self.outcome.count or (0, 0)

    @property
    def shape(self) -> tuple:
        """The resized (a, b) (I2E: the frame's (S, S)), (0, 0) when not converted."""
        return self.outcome.shape or (0, 0)

    def row(self) -> list:
        (on, off), (a, b) = self.count, self.shape
        last = self.output if self.outcome.status == KEPT else self.reason
        return [self.path, self.status, on + off, on, off, a, b, last]


def find_inputs(paths) -> tuple[list[tuple[str, str]], list[ConvertRow]]:
    """`(path, output stem relative to OUT)` for every file given or image file found under a
    directory, and an unlistable `ConvertRow` for every folder that could not be listed."""
    found, unlistable = [], []

    def failed(e: OSError):
        unlistable.append(ConvertRow(e.filename, Outcome.rejected(f"cannot list folder: {e.strerror or e}"),
                                     unlistable=True))
    for p in paths:
        if os.path.isdir(p):
            for dirpath, dirnames, filenames in os.walk(p, onerror=failed):
                dirnames.sort()
                for fn in sorted(filenames):
                    if fn.lower().endswith(IMAGE_EXTENSIONS):
                        full = os.path.join(dirpath, fn)
                        found.append((full, os.path.splitext(os.path.relpath(full, p))[0]))
        else:
            found.append((p, os.path.splitext(os.path.basename(p))[0]))
    return found, unlistable


def convert_one(path: str, stem: str, out: OutputFolder, params=ODGParams(), max_pixels: int = MAX_PIXELS,
                split: str = "train") -> ConvertRow:
    """Convert one image file; write `OUT/<stem>.npz` when it is kept; its row."""
    from odg.i2e import I2EParams, i2e_frames, preprocess
    i2e = isinstance(params, I2EParams)
    try:
        img = read_image(path, max_pixels)
        if i2e:
            frames = i2e_frames(preprocess(img, params, split), params)
        else:
            r = odg_events(img, params)
    except (Reject, ValueError) as e:        # ValueError: e.g. a side that resizes to 0 pixels
        return ConvertRow(path, Outcome.rejected(str(e)))
    if i2e:
        counts = frames.sum(axis=(0, 2, 3), dtype=np.int64)
        outcome = Outcome.kept((params.size, params.size), counts)        # words: the file written below
        arrays = {"arr_0": frames.astype(bool)}
    else:
        outcome = odg_outcome(r, params)
        if not r.kept:
            return ConvertRow(path, outcome)
        pos, neg = r.published()
        arrays = {"pos": pos, "neg": neg}
    rel = stem.replace(os.sep, "/") + ".npz"
    out.write(rel, lambda f: np.savez_compressed(f, **arrays))
    return ConvertRow(path, outcome, output=rel)


def tsv_text(rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(TSV_COLUMNS)
    w.writerows(r.row() for r in rows)
    return buf.getvalue()


def convert_files(paths, out_dir: str, params=ODGParams(), workers: int = 1,
                  progress: bool = True, max_pixels: int = MAX_PIXELS, split: str = "train") -> list[ConvertRow]:
    """Convert every input; write `out_dir/convert.tsv`; return its rows (inputs in order, then
    the unlistable folders)."""
    inputs, unlistable = find_inputs(paths)
    out = OutputFolder(out_dir)
    stems = [s for _, s in inputs]
    if len(set(stems)) != len(stems):
        dup = sorted({s for s in stems if stems.count(s) > 1})
        raise ValueError(f"several inputs would write the same output: {', '.join(dup[:5])}")
    job = lambda ps: convert_one(ps[0], ps[1], out, params, max_pixels, split)  # noqa: E731
    outcomes = []
    with progress_bar(len(inputs), "convert", "image", progress) as bar, ThreadPoolExecutor(max(1, workers)) as ex:
        for o in ex.map(job, inputs):
            outcomes.append(o)
            bar.update()
    outcomes += unlistable
    out.write_text("convert.tsv", tsv_text(outcomes))
    return outcomes
