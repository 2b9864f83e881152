"""Counting events straight from bit-packed words, without decoding them.

Both store kinds pack a pixel's events the same way: bit `2 * s + c` of its word is set when an
event of step `s` (0-based) and channel `c` occurred there, `c = 0` ON and `c = 1` OFF (ES-ImageNet:
`odg.events`, T = 8 steps over the 223 x 223 window, uint16; ES-UCF101: `odg.video.pack_clip`,
30 steps over the clip's H x W, uint64).
"""
from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(nogil=True, cache=True)
def _bit_counts(words, steps, in_density, per, density):
    n, H, W = words.shape
    stray = 0
    for i in range(n):
        add = in_density[i]
        for r in range(H):
            for c in range(W):
                w = np.uint64(words[i, r, c])
                if w == 0:
                    continue
                m = 0
                b = 0
                while w:
                    if w & np.uint64(1):
                        if b < 2 * steps:
                            per[i, b >> 1, b & 1] += 1
                            m += 1
                        else:
                            stray += 1
                    w >>= np.uint64(1)
                    b += 1
                if add:
                    density[r, c] += m
    return stray


def bit_counts(words: np.ndarray, steps: int, in_density: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-sample events by step and polarity, and the per-pixel density of the selected samples.

    `words`: `[n, H, W]` unsigned; `in_density`: bool `[n]`, the samples added to the density map.
    Returns `per` int64 `[n, steps, 2]` (ON, OFF), `density` int64 `[H, W]` and the number of set
    bits beyond `2 * steps` (none in a sound store).
    """
    words = np.ascontiguousarray(words)
    n, H, W = words.shape
    per = np.zeros((n, steps, 2), np.int64)
    density = np.zeros((H, W), np.int64)
    stray = _bit_counts(words, steps, np.ascontiguousarray(in_density, dtype=np.bool_), per, density)
    return per, density, int(stray)


def dense_clip(words: np.ndarray, steps: int) -> np.ndarray:
    """ES-UCF101 words `[H, W]` to the published dense uint8 `[2, S, H, W]` (channel 0 ON)."""
    words = np.asarray(words, np.uint64)
    shifts = np.arange(2 * steps, dtype=np.uint64).reshape(steps, 2, 1, 1)
    bits = ((words[None, None] >> shifts) & np.uint64(1)).astype(np.uint8)   # [S, 2, H, W]
    return np.ascontiguousarray(bits.transpose(1, 0, 2, 3))
