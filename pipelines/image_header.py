"""Image sizes read from file headers, before any decoding, for every format OpenCV decodes here.

`image_header(data)` returns `(format, height, width, pixels)`: `pixels` is the largest buffer,
in pixels, the decoder allocates for the file (the image itself, or a TIFF tile / strip, or a
GIF frame, when that is larger). It recognises the formats by the signatures OpenCV's decoders
check (`cv2.imdecode` picks its decoder the same way):

JPEG, PNG (and APNG), TIFF and BigTIFF, WebP (lossy, lossless, extended), BMP, PBM/PGM/PPM, PAM,
PFM, JPEG 2000 (JP2 boxes and raw codestreams), GIF, Radiance HDR, Sun raster and AVIF.

Anything else returns None, and `odg.pipelines.decode` refuses it without decoding: a format
whose size odg cannot read beforehand (OpenEXR, JPEG XL, ...) is never handed to the decoder.
Raises `Reject` for a recognised format whose header is cut short or malformed.
"""
from __future__ import annotations

import struct

from .errors import Reject

MAX_CHANNELS = 4          # OpenCV decodes at most 4 channels (TIFF, JPEG 2000); more is refused


def _u(fmt: str, data: bytes, at: int, what: str):
    size = struct.calcsize(fmt)
    if at < 0 or at + size > len(data):
        raise Reject(f"corrupt {what}: header cut short")
    return struct.unpack_from(fmt, data, at)[0]


def _jpeg(data: bytes):
    i, n = 2, len(data)
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
            return h, w
        if marker == 0xDA:
            break
        i += 2 + seg
    raise Reject("corrupt or truncated JPEG: no frame header")


def _png(data: bytes):
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise Reject("corrupt PNG: header cut short")
    w, h = struct.unpack(">II", data[16:24])
    return h, w


_TIFF_TYPES = {1: "B", 3: "H", 4: "I", 16: "Q"}       # BYTE, SHORT, LONG, LONG8


def _tiff(data: bytes):
    e = "<" if data[:2] == b"II" else ">"
    big = _u(e + "H", data, 2, "TIFF") == 43
    ifd = _u(e + "Q", data, 8, "TIFF") if big else _u(e + "I", data, 4, "TIFF")
    count = _u(e + "Q", data, ifd, "TIFF") if big else _u(e + "H", data, ifd, "TIFF")
    entry, first = (20, ifd + 8) if big else (12, ifd + 2)
    tags = {}
    for k in range(min(count, 4096)):
        at = first + k * entry
        tag, typ = _u(e + "H", data, at, "TIFF"), _u(e + "H", data, at + 2, "TIFF")
        n = _u(e + "Q", data, at + 4, "TIFF") if big else _u(e + "I", data, at + 4, "TIFF")
        if tag not in (256, 257, 258, 277, 278, 322, 323) or typ not in _TIFF_TYPES or n < 1:
            continue
        fmt = _TIFF_TYPES[typ]
        inline = struct.calcsize(fmt) * n <= (8 if big else 4)
        value_at = at + (12 if big else 8)
        if not inline:              # the first of several values (BitsPerSample per channel)
            value_at = _u(e + "Q", data, value_at, "TIFF") if big else _u(e + "I", data, value_at, "TIFF")
        tags[tag] = _u(e + fmt, data, value_at, "TIFF")
    if 256 not in tags or 257 not in tags:
        raise Reject("corrupt TIFF: no image width or height in its first directory")
    w, h = tags[256], tags[257]
    if tags.get(277, 1) > MAX_CHANNELS:
        raise Reject(f"TIFF with {tags[277]} samples per pixel (at most {MAX_CHANNELS} are decoded)")
    if 322 in tags or 323 in tags:          # the decoder's buffer holds one tile
        tile = tags.get(322, w) * tags.get(323, h)
    else:                                   # or one strip of RowsPerStrip rows
        tile = w * min(tags.get(278, h), h)
    return h, w, max(w * h, tile)


def _webp(data: bytes):
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise Reject("corrupt WebP: bad VP8 frame header")
        return _u("<H", data, 28, "WebP") & 0x3FFF, _u("<H", data, 26, "WebP") & 0x3FFF
    if chunk == b"VP8L":
        if _u("B", data, 20, "WebP") != 0x2F:
            raise Reject("corrupt WebP: bad VP8L signature")
        bits = _u("<I", data, 21, "WebP")
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    if chunk == b"VP8X":
        if len(data) < 30:
            raise Reject("corrupt WebP: header cut short")
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return h, w
    raise Reject(f"corrupt WebP: unknown first chunk {chunk!r}")


