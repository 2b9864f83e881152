"""Real decompression bombs and size-lying headers, small on disk, huge when decoded."""
import io
import struct
import zlib

import cv2
import numpy as np


def real_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A BGR image with structure (so that every encoder has something to code)."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8), (w, h),
                     interpolation=cv2.INTER_LINEAR)
    return img


def jpeg_claiming(h: int, w: int) -> bytes:
    """A real JPEG whose frame header claims h x w: libjpeg decodes it in full (grey fill after
    the data runs out), so it really takes h x w x 3 bytes."""
    ok, buf = cv2.imencode(".jpg", real_image(64, 64))
    data = bytearray(buf.tobytes())
    i = data.index(b"\xff\xc0")
    data[i + 5:i + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def tiff_deflate_bomb(h: int = 30000, w: int = 30000, rows: int = 256) -> bytes:
    """A valid RGB TIFF of h x w zero pixels: every strip points at one deflated strip of zeros,
    so the file is tens of KB and decodes to h x w x 3 bytes."""
    strip = zlib.compress(bytes(w * 3 * rows), 9)
    n = -(-h // rows)
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 8), (262, 3, 1, 2),
               (273, 4, n, None), (277, 3, 1, 3), (278, 4, 1, rows), (279, 4, n, None)]
    ifd_at = 8
    ifd_size = 2 + 12 * len(entries) + 4
    offsets_at = ifd_at + ifd_size
    counts_at = offsets_at + 4 * n
    data_at = counts_at + 4 * n
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_at) + struct.pack("<H", len(entries)))
    for tag, typ, count, value in entries:
        if tag == 273:
            value = offsets_at
        elif tag == 279:
            value = counts_at
        out += struct.pack("<HHI", tag, typ, count)
        out += struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value)
    out += struct.pack("<I", 0)
    out += struct.pack(f"<{n}I", *([data_at] * n)) + struct.pack(f"<{n}I", *([len(strip)] * n))
    return bytes(out + strip)


def webp_claiming(h: int, w: int) -> bytes:
    """A lossless WebP whose header claims h x w (at most 16384 x 16384)."""
    ok, buf = cv2.imencode(".webp", real_image(32, 32), [cv2.IMWRITE_WEBP_QUALITY, 101])
    data = bytearray(buf.tobytes())
    assert data[12:16] == b"VP8L"
    bits = struct.unpack("<I", data[21:25])[0] & ~((1 << 28) - 1)
    data[21:25] = struct.pack("<I", bits | (w - 1) | ((h - 1) << 14))
    return bytes(data)


def png_claiming(h: int, w: int) -> bytes:
    ok, buf = cv2.imencode(".png", real_image(32, 32))
    data = bytearray(buf.tobytes())
    data[16:24] = struct.pack(">II", w, h)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def gif_claiming(h: int, w: int) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(real_image(32, 32)[:, :, ::-1]).save(buf, format="GIF")
    data = bytearray(buf.getvalue())
    data[6:10] = struct.pack("<HH", w, h)
    return bytes(data)


def bmp_claiming(h: int, w: int) -> bytes:
    ok, buf = cv2.imencode(".bmp", real_image(32, 32))
    data = bytearray(buf.tobytes())
    data[18:26] = struct.pack("<ii", w, h)
    return bytes(data)


BOMBS = {  # name -> (bytes, decoded pixels it claims)
    "jpeg_30000.JPEG": (lambda: jpeg_claiming(30000, 30000), 30000 * 30000),
    "tiff_deflate.JPEG": (lambda: tiff_deflate_bomb(), 30000 * 30000),
    "webp_16384.JPEG": (lambda: webp_claiming(16384, 16384), 16384 * 16384),
    "png_40000.JPEG": (lambda: png_claiming(40000, 40000), 40000 * 40000),
    "gif_65535.JPEG": (lambda: gif_claiming(65535, 65535), 65535 * 65535),
    "bmp_30000.JPEG": (lambda: bmp_claiming(30000, 30000), 30000 * 30000),
}


def _zeros_deflated(n: int) -> bytes:
    """A raw deflate stream (not final) of n zero bytes, built from one compressed 3 MiB piece
    repeated (each piece ends in a full flush, so pieces concatenate)."""
    chunk = 3 << 20
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = c.compress(bytes(chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = c.compress(bytes(n % chunk)) + c.flush(zlib.Z_FULL_FLUSH)
    return piece * (n // chunk) + tail


def npz_bomb(path, members: dict) -> None:
    """An .npz (a zip of .npy members) whose members `name -> (shape, descr)` hold zeros, written
    by hand so that gigabytes of declared data take a few MB: `np.load` inflates them in full."""
    import numpy.lib.format as npf
    local, central = bytearray(), bytearray()
    for name, (shape, descr) in members.items():
        head = io.BytesIO()
        npf.write_array_header_1_0(head, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
        header = head.getvalue()
        size = len(header) + int(np.prod(shape)) * np.dtype(descr).itemsize
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        stream = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH) + _zeros_deflated(size - len(header)) + b"\x03\x00"
        fname = f"{name}.npy".encode()
        fields = struct.pack("<HHHHHIII", 20, 0, 8, 0, 0x21, 0, len(stream), size)   # CRC left 0
        central += b"PK\x01\x02" + struct.pack("<H", 20) + fields + struct.pack("<HHHHHII", len(fname), 0, 0, 0, 0, 0,
                                                                               len(local)) + fname
        local += b"PK\x03\x04" + fields + struct.pack("<HH", len(fname), 0) + fname + stream
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(members), len(members), len(central), len(local), 0)
    with open(path, "wb") as f:
        f.write(local + central + end)
