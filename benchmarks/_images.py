"""Real-photo JPEG trees for the benchmarks (shared by bench_odg.py and bench_build.py).

The sources are real photographs available offline: the ILSVRC2012-like JPEGs shipped with the
repository (`pipelines/data/sample/train/<wnid>/*.JPEG`, duplicates skipped) and the photographs
that scikit-image ships in `skimage/data` (astronaut, coffee, chelsea, rocket, motorcycle, hubble,
retina, camera, coins, moon, brick, grass, ...; synthetic images such as the chessboard, phantom,
logo and the horse silhouette are left out). Each benchmark image is a random crop of one source
(aspect ratio 1:1 to 16:9, either orientation), optionally mirrored, rescaled to a long side of
about 500 pixels (ILSVRC2012's typical size, 500 x 375 / 500 x 333) and written as a quality-90
JPEG; a few variants of grey sources stay grey JPEGs (ILSVRC2012 holds ~2% grey images), the
others are written as 3-channel JPEGs. The generation is deterministic (seeded) and cached, so
repeated runs read the same files.

    tree = make_tree(n=500)                # ROOT with ROOT/train/<wnid>/*.JPEG, cached under /tmp
    photos = make_photos()                 # one ILSVRC-sized JPEG per source photograph, cached
    files = tree_files(tree)               # its JPEGs in generation order (any folder: sorted)
    root = imagenet_tree(files, dest)      # an ImageNet-layout tree of symlinks to arbitrary files
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import tempfile

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DIR = os.path.join(REPO, "pipelines", "data", "sample", "train")
CLASSES_TSV = os.path.join(REPO, "pipelines", "data", "ilsvrc2012_classes.tsv")

# scikit-image's photographs (file names in skimage/data); synthetic drawings left out
SKIMAGE_PHOTOS = ("astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png",
                  "coffee.png", "coins.png", "color.png", "grass.png", "gravel.png", "hubble_deep_field.jpg",
                  "ihc.png", "moon.png", "motorcycle_left.png", "motorcycle_right.png", "page.png",
                  "retina.jpg", "rocket.jpg", "text.png")

ASPECTS = (1.0, 4 / 3, 3 / 2, 5 / 4, 16 / 9, 1.5)
GREY_SHARE = 0.05          # share of grey-source variants written as grey JPEGs (ILSVRC2012: ~2% grey)
GENERATOR_VERSION = 2
PHOTO_SIZE = (500, 375)    # ILSVRC2012's typical train image: long side 500, short side ~375 (4:3)


def source_paths() -> list[str]:
    """The source photographs' files (the repository's sample JPEGs, then scikit-image's photos)."""
    paths = sorted(glob.glob(os.path.join(SAMPLE_DIR, "*", "*.JPEG")))
    try:
        import skimage.data
        sk_dir = os.path.dirname(skimage.data.__file__)
        paths += [os.path.join(sk_dir, n) for n in SKIMAGE_PHOTOS if os.path.exists(os.path.join(sk_dir, n))]
    except ImportError:           # scikit-image is a test dependency; the repository's JPEGs suffice
        pass
    return paths


