"""Edge-Integral: ODG events back to a grey relief image of the source's edges.

The published reconstruction works on the published loader's dense sample: for step index
`k = 0..T-1` it adds `ON_k - OFF_k` onto a zero canvas at offset `(2 - r, 2 - c)`, where `(r, c)`
is the trajectory position of step `k + 1`, and crops `[1 : 1 + S, 1 : 1 + S]` (S = 224).
Undoing each step's motion makes the events of one edge pile up at one place, so the sum is an
integer map in `[-T, T]` (int8): positive where the image gets brighter along the motion.
"""
from __future__ import annotations

import numpy as np

from .events import events_to_frames
from .params import ODGParams


def edge_integral(frames: np.ndarray, params: ODGParams = ODGParams()) -> np.ndarray:
    """Integer relief map int8 `[S, S]` of dense frames uint8 `[T, 2, S, S]` (ON in channel 0)."""
    frames = np.asarray(frames)
    T = params.steps
    if frames.ndim != 4 or frames.shape[0] != T or frames.shape[1] != 2 or frames.shape[2] != frames.shape[3]:
        raise ValueError(f"frames must be [T={T}, 2, S, S], got shape {frames.shape}")
    S = frames.shape[2]
    m = params.canvas_pad  # margin so that offsets 2 - r stay on the canvas for any valid trajectory
    canvas = np.zeros((S + 2 * m + 2, S + 2 * m + 2), np.int16)
    for k in range(T):
        r, c = params.trajectory[k + 1]
        canvas[m + 2 - r:m + 2 - r + S, m + 2 - c:m + 2 - c + S] += frames[k, 0].astype(np.int16) - frames[k, 1]
    return canvas[m + 1:m + 1 + S, m + 1:m + 1 + S].astype(np.int8)


def edge_integral_events(events: np.ndarray, shape: tuple[int, int], params: ODGParams = ODGParams()) -> np.ndarray:
    """Edge-Integral of a sample's events (through the published loader's dense frames)."""
    return edge_integral(events_to_frames(events, shape, params), params)


def edge_integral_image(relief: np.ndarray) -> np.ndarray:
    """An 8-bit grey image for display: 128 at zero, the largest magnitude mapped to 0 or 255."""
    relief = np.asarray(relief, np.float32)
    m = float(np.abs(relief).max())
    if m == 0:
        return np.full(relief.shape, 128, np.uint8)
    return np.clip(np.round(128 + relief * (127.0 / m)), 0, 255).astype(np.uint8)
