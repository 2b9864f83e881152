"""Decoding input images as the published generator did (`cv2.imread(path, cv2.IMREAD_COLOR)`),
with every failure turned into a `Reject` that says why.

The size check reads the image header before decoding, so a decompression bomb is refused
without allocating it: images above `MAX_PIXELS` (64 Mi pixels; ILSVRC2012's largest image has
about 17 M) are rejected. JPEG and PNG headers are parsed here; other formats OpenCV reads are
checked after decoding. CMYK JPEGs and PNG files named `.JPEG` (both occur in ILSVRC2012) decode
like any other image, as `cv2.imread` does.
"""
from __future__ import annotations

import struct

import cv2
import numpy as np

from .errors import Reject

MAX_PIXELS = 1 << 26


def image_header(data: bytes) -> tuple[str, int, int] | None:
    """`(format, height, width)` from a JPEG or PNG header, or None for another/unknown format.

    Raises Reject for a JPEG or PNG whose header is cut short.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise Reject("corrupt PNG: header cut short")
        w, h = struct.unpack(">II", data[16:24])
        return "png", h, w
    if data[:2] == b"\xff\xd8":
        i = 2
        n = len(data)
        while i + 4 <= n:
            if data[i] != 0xFF:
                raise Reject("corrupt JPEG: bad marker in header")
            marker = data[i + 1]
            if marker == 0xFF:          # fill byte
                i += 1
                continue
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            seg = struct.unpack(">H", data[i + 2:i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                if i + 9 > n:
                    break
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return "jpeg", h, w
            if marker == 0xDA:
                break
            i += 2 + seg
        raise Reject("corrupt or truncated JPEG: no frame header")
    return None


def _truncated(fmt: str, data: bytes) -> bool:
    if fmt == "jpeg":
        # 0xFFDA (start of scan) and 0xFFD9 (end of image) cannot occur inside entropy-coded data
        return data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda")
    if fmt == "png":
        return b"IEND" not in data[-64:]
    return False


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to 8-bit BGR `H x W x 3` (grey becomes 3 equal channels, alpha dropped).

    Raises Reject with the reason: empty, not an image, truncated, corrupt, or too large.
    """
    if len(data) == 0:
        raise Reject("empty file (0 bytes)")
    head = image_header(data)
    if head is not None:
        fmt, h, w = head
        if h == 0 or w == 0:
            raise Reject(f"{fmt.upper()} header gives a zero-sized image ({h} x {w})")
        if h * w > max_pixels:
            raise Reject(f"image too large: {w} x {h} = {h * w} pixels > limit {max_pixels}")
        if _truncated(fmt, data):
            raise Reject(f"truncated {fmt.upper()}: the file ends before the image data does")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        if head is None:
            raise Reject("not an image (OpenCV recognises no image format in it)")
        raise Reject(f"corrupt {head[0].upper()}: the decoder failed")
    if img.shape[0] * img.shape[1] > max_pixels:
        raise Reject(f"image too large: {img.shape[1]} x {img.shape[0]} pixels > limit {max_pixels}")
    return img


def read_image(path: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read and decode an image file (see `decode_image`); unreadable files raise Reject."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Reject(f"cannot read file: {e.strerror or e}") from None
    return decode_image(data, max_pixels)
