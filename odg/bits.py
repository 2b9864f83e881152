"""The packed word: every event of one pixel in one unsigned integer (the one definition).

Every odg store keeps a sample's events as one unsigned word per pixel. Bit

    bit(k, c) = 2 * k + c

of a pixel's word is set when an event of step `k` (0-based) and channel `c` occurred there,
channel `c = 0` ON (brighter) and `c = 1` OFF (darker). A word of `8 * itemsize` bits holds up to
`4 * itemsize` steps; `word_dtype(T)` is the smallest unsigned type for `T` steps. The three store
kinds differ only in what a word's pixel and step are:

- ES-ImageNet (`odg.events`): the pixel of the 223 x 223 event window, step `k = t - 1` of the
  event's `t`, channel `c = channel(p) = 1 - p` of its polarity `p` (1 ON); uint16 for T = 8;
- I2E (`odg.i2e`): the pixel of the 224 x 224 frame, step `k` of the module's output; uint16;
- ES-UCF101 (`odg.video`): the pixel of the clip, difference frame `k`; always uint64.

Dense frames of the same events are uint8 0/1 planes, one `H x W` plane per `(k, c)`, in the
layout `"TCHW"` (`[..., T, 2, H, W]`) or `"CTHW"` (`[..., 2, T, H, W]`, the published ES-UCF101
clip). `pack` and `unpack` convert between the two forms; `bit_counts` counts events straight
from words. The Numba kernels at the end place a batch of words, shifted and cropped, into a
batch of frames or words (the training loader's hot path) and can be called from other kernels,
as can `bit` and `channel`. The torch decoder `odg.models.data.unpack_batch` follows this same
convention on the GPU.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

ON, OFF = 0, 1                       # channels
LAYOUTS = ("TCHW", "CTHW")


@nb.njit(inline="always", cache=True)
def bit(k, c):
    """The bit of step `k` (0-based) and channel `c` (0 ON, 1 OFF) in a pixel's word."""
    return 2 * k + c


@nb.njit(inline="always", cache=True)
def channel(p):
    """The channel of an event of polarity `p` (1 ON, 0 OFF): 0 for ON, 1 for OFF."""
    return 1 - p


def word_dtype(steps: int) -> np.dtype:
    """The smallest unsigned integer holding 2 bits per step."""
    bits = 2 * steps
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if np.dtype(dt).itemsize * 8 >= bits:
            return np.dtype(dt)
    raise ValueError(f"{steps} steps need {bits} bits per pixel; at most 64 are supported")


def sample_strides(layout: str, steps: int) -> tuple[int, int, int]:
    """`(sk, sb, sc)`: in `[M, ...]` samples of dense frames (their `H x W` planes in order), plane
    `k sk + m sb + c sc` is step k, sample m, channel c. TCHW `[M, T, 2]`: (2, 2T, 1); CTHW
    `[M, 2, T]`: (1, 2T, T)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    return (2, 2 * steps, 1) if layout == "TCHW" else (1, 2 * steps, steps)


def _dense_axes(frames: np.ndarray, layout: str) -> int:
    if frames.ndim < 4:
        raise ValueError(f"frames must be [..., T, 2, H, W] or [..., 2, T, H, W], got shape {frames.shape}")
    steps, two = (frames.shape[-4], frames.shape[-3]) if layout == "TCHW" else (frames.shape[-3], frames.shape[-4])
    if two != 2:
        raise ValueError(f"frames of layout {layout} need 2 channels (ON, OFF), got shape {frames.shape}")
    return int(steps)


@nb.njit(nogil=True, cache=True)
def _pack_planes(planes, steps, sk, sb, sc, words):
    """words[m] |= planes[k sk + m sb + c sc] << bit(k, c); returns the OR of every plane value."""
    seen = 0
    for m in range(words.shape[0]):
        w = words[m]
        for k in range(steps):
            for c in range(2):
                src = planes[k * sk + m * sb + c * sc]
                sh = bit(k, c)
                for p in range(w.shape[0]):
                    v = src[p]
                    seen |= v
                    w[p] |= w.dtype.type(v & 1) << sh
    return seen


def pack(frames: np.ndarray, layout: str = "TCHW", dtype=None) -> np.ndarray:
    """Bit-pack dense 0/1 frames `[..., T, 2, H, W]` (`"CTHW"`: `[..., 2, T, H, W]`) into words `[..., H, W]`.

    `dtype`: of the words (default `word_dtype(T)`). Raises ValueError for values other than 0/1.
    """
    f = np.asarray(frames)
    steps = _dense_axes(f, layout)
    dt = word_dtype(steps) if dtype is None else np.dtype(dtype)
    if 2 * steps > 8 * dt.itemsize:
        raise ValueError(f"{steps} steps do not fit {dt} words")
    if f.dtype == np.bool_:
        f = np.ascontiguousarray(f).view(np.uint8)
    elif f.dtype != np.uint8:
        u = f.astype(np.uint8)
        if not np.array_equal(u, f):
            raise ValueError("frames must hold only 0 and 1")
        f = u
    lead, (H, W) = f.shape[:-4], f.shape[-2:]
    M = math.prod(lead)
    words = np.zeros((M, H * W), dt)
    if words.size and _pack_planes(np.ascontiguousarray(f).reshape(M * 2 * steps, H * W), steps,
                                   *sample_strides(layout, steps), words) > 1:
        raise ValueError("frames must hold only 0 and 1")
    return words.reshape(lead + (H, W))


@nb.njit(nogil=True, cache=True)
def unpack_planes(src, steps, out, base, sk, sc):
    """Planes `out[base + k sk + c sc] = (src >> bit(k, c)) & 1` of one sample's flat words `src`."""
    P = src.shape[0]
    for k in range(steps):
        for c in range(2):
            sh = bit(k, c)                 # plain int shift and mask: numba vectorises this form best
            dst = out[base + k * sk + c * sc]
            for p in range(P):
                dst[p] = (src[p] >> sh) & 1


