"""Antialiased bilinear resizing of 8-bit images, as torchvision resizes uint8 tensors on the CPU.

torchvision's `Resize` on a uint8 image tensor (`v2.PILToTensor()` then `v2.Resize(...)`, the I2E
training and conversion pipelines) calls `torch.nn.functional.interpolate(mode="bilinear",
antialias=True, align_corners=False)` on the uint8 tensor itself on CPUs with AVX2, where PyTorch
runs Pillow-SIMD's integer algorithm:

- per output index `i` of an axis resized from `n` to `m` (scale `s = n / m`, double precision):
  support `max(s, 1)`, centre `s (i + 0.5)`, source indices `[xmin, xmin + xsize)` with
  `xmin = max(int(centre - support + 0.5), 0)`, `xsize = min(int(centre + support + 0.5), n) - xmin`,
  triangle weights `max(0, 1 - |(j + xmin - centre + 0.5) / max(s, 1)|)` normalised to sum 1;
- the weights as int16 at a precision `p` (the largest `p <= 22` with
  `int(0.5 + w_max 2^(p+1)) < 2^15` not holding at `p + 1`), `w16 = int(0.5 + w 2^p)`;
- each output value `clip((2^(p-1) + sum(pixel * w16)) >> p, 0, 255)`, the horizontal pass first
  (into a uint8 image), then the vertical one; an axis of unchanged size is not resampled.

`resize_aa(image, h, w)` is that resize; `resize_window(...)` computes only a window of the resized
image (the centre crop after `Resize(256)`) of a box of the image (a random resized crop), the same
values. `resized_shape_short(h, w, s)` is
torchvision's `Resize(s)` output size. Images are uint8 `H x W x C` (any channel order: each channel
is resized alone); all functions are pure NumPy/Numba.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numba as nb
import numpy as np


@lru_cache(maxsize=512)
def aa_weights(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """`(xmin int64 [m], xsize int64 [m], w16 int32 [m, K], precision)` of resizing an axis n -> m.

    Read-only arrays (cached): PyTorch's `_compute_indices_int16_weights_aa` for the bilinear filter.
    """
    if n < 1 or m < 1:
        raise ValueError(f"cannot resize an axis of {n} pixels to {m}")
    scale = n / m
    support = scale if scale >= 1.0 else 1.0
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    K = int(np.ceil(support)) * 2 + 1
    xmin = np.zeros(m, np.int64)
    xsize = np.zeros(m, np.int64)
    w = np.zeros((m, K), np.float64)
    for i in range(m):
        centre = scale * (i + 0.5)
        lo = max(int(centre - support + 0.5), 0)
        size = min(int(centre + support + 0.5), n) - lo
        xmin[i], xsize[i] = lo, size
        total = 0.0
        for j in range(size):
            x = abs((j + lo - centre + 0.5) * invscale)
            v = 1.0 - x if x < 1.0 else 0.0
            w[i, j] = v
            total += v
        if total != 0.0:
            w[i, :size] /= total
    w_max = float(w.max())
    p = 0
    while p < 22 and int(0.5 + w_max * (1 << (p + 1))) < (1 << 15):
        p += 1
    w16 = np.floor(0.5 + w * (1 << p)).astype(np.int32)     # weights are >= 0: int(0.5 + v 2^p)
    for a in (xmin, xsize, w16):
        a.flags.writeable = False
    return xmin, xsize, w16, p


@nb.njit(nogil=True, cache=True)
def _resample_rows(src, lo, C, xmin, xsize, w16, p, idx, out):
    """Resampling along the first axis of a 2-D uint8 array whose rows are `(index, channel)` pairs
    (row `(i - lo) C + c` is input index i, channel c; C = 1: one row per index): output row
    `k C + c` = clip((2^(p-1) + sum_j src[(xmin[i] + j - lo) C + c] * w16[i, j]) >> p, 0, 255),
    i = idx[k]. Vectorised along the rows: two taps per pass over an int32 row of sums (int16
    products added in pairs, the form x86's multiply-add-pairs instruction computes), the last
    pass rounding, clipping and storing. The weights are < 2^15 and the pixels < 2^8, so every
    partial sum is exact in int32."""
    L = src.shape[1]
    half = np.int32(1 << (p - 1)) if p > 0 else np.int32(0)
    acc = np.empty(L, np.int32)
    for k in range(idx.shape[0]):
        i = idx[k]
        n = xsize[i]
        for c in range(C):
            base = (xmin[i] - lo) * C + c
            dst = out[k * C + c]
            for q in range(L):
                acc[q] = half
            for j in range(0, n - 1, 2):
                a = src[base + j * C]
                b = src[base + (j + 1) * C]
                wa = np.int32(np.int16(w16[i, j]))
                wb = np.int32(np.int16(w16[i, j + 1]))
                if j + 2 < n:
                    for q in range(L):
                        acc[q] += np.int32(np.int16(a[q])) * wa + np.int32(np.int16(b[q])) * wb
                else:
                    for q in range(L):
                        v = (acc[q] + np.int32(np.int16(a[q])) * wa + np.int32(np.int16(b[q])) * wb) >> p
                        dst[q] = min(max(v, 0), 255)
            if n % 2:
                a = src[base + (n - 1) * C]
                wa = np.int32(w16[i, n - 1])
                for q in range(L):
                    v = (acc[q] + np.int32(a[q]) * wa) >> p
                    dst[q] = min(max(v, 0), 255)


def _resize(region, out_h, out_w, rows, cols) -> np.ndarray:
    """Output rows `rows` x cols `cols` of the resize of a uint8 `h x w x C` image: uint8
    `[len(rows), len(cols), C]`. The horizontal pass runs along the rows of the transposed image
    (seen as 2-D, `(w C) x h`: one OpenCV transpose, no channel split), the vertical one along rows."""
    h, w, C = region.shape
    if h != out_h:                                    # input rows the output rows read
        ymin, ysize, wy, py = aa_weights(h, out_h)
        r0, r1 = int(ymin[rows[0]]), int(ymin[rows[-1]] + ysize[rows[-1]])
    else:
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
    if w != out_w:
        xmin, xsize, wx, px = aa_weights(w, out_w)
        t = cv2.transpose(region[r0:r1].reshape(r1 - r0, w * C))            # [(x, c), row]
        ht = np.empty((len(cols) * C, r1 - r0), np.uint8)
        _resample_rows(t, 0, C, xmin, xsize, wx, px, cols, ht)
        mid = cv2.transpose(ht)                                              # [row, (x, c)]
    else:
        mid = np.ascontiguousarray(region[r0:r1, cols[0]:cols[-1] + 1]).reshape(r1 - r0, len(cols) * C)
    if h != out_h:
        out = np.empty((len(rows), mid.shape[1]), np.uint8)
        _resample_rows(mid, r0, 1, ymin, ysize, wy, py, rows, out)
        mid = out
    return mid.reshape(len(rows), len(cols), C)


def check_u8_image(image) -> np.ndarray:
    """An 8-bit image as uint8 `H x W x C` (a 2-D grey image gets C = 1); ValueError otherwise."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image must be 8-bit (uint8), got dtype {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or 0 in image.shape:
        raise ValueError(f"image must be H x W or H x W x C with no empty axis, got shape {image.shape}")
    return image


def _boxes(image, out_h, out_w, window, box):
    H, W = image.shape[:2]
    bt, bl, bh, bw = (0, 0, H, W) if box is None else (int(v) for v in box)
    if bh < 1 or bw < 1 or bt < 0 or bl < 0 or bt + bh > H or bl + bw > W:
        raise ValueError(f"box {(bt, bl, bh, bw)} does not lie inside the {H} x {W} image")
    if out_h < 1 or out_w < 1:
        raise ValueError(f"cannot resize to {out_h} x {out_w}")
    wt, wl, wh, ww = (0, 0, out_h, out_w) if window is None else (int(v) for v in window)
    if wh < 1 or ww < 1 or wt < 0 or wl < 0 or wt + wh > out_h or wl + ww > out_w:
        raise ValueError(f"window {(wt, wl, wh, ww)} does not lie inside the {out_h} x {out_w} output")
    return (bt, bl, bh, bw), np.arange(wt, wt + wh, dtype=np.int64), np.arange(wl, wl + ww, dtype=np.int64)


def resize_window(image, out_h: int, out_w: int, window=None, box=None) -> np.ndarray:
    """Window `(top, left, height, width)` of the antialiased bilinear resize to `out_h x out_w` of
    `box` `(top, left, height, width)` of `image` (default: all of it): uint8 `[height, width, C]`,
    equal to `resize_aa(image[box], out_h, out_w)[window]`. Only the window is computed."""
    image = check_u8_image(image)
    (bt, bl, bh, bw), rows, cols = _boxes(image, out_h, out_w, window, box)
    return _resize(image[bt:bt + bh, bl:bl + bw], out_h, out_w, rows, cols)


def resize_aa(image, out_h: int, out_w: int) -> np.ndarray:
    """The whole antialiased bilinear resize of a uint8 `H x W x C` image to `out_h x out_w x C`."""
    return resize_window(image, out_h, out_w)


def resized_shape_short(h: int, w: int, size: int) -> tuple[int, int]:
    """torchvision `Resize(size)` (an int): the short side becomes `size`, the long side
    `int(size * long / short)`."""
    if h <= w:
        return size, int(size * w / h)
    return int(size * h / w), size


def centre_crop_anchor(h: int, w: int, size: int) -> tuple[int, int]:
    """torchvision `CenterCrop(size)`'s top-left corner on an `h x w` image (no padding: `size <= h, w`)."""
    if size > h or size > w:
        raise ValueError(f"a {size} x {size} centre crop does not fit a {h} x {w} image")
    return int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
