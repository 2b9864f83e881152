"""Decoding input images as the published generator did (`cv2.imread(path, cv2.IMREAD_COLOR)`),
with every failure turned into a `Reject` that says why.

The size check reads the image header before decoding (`odg.pipelines.image_header`, every
format OpenCV decodes here), so a decompression bomb is refused without allocating it: images
above `MAX_PIXELS` (64 Mi pixels; ILSVRC2012's largest image has about 17 M) are rejected, and so
is data in a format whose size cannot be read beforehand. CMYK JPEGs and PNG files named `.JPEG`
(both occur in ILSVRC2012) decode like any other image, as `cv2.imread` does.
"""
from __future__ import annotations

import cv2
import numpy as np

from .errors import Reject
from .image_header import image_header

MAX_PIXELS = 1 << 26


def _truncated(fmt: str, data: bytes) -> bool:
    if fmt == "jpeg":
        # 0xFFDA (start of scan) and 0xFFD9 (end of image) cannot occur inside entropy-coded data
        return data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda")
    if fmt == "png":
        return b"IEND" not in data[-64:]
    return False


def check_header(data: bytes, max_pixels: int = MAX_PIXELS) -> str:
    """The format of encoded image bytes, after checking their header: raises Reject for empty
    data, an unknown format, a zero-sized image, one above `max_pixels` or a cut-short file."""
    if len(data) == 0:
        raise Reject("empty file (0 bytes)")
    head = image_header(data)
    if head is None:
        raise Reject("not an image (no format whose size odg can read before decoding: JPEG, PNG, TIFF, "
                     "WebP, BMP, PNM/PAM/PFM, JPEG 2000, GIF, HDR, Sun raster, AVIF)")
    fmt, h, w, pixels = head
    if h == 0 or w == 0:
        raise Reject(f"{fmt.upper()} header gives a zero-sized image ({h} x {w})")
    if pixels > max_pixels:
        what = f"{w} x {h} = {h * w} pixels" if pixels == h * w else f"{w} x {h}, a {pixels}-pixel tile or frame"
        raise Reject(f"image too large: {what} > limit {max_pixels} (refused before decoding)")
    if _truncated(fmt, data):
        raise Reject(f"truncated {fmt.upper()}: the file ends before the image data does")
    return fmt


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Decode encoded image bytes to 8-bit BGR `H x W x 3` (grey becomes 3 equal channels, alpha
    dropped), or with `flags=cv2.IMREAD_GRAYSCALE` to grey `H x W`.

    Raises Reject with the reason: empty, not an image, truncated, corrupt, or too large.
    """
    fmt = check_header(data, max_pixels)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if img is None:
        raise Reject(f"corrupt {fmt.upper()}: the decoder failed")
    if img.shape[0] * img.shape[1] > max_pixels:       # the header and the decoder disagree
        raise Reject(f"image too large: {img.shape[1]} x {img.shape[0]} pixels > limit {max_pixels}")
    return img


def read_image(path: str, max_pixels: int = MAX_PIXELS, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """Read and decode an image file (see `decode_image`); unreadable files raise Reject."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Reject(f"cannot read file: {e.strerror or e}") from None
    return decode_image(data, max_pixels, flags)