@nb.njit(nogil=True, cache=True)
def _unpack_all(words, steps, out, sk, sb, sc):
    for m in range(words.shape[0]):
        unpack_planes(words[m], steps, out, m * sb, sk, sc)


def check_steps(steps: int, dtype) -> None:
    """ValueError unless `steps` (>= 1) steps fit words of `dtype`."""
    dt = np.dtype(dtype)
    if dt.kind not in "ui":
        raise ValueError(f"words must be integers, got dtype {dt}")
    if not 1 <= steps <= 4 * dt.itemsize:
        raise ValueError(f"{steps} steps do not fit {dt} words ({8 * dt.itemsize} bits)")


def unpack(words: np.ndarray, steps: int, layout: str = "TCHW") -> np.ndarray:
    """Inverse of `pack`: words `[..., H, W]` to uint8 0/1 frames `[..., T, 2, H, W]` (`"CTHW"`:
    `[..., 2, T, H, W]`). Bits at or above `2 * steps` are ignored."""
    w = np.asarray(words)
    if w.ndim < 2:
        raise ValueError(f"words must be [..., H, W], got shape {w.shape}")
    check_steps(steps, w.dtype)
    sk, sb, sc = sample_strides(layout, steps)
    lead, (H, W) = w.shape[:-2], w.shape[-2:]
    M = math.prod(lead)
    out = np.empty((M * 2 * steps, H * W), np.uint8)
    _unpack_all(np.ascontiguousarray(w).reshape(M, H * W), steps, out, sk, sb, sc)
    chan = (steps, 2) if layout == "TCHW" else (2, steps)
    return out.reshape(lead + chan + (H, W))


# -- counting ------------------------------------------------------------------------------

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
                            per[i, b >> 1, b & 1] += 1        # b = bit(k, c): k = b >> 1, c = b & 1
                            m += 1
                        else:
                            stray += 1
                    w >>= np.uint64(1)
                    b += 1
                if add:
                    density[r, c] += m
    return stray