def source_images() -> list[tuple[str, np.ndarray]]:
    """(name, 8-bit image) of every distinct real photograph available offline (grey kept 2-D)."""
    out, seen = [], set()
    for p in source_paths():
        with open(p, "rb") as f:
            digest = hashlib.sha1(f.read()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        img = cv2.imread(p, cv2.IMREAD_UNCHANGED)
        if img is None or img.dtype != np.uint8:
            continue
        if img.ndim == 3 and img.shape[2] == 4:
            img = img[:, :, :3]
        if img.ndim == 3 and np.array_equal(img[:, :, 0], img[:, :, 1]) and np.array_equal(img[:, :, 1], img[:, :, 2]):
            img = img[:, :, 0]
        out.append((os.path.splitext(os.path.basename(p))[0], np.ascontiguousarray(img)))
    if not out:
        raise RuntimeError("no source photographs found")
    return out


def _variant(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop (aspect 1:1 to 16:9), maybe mirrored, rescaled to a long side of ~500 pixels."""
    h, w = img.shape[:2]
    aspect = float(rng.choice(ASPECTS))
    if rng.random() < 0.3:
        aspect = 1 / aspect                                   # portrait
    ch, cw = (h, h * aspect) if h * aspect <= w else (w / aspect, w)
    # share of the source's largest such crop; crops keep >= ~420 pixels of long side where the
    # source has them, so that few images are upscaled (upscaled photos are smoother than ILSVRC's)
    frac = rng.uniform(min(1.0, 420 / max(ch, cw)), 1.0)
    ch, cw = max(32, int(ch * frac)), max(32, int(cw * frac))
    ch, cw = min(ch, h), min(cw, w)
    y0 = int(rng.integers(0, h - ch + 1))
    x0 = int(rng.integers(0, w - cw + 1))
    crop = img[y0:y0 + ch, x0:x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    long_side = int(rng.choice([500, 500, 500, 480, 450, 400]))
    s = long_side / max(ch, cw)
    size = (max(1, round(cw * s)), max(1, round(ch * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    out = cv2.resize(np.ascontiguousarray(crop), size, interpolation=interp)
    if out.ndim == 2 and rng.random() >= GREY_SHARE:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)          # most grey sources become colour JPEGs
    return np.ascontiguousarray(out)


def _wnids() -> list[str]:
    with open(CLASSES_TSV) as f:
        return [line.split("\t")[1] for line in f if line.strip()]


def default_cache() -> str:
    return os.path.join(tempfile.gettempdir(), "odg-bench-images")


def _write_jpeg(root: str, wnid: str, k: int, img: np.ndarray, quality: int, what: str) -> str:
    """Write `img` as `root/train/<wnid>/<wnid>_<k + 1>.JPEG` at `quality`; its path under `root`."""
    d = os.path.join(root, "train", wnid)
    os.makedirs(d, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"cannot encode {what}")
    with open(os.path.join(d, f"{wnid}_{k + 1}.JPEG"), "wb") as f:
        f.write(buf.tobytes())
    return os.path.join("train", wnid, f"{wnid}_{k + 1}.JPEG")


def make_tree(n: int, root: str | None = None, seed: int = 0, classes: int = 10, quality: int = 90) -> str:
    """ROOT holding `ROOT/train/<wnid>/<wnid>_<k>.JPEG`: `n` real-photo JPEGs over `classes` classes.

    Image `k` depends only on `(seed, k)` and the source photographs, so the first `m` images of a tree of `n > m` images are
    those of a tree of `m` (for trees over the same number of classes). Cached: an existing tree
    with the same settings is reused.
    """
    sources = [(os.path.basename(p), os.path.getsize(p)) for p in source_paths()]
    key = hashlib.sha1(json.dumps([GENERATOR_VERSION, n, seed, classes, quality, sources]).encode()).hexdigest()[:10]
    root = root or os.path.join(default_cache(), f"tree-{n}-s{seed}-{key}")
    marker = os.path.join(root, ".complete")
    if os.path.exists(marker):
        return root
    srcs = source_images()
    wnids = _wnids()[:: max(1, 1000 // classes)][:classes]
    files = []
    for k in range(n):
        rng = np.random.default_rng([seed, k])
        name, img = srcs[k % len(srcs)] if k < len(srcs) else srcs[int(rng.integers(len(srcs)))]
        out = _variant(img, rng)
        files.append(_write_jpeg(root, wnids[k % classes], k, out, quality, f"variant {k} of {name}"))
    with open(marker, "w") as f:
        f.write(json.dumps({"n": n, "seed": seed, "classes": classes, "quality": quality, "files": files}))
    return root


def _photo(img: np.ndarray) -> np.ndarray:
    """The central 4:3 crop (3:4 for a portrait source) of a photograph, resized to 500 x 375
    (375 x 500), 3 channels: area averaging when shrinking, bicubic when enlarging."""
    h, w = img.shape[:2]
    long_side, short_side = PHOTO_SIZE
    portrait = h > w
    aspect = long_side / short_side                      # long / short
    ch, cw = (h, int(round(h / aspect))) if portrait else (int(round(w / aspect)), w)
    if (ch > h) or (cw > w):                             # the source is narrower than 4:3: crop the long side
        ch, cw = (int(round(w * aspect)), w) if portrait else (h, int(round(h * aspect)))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    crop = np.ascontiguousarray(img[y0:y0 + ch, x0:x0 + cw])
    size = (short_side, long_side) if portrait else (long_side, short_side)          # cv2: (width, height)
    interp = cv2.INTER_AREA if cw > size[0] else cv2.INTER_CUBIC
    out = cv2.resize(crop, size, interpolation=interp)
    return cv2.cvtColor(out, cv2.COLOR_GRAY2BGR) if out.ndim == 2 else out


def make_photos(root: str | None = None, quality: int = 90, classes: int = 10) -> str:
    """ROOT holding `ROOT/train/<wnid>/<wnid>_<k>.JPEG`: every distinct source photograph once, at
    ILSVRC2012's typical size and quality.

    ILSVRC2012's train JPEGs are about 500 x 375 pixels (long side 500, some 500 x 333) at JPEG
    quality ~90, 110 kB on average. Each source photograph (`source_images`: the repository's sample
    JPEGs and scikit-image's photos) is cropped to its central 4:3 (or 3:4) part, resized to
    500 x 375 (375 x 500) and written at `quality` as a 3-channel JPEG (grey sources too: ILSVRC2012
    holds only ~2 % grey JPEGs, and a grey JPEG decodes faster). Nothing else is chosen: every
    photograph available offline is in, whatever it costs to convert. Cached.
    """
    srcs = source_images()
    sources = [(os.path.basename(p), os.path.getsize(p)) for p in source_paths()]
    key = hashlib.sha1(json.dumps(["photos", 2, PHOTO_SIZE, quality, classes, sources]).encode()).hexdigest()[:10]
    root = root or os.path.join(default_cache(), f"photos-q{quality}-{key}")
    marker = os.path.join(root, ".complete")
    if os.path.exists(marker):
        return root
    wnids = _wnids()[:: max(1, 1000 // classes)][:classes]
    files = []
    for k, (name, img) in enumerate(srcs):
        files.append(_write_jpeg(root, wnids[k % classes], k, _photo(img), quality, f"photograph {name}"))
    with open(marker, "w") as f:
        f.write(json.dumps({"quality": quality, "classes": classes, "files": files}))
    return root


def tree_files(root: str) -> list[str]:
    """The JPEGs of a folder: in generation order for a `make_tree` tree, else `jpeg_files` order."""
    marker = os.path.join(root, ".complete")
    if os.path.exists(marker):
        with open(marker) as f:
            files = json.load(f).get("files")
        if files:
            return [os.path.join(root, p) for p in files]
    return jpeg_files(root)


def jpeg_files(folder: str) -> list[str]:
    """Every JPEG under `folder` (recursively), in a stable order (by class folder, then name)."""
    out = []
    for d, _, names in os.walk(folder):
        out += [os.path.join(d, f) for f in names if f.lower().endswith((".jpeg", ".jpg")) and not f.startswith(".")]
    return sorted(out)


def imagenet_tree(files: list[str], root: str, classes: int = 10) -> str:
    """An ImageNet-layout tree `root/train/<wnid>/*.JPEG` of symlinks to `files` (any JPEGs), classes
    assigned round-robin, so `odg build imagenet` can read any folder of JPEGs."""
    wnids = _wnids()[:: max(1, 1000 // classes)][:classes]
    for k, src in enumerate(files):
        wnid = wnids[k % classes]
        d = os.path.join(root, "train", wnid)
        os.makedirs(d, exist_ok=True)
        dst = os.path.join(d, f"{wnid}_{k + 1}.JPEG")
        if not os.path.lexists(dst):
            os.symlink(os.path.abspath(src), dst)
    return root
