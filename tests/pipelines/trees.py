"""Real ILSVRC2012-like input trees for the pipeline tests (real photographs, real bad files)."""
import io
import os
import shutil
import tarfile

import cv2
import numpy as np

DATA = os.path.join(os.path.dirname(__file__), "..", "data")
VEC = os.path.join(DATA, "odg")
WNID0, WNID1, WNID2 = "n01440764", "n01443537", "n01484850"      # class indices 0, 1, 2
VECTOR_LAYOUT = {WNID0: ["astronaut", "cell", "clock_motion", "page"], WNID1: ["coffee"]}


def vector_tree(root):
    """train/<wnid>/ with the test-vector images renamed .JPEG (PNG content, as ILSVRC2012's one PNG)."""
    for wnid, stems in VECTOR_LAYOUT.items():
        os.makedirs(os.path.join(root, "train", wnid), exist_ok=True)
        for s in stems:
            shutil.copy(os.path.join(VEC, "images", s + ".png"), os.path.join(root, "train", wnid, s + ".JPEG"))
    return root


def real_jpeg(name="astronaut", scale=1.0, quality=90) -> bytes:
    img = cv2.imread(os.path.join(VEC, "images", name + ".png"))
    if scale != 1.0:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def slow_jpeg_tree(root, stems=("astronaut", "coffee", "page", "cell", "astronaut", "coffee")):
    """train/ of two classes, two large real JPEGs per stem and class (about 100 ms each to convert),
    so that a build can be interrupted mid-way."""
    for k, wnid in enumerate((WNID0, WNID1)):
        d = os.path.join(root, "train", wnid)
        os.makedirs(d)
        for i, name in enumerate(stems):
            for flip in (0, 1):
                with open(os.path.join(d, f"{wnid}_{i}{flip}.JPEG"), "wb") as f:
                    f.write(real_jpeg(name, scale=4.0 + 0.5 * i + k, quality=95 - flip))
    return root


def cmyk_jpeg() -> bytes:
    from PIL import Image
    rgb = cv2.cvtColor(cv2.imread(os.path.join(VEC, "images", "coffee.png")), cv2.COLOR_BGR2RGB)
    out = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(out, format="JPEG", quality=92)
    return out.getvalue()


def huge_png_header(w=100_000, h=100_000) -> bytes:
    """A PNG whose header claims w x h pixels (refused before any decoding)."""
    import struct
    import zlib
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


BAD_FILES = {  # name -> (bytes, reason fragment)
    "zero.JPEG": (b"", "empty file"),
    "notimage.JPEG": (b"this is a text file, not an image\n" * 20, "not an image"),
    "corrupt.JPEG": (b"\xff\xd8\xff\xe0 not really a jpeg", "corrupt"),
    "huge.JPEG": (huge_png_header(), "too large"),
}


def bad_tree(root):
    """The vector tree plus every kind of bad input, in class 2, and a CMYK JPEG, in class 1."""
    vector_tree(root)
    d2 = os.path.join(root, "train", WNID2)
    os.makedirs(d2, exist_ok=True)
    for name, (data, _) in BAD_FILES.items():
        with open(os.path.join(d2, name), "wb") as f:
            f.write(data)
    jpg = real_jpeg("astronaut")
    with open(os.path.join(d2, "truncated.JPEG"), "wb") as f:
        f.write(jpg[: len(jpg) // 2])
    ok, tiny = cv2.imencode(".png", np.full((1, 600, 3), 200, np.uint8))   # resizes to 0 x 254
    with open(os.path.join(d2, "tiny.JPEG"), "wb") as f:
        f.write(tiny.tobytes())
    with open(os.path.join(root, "train", WNID1, "cmyk.JPEG"), "wb") as f:
        f.write(cmyk_jpeg())
    return root


def tar_from_tree(root, out_dir):
    """ILSVRC2012_img_train.tar: a tar of per-class tars, built from an extracted train/ tree."""
    os.makedirs(out_dir, exist_ok=True)
    outer_path = os.path.join(out_dir, "ILSVRC2012_img_train.tar")
    with tarfile.open(outer_path, "w") as outer:
        for wnid in sorted(os.listdir(os.path.join(root, "train"))):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as inner:
                for fn in sorted(os.listdir(os.path.join(root, "train", wnid))):
                    inner.add(os.path.join(root, "train", wnid, fn), arcname=fn)
            info = tarfile.TarInfo(f"{wnid}.tar")
            info.size = buf.tell()
            buf.seek(0)
            outer.addfile(info, buf)
    return out_dir


# under <split>/_odg/: when and how a build ran (the card, the source digest, the command's options), not data
PROVENANCE = ("card.json", "source_digest.json", "settings.json")


def store_bytes(url):
    """Every key of a store -> its bytes, but the lock (absent after a build anyway) and the
    provenance files (the dataset card and the source digest it records)."""
    out = {}
    for dirpath, _, files in os.walk(url):
        for fn in files:
            if fn in PROVENANCE and os.path.basename(dirpath) == "_odg":
                continue
            p = os.path.join(dirpath, fn)
            with open(p, "rb") as f:
                out[os.path.relpath(p, url)] = f.read()
    return out
