"""The event record and its conversions: published `pos`/`neg` arrays, dense and bit-packed frames.

Events are a NumPy structured array of dtype `EVENT_DTYPE`, one record per event, the field
names of tonic (`x, y, t, p`), so tonic transforms accept them:

- `x` (int16): column in the ODG canvas (padded, uncentred coordinates, as published);
- `y` (int16): row in the ODG canvas;
- `t` (int16): time step, 1..T (the published `t` column);
- `p` (int8): polarity, 1 = ON (brighter), 0 = OFF (darker).

Records are sorted by `t`, then row-major (`y`, then `x`), both polarities interleaved, so
selecting one polarity keeps the published order: `pos = events_to_published(events)[0]`.

Dense frames are uint8 `[T, 2, H, W]` (time, polarity with ON in channel 0, row, col) holding 0/1.
The published loader's frames are built by `events_to_frames`: events shifted by the centring
offset `((long_side - a) // 2, (long_side - b) // 2)`, then cropped to the 224 x 224 window
starting at 16. That crop loses events of images whose short side resizes to about 230-250
pixels; `events_to_words`/`words_to_events` keep the uncropped window losslessly.

Bit-packed words are the lossless per-pixel form: an unsigned integer `[G, G]` over the event
window (`G = params.grid`, 223 published), in the packed-word convention of `odg.bits` (the event
`(t, p)` sets bit `bit(t - 1, channel(p))`; uint16 for T = 8, uint32/uint64 for longer
trajectories).
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .bits import bit, bit_counts, channel, dense_batch, pack, unpack, word_dtype
from .params import ODGParams

EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i2"), ("p", "i1")])


def make_events(x, y, t, p) -> np.ndarray:
    """Assemble an `EVENT_DTYPE` array from equal-length field arrays."""
    ev = np.empty(len(x), EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
    return ev


# -- published per-sample arrays ------------------------------------------------------------

def events_to_published(events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The published `pos` and `neg` arrays, each `(N, 3)` uint8 `(row, col, t)`, published order."""
    _check_events(events)
    if len(events) and (events["x"].max() > 255 or events["y"].max() > 255 or events["x"].min() < 0
                        or events["y"].min() < 0 or events["t"].max() > 255):
        raise ValueError("events outside 0..255 cannot be written in the published uint8 format")
    out = []
    for pol in (1, 0):
        e = events[events["p"] == pol]
        out.append(np.stack([e["y"], e["x"], e["t"]], axis=1).astype(np.uint8).reshape(-1, 3))
    return out[0], out[1]


