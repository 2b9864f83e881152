"""ODG conversion speed vs JPEG decoding, and vs the published per-image PyTorch generator.

    python benchmarks/bench_odg.py                 # 120 generated photos, 7 rounds
    python benchmarks/bench_odg.py --images DIR    # any folder of JPEGs

Per image, in one process over the same files, single-threaded (`cv2.setNumThreads(1)`,
`torch.set_num_threads(1)`; odg's Numba kernels are single-threaded), the median over rounds of:

  (a)   decode:                     cv2.imread(path, cv2.IMREAD_COLOR)
  (b)   decode + ODG (build path):  odg_events(img) -> bit-packed words
  (b')  decode + ODG + event list:  ... and r.events (unpacked to the event records)
  (c)   published generator:        cv2.imread + the published per-image PyTorch loop, re-implemented
                                    faithfully below (torch ops, one image at a time)
  (c+)  published, with its output: (c) plus np.savez_compressed of pos/neg (kept samples only)

The variants are interleaved (every round visits every image and runs all variants on it back to
back, in a rotating order), so machine load drifts alike over all of them and the RATIOS are
meaningful on a busy machine even when absolute times are not.

Before timing, the re-implementation is checked against the published test vectors
(tests/data/odg) and against odg on every benchmark image: identical pos/neg
arrays (values and order) and the same discard decision, or the benchmark stops.

Every variant is timed by the wall clock and by this process's CPU time (`time.process_time`);
on a machine where other programs hold the cores, the CPU-time ratios are the reliable ones.

Ratios (over the sum of the per-image medians, i.e. per-image mean time):
  throughput ratio  (a)/(b)          decode-only time / decode+ODG time      target >= 0.87
  ODG share         ((b)-(a))/(a)    ODG time as a share of decode time      target <= 15%
  speed-up          (c)/(b)          published generator vs odg build path   target >= 8x
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import glob
import shutil
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _images  # noqa: E402

from odg import odg_events  # noqa: E402

TESTVECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data", "odg")
BQ = "b'"

# --------------------------------------------------------------------------------------------
# The published generator: a faithful per-image PyTorch re-implementation (docs/ALGORITHMS.md)
# --------------------------------------------------------------------------------------------
PUB_ROWS = [1, 0, 2, 1, 0, 2, 1, 1, 2]
PUB_COLS = [0, 2, 1, 0, 1, 2, 0, 1, 1]
PUB_LONG_SIDE = 254
PUB_THRESHOLD = 0.18
PUB_MIN_EVENTS = 1000


def published_generator(path: str, out_path: str | None = None):
    """One image as the published ES-ImageNet generator converted it: returns (pos, neg, (a, b), kept).

    cv2.imread -> float tensor / 255 -> F.interpolate(nearest) to long side 254 -> HSV value (max
    over channels) -> for t = 1..8: shifted zero canvases (a+4)x(b+4), difference, threshold at
    +-0.18, edge rows/columns cleared, window 16 < row, col < 240, torch.nonzero per step.
    With `out_path`, a kept sample is written with np.savez_compressed(pos=, neg=).
    """
    import torch
    import torch.nn.functional as F
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    if h > w:
        a, b = PUB_LONG_SIDE, int(w * PUB_LONG_SIDE / h)
    else:
        a, b = int(h * PUB_LONG_SIDE / w), PUB_LONG_SIDE
    x = torch.tensor(img).float() / 255                        # H x W x 3, BGR
    x = x.permute(2, 0, 1).unsqueeze(0)                        # 1 x 3 x H x W
    x = F.interpolate(x, size=(a, b), mode="nearest")
    v = x.max(dim=1)[0][0]                                     # HSV value, a x b
    pos, neg = [], []
    prev = torch.zeros(a + 4, b + 4)
    prev[PUB_ROWS[0]:PUB_ROWS[0] + a, PUB_COLS[0]:PUB_COLS[0] + b] = v
    for t in range(1, len(PUB_ROWS)):
        r, c = PUB_ROWS[t], PUB_COLS[t]
        cur = torch.zeros(a + 4, b + 4)
        cur[r:r + a, c:c + b] = v
        diff = cur - prev
        on = diff >= PUB_THRESHOLD
        off = diff <= -PUB_THRESHOLD
        r_lo, r_hi = min(PUB_ROWS[t - 1], r), max(PUB_ROWS[t - 1], r)
        c_lo, c_hi = min(PUB_COLS[t - 1], c), max(PUB_COLS[t - 1], c)
        for m in (on, off):
            m[r_lo:r_hi, :] = False                            # rows swept by the top edge
            m[r_lo + a:r_hi + a, :] = False                    # ... and by the bottom edge
            m[:, c_lo:c_hi] = False                            # columns swept by the left edge
            m[:, c_lo + b:c_hi + b] = False                    # ... and by the right edge
        for m, out in ((on, pos), (off, neg)):
            idx = torch.nonzero(m[17:240, 17:240]) + 17        # window 16 < row, col < 240
            out.append(torch.cat([idx, torch.full((idx.shape[0], 1), t, dtype=idx.dtype)], dim=1))
        prev = cur
    pos = torch.cat(pos).to(torch.uint8).numpy()
    neg = torch.cat(neg).to(torch.uint8).numpy()
    kept = len(pos) + len(neg) >= PUB_MIN_EVENTS
    if out_path is not None and kept:
        np.savez_compressed(out_path, pos=pos, neg=neg)
    return pos, neg, (a, b), kept


def check_testvectors(verbose=True) -> int:
    """The re-implementation and odg against the published test vectors; returns the images checked."""
    paths = sorted(glob.glob(os.path.join(TESTVECTORS, "images", "*.png")))
    if not paths:
        print(f"(test vectors not found at {TESTVECTORS}: skipped)")
        return 0
    for p in paths:
        name = os.path.splitext(os.path.basename(p))[0]
        pos, neg, shape, kept = published_generator(p)
        exp = os.path.join(TESTVECTORS, "expected", name + ".npz")
        r = odg_events(cv2.imread(p, cv2.IMREAD_COLOR))
        if os.path.exists(exp):
            e = np.load(exp)
            assert kept, f"{name}: expected kept"
            assert e["pos"].dtype == pos.dtype and np.array_equal(e["pos"], pos), f"{name}: pos differs from test vector"
            assert np.array_equal(e["neg"], neg), f"{name}: neg differs from test vector"
        else:
            assert not kept, f"{name}: the published generator wrote no file, the re-implementation keeps it"
        opos, oneg = r.published()
        assert r.kept == kept and tuple(r.shape) == shape, f"{name}: odg's discard decision or shape differs"
        assert np.array_equal(opos, pos) and np.array_equal(oneg, neg), f"{name}: odg differs from the test vector"
        if verbose:
            print(f"  test vector {name:13s} {shape[0]:3d}x{shape[1]:3d} pos {len(pos):6d} neg {len(neg):6d} "
                  f"{'kept' if kept else 'discarded'}: re-implementation == published == odg")
    return len(paths)


# --------------------------------------------------------------------------------------------
# Variants (each a full per-image pipeline from the file)
# --------------------------------------------------------------------------------------------
def v_decode(path, _tmp):
    return cv2.imread(path, cv2.IMREAD_COLOR)


def v_odg(path, _tmp):
    return odg_events(cv2.imread(path, cv2.IMREAD_COLOR)).words


def v_odg_events(path, _tmp):
    return odg_events(cv2.imread(path, cv2.IMREAD_COLOR)).events


def v_published(path, _tmp):
    return published_generator(path)


def v_published_npz(path, tmp):
    return published_generator(path, os.path.join(tmp, "sample.npz"))


VARIANTS = [("a", "decode", v_decode), ("b", "decode+ODG", v_odg), ("b'", "decode+ODG+events", v_odg_events),
            ("c", "published", v_published), ("c+", "published+npz", v_published_npz)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", metavar="DIR", help="a folder of JPEGs (recursive); default: generated real-photo JPEGs")
    ap.add_argument("-n", type=int, default=120, help="images to generate/use (default 120)")
    ap.add_argument("--rounds", type=int, default=7, help="timing rounds per image (default 7)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-published", action="store_true", help="skip (c)/(c+), the slow published loop")
    ap.add_argument("--per-image", type=int, default=-1, metavar="K",
                    help="print per-image times for the first K images (default: all)")
    ap.add_argument("--profile", action="store_true", help="also time odg's stages (check, resize+value, events)")
    args = ap.parse_args(argv)

    import torch
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    import numba

    files = _images.jpeg_files(args.images) if args.images else _images.tree_files(_images.make_tree(args.n, seed=args.seed))
    files = files[:args.n]
    if not files:
        sys.exit(f"no JPEGs under {args.images}")
    print(f"bench_odg: {len(files)} images from {args.images or os.path.dirname(os.path.dirname(os.path.dirname(files[0])))}, "
          f"{args.rounds} rounds; cv2 threads {cv2.getNumThreads()}, torch threads {torch.get_num_threads()}, "
          f"numba {numba.__version__}, torch {torch.__version__}, opencv {cv2.__version__}")

    variants = [v for v in VARIANTS if not (args.no_published and v[0].startswith("c"))]
    tmp = tempfile.mkdtemp(prefix="bench-odg-")
    try:
        # ---- correctness: the re-implementation is the spec -------------------------------
        print("checking the published re-implementation:")
        check_testvectors()
        n_kept = n_ev = 0
        info = []
        for p in files:
            img = cv2.imread(p, cv2.IMREAD_COLOR)
            r = odg_events(img)
            if not args.no_published:
                pos, neg, shape, kept = published_generator(p)
                opos, oneg = r.published()
                assert r.kept == kept and tuple(r.shape) == shape, f"{p}: odg's shape/discard differs from published"
                assert np.array_equal(opos, pos) and np.array_equal(oneg, neg), f"{p}: odg's events differ from published"
            n_kept += r.kept
            n_ev += r.count
            info.append((img.shape, r.shape, r.count, r.kept, os.path.getsize(p)))
        print(f"  {len(files)} benchmark images: odg == published re-implementation on every image "
              f"({n_kept} kept, {len(files) - n_kept} discarded; mean {n_ev / len(files):.0f} events, "
              f"mean {np.mean([i[4] for i in info]) / 1e3:.1f} kB, "
              f"mean {np.mean([i[0][0] * i[0][1] for i in info]) / 1e3:.0f} kpixel)"
              if not args.no_published else f"  {len(files)} benchmark images (odg vs published check skipped)")

        # ---- timing ----------------------------------------------------------------------
        for _, _, f in variants:                        # warm up (JIT, caches, torch init)
            for p in files[:3]:
                f(p, tmp)
        times = {k: [[] for _ in files] for k, _, _ in variants}       # wall clock
        cpu = {k: [[] for _ in files] for k, _, _ in variants}         # this process's CPU time
        nv = len(variants)
        load0 = os.getloadavg()[0]
        for rnd in range(args.rounds):
            for i, p in enumerate(files):
                rot = (rnd + i) % nv
                for k, _, f in variants[rot:] + variants[:rot]:
                    c0 = time.process_time()
                    t0 = time.perf_counter()
                    f(p, tmp)
                    t1 = time.perf_counter()
                    c1 = time.process_time()
                    times[k][i].append(t1 - t0)
                    cpu[k][i].append(c1 - c0)
        med = {k: np.array([statistics.median(x) for x in v]) for k, v in times.items()}
        cmed = {k: np.array([statistics.median(x) for x in v]) for k, v in cpu.items()}

        K = len(files) if args.per_image < 0 else args.per_image
        if K:
            hdr = "".join(f"{'(' + k + ')':>8s}" for k, _, _ in variants)
            chdr = "".join(f"{'(' + k + ')':>7s}" for k in ("a", "b", "c") if k in cmed)
            print(f"\nper-image medians (ms): wall clock, then CPU time\n{'image':24s} {'HxW':>9s} {'a x b':>8s} "
                  f"{'events':>7s} {'kept':>4s}{hdr}  (b-a)/a |{chdr}  (b-a)/a")
            for i, p in enumerate(files[:K]):
                (h, w), (ra, rb), cnt, kept = info[i][0][:2], info[i][1], info[i][2], info[i][3]
                row = "".join(f"{med[k][i] * 1e3:8.2f}" for k, _, _ in variants)
                crow = "".join(f"{cmed[k][i] * 1e3:7.2f}" for k in ("a", "b", "c") if k in cmed)
                print(f"{os.path.basename(p)[:24]:24s} {h:4d}x{w:<4d} {ra:3d}x{rb:<4d} {cnt:7d} {'y' if kept else 'n':>4s}"
                      f"{row}  {(med['b'][i] - med['a'][i]) / med['a'][i] * 100:6.1f}% |"
                      f"{crow}  {(cmed['b'][i] - cmed['a'][i]) / cmed['a'][i] * 100:6.1f}%")

        tot = {k: v.sum() for k, v in med.items()}
        ctot = {k: v.sum() for k, v in cmed.items()}
        n = len(files)
        print(f"\nmean of per-image medians over {args.rounds} rounds (ms/image), single thread "
              f"(load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end):")
        print(f"  {'':25s} {'wall':>8s} {'images/s':>9s} {'CPU':>8s}")
        for k, lab, _ in variants:
            print(f"  ({k:2s}) {lab:20s} {tot[k] / n * 1e3:8.3f} {n / tot[k]:9.1f} {ctot[k] / n * 1e3:8.3f}")
        print(f"  ODG alone (b)-(a):        {(tot['b'] - tot['a']) / n * 1e3:8.3f}           "
              f"{(ctot['b'] - ctot['a']) / n * 1e3:8.3f}")
        print(f"  event list (b')-(b):      {(tot[BQ] - tot['b']) / n * 1e3:8.3f}           "
              f"{(ctot[BQ] - ctot['b']) / n * 1e3:8.3f}")
        if "c" in med:
            print(f"  npz writing (c+)-(c):     {(tot['c+'] - tot['c']) / n * 1e3:8.3f}           "
                  f"{(ctot['c+'] - ctot['c']) / n * 1e3:8.3f}")

        def line(label, fn, target, ok, unit=""):
            w, c = fn(tot, med), fn(ctot, cmed)
            fmt = (lambda v: f"{v * 100:6.1f}%") if unit == "%" else (lambda v: f"{v:6.3f}" if unit == "" else f"{v:6.2f}x")
            verdict = "" if ok is None else f"{'PASS' if ok(w) else 'FAIL'} [CPU {'PASS' if ok(c) else 'FAIL'}]"
            print(f"  {label:54s} {fmt(w)}  [CPU {fmt(c)}]  {target:14s} {verdict}")

        print("\nratios (over the per-image medians; wall clock, CPU time in brackets):")
        line("throughput ratio (a)/(b)   decode-only / decode+ODG", lambda t, m: t["a"] / t["b"], "target >= 0.87",
             lambda v: v >= 0.87)
        line("ODG share of decode ((b)-(a))/(a)", lambda t, m: (t["b"] - t["a"]) / t["a"], "target <= 15%",
             lambda v: v <= 0.15, "%")
        line("  same, median over images of the per-image share", lambda t, m: np.median((m["b"] - m["a"]) / m["a"]),
             "", None, "%")
        line("with the event list (a)/(b')", lambda t, m: t["a"] / t[BQ], "", None)
        if "c" in med:
            line("speed-up (c)/(b)   published / odg build path", lambda t, m: t["c"] / t["b"], "target >= 8x",
                 lambda v: v >= 8, "x")
            line("speed-up (c+)/(b)  published with its npz / odg", lambda t, m: t["c+"] / t["b"], "", None, "x")
            line("conversion alone ((c)-(a))/((b)-(a))", lambda t, m: (t["c"] - t["a"]) / (t["b"] - t["a"]), "", None, "x")
            line("bound on (c)/(b) with free ODG: (c)/(a)", lambda t, m: t["c"] / t["a"], "", None, "x")
        load1 = max(load0, os.getloadavg()[0])
        if load1 > (os.cpu_count() or 1):
            print(f"  NOTE: load average {load1:.1f} > {os.cpu_count()} cores: other programs held the cores, so the "
                  "wall-clock\n  figures include preemption; the CPU-time figures are the reliable ones in this run.")

        if args.profile:
            profile(files, args.rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def profile(files, rounds):
    """odg's stages on just-decoded images: check_image, indices, resize+value, event kernel, words->events."""
    from odg import ODGParams, check_image, nearest_indices, word_dtype
    from odg import odg as odgmod
    from odg.events import words_to_events
    params = ODGParams()
    imgs = files
    traj, k, on_min, off_max = odgmod._kernel_constants(params)
    clock = time.process_time           # CPU time: robust to other programs' load
    st = {s: [[] for _ in imgs] for s in ("check", "indices", "value", "kernel", "alloc", "total", "events")}
    for _ in range(rounds):
        for i, path in enumerate(files):
            img = cv2.imread(path, cv2.IMREAD_COLOR)       # just decoded, as in the build (untimed)
            t0 = clock()
            im = check_image(img)
            t1 = clock()
            h, w = im.shape[:2]
            a, b = params.resized_shape(h, w)
            ri, ci = nearest_indices(h, a), nearest_indices(w, b)
            t2 = clock()
            vp = odgmod._value_image(im, ri, ci, params.canvas_pad)
            t3 = clock()
            words = np.zeros((params.grid, params.grid), word_dtype(params.steps))
            counts = np.zeros((params.steps, 2), np.int64)
            r0, c0 = params.window_origin(a, b)
            t4 = clock()
            odgmod._odg_kernel(vp, a, b, params.canvas_pad, traj, k, on_min, off_max, r0, c0, words, counts)
            t5 = clock()
            img = cv2.imread(path, cv2.IMREAD_COLOR)       # untimed, between t5 and t5b
            t5b = clock()
            r = odgmod.odg_events(img)
            t6 = clock()
            words_to_events(r.words, r.shape, params, counts=r.counts)
            t7 = clock()
            for s, dt in zip(("check", "indices", "value", "alloc", "kernel", "total", "events"),
                             (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5b, t7 - t6)):
                st[s][i].append(dt)
    m = {s: np.mean([statistics.median(x) for x in v]) * 1e6 for s, v in st.items()}
    npx = np.mean([np.prod(params.resized_shape(*cv2.imread(p).shape[:2])) for p in files])
    parts = ("check", "indices", "value", "alloc", "kernel")
    desc = {"check": "check_image", "indices": "nearest_indices (rows, cols)",
            "value": f"_value_image: resize + max(B,G,R) ({m['value'] * 1e3 / npx:.2f} ns per output pixel)",
            "alloc": "words/counts allocation, window origin",
            "kernel": f"_odg_kernel: 8 steps over the window ({m['kernel'] * 1e3 / (8 * params.grid ** 2):.2f} ns "
                      f"per pixel-step of {params.grid}x{params.grid})",
            "total": "odg_events(img), whole call",
            "events": "words_to_events (the .events unpacking)"}
    print(f"\nprofile of odg_events on the decoded images (CPU time, mean of per-image medians, us; "
          f"mean resized image {npx / 1e3:.1f} kpixel):")
    for s in parts + ("total", "events"):
        sh = f"{m[s] / m['total'] * 100:5.1f}%" if s in parts else ""
        print(f"  {m[s]:8.1f} {sh:>6s}  {desc[s]}")
    print(f"  {m['total'] - sum(m[s] for s in parts):8.1f}         "
          "call overhead outside the stages (Python, dispatch, ODGResult)")


if __name__ == "__main__":
    main()