def _bmp(data: bytes):
    dib = _u("<I", data, 14, "BMP")
    if dib == 12:                               # OS/2 BITMAPCOREHEADER
        return _u("<H", data, 20, "BMP"), _u("<H", data, 18, "BMP")
    return abs(_u("<i", data, 22, "BMP")), abs(_u("<i", data, 18, "BMP"))


def _tokens(data: bytes, start: int, count: int, what: str) -> list[bytes]:
    """The first `count` whitespace-separated tokens after `start`, skipping `#` comments."""
    out, i, n = [], start, min(len(data), start + 4096)
    while len(out) < count:
        while i < n and data[i:i + 1].isspace():
            i += 1
        if i < n and data[i:i + 1] == b"#":
            while i < n and data[i:i + 1] not in (b"\n", b"\r"):
                i += 1
            continue
        j = i
        while j < n and not data[j:j + 1].isspace() and data[j:j + 1] != b"#":
            j += 1
        if j == i:
            raise Reject(f"corrupt {what}: header cut short")
        out.append(data[i:j])
        i = j
    return out


def _int(tok: bytes, what: str) -> int:
    if not tok.isdigit():
        raise Reject(f"corrupt {what}: {tok[:20]!r} is not a size")
    return int(tok)


def _pnm(data: bytes):
    w, h = _tokens(data, 2, 2, "PNM")
    return _int(h, "PNM"), _int(w, "PNM")


def _pam(data: bytes):
    fields, i = {}, 2
    end = data.find(b"ENDHDR", 0, 4096)
    if end < 0:
        raise Reject("corrupt PAM: no ENDHDR in the header")
    for line in data[i:end].splitlines():
        parts = line.split()
        if len(parts) >= 2 and not parts[0].startswith(b"#"):
            fields[parts[0]] = parts[1]
    if b"WIDTH" not in fields or b"HEIGHT" not in fields:
        raise Reject("corrupt PAM: no WIDTH or HEIGHT")
    if _int(fields.get(b"DEPTH", b"1"), "PAM") > MAX_CHANNELS:
        raise Reject(f"PAM of depth {int(fields[b'DEPTH'])} (at most {MAX_CHANNELS} channels are decoded)")
    return _int(fields[b"HEIGHT"], "PAM"), _int(fields[b"WIDTH"], "PAM")


def _box(data: bytes, at: int, end: int, what: str):
    """(type, payload start, box end) of the ISO box at `at` (JPEG 2000 and AVIF files)."""
    size = _u(">I", data, at, what)
    typ = data[at + 4:at + 8]
    head = 8
    if size == 1:
        size, head = _u(">Q", data, at + 8, what), 16
    elif size == 0:
        size = end - at
    if size < head:
        raise Reject(f"corrupt {what}: bad box size")
    return typ, at + head, min(at + size, end)


def _boxes(data: bytes, start: int, end: int, what: str):
    at = start
    while at + 8 <= end:
        typ, body, stop = _box(data, at, end, what)
        yield typ, body, stop
        at = stop


def _j2k_siz(data: bytes, at: int):
    """(h, w) of a JPEG 2000 codestream's SIZ segment; `at` points at its SOC marker."""
    if data[at:at + 4] != b"\xff\x4f\xff\x51":
        raise Reject("corrupt JPEG 2000: the codestream does not start with SOC, SIZ")
    xsiz, ysiz, xo, yo = (_u(">I", data, at + 8 + 4 * k, "JPEG 2000") for k in range(4))
    comps = _u(">H", data, at + 40, "JPEG 2000")
    if comps > MAX_CHANNELS:
        raise Reject(f"JPEG 2000 with {comps} components (at most {MAX_CHANNELS} are decoded)")
    if xo > xsiz or yo > ysiz:
        raise Reject("corrupt JPEG 2000: image offset beyond its size")
    return ysiz - yo, xsiz - xo


def _jpeg2000(data: bytes):
    if data[:4] == b"\xff\x4f\xff\x51":
        return _j2k_siz(data, 0)
    sizes = []
    for typ, body, stop in _boxes(data, 0, len(data), "JPEG 2000"):
        if typ == b"jp2h":
            for t2, b2, _ in _boxes(data, body, stop, "JPEG 2000"):
                if t2 == b"ihdr":
                    h, w = _u(">I", data, b2, "JPEG 2000"), _u(">I", data, b2 + 4, "JPEG 2000")
                    if _u(">H", data, b2 + 8, "JPEG 2000") > MAX_CHANNELS:
                        raise Reject(f"JPEG 2000 with more than {MAX_CHANNELS} components")
                    sizes.append((h, w))
        elif typ == b"jp2c":
            sizes.append(_j2k_siz(data, body))
            break
    if not sizes:
        raise Reject("corrupt JPEG 2000: no image header box")
    return max(sizes, key=lambda s: s[0] * s[1])