def bit_counts(words: np.ndarray, steps: int, in_density: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-sample events by step and channel, and the per-pixel density of the selected samples.

    `words`: `[n, H, W]` unsigned; `in_density`: bool `[n]`, the samples added to the density map
    (default none). Returns `per` int64 `[n, steps, 2]` (ON, OFF), `density` int64 `[H, W]` and
    the number of set bits at or beyond `2 * steps` (none in a sound store).
    """
    words = np.ascontiguousarray(words)
    n, H, W = words.shape
    if in_density is None:
        in_density = np.zeros(n, np.bool_)
    per = np.zeros((n, steps, 2), np.int64)
    density = np.zeros((H, W), np.int64)
    stray = _bit_counts(words, steps, np.ascontiguousarray(in_density, dtype=np.bool_), per, density)
    return per, density, int(stray)


# -- batches: words of a block of samples, shifted into frames --------------------------------

@nb.njit(nogil=True, cache=True)
def place(block, row, dr, dc, S0, S1, dst):
    """dst[r * S1 + c] = block[row, r - dr, c - dc] inside the block, 0 outside (an `S0 x S1` frame)."""
    G0, G1 = block.shape[1], block.shape[2]
    c_lo = min(max(dc, 0), S1)
    c_hi = max(min(G1 + dc, S1), c_lo)
    r_lo = min(max(dr, 0), S0)
    r_hi = max(min(G0 + dr, S0), r_lo)
    dst[:r_lo * S1] = 0
    dst[r_hi * S1:] = 0
    src = block[row]
    for r in range(r_lo, r_hi):
        base = r * S1
        dst[base:base + c_lo] = 0
        dst[base + c_lo:base + c_hi] = src[r - dr, c_lo - dc:c_hi - dc]
        dst[base + c_hi:base + S1] = 0


@nb.njit(nogil=True, cache=True)
def packed_batch(block, rows, bpos, dr, dc, S0, S1, out):
    """out[bpos[n]] (flattened [S0 * S1]) = words of block[rows[n]] shifted by (dr[n], dc[n])."""
    for n in range(rows.shape[0]):
        place(block, rows[n], dr[n], dc[n], S0, S1, out[bpos[n]])


@nb.njit(nogil=True, cache=True)
def dense_batch(block, rows, bpos, dr, dc, steps, S0, S1, out, sk, sb, sc):
    """Dense 0/1 planes of block[rows[n]], shifted by (dr[n], dc[n]), into
    out[k * sk + bpos[n] * sb + c * sc] (planes of S0 * S1)."""
    tmp = np.empty(S0 * S1, block.dtype)
    for n in range(rows.shape[0]):
        place(block, rows[n], dr[n], dc[n], S0, S1, tmp)
        unpack_planes(tmp, steps, out, bpos[n] * sb, sk, sc)


_BAND = 8                           # frame rows per pass of frame_planes (8 x 224 uint16 words: 3.5 kB)


# -- one sample's words straight into dense planes, and its per-step counts (on-the-fly conversion) --

@nb.njit(nogil=True, cache=True)
def frame_planes(words, steps, out, base, sk, sc, dr, dc, S1):
    """Dense 0/1 frames of `words`: word `[i, j]` is frame pixel `(i + dr, j + dc)`; step `s` ON
    (bit 2 s) into plane `base + s sk`, OFF (bit 2 s + 1) into `base + s sk + sc` of `out` (uint8
    `[planes, S0 * S1]`). Every pixel of those planes is written (0 where no word lands).

    The frame goes in bands of `_BAND` rows: a band's words are laid out as the frame (zero margins)
    in a small buffer that stays in L1, then each step takes the two low bits and shifts the rest
    down by a constant 2: whole bands in one flat loop, no per-row epilogues, and constant shifts
    that LLVM can do in 16-bit lanes (a variable shift stays 64-bit)."""
    G0, G1 = words.shape
    S0 = out.shape[1] // S1
    f_lo = min(max(dr, 0), S0)                  # frame rows that hold words
    f_hi = max(min(G0 + dr, S0), f_lo)
    c_lo = min(max(dc, 0), S1)                  # frame columns that hold words
    c_hi = max(min(G1 + dc, S1), c_lo)
    tmp = np.empty(_BAND * S1, words.dtype)
    for r0 in range(0, S0, _BAND):
        r1 = min(r0 + _BAND, S0)
        for fr in range(r0, r1):
            t = tmp[(fr - r0) * S1:(fr - r0 + 1) * S1]
            if f_lo <= fr < f_hi:
                t[:c_lo] = 0
                t[c_lo:c_hi] = words[fr - dr, c_lo - dc:c_hi - dc]
                t[c_hi:] = 0
            else:
                t[:] = 0
        o = r0 * S1
        n = (r1 - r0) * S1
        for s in range(steps):
            on = out[base + s * sk, o:o + n]
            off = out[base + s * sk + sc, o:o + n]
            for q in range(n):
                x = tmp[q]
                on[q] = np.uint8(x & 1)
                off[q] = np.uint8((x >> 1) & 1)
                tmp[q] = x >> 2


@nb.njit(nogil=True, cache=True)
def step_counts(words, nbits, counts):
    """`counts.flat[b]` = number of words with bit `b` set, b < nbits (`counts` int64, zeroed).

    SWAR: `(w >> k) & 0x01..01` adds bit `8 L + k` of every word into byte `L` of a per-column
    sum of the word's own type (at most 255 rows before the bytes are flushed), so every addition
    is a plain element-wise one."""
    G0, G1 = words.shape
    wt = words.dtype.type
    nbytes = words.itemsize
    m = wt(0)
    for L in range(nbytes):
        m |= wt(1) << wt(8 * L)
    acc = np.zeros((8, G1), words.dtype)
    flat = counts.reshape(-1)
    rows = 0
    for i in range(G0):
        wr = words[i]
        for k in range(8):
            a = acc[k]
            sk = wt(k)
            for c in range(G1):
                a[c] += (wr[c] >> sk) & m
        rows += 1
        if rows == 255 or i == G0 - 1:
            for k in range(8):
                for L in range(nbytes):
                    bit = 8 * L + k
                    if bit < nbits:
                        tot = 0
                        for c in range(G1):
                            tot += (acc[k, c] >> wt(8 * L)) & wt(255)
                        flat[bit] += tot
            acc[:] = 0
            rows = 0
