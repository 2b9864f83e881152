"""Image sizes read from headers, for every format OpenCV decodes here, before any decoding."""
import io

import cv2
import numpy as np
import pytest

from odg.pipelines.decode import check_header, decode_image
from odg.pipelines.errors import Reject
from odg.pipelines.image_header import image_header

from .bombs import BOMBS, real_image


def _pil(fmt, **kw):
    def encode(img):
        from PIL import Image
        buf = io.BytesIO()
        Image.fromarray(img[:, :, ::-1]).save(buf, format=fmt, **kw)
        return buf.getvalue()
    return encode


def _cv(ext, *params, grey=False, floats=False):
    def encode(img):
        src = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if grey else img
        ok, buf = cv2.imencode(ext, src.astype(np.float32) / 255 if floats else src, list(params))
        assert ok
        return buf.tobytes()
    return encode


def _tifffile(**kw):
    def encode(img):
        import tifffile
        buf = io.BytesIO()
        tifffile.imwrite(buf, img, **kw)
        return buf.getvalue()
    return encode


ENCODERS = {  # every format the decoder accepts, in its variants
    "jpeg": _cv(".jpg"), "png": _cv(".png"), "tiff": _cv(".tif"),
    "tiff-deflate": _cv(".tiff", cv2.IMWRITE_TIFF_COMPRESSION, 8), "tiff-bigendian": _tifffile(byteorder=">"),
    "tiff-tiled": _tifffile(tile=(32, 32), compression="zlib"), "bigtiff": _tifffile(bigtiff=True, rowsperstrip=7),
    "webp-lossy": _cv(".webp", cv2.IMWRITE_WEBP_QUALITY, 80), "webp-lossless": _cv(".webp", cv2.IMWRITE_WEBP_QUALITY, 101),
    "webp-extended": _pil("WEBP", quality=80, exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00"),
    "bmp": _cv(".bmp"), "ppm": _cv(".ppm"), "pgm": _cv(".pgm", grey=True), "pbm": _cv(".pbm", grey=True),
    "pam": _cv(".pam"), "pfm": _cv(".pfm", floats=True), "jp2": _cv(".jp2"), "j2k": _pil("JPEG2000", no_jp2=True),
    "gif": _cv(".gif"), "hdr": _cv(".hdr", floats=True), "sunras": _cv(".ras"), "avif": _cv(".avif"),
}


@pytest.mark.parametrize("fmt", sorted(ENCODERS))
def test_header_gives_the_decoded_size(fmt):
    for h, w in ((37, 53), (120, 41)):
        data = ENCODERS[fmt](real_image(h, w))
        kind, hh, ww, pixels = image_header(data)
        assert (hh, ww) == (h, w) and pixels >= h * w, (fmt, image_header(data))
        assert decode_image(data, max_pixels=pixels).shape[:2] == (h, w)
        with pytest.raises(Reject, match="too large.*refused before decoding"):
            check_header(data, max_pixels=pixels - 1)


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bombs_refused_from_the_header(name):
    make, claimed = BOMBS[name]
    data = make()
    assert len(data) < 64_000 and image_header(data)[3] == claimed
    with pytest.raises(Reject, match=f"= {claimed} pixels > limit 67108864 \\(refused before decoding\\)"):
        decode_image(data)


def test_tiff_tile_and_samples_bounded():
    # a small image whose tiles are huge: the decoder's tile buffer is what counts
    data = ENCODERS["tiff-tiled"](real_image(64, 64))
    kind, h, w, pixels = image_header(data)
    assert pixels == 64 * 64
    big = _tifffile(tile=(4096, 4096))(real_image(64, 64))
    assert image_header(big)[3] == 4096 * 4096
    with pytest.raises(Reject, match="tile or frame"):
        check_header(big, max_pixels=1 << 20)
    import tifffile
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((8, 8, 6), np.uint8), photometric="minisblack", planarconfig="contig")
    with pytest.raises(Reject, match="6 samples per pixel"):
        image_header(buf.getvalue())


@pytest.mark.parametrize("data,why", [
    (b"v/1\x01\x02\x00\x00\x00" + bytes(200), "not an image"),                  # OpenEXR: size not read, refused
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n" + bytes(200), "not an image"),           # JPEG XL container
    (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(200), "not an image"),   # an MP4
    (b"hello world\n" * 10, "not an image"),
    (b"", "empty file"),
])
def test_unknown_formats_refused_undecoded(data, why):
    with pytest.raises(Reject, match=why):
        check_header(data)


@pytest.mark.parametrize("fmt", sorted(ENCODERS))
def test_damaged_headers_are_rejects_never_crashes(fmt):
    """Cut short or with flipped bytes, a header gives a Reject (or no format), never another error."""
    data = ENCODERS[fmt](real_image(64, 48))
    rng = np.random.default_rng(0)
    variants = [data[:n] for n in (3, 12, 20, 30, 60)]
    for _ in range(30):
        d = bytearray(data[:400])
        d[int(rng.integers(0, 64))] ^= int(rng.integers(1, 256))
        variants.append(bytes(d))
    for d in variants:
        try:
            image_header(d)
        except Reject:
            pass