def _gif(data: bytes):
    w, h = _u("<H", data, 6, "GIF"), _u("<H", data, 8, "GIF")
    flags = _u("B", data, 10, "GIF")
    i = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while True:
        block = _u("B", data, i, "GIF")
        if block == 0x21:                      # extension: label, then sub-blocks
            i += 2
            while (k := _u("B", data, i, "GIF")) != 0:
                i += 1 + k
            i += 1
        elif block == 0x2C:                    # the first frame: left, top, width, height
            left, top, fw, fh = (_u("<H", data, i + 1 + 2 * k, "GIF") for k in range(4))
            return h, w, max(w * h, (left + fw) * (top + fh))
        else:
            raise Reject("corrupt GIF: no image before the end of its header blocks")


def _hdr(data: bytes):
    end = data.find(b"\n\n", 0, 65536)
    if end < 0:
        raise Reject("corrupt HDR: header cut short")
    line = data[end + 2:end + 2 + 64].split(b"\n", 1)[0].split()
    if len(line) != 4 or line[0][1:] not in (b"X", b"Y") or line[2][1:] not in (b"X", b"Y"):
        raise Reject("corrupt HDR: no resolution line")
    first, second = _int(line[1], "HDR"), _int(line[3], "HDR")
    return (first, second) if line[0][1:] == b"Y" else (second, first)


def _sunras(data: bytes):
    return _u(">I", data, 8, "Sun raster"), _u(">I", data, 4, "Sun raster")


_AVIF_CONTAINERS = (b"meta", b"iprp", b"ipco")


def _avif(data: bytes):
    sizes = []

    def walk(start, end):
        for typ, body, stop in _boxes(data, start, end, "AVIF"):
            if typ == b"ispe":
                sizes.append((_u(">I", data, body + 8, "AVIF"), _u(">I", data, body + 4, "AVIF")))
            elif typ in _AVIF_CONTAINERS:
                walk(body + (4 if typ == b"meta" else 0), stop)   # meta is a full box
    walk(0, len(data))
    if not sizes:
        raise Reject("AVIF without an image size property (ispe): its size cannot be read before decoding")
    return max(sizes, key=lambda s: s[0] * s[1])


def _is_avif(data: bytes) -> bool:
    if data[4:8] != b"ftyp" or len(data) < 16:
        return False
    size = struct.unpack(">I", data[:4])[0]
    brands = [data[8:12]] + [data[k:k + 4] for k in range(16, min(size, len(data), 256) - 3, 4)]
    return b"avif" in brands or b"avis" in brands


def _pnm_kind(data: bytes) -> str | None:
    if len(data) < 3 or data[:1] != b"P" or not data[2:3].isspace():
        return None
    return {b"1": "pnm", b"2": "pnm", b"3": "pnm", b"4": "pnm", b"5": "pnm", b"6": "pnm", b"7": "pam",
            b"F": "pfm", b"f": "pfm"}.get(data[1:2])


def image_header(data: bytes) -> tuple[str, int, int, int] | None:
    """`(format, height, width, pixels)` from an image's header, or None when no format odg
    knows matches (see the module docstring). Raises Reject for a malformed header."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        fmt, size = "png", _png(data)
    elif data[:3] == b"\xff\xd8\xff":
        fmt, size = "jpeg", _jpeg(data)
    elif data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        fmt, size = "tiff", _tiff(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        fmt, size = "webp", _webp(data)
    elif data[:2] == b"BM":
        fmt, size = "bmp", _bmp(data)
    elif (kind := _pnm_kind(data)) is not None:
        fmt, size = kind, {"pnm": _pnm, "pam": _pam, "pfm": _pnm}[kind](data)
    elif data[:4] == b"\xff\x4f\xff\x51" or data[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n":
        fmt, size = "jpeg2000", _jpeg2000(data)
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        fmt, size = "gif", _gif(data)
    elif data.startswith((b"#?RADIANCE", b"#?RGBE")):
        fmt, size = "hdr", _hdr(data)
    elif data[:4] == b"\x59\xa6\x6a\x95":
        fmt, size = "sunras", _sunras(data)
    elif _is_avif(data):
        fmt, size = "avif", _avif(data)
    else:
        return None
    h, w = size[0], size[1]
    return fmt, h, w, size[2] if len(size) == 3 else h * w
