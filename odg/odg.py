"""ODG: a still image to events, exactly as the published ES-ImageNet generator.

`odg_events(image, params)` takes an 8-bit image (`H x W x 3` BGR as `cv2.imread` gives, `H x W x 4`
BGRA whose alpha is dropped, or `H x W` / `H x W x 1` grey) and returns an `ODGResult`:
the events (`EVENT_DTYPE`, see `odg.events`), the resized shape `(a, b)` and whether the sample
passes the published 1000-event floor.

The algorithm (docs/ALGORITHMS.md): resize with PyTorch's nearest index rule to long side 254,
take `V = max(B, G, R)`, move the image along a 9-position trajectory on a zero canvas of
`(a + 4) x (b + 4)`, threshold the difference of consecutive canvases at 0.18 of the 8-bit
range, clear the rows and columns swept by the image's edges, and keep events inside the
uncentred window `16 < row, col < 240`. One Numba call per image does everything, with no
per-pixel Python, and releases the GIL so threads convert in parallel: the resize and value image
(`_value_image`), the events of all steps row by row while the row sits in L1 (`_odg_rows`), the
per-step counts in a separate SWAR pass (`step_counts`: a running count inside the event loops keeps
LLVM from vectorising them, about 10 times slower), and, for `odg_frames_into`, the dense frames
written straight into a batch's planes (`frame_planes`), so an on-the-fly loader needs no second
pass over the words. With frames, the rows are counted only until the event floor is reached
(usually a few bands of 16 rows): that decides `kept` exactly, and a kept sample's `counts`, which
a loader does not need, are counted from its words only if read.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numba as nb
import numpy as np

from .bits import frame_planes, step_counts
from .events import events_to_published, word_dtype, words_to_events
from .params import ODGParams


@dataclass(frozen=True)
class ODGResult:
    """One converted image.

    - `words`: the events, losslessly bit-packed over the event window (`odg.events`), the form
      a store keeps; `[G, G]` uint16 for the published parameters (G = 223);
    - `shape`: the resized `(a, b)`;
    - `counts`: int64 `[T, 2]`, events per step and polarity (ON, OFF); counted from `words` on
      first access when the conversion only counted far enough to decide `kept` (`counted` None);
    - `kept`: whether the sample passes the `min_events` floor;
    - `events`: the event list (`EVENT_DTYPE`, canonical order), unpacked on first access.
    """
    words: np.ndarray
    shape: tuple
    counted: np.ndarray | None
    kept: bool
    params: ODGParams

    @cached_property
    def counts(self) -> np.ndarray:
        if self.counted is not None:
            return self.counted
        counts = np.zeros((self.params.steps, 2), np.int64)
        step_counts(self.words, 2 * self.params.steps, counts)
        return counts

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    @cached_property
    def events(self) -> np.ndarray:
        return words_to_events(self.words, self.shape, self.params, counts=self.counts)

    def published(self) -> tuple[np.ndarray, np.ndarray]:
        """The published `pos`, `neg` arrays, `(N, 3)` uint8 `(row, col, t)`."""
        return events_to_published(self.events)


@lru_cache(maxsize=4096)
def nearest_indices(src: int, dst: int) -> np.ndarray:
    """PyTorch `F.interpolate(mode='nearest')` source index of each output index (read-only, cached).

    `min(floor(i * scale), src - 1)` with `scale = src / dst` computed in float32.
    """
    scale = np.float32(src) / np.float32(dst)
    idx = np.floor(np.arange(dst, dtype=np.float32) * scale).astype(np.int64)
    idx = np.minimum(idx, src - 1)
    idx.flags.writeable = False
    return idx


def check_image(image) -> np.ndarray:
    """Validate an 8-bit image and return it as a C-contiguous `H x W x C` uint8 array (C = 1, 3, 4)."""
    if image is None:
        raise ValueError("image is None (an unreadable file gives None from cv2.imread)")
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be H x W (grey) or H x W x C, got ndim={image.ndim} shape={image.shape}")
    if image.size == 0 or 0 in image.shape:
        raise ValueError(f"image is empty (shape {image.shape})")
    if image.dtype.kind == "f" and np.isnan(image).any():
        raise ValueError("image contains NaN")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be 8-bit (uint8), got dtype {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must have 1, 3 or 4 channels (grey, BGR, BGRA), got {image.shape[2]}")
    return np.ascontiguousarray(image)


@lru_cache(maxsize=64)
def _kernel_constants(params: ODGParams):
    traj = np.asarray(params.trajectory, np.int64)
    on_min, off_max = params.threshold_tables()
    return traj, params.integer_threshold(), on_min, off_max


_PLANS: dict = {}


def _plan(params: ODGParams) -> tuple:
    """`(params, traj, k, on_min, off_max, word dtype)` of `params`, looked up by identity (hashing
    a frozen dataclass of tuples costs microseconds per image); equal parameters share the arrays."""
    plan = _PLANS.get(id(params))
    if plan is None or plan[0] is not params:
        if len(_PLANS) > 64:
            _PLANS.clear()
        plan = (params, *_kernel_constants(params), word_dtype(params.steps))
        _PLANS[id(params)] = plan
    return plan


@nb.njit(nogil=True, cache=True)
def _value_image(img, ri, ci, pad):
    """V = max over the B, G, R channels of the nearest-resized image, on a zero margin of `pad`.

    Returns int16 `[a + 2 pad, b + 2 pad]`. Unsigned flat offsets keep the gather branch-free.
    """
    a = ri.shape[0]
    b = ci.shape[0]
    nch = img.shape[2]
    row_len = np.uint64(img.shape[1] * nch)
    flat = img.reshape(-1)
    cofs = ci.astype(np.uint64) * np.uint64(nch)
    one = np.uint64(1)
    two = np.uint64(2)
    vp = np.empty((a + 2 * pad, b + 2 * pad), np.int16)
    vp[:pad] = 0
    vp[a + pad:] = 0
    for i in range(a):
        base = np.uint64(ri[i]) * row_len
        out = vp[i + pad]
        out[:pad] = 0
        out[b + pad:] = 0
        if nch >= 3:
            for j in range(b):
                o = base + cofs[j]
                out[j + pad] = max(max(flat[o], flat[o + one]), flat[o + two])
        else:
            for j in range(b):
                out[j + pad] = flat[base + cofs[j]]
    return vp


@nb.njit(nogil=True, cache=True)
def _odg_rows(vp, a, b, pad, traj, k, on_min, off_max, r0, c0, words):
    """Events of every step as bits of `words` (see odg.events), row by row.

    `words` need not be zeroed: each row is computed whole (all steps while it sits in L1).
    `k > 0`: the integer difference rule (vectorised); otherwise the exact float32 tables.
    Events are counted afterwards (`step_counts`): a running count in these loops stops LLVM from
    vectorising them (about 10 times slower).
    """
    G0, G1 = words.shape
    T = traj.shape[0] - 1
    rlo = max(r0, 0)
    rhi = min(r0 + G0, a + pad)
    clo = max(c0, 0)
    chi = min(c0 + G1, b + pad)
    nu = np.uint64(max(chi - clo, 0))
    kk = np.int16(k)
    mk = np.int16(-k)
    V = vp.ravel()
    VW = vp.shape[1]
    one = words.dtype.type(1)
    zero = words.dtype.type(0)
    b_on = np.zeros(T + 1, words.dtype)         # step s's ON and OFF bits (constant bits: selects, not shifts)
    b_off = np.zeros(T + 1, words.dtype)
    for s in range(1, T + 1):
        b_on[s] = one << words.dtype.type(2 * (s - 1))
        b_off[s] = one << words.dtype.type(2 * (s - 1) + 1)
    for i in range(G0):
        r = r0 + i
        wr = words[i]
        wr[:] = 0
        if rlo <= r < rhi:
            for s in range(1, T + 1):
                rp, cp = traj[s - 1, 0], traj[s - 1, 1]
                rc, cc = traj[s, 0], traj[s, 1]
                r_lo, r_hi = min(rp, rc), max(rp, rc)
                # rows swept by the top and bottom edges carry no events
                if (r_lo <= r < r_hi) or (r_lo + a <= r < r_hi + a):
                    continue
                c_lo, c_hi = min(cp, cc), max(cp, cc)
                bn = np.uint64((r - rc + pad) * VW + clo - cc + pad)
                bo = np.uint64((r - rp + pad) * VW + clo - cp + pad)
                bw = np.uint64(clo - c0)
                bon = b_on[s]
                boff = b_off[s]
                if k > 0:
                    for c in range(nu):
                        d = np.int16(V[bn + c] - V[bo + c])
                        on = d >= kk
                        off = d <= mk
                        wr[bw + c] = wr[bw + c] | (bon if on else zero) | (boff if off else zero)
                else:
                    for c in range(nu):
                        vn = V[bn + c]
                        vo = V[bo + c]
                        on = vn >= on_min[vo]
                        off = vn <= off_max[vo]
                        wr[bw + c] = wr[bw + c] | (bon if on else zero) | (boff if off else zero)
                # columns swept by the left and right edges carry no events
                for cl in range(c_lo, c_hi):
                    for c in (cl, cl + b):
                        if clo <= c < chi:
                            j = c - c0
                            x = wr[j]
                            wr[j] = x & ~(bon | boff)


@nb.njit(nogil=True, cache=True)
def _odg_kernel(vp, a, b, pad, traj, k, on_min, off_max, r0, c0, words, counts):
    """Events of every step as bits of `words` (see odg.events); per-step (ON, OFF) counts
    (`_odg_rows` without frames, then `step_counts`)."""
    _odg_rows(vp, a, b, pad, traj, k, on_min, off_max, r0, c0, words)
    counts[:] = 0
    step_counts(words, 2 * (traj.shape[0] - 1), counts)


_FLOOR_BAND = 16                    # word rows counted at a time while deciding the event floor


@nb.njit(nogil=True, cache=True)
def _counts_to(words, nbits, counts, floor):
    """`step_counts` band by band until the total reaches `floor` (`floor` < 0: every band);
    returns `(total so far, whether every row was counted)`. A total at or above `floor` decides
    the floor whatever the rows left hold."""
    G0 = words.shape[0]
    band = G0 if floor < 0 else _FLOOR_BAND
    n = 0
    for i in range(0, G0, band):
        step_counts(words[i:min(i + band, G0)], nbits, counts)
        n = 0
        for v in counts.ravel():
            n += v
        if 0 <= floor <= n:
            return n, i + band >= G0
    return n, True


@nb.njit(nogil=True, cache=True)
def _odg_image(img, ri, ci, pad, traj, k, on_min, off_max, r0, c0, words, counts, floor, out, base, sk, sc,
               dr, dc, S1):
    """The whole conversion of one image in one call: value image, words, counts and, when `out`
    has planes, the dense frames (see `_odg_rows`, `step_counts`, `frame_planes`); `(total, whole)`
    of `_counts_to`: with `floor` >= 0 the rows are counted only until the total reaches it."""
    vp = _value_image(img, ri, ci, pad)
    _odg_rows(vp, ri.shape[0], ci.shape[0], pad, traj, k, on_min, off_max, r0, c0, words)
    res = _counts_to(words, 2 * (traj.shape[0] - 1), counts, floor)
    if out.shape[0] > 0:
        frame_planes(words, traj.shape[0] - 1, out, base, sk, sc, dr, dc, S1)
    return res


_NO_FRAMES = np.empty((0, 1), np.uint8)


def _convert(img: np.ndarray, params: ODGParams, frames=None) -> ODGResult:
    """ODG of a checked image; `frames`: `(out, base, sk, sc, centre)` to write its dense frames
    into planes of `out` too (see `odg_frames_into`)."""
    h, w = img.shape[:2]
    a, b = params.resized_shape(h, w)
    if a < 1 or b < 1:
        raise ValueError(f"image of {h} x {w} pixels resizes to {a} x {b}: a side of 0 pixels")
    _, traj, k, on_min, off_max, wdt = _plan(params)
    r0, c0 = params.window_origin(a, b)
    G = params.grid
    words = np.empty((G, G), wdt)
    counts = np.zeros((traj.shape[0] - 1, 2), np.int64)
    if frames is None:
        out, base, sk, sc, dr, dc, floor = _NO_FRAMES, 0, 0, 0, 0, 0, -1
    else:                               # frames: a kept sample's counts are rarely read (see ODGResult)
        out, base, sk, sc, centre = frames
        dr, dc = params.words_shift(a, b, centre)
        floor = params.min_events
    n, whole = _odg_image(img, nearest_indices(h, a), nearest_indices(w, b), params.canvas_pad, traj, k, on_min,
                          off_max, r0, c0, words, counts, floor, out, base, sk, sc, dr, dc, params.frame_size)
    return ODGResult(words=words, shape=(a, b), counted=counts if whole else None, kept=n >= params.min_events,
                     params=params)


def odg_frames_into(image: np.ndarray, out: np.ndarray, base: int, sk: int, sc: int,
                    params: ODGParams = ODGParams(), centre: bool = True) -> ODGResult:
    """`odg_events(image)`, its dense frames (`odg.events.words_to_frames`, `[T, 2, S, S]` 0/1,
    S = `params.frame_size`) written in the same pass into planes of `out` (uint8 `[planes, S * S]`,
    a batch): step `k` ON at plane `base + k sk`, OFF at `base + k sk + sc`. Every pixel of those
    planes is written, whether or not the sample is kept."""
    S = params.frame_size
    if out.dtype != np.uint8 or out.ndim != 2 or out.shape[1] != S * S:
        raise ValueError(f"out must be uint8 [planes, {S * S}], got {out.dtype} {out.shape}")
    if min(base, sk, sc) < 0 or base + (params.steps - 1) * sk + sc >= out.shape[0]:
        raise ValueError(f"planes {base} + k {sk} + c {sc} (k < {params.steps}, c < 2) fall outside "
                         f"out's {out.shape[0]} planes")
    return _convert(check_image(image), params, (out, base, sk, sc, bool(centre)))


def odg_events(image: np.ndarray, params: ODGParams = ODGParams()) -> ODGResult:
    """Convert one 8-bit image (BGR, BGRA or grey) to ODG events. See the module docstring."""
    return _convert(check_image(image), params)


def odg_events_published(image: np.ndarray, params: ODGParams = ODGParams()):
    """Shortcut: `(pos, neg, (a, b), kept)` in the published per-sample format."""
    r = odg_events(image, params)
    pos, neg = r.published()
    return pos, neg, r.shape, r.kept


def odg_events_batch(images, params: ODGParams = ODGParams(), threads: int = 1) -> list[ODGResult]:
    """Convert a list of images; with `threads > 1` the GIL-free kernel runs on a thread pool.

    Raises ValueError naming the index of the first bad image (all images are checked first).
    """
    checked = []
    for i, im in enumerate(images):
        try:
            checked.append(check_image(im))
        except ValueError as e:
            raise ValueError(f"image {i}: {e}") from None
    if threads <= 1:
        return [_convert(im, params) for im in checked]
    with ThreadPoolExecutor(threads) as ex:
        return list(ex.map(lambda im: _convert(im, params), checked))
