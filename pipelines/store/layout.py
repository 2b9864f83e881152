"""What a store's kind means for its words: one layout object per kind (`layout_of`).

The words of every kind follow `odg.bits`; the kinds differ in what a word's pixel is, how many
steps there are and what the published dense form of a sample is. A `Layout` answers those
questions, so that the reader, the training loader, the statistics and the report ask it instead
of branching on the kind:

- `steps`: T, time steps per sample (ES-UCF101: difference frames);
- `frame_shape(word_shape)`: `(H, W)` of a sample's dense frames;
- `frame_shifts(shapes, centre)`: per sample, where word `[0, 0]` lands in its frame;
- `frames(words, shape, centre)`: the published dense frames of one sample (`dense` layout);
- `event_volume(shapes)`, `density_frame(H, W)`, `published_arrays(words, shape)`: for the
  statistics; `unit`, `clip`, `min_events`, `long_side`, `odg_params`: for the report
  and training's inputs.
"""
from __future__ import annotations

import numpy as np

from odg.bits import unpack

from .schema import KIND_I2E, KIND_IMAGENET, KIND_UCF101


class Layout:
    """The common part: words are the frame itself (I2E, ES-UCF101), `TCHW` frames."""
    kind = ""
    unit = "step"             # what one time step is called
    dense = "TCHW"            # layout of `frames()`: [T, 2, H, W]; "CTHW": [2, T, H, W]
    clip = False              # samples are video clips: `shape` holds the clip's (H, W)
    min_events = 0            # the floor below which samples were discarded (0: none)
    long_side = None          # the resize rule's long side, when samples were resized to one
    odg_params = None         # the `ODGParams` of ODG events (Edge-Integral, image framing), else None

    def __init__(self, params):
        self.params = params

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind}: T = {self.steps}, {self.dense}>"

    @property
    def steps(self) -> int:
        return int(self.params.steps)

    def frame_shape(self, word_shape) -> tuple[int, int]:
        """`(H, W)` of a sample's frames, given the words array's per-sample `(G0, G1)`."""
        return int(word_shape[0]), int(word_shape[1])

    def frame_shifts(self, shapes: np.ndarray, centre: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """int64 `(dr, dc)` per sample (`shapes` `[n, 2]`): word `[i, j]` is frame pixel `(i + dr, j + dc)`."""
        n = len(shapes)
        return np.zeros(n, np.int64), np.zeros(n, np.int64)

    def frames(self, words: np.ndarray, shape, centre: bool = True) -> np.ndarray:
        """The sample's dense uint8 frames in the `dense` layout."""
        return unpack(words, self.steps, self.dense)

    def event_volume(self, shapes: np.ndarray) -> np.ndarray:
        """Per sample, the entries of its dense frames (`H x W x T x 2`): events / volume is the event rate."""
        S = self.frame_size
        return np.full(len(shapes), float(S * S * self.steps * 2))

    def density_frame(self, H: int, W: int) -> tuple[dict | None, str]:
        """The density map's coordinates: `origin` {x, y}, the event record's coordinates (x = column,
        y = row) of map pixel [0, 0] (None when the window moves with each sample), and a description."""
        return {"x": 0, "y": 0}, f"{'clip frame' if self.clip else 'event frame'} ({H} x {W}): x = column, y = row"

    def published_arrays(self, words: np.ndarray, shape) -> dict:
        """The arrays of the sample's published file (`np.savez_compressed(f, **arrays)`)."""
        return {"arr_0": self.frames(words, shape)}


class ImageNetLayout(Layout):
    """ES-ImageNet: words over the event window, framed as the published loader (`ODGParams`)."""
    kind = KIND_IMAGENET

    @property
    def frame_size(self) -> int:
        return int(self.params.frame_size)

    @property
    def min_events(self) -> int:
        return int(self.params.min_events)

    @property
    def long_side(self) -> int:
        return int(self.params.long_side)

    @property
    def odg_params(self):
        return self.params

    def frame_shape(self, word_shape) -> tuple[int, int]:
        return self.frame_size, self.frame_size

    def frame_shifts(self, shapes: np.ndarray, centre: bool = True) -> tuple[np.ndarray, np.ndarray]:
        dr, dc = np.empty(len(shapes), np.int64), np.empty(len(shapes), np.int64)
        for n, (a, b) in enumerate(np.asarray(shapes, np.int64)):
            dr[n], dc[n] = self.params.words_shift(int(a), int(b), centre)
        return dr, dc

    def frames(self, words: np.ndarray, shape, centre: bool = True) -> np.ndarray:
        from odg import words_to_frames
        return words_to_frames(words, tuple(int(v) for v in shape), self.params, centre=centre)

    def density_frame(self, H: int, W: int) -> tuple[dict | None, str]:
        p = self.params
        if p.centred_window:
            return None, (f"{H} x {W} event window, shifted with each sample's centring (centred_window): "
                          "x = column, y = row within the window")
        r0, c0 = p.window_origin(p.long_side, p.long_side)
        return {"x": c0, "y": r0}, (f"{H} x {W} event window in canvas coordinates: x = column {c0}..{c0 + W - 1}, "
                                    f"y = row {r0}..{r0 + H - 1}")

    def published_arrays(self, words: np.ndarray, shape) -> dict:
        from odg import events_to_published, words_to_events
        pos, neg = events_to_published(words_to_events(words, tuple(int(v) for v in shape), self.params))
        return {"pos": pos, "neg": neg}


class I2ELayout(Layout):
    """I2E: words over the module's `size x size` frame (`I2EParams`); the published file is one bool array."""
    kind = KIND_I2E

    @property
    def frame_size(self) -> int:
        return int(self.params.size)

    def published_arrays(self, words: np.ndarray, shape) -> dict:
        return {"arr_0": self.frames(words, shape).astype(bool)}


class ClipLayout(Layout):
    """ES-UCF101: words over the clip, one step per difference frame, the published `[2, S, H, W]` (`UCFParams`)."""
    kind = KIND_UCF101
    unit = "difference frame"
    dense = "CTHW"
    clip = True

    def frames(self, words: np.ndarray, shape, centre: bool = True) -> np.ndarray:
        from odg.video import unpack_clip
        return unpack_clip(words, self.steps)

    def published_arrays(self, words: np.ndarray, shape) -> dict:
        return {"arr_0": unpack(np.asarray(words, np.uint64), self.steps, self.dense)}   # as stored, unchecked

    def event_volume(self, shapes: np.ndarray) -> np.ndarray:
        return shapes[:, 0].astype(np.float64) * shapes[:, 1] * self.steps * 2


LAYOUTS = {c.kind: c for c in (ImageNetLayout, I2ELayout, ClipLayout)}


def unit_of(kind: str) -> str:
    """What one time step of a store of `kind` is called ("step" for an unknown kind)."""
    return LAYOUTS.get(kind, Layout).unit


def layout_of(store) -> Layout:
    """The layout of an opened store (its `kind`, then its `params`); ValueError for an unknown kind."""
    if store.kind not in LAYOUTS:
        raise ValueError(f"unknown store kind '{store.kind}'")
    layout = LAYOUTS[store.kind]
    return layout(store.params)
