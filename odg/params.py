"""Parameters of the ODG conversion (Omnidirectional Discrete Gradient, ES-ImageNet).

`ODGParams` is a frozen dataclass whose defaults are the published values, so that
`ODGParams()` rebuilds the published ES-ImageNet event for event. Every deviation from the
published algorithm is a named, validated option:

- `long_side`: the resized image's long side in pixels (published 254).
- `threshold`: the event threshold on `V / 255` in float32 (published 0.18, which for 8-bit
  input is exactly an integer difference of 46 grey levels).
- `trajectory`: the canvas positions `(row, col)` of steps `t = 0..T` (published 9 positions,
  so `T = 8`); step 0 is only the starting position.
- `canvas_pad`: the canvas is `(a + canvas_pad) x (b + canvas_pad)` (published 4).
- `window`: events are kept where `window[0] < row < window[1]` and likewise for columns, in
  canvas coordinates (published `(16, 240)`: 223 values each way).
- `centred_window`: opt-in; shift the window by the published loader's centring offset
  `((long_side - a) // 2, (long_side - b) // 2)` so it no longer cuts into the short side.
- `min_events`: samples with fewer events (ON + OFF, all steps) are discarded (published 1000).
- `frame_size`/`frame_offset`: the published loader's dense frames: events shifted by the
  centring offset, then cropped to `[frame_offset, frame_offset + frame_size)` (published
  224 and 16).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

PUBLISHED_TRAJECTORY = ((1, 0), (0, 2), (2, 1), (1, 0), (0, 1), (2, 2), (1, 0), (1, 1), (2, 1))


@dataclass(frozen=True)
class ODGParams:
    long_side: int = 254
    threshold: float = 0.18
    trajectory: tuple = PUBLISHED_TRAJECTORY
    canvas_pad: int = 4
    window: tuple = (16, 240)
    centred_window: bool = False
    min_events: int = 1000
    frame_size: int = 224
    frame_offset: int = 16

    def __post_init__(self):
        traj = tuple(tuple(int(v) for v in p) for p in self.trajectory)
        object.__setattr__(self, "trajectory", traj)
        object.__setattr__(self, "window", tuple(int(v) for v in self.window))
        if not isinstance(self.long_side, (int, np.integer)) or self.long_side < 1:
            raise ValueError(f"long_side must be a positive integer, got {self.long_side!r}")
        if not (0.0 < float(self.threshold) <= 1.0) or not np.isfinite(self.threshold):
            raise ValueError(f"threshold must lie in (0, 1] (a fraction of the 8-bit range), got {self.threshold!r}")
        if len(traj) < 2:
            raise ValueError("trajectory needs at least 2 positions (a start and one step)")
        if any(len(p) != 2 for p in traj):
            raise ValueError("trajectory positions must be (row, col) pairs")
        if len(traj) - 1 > 32:
            raise ValueError(f"at most 32 steps are supported, the trajectory gives {len(traj) - 1}")
        if self.canvas_pad < 0:
            raise ValueError(f"canvas_pad must be >= 0, got {self.canvas_pad}")
        for r, c in traj:
            if not (0 <= r <= self.canvas_pad and 0 <= c <= self.canvas_pad):
                raise ValueError(
                    f"trajectory position {(r, c)} leaves the canvas: offsets must lie in [0, canvas_pad={self.canvas_pad}]")
        lo, hi = self.window
        if len(self.window) != 2 or lo < -1 or hi - lo < 2:
            raise ValueError(f"window must be (lo, hi) with lo >= -1 and at least one value between, got {self.window}")
        if self.min_events < 0:
            raise ValueError(f"min_events must be >= 0, got {self.min_events}")
        if self.frame_size < 1 or self.frame_offset < 0:
            raise ValueError("frame_size must be >= 1 and frame_offset >= 0")

    # -- derived quantities ------------------------------------------------------------------
    @property
    def steps(self) -> int:
        """T, the number of event time steps (positions minus the start)."""
        return len(self.trajectory) - 1

    @property
    def grid(self) -> int:
        """Width of the event window (values strictly inside `window`): 223 published."""
        return self.window[1] - self.window[0] - 1

    def resized_shape(self, h: int, w: int) -> tuple[int, int]:
        """(a, b) of the published resize rule: Python float division then truncation."""
        if h > w:
            return self.long_side, int(w * self.long_side / h)
        return int(h * self.long_side / w), self.long_side

    def centring(self, a: int, b: int) -> tuple[int, int]:
        """The published loader's shift of a sample with resized shape (a, b)."""
        return (self.long_side - a) // 2, (self.long_side - b) // 2

    def frame_shift(self, a: int, b: int, centre: bool = True, origin: tuple = (0, 0)) -> tuple[int, int]:
        """`(dr, dc)`: canvas position `origin + (i, j)` of a sample of resized shape (a, b) is pixel
        `(i + dr, j + dc)` of the published loader's `frame_size` frames (the centring shift when
        `centre`, then the crop at `frame_offset`).

        `origin` (0, 0): event coordinates (`events_to_frames`); `window_origin(a, b)`: word
        `[i, j]` of the event window (`words_to_frames`, the training loader); (1, 1): the resized
        image drawn at the trajectory's centre offset (`odg.framing.frame_image`).
        """
        sr, sc = self.centring(a, b) if centre else (0, 0)
        return origin[0] + sr - self.frame_offset, origin[1] + sc - self.frame_offset

    def words_shift(self, a: int, b: int, centre: bool = True) -> tuple[int, int]:
        """`frame_shift` of the words: word `[i, j]` is frame pixel `(i + dr, j + dc)`."""
        return self.frame_shift(a, b, centre, self.window_origin(a, b))

    def window_origin(self, a: int, b: int) -> tuple[int, int]:
        """Canvas (row, col) of the first value inside the window for a sample of shape (a, b)."""
        lo = self.window[0] + 1
        if not self.centred_window:
            return lo, lo
        sr, sc = self.centring(a, b)
        return lo - sr, lo - sc

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["trajectory"] = [list(p) for p in self.trajectory]
        d["window"] = list(self.window)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ODGParams":
        d = dict(d)
        d["trajectory"] = tuple(tuple(p) for p in d["trajectory"])
        d["window"] = tuple(d["window"])
        return cls(**d)

    def threshold_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Per old value `v`, the smallest new value giving ON and the largest giving OFF.

        Evaluates the published float32 comparison `new/255 - old/255 >= threshold` (and
        `old/255 - new/255 >= threshold`) for every pair of 8-bit values. Entries are 256 (no ON
        possible) or -1 (no OFF possible) where no value qualifies.
        """
        v = np.arange(256, dtype=np.float32) / np.float32(255)
        th = np.float32(self.threshold)
        d = v[None, :] - v[:, None]                     # d[old, new] = new - old
        on = d >= th
        off = -d >= th
        on_min = np.where(on.any(1), on.argmax(1), 256).astype(np.int16)
        off_max = np.where(off.any(1), 255 - off[:, ::-1].argmax(1), -1).astype(np.int16)
        return on_min, off_max

    def integer_threshold(self) -> int:
        """The difference `k` with ON iff `new - old >= k` and OFF iff `old - new >= k`, or -1.

        -1 means the float32 comparison is not a pure difference rule for this threshold (a
        threshold lying exactly on `k / 255`), and the kernels fall back to the exact tables.
        """
        on_min, off_max = self.threshold_tables()
        v = np.arange(256)
        k = int(np.round(self.threshold * 255))
        for cand in (k - 1, k, k + 1):
            want_on = np.where(v + cand <= 255, v + cand, 256)
            want_off = np.where(v - cand >= 0, v - cand, -1)
            if cand > 0 and np.array_equal(on_min, want_on) and np.array_equal(off_max, want_off):
                return cand
        return -1
