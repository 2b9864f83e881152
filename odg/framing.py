"""A source image framed as the published ES-ImageNet loader frames its events.

The loader shifts a sample's events by the centring offset and crops the `frame_size` window at
`frame_offset` (`ODGParams.frame_shift`). `frame_image` puts the source image in the same place,
so that an image and its event frames line up pixel for pixel (the report's gallery, training's
`rgb` input): the image resized to the sample's `(a, b)` is drawn at canvas offset (1, 1), the
centre of the published trajectory's offsets.
"""
from __future__ import annotations

import numpy as np

from .params import ODGParams

IMAGE_ORIGIN = (1, 1)          # canvas position of the resized image's pixel (0, 0)


def frame_image(image: np.ndarray, shape, params: ODGParams = ODGParams()) -> np.ndarray:
    """`image` (uint8 `H x W x C`, any size) resized to `shape` = (a, b) with `cv2.INTER_AREA` and
    framed: uint8 `[S, S, C]` (S = `params.frame_size`), zero where the image does not reach."""
    import cv2
    a, b = (int(v) for v in shape)
    img = cv2.resize(image, (b, a), interpolation=cv2.INTER_AREA)
    if img.ndim == 2:
        img = img[:, :, None]
    S = params.frame_size
    out = np.zeros((S, S, img.shape[2]), np.uint8)
    r0, c0 = params.frame_shift(a, b, True, IMAGE_ORIGIN)
    rs, cs = max(0, -r0), max(0, -c0)
    rd, cd = max(0, r0), max(0, c0)
    h, w = min(a - rs, S - rd), min(b - cs, S - cd)
    if h > 0 and w > 0:
        out[rd:rd + h, cd:cd + w] = img[rs:rs + h, cs:cs + w]
    return out

