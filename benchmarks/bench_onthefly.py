"""On-the-fly conversion vs JPEG decoding, vs reading a store, vs the published I2E pipeline: per core.

    python benchmarks/bench_onthefly.py                 # the ILSVRC-like photos, 5 rounds
    python benchmarks/bench_onthefly.py --set generated # 120 generated crops of the same photos
    python benchmarks/bench_onthefly.py --images DIR    # any folder of JPEGs

Image sets (`benchmarks/_images.py`; decoding costs grow with pixels and bytes, so they matter):

- `photos` (default): every real photograph available offline (the repository's ILSVRC2012 sample
  JPEGs and scikit-image's photographs, 27) once, cropped to 4:3 and resized to ILSVRC2012's typical
  500 x 375 (or 375 x 500), 3-channel JPEGs at quality 90 as ILSVRC2012's are (`make_photos`); their
  mean size is ~47 kB where ILSVRC2012's train JPEGs average ~110 kB (many are larger than 500 x 375
  and more detailed), so decoding here is if anything cheaper than on ILSVRC2012;
- `generated`: `-n` random crops of those photographs (aspect 1:1 to 16:9, long side 400-500,
  `--quality`), the set the figures before issue 16's second round were measured on (`make_tree`);
  smaller on average (~400 x 425, ~38 kB).

One process, one thread everywhere (`cv2.setNumThreads(1)`, `torch.set_num_threads(1)`, odg's Numba
kernels are single-threaded), the same images for every variant; per sample:

  (a) decode          the bytes read and decoded as the datasets do (`pipelines.decode.decode_image`,
                      i.e. `cv2.imdecode(..., IMREAD_COLOR)` behind the header checks)
  (b) ODG on the fly  `ImageNetEvents(method="odg")`: read, decode, ODG, dense uint8 [8, 2, 224, 224]
                      frames written into a batch buffer (reused, as DataLoader workers reuse theirs)
  (c) I2E on the fly  `ImageNetEvents(method="i2e")`: read, decode, the published preprocessing
                      (antialiased bilinear resize to 224 x 224), I2E, dense frames into the buffer
  (d) store           `ESDataset` over a store built from the same images: dense frames of batches of
                      32 in shard order (every shard read and decoded once per round)
  (b'), (c')          (b), (c) with `packed=True`: per-pixel uint16 words instead of dense frames
                      (to be unpacked on the GPU, `odg.models.data.unpack_batch`), for the record
  (e) published I2E   the published pipeline on the CPU: PIL decode (`Image.open(...).convert("RGB")`,
                      as torchvision's ImageFolder), `PILToTensor`, `Resize((224, 224))` (torchvision
                      calls `F.interpolate(uint8, bilinear, antialias=True)` on AVX2 CPUs), `ToDtype(float32,
                      scale=True)`, then the I2E module (max, replicate pad, `conv2d` with its 8 kernels,
                      the comparisons) run on batches of 16 images, its time shared among them

Every variant runs on the same images: those ODG keeps (a store built from the folder has them), so
no variant decodes an image another skips; both sets hold far more images under ODG's 1000-event
floor (4 of the 27 photos, about 20 % of the crops: smooth, partly upscaled photos) than ILSVRC2012
(about 0.2 %).
(a), (b), (c), (e) are timed image by image and interleaved (every round runs all variants on each
image back to back, in a rotating order), (d) once per round between images; each variant's time per
image is the median over rounds, a variant's time per sample the mean of those. Times are this
thread's CPU time (`time.thread_time`: not inflated by other programs holding the cores) and wall
time. Printed: samples/s per core, the ratios, and the cores a 16-core machine needs to feed a
training run 3,000 samples/s.

Targets:  (b)/(a) >= 0.8    (c)/(a) >= 0.8    (c)/(e) >= 2   (throughput ratios)

Also printed, over all images: pixels where odg's resize differs from torch's `F.interpolate` on the
same uint8 image (expected 0), and where the two other ways the published pipeline can run differ
from it, with the events that changes: torchvision's float path (non-AVX2 CPUs: float32 interpolate,
round) and PIL's JPEG decoder instead of OpenCV's.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import io
import math
import shutil
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _images  # noqa: E402

VARIANTS = ("a", "b", "c", "e", "bp", "cp")
MODULE_BATCH = 16
TARGET_RATE = 3000
BOX_CORES = 16


# --------------------------------------------------------------------------------------------
# (e) the published I2E pipeline, with torch's own operations
# --------------------------------------------------------------------------------------------
def published_weights():
    """The I2E module's `[8, 1, 3, 3]` weights in evaluation mode (first pair of each group, shuffled)."""
    import torch

    from odg.i2e import I2EParams
    p = I2EParams()
    w = torch.zeros((p.steps, 1, 3, 3))
    for g, group in enumerate(p.directions):
        a, b = group[0]
        w[g, 0, (a - 1) // 3, (a - 1) % 3] = -1
        w[g, 0, (b - 1) // 3, (b - 1) % 3] = 1
    return w[list(p.order)]


def published_preprocess(data: bytes, float_path: bool = False):
    """PIL decode, PILToTensor, Resize((224, 224)) on the uint8 tensor, ToDtype(float32, scale=True).
    `float_path`: torchvision's resize on CPUs without AVX2 (float32 interpolate, round, back to uint8)."""
    import torch
    import torch.nn.functional as F
    from PIL import Image
    img = Image.open(io.BytesIO(data)).convert("RGB")
    x = torch.as_tensor(np.array(img, copy=True)).permute(2, 0, 1).unsqueeze(0)
    if float_path:
        y = F.interpolate(x.float(), size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
        x = y.round_().to(torch.uint8)
    else:
        x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    return x[0].to(torch.float32).mul_(1.0 / 255)


def published_module(batch, weight, ratio: float = 0.12):
    """The I2E module's forward: `[B, 3, H, W]` float -> `[8, B, 2, H, W]` float 0/1."""
    import torch
    import torch.nn.functional as F
    v, _ = torch.max(batch, 1, keepdim=True)
    v = F.pad(v, (1, 1, 1, 1), mode="replicate")
    rng = (torch.max(torch.max(v, 3, True)[0], 2, True)[0] - torch.min(torch.min(v, 3, True)[0], 2, True)[0]).unsqueeze(0)
    resp = F.conv2d(v, weight).permute(1, 0, 2, 3)
    pos = resp * resp.ge(0).float()
    neg = -resp * resp.lt(0).float()
    return torch.stack([pos, neg], dim=2).ge(rng * ratio).float()


# --------------------------------------------------------------------------------------------
# fidelity of the preprocessing: pixels and events
# --------------------------------------------------------------------------------------------
def fidelity(datas: list[bytes], weight) -> dict:
    """Pixel and event differences of the published pipeline's variants against odg's (cv2 decode,
    odg's resize), over all images: torch's uint8 resize, torchvision's float path, PIL's decoder."""
    import torch
    import torch.nn.functional as F

    from odg.i2e import i2e_frames, preprocess
    from odg.pipelines.decode import decode_image
    out = {k: [0, 0] for k in ("torch_uint8", "float_path", "pil_decode")}
    n_pix = n_ev = 0
    for data in datas:
        img = decode_image(data)
        ours = preprocess(img)
        frames = i2e_frames(ours)
        n_pix += ours.size
        n_ev += int(frames.sum())
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).unsqueeze(0)
        variants = {
            "torch_uint8": F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False),
            "float_path": F.interpolate(x.float(), size=(224, 224), mode="bilinear", antialias=True,
                                        align_corners=False).round_().to(torch.uint8),
            "pil_decode": (published_preprocess(data) * 255).round().to(torch.uint8).unsqueeze(0),
        }
        for k, t in variants.items():
            v = t[0].amax(dim=0).numpy()
            out[k][0] += int((v != ours).sum())
            out[k][1] += int((i2e_frames(v) != frames).sum())
    return {"pixels": n_pix, "events": n_ev, **{k: tuple(v) for k, v in out.items()}}


# --------------------------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------------------------
def timed(fn):
    w0, c0 = time.perf_counter(), time.thread_time()
    fn()
    return time.thread_time() - c0, time.perf_counter() - w0


def build_store(root: str, url: str) -> None:
    from distributed import Client, LocalCluster

    from odg.pipelines.build import run_build
    from odg.pipelines.imagenet import build_spec
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        report = run_build(build_spec(url, root, "train", shard_size=32), client=client, progress=False)
    if report.failed:
        raise SystemExit(f"store build failed: {report.failed}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", metavar="DIR", help="a folder of JPEGs (recursive); default: generated real-photo JPEGs")
    ap.add_argument("--set", choices=("photos", "generated"), default="photos",
                    help="the default image set without --images (see the docstring; default photos)")
    ap.add_argument("-n", type=int, default=120, help="images to generate/use (default 120; "
                    "the photos set has as many as there are source photographs)")
    ap.add_argument("--rounds", type=int, default=5, help="timing rounds (default 5)")
    ap.add_argument("--quality", type=int, default=90,
                    help="JPEG quality of the generated images (default 90, ILSVRC2012's)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (store, tree)")
    args = ap.parse_args(argv)

    import torch
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    from odg.models.data import ESDataset
    from odg.models.imagenet_events import ImageNetEvents
    from odg.pipelines.decode import decode_image

    work = tempfile.mkdtemp(prefix="odg-bench-onthefly-")
    try:
        if args.images:
            root = _images.imagenet_tree(_images.jpeg_files(args.images)[:args.n], os.path.join(work, "tree"))
        elif args.set == "photos":
            root = _images.make_photos(quality=args.quality)
        else:
            root = _images.make_tree(args.n, quality=args.quality)
        url = os.path.join(work, "store.zarr")
        build_store(root, url)
        store = ESDataset(url, "train")
        kept = store.indices                   # every variant runs on the samples ODG keeps (see the docstring)
        odg_ds = ImageNetEvents(root, "train", method="odg", samples=kept)
        i2e_ds = ImageNetEvents(root, "train", method="i2e", samples=kept)
        packed = {"bp": ImageNetEvents(root, "train", method="odg", packed=True, samples=kept),
                  "cp": ImageNetEvents(root, "train", method="i2e", packed=True, samples=kept)}
        items = [odg_ds.items[int(k)] for k in kept]
        datas = [it.read() for it in items]
        n = len(items)
        weight = published_weights()
        shape = (8, 1, 2, 224, 224)
        buf = {"b": np.zeros(shape, np.uint8), "c": np.zeros(shape, np.uint8),
               "d": np.zeros((8, 32, 2, 224, 224), np.uint8), "p": np.zeros((1, 224, 224), np.uint16)}
        pre = [None] * n                        # (e): per-image preprocessed tensors of this round

        def run(v, i):
            if v == "a":
                decode_image(items[i].read())
            elif v == "b":
                odg_ds._fill(0, np.array([i]), buf["b"])
            elif v == "c":
                i2e_ds._fill(0, np.array([i]), buf["c"])
            elif v in packed:
                packed[v]._fill(0, np.array([i]), buf["p"])
            else:
                pre[i] = published_preprocess(items[i].read())

        def read_store():
            store._cache = None
            store._pid = None
            for a in range(0, len(store), 32):
                idx = np.arange(a, min(a + 32, len(store)))
                store._fill(idx, buf["d"][:, :len(idx)])

        # warm-up (Numba compilation, caches) and a check that (c) is the published module's output
        for i in range(min(n, 4)):
            for v in VARIANTS:
                run(v, i)
        read_store()
        check = published_module(torch.stack([published_preprocess(d) for d in datas[:4]]), weight)
        for i in range(min(n, 4)):
            i2e_ds._fill(0, np.array([i]), buf["c"])
            ours = torch.from_numpy(buf["c"][:, 0].astype(np.float32))
            frac = float((ours != check[:, i]).float().mean())
            if frac > 0.01:
                raise SystemExit(f"(c) and (e) disagree on {100 * frac:.2f}% of the bits of image {i}")

        cpu = {v: np.zeros((args.rounds, n)) for v in VARIANTS}
        wall = {v: np.zeros((args.rounds, n)) for v in VARIANTS}
        module = np.zeros((args.rounds, n))               # (e)'s module share (CPU), for the record
        store_cpu, store_wall = [], []
        for r in range(args.rounds):
            for i in range(n):
                k = (i + r) % len(VARIANTS)
                order = VARIANTS[k:] + VARIANTS[:k]
                for v in order:
                    cpu[v][r, i], wall[v][r, i] = timed(lambda: run(v, i))
                if i == (r * 37) % n:
                    c, w = timed(read_store)
                    store_cpu.append(c / len(store))
                    store_wall.append(w / len(store))
            for a in range(0, n, MODULE_BATCH):       # (e): the module on batches, shared among them
                batch = torch.stack(pre[a:a + MODULE_BATCH])
                c, w = timed(lambda: published_module(batch, weight))
                cpu["e"][r, a:a + MODULE_BATCH] += c / len(batch)
                wall["e"][r, a:a + MODULE_BATCH] += w / len(batch)
                module[r, a:a + MODULE_BATCH] = c / len(batch)

        per = {}
        for kind, tab, st in (("cpu", cpu, store_cpu), ("wall", wall, store_wall)):
            per[kind] = {v: float(np.median(tab[v], axis=0).mean()) for v in VARIANTS}
            per[kind]["d"] = float(statistics.median(st))
        fid = fidelity(datas, weight)

        kb = np.mean([len(d) for d in datas]) / 1e3
        source = (f"--images {args.images}" if args.images else
                  f"{'ILSVRC-sized photos' if args.set == 'photos' else 'generated crops of photos'}, quality {args.quality}")
        hw = np.mean([cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8).shape for d in datas], axis=0) * 8
        print(f"{n} of {len(odg_ds.items)} images ({source}; mean {kb:.0f} kB, ~{hw[0]:.0f} x {hw[1]:.0f} pixels; "
              f"those ODG keeps); {args.rounds} rounds; "
              f"one thread; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        names = {"a": "decode only", "b": "ODG on the fly", "c": "I2E on the fly", "d": "ESDataset from a store",
                 "e": "published I2E (PIL, torch)", "bp": "ODG on the fly, packed", "cp": "I2E on the fly, packed"}
        print(f"\n{'variant':34s} {'ms/sample':>10s} {'samples/s':>10s} {'cores for 3000/s':>17s}   (wall ms/sample)")
        for v in ("a", "b", "c", "d", "e", "bp", "cp"):
            t = per["cpu"][v]
            need = math.ceil(TARGET_RATE * t)
            tag = f"({v[0]}')" if len(v) == 2 else f"({v})"
            print(f"{tag:4s}{names[v]:30s} {1e3 * t:10.3f} {1 / t:10.0f} {need:>12d} of {BOX_CORES}   "
                  f"({1e3 * per['wall'][v]:.3f})")
        m = float(np.median(module, axis=0).mean())
        print(f"    (e) = {1e3 * (per['cpu']['e'] - m):.3f} ms PIL decode + resize + float, {1e3 * m:.3f} ms the module "
              f"(batches of {MODULE_BATCH})")
        rate = {k: {v: 1 / t for v, t in per[k].items()} for k in per}
        print("\nthroughput ratios (CPU time; wall time in brackets):")
        for num, den, target in (("b", "a", 0.8), ("c", "a", 0.8), ("c", "e", 2.0), ("d", "a", None), ("b", "d", None),
                                 ("bp", "a", None), ("cp", "a", None)):
            r, rw = rate["cpu"][num] / rate["cpu"][den], rate["wall"][num] / rate["wall"][den]
            tgt = "" if target is None else f"   target >= {target:g}: {'met' if r >= target else 'NOT met'}"
            label = "(" + num[0] + ("')" if len(num) == 2 else ")")
            print(f"  {label}/({den}) = {r:6.2f}  ({rw:.2f}){tgt}")
        print(f"\npreprocessing fidelity over {n} images ({fid['pixels']:,} resized pixels, {fid['events']:,} events "
              "of odg's I2E):")
        for k, label in (("torch_uint8", "torch F.interpolate on the same uint8 image (the published path)"),
                         ("float_path", "torchvision's float path (CPUs without AVX2)"),
                         ("pil_decode", "PIL's JPEG decoder instead of OpenCV's (then the published path)")):
            px, ev = fid[k]
            print(f"  {label:66s} {px:9,d} pixels ({100 * px / fid['pixels']:.3f}%), {ev:9,d} events differ "
                  f"({100 * ev / max(fid['events'], 1):.3f}%)")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


if __name__ == "__main__":
    main()