def published_to_events(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Inverse of `events_to_published`: merge `pos`/`neg` `(N, 3)` arrays into sorted events."""
    parts = []
    for arr, pol in ((pos, 1), (neg, 0)):
        arr = np.asarray(arr)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise ValueError(f"published event arrays must be (N, 3), got shape {arr.shape}")
        parts.append(make_events(arr[:, 1], arr[:, 0], arr[:, 2], np.full(len(arr), pol, np.int8)))
    ev = np.concatenate(parts)
    return ev[np.lexsort((ev["x"], ev["y"], ev["t"]))]


def _check_events(events):
    if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE:
        raise ValueError(f"expected an events array of dtype {EVENT_DTYPE}, got "
                         f"{getattr(events, 'dtype', type(events).__name__)}")


# -- dense frames ---------------------------------------------------------------------------

@nb.njit(nogil=True, cache=True)
def _scatter(x, y, t, p, frames, dr, dc):
    T, _, H, W = frames.shape
    for i in range(x.shape[0]):
        r = y[i] + dr
        c = x[i] + dc
        k = t[i] - 1
        if 0 <= r < H and 0 <= c < W and 0 <= k < T:
            frames[k, channel(p[i]), r, c] = 1


def events_to_frames(events: np.ndarray, shape: tuple[int, int], params: ODGParams = ODGParams(),
                     centre: bool = True) -> np.ndarray:
    """Dense uint8 frames `[T, 2, S, S]` (S = `params.frame_size`) as the published loader builds them.

    `shape` is the sample's resized `(a, b)`. With `centre=True` (published loader) events are
    shifted by the centring offset before the crop at `params.frame_offset`; `centre=False`
    crops the uncentred canvas. Events falling outside the crop are dropped (the published
    loader's behaviour).
    """
    _check_events(events)
    S = params.frame_size
    frames = np.zeros((params.steps, 2, S, S), np.uint8)
    _scatter(events["x"], events["y"], events["t"], events["p"], frames, *params.frame_shift(*shape, centre))
    return frames


def frames_to_events(frames: np.ndarray) -> np.ndarray:
    """Events of dense `[T, 2, H, W]` frames, in frame coordinates, `t` = 1..T, canonical order."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[1] != 2:
        raise ValueError(f"frames must be [T, 2, H, W], got shape {frames.shape}")
    k, pol, r, c = np.nonzero(frames)
    ev = make_events(c, r, k + 1, 1 - pol)
    return ev[np.lexsort((ev["x"], ev["y"], ev["t"]))]


# -- lossless bit-packed words over the event window ----------------------------------------

@nb.njit(nogil=True, cache=True)
def _pack(x, y, t, p, words, r0, c0):
    G0, G1 = words.shape
    bad = 0
    for i in range(x.shape[0]):
        r = y[i] - r0
        c = x[i] - c0
        if 0 <= r < G0 and 0 <= c < G1 and t[i] >= 1:
            words[r, c] |= words.dtype.type(1) << bit(t[i] - 1, channel(p[i]))
        else:
            bad += 1
    return bad


def events_to_words(events: np.ndarray, shape: tuple[int, int], params: ODGParams = ODGParams()) -> np.ndarray:
    """Lossless bit-packed form `[G, G]` of a sample's events (see module docstring).

    Raises ValueError when an event lies outside the window of `params` (it could not come
    from an ODG conversion with these parameters).
    """
    _check_events(events)
    r0, c0 = params.window_origin(*shape)
    words = np.zeros((params.grid, params.grid), word_dtype(params.steps))
    if len(events) and events["t"].max() > params.steps:
        raise ValueError(f"event time step {int(events['t'].max())} exceeds T = {params.steps}")
    bad = _pack(events["x"], events["y"], events["t"], events["p"], words, r0, c0)
    if bad:
        raise ValueError(f"{bad} events lie outside the event window {params.window} of these parameters")
    return words


def word_counts(words: np.ndarray, steps: int) -> np.ndarray:
    """Events per step and polarity, int64 `[T, 2]` (ON, OFF), of bit-packed words `[H, W]`."""
    return bit_counts(np.asarray(words)[None], steps)[0][0]


@nb.njit(nogil=True, cache=True)
def _unpack(words, offsets, r0, c0, x, y, t, p):
    """One row-major pass; each event goes to its step's block, so blocks stay row-major."""
    pos = offsets.copy()
    G0, G1 = words.shape
    steps = offsets.shape[0]
    for i in range(G0):
        for j in range(G1):
            w = np.uint64(words[i, j])
            if w == 0:
                continue
            for k in range(steps):
                pair = (w >> np.uint64(bit(k, 0))) & np.uint64(3)      # both channels of step k
                if pair == 0:
                    continue
                for q in range(2):
                    if pair & np.uint64(1 << q):
                        n = pos[k]
                        pos[k] = n + 1
                        x[n] = j + c0
                        y[n] = i + r0
                        t[n] = k + 1
                        p[n] = channel(q)       # channel() is its own inverse: channel q has polarity 1 - q


def words_to_events(words: np.ndarray, shape: tuple[int, int], params: ODGParams = ODGParams(),
                    counts: np.ndarray | None = None) -> np.ndarray:
    """Inverse of `events_to_words`: the sample's events in canonical order.

    `counts` (`[T, 2]` per step and polarity, as `odg_events` returns) saves a counting pass.
    """
    r0, c0 = params.window_origin(*shape)
    per_step = (word_counts(words, params.steps) if counts is None else np.asarray(counts).reshape(params.steps, -1)).sum(1)
    offsets = np.zeros(params.steps, np.int64)
    offsets[1:] = np.cumsum(per_step)[:-1]
    n = int(per_step.sum())
    x, y, t = (np.empty(n, np.int16) for _ in range(3))
    p = np.empty(n, np.int8)
    _unpack(words, offsets, r0, c0, x, y, t, p)
    return make_events(x, y, t, p)


def words_to_frames(words: np.ndarray, shape: tuple[int, int], params: ODGParams = ODGParams(),
                    centre: bool = True, out: np.ndarray | None = None) -> np.ndarray:
    """Dense `[T, 2, S, S]` uint8 frames straight from words; equals `events_to_frames`.

    `out`, when given, must be a C-contiguous uint8 array of that shape (it is overwritten whole).
    """
    S, T = params.frame_size, params.steps
    if out is None:
        out = np.empty((T, 2, S, S), np.uint8)
    elif out.shape != (T, 2, S, S) or out.dtype != np.uint8 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous uint8 array of shape {(T, 2, S, S)}")
    zero = np.zeros(1, np.int64)
    dr, dc = params.words_shift(*shape, centre)
    dense_batch(np.ascontiguousarray(words)[None], zero, zero, zero + dr, zero + dc, T, S, S,
                out.reshape(2 * T, S * S), 2, 0, 1)
    return out


def pack_frames(frames: np.ndarray) -> np.ndarray:
    """Bit-pack dense `[..., T, 2, H, W]` 0/1 frames into per-pixel words `[..., H, W]` (`odg.bits.pack`)."""
    return pack(frames)


def unpack_frames(words: np.ndarray, steps: int) -> np.ndarray:
    """Inverse of `pack_frames`: words `[..., H, W]` → uint8 `[..., T, 2, H, W]` (`odg.bits.unpack`)."""
    return unpack(words, steps)
