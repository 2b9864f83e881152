"""Store build and read: ratios measured in one run on the same files.

    python benchmarks/bench_build.py                # ~2-3 minutes on 2 busy cores
    python benchmarks/bench_build.py --small 512 --shard-size 256 --rounds 5 --samples 1000
    python benchmarks/bench_build.py --images DIR   # any folder of JPEGs

1. Build vs decode (Dask). A small tree of N images and a 5x larger tree (its first N images are
   the small tree's) are built with `run_build` (the `odg build imagenet` path: LocalCluster of
   worker processes, one thread each, one task per shard of K images) and, on the same clusters,
   a decode-only Dask job over the same files in the same shard grouping (read the bytes +
   `cv2.imdecode`, nothing else). Throughput is MARGINAL: (5N - N) / (t_large - t_small), so the
   fixed costs (store creation, task submission, the first task's warm-up) cancel out. The
   clusters (one per worker count) stay up for the whole run, and every round runs all jobs on
   all clusters in a rotating order, so the ratios compare like with like under the same load.
   `--fresh-cluster` starts a new cluster for every job instead, timed from before the cluster
   starts as the command line runs (start-up cancels in the marginal figure but adds its noise:
   use it with large trees).

     build / decode      marginal build throughput / marginal decode throughput, same workers   target >= 0.8
     2 workers / 1       marginal build throughput with 2 workers / with 1                        target >= 1.8

2. Bytes. The large tree's store (every file under it) per kept sample vs the published layout
   (`odg export es-imagenet`: one np.savez_compressed npz per kept sample, plus the label file),
   target <= 1/5. For the record, on the same kept samples: the candidate event encodings, each
   compressed per sample with zstd (level 3, the store's codec), size and decode time to dense
   [T, 2, 224, 224] frames (verified equal):
     words   the store's per-pixel 16-bit words [223, 223] (bit 2(t-1)+1-p)         + zstd
     packed  the [T, 2, 223, 223] bools bit-packed along the width (np.packbits)      + zstd
     list    the event list, (N, 3) uint8 (row, col, t) per polarity                  + zstd
     npz     the published file (np.savez_compressed), decoded by the published loader

3. Dense-frame read time per kept sample, from the files on disk (page cache), interleaved:
     frames(i)        open_store(url)['train'].frames(i)          (random access)
     iter_shards      iter_shards() + odg.words_to_frames           (sequential fast path)
     published        np.load(npz) + scatter into a float [2, 8, 256, 256] torch tensor with the
                      centring shift, crop [:, :, 16:240, 16:240] (the published loader)
   target: published / store >= 12x.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import contextlib
import io
import shutil
import statistics
import sys
import tempfile
import time
from functools import partial

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _images  # noqa: E402


def _decode_shard(items) -> int:
    """Decode-only Dask task: read and cv2.imdecode every item of a shard (the build's shard grouping)."""
    import cv2
    import numpy as np
    n = 0
    for it in items:
        img = cv2.imdecode(np.frombuffer(it.read(), np.uint8), cv2.IMREAD_COLOR)
        n += img is not None
    return n


def _rm(path):
    shutil.rmtree(path, ignore_errors=True)


def _dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


# --------------------------------------------------------------------------------------------
# 1. build vs decode
# --------------------------------------------------------------------------------------------
def _minflt(pid: int) -> float:
    """Minor page faults of a process so far (Linux /proc; nan elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return float(f.read().rsplit(")", 1)[1].split()[7])
    except (OSError, IndexError, ValueError):
        return float("nan")


def _cpu_probe(client):
    """A function returning (CPU seconds, user + system, all threads; minor page faults) used so far by
    the cluster's worker processes: a measure of work that load from other programs does not inflate."""
    import psutil
    pids = list(client.run(os.getpid).values())
    procs = [psutil.Process(pid) for pid in pids]

    def cpu():
        return np.array([sum(sum(p.cpu_times()[:2]) for p in procs), sum(_minflt(p) for p in pids)])
    return cpu


class Jobs:
    """The timed jobs: a build (`run_build`, as `odg build imagenet`) or a decode-only Dask job."""

    def __init__(self, roots: dict, shard_size: int, work: str):
        import inspect

        from odg import ODGParams, __version__, word_dtype
        from odg.pipelines.build import BuildSpec, run_build
        from odg.pipelines.decode import MAX_PIXELS
        from odg.pipelines.imagenet import convert_item, imagenet_items, load_classes
        from odg.pipelines.store.schema import KIND_IMAGENET
        self.work = work
        self.K = shard_size
        params = ODGParams()
        self.specs, self.items = {}, {}
        for name, root in roots.items():
            items, source = imagenet_items(root, "train")
            self.items[name] = items
            self.specs[name] = dict(
                split="train", kind=KIND_IMAGENET, items=items,
                convert=partial(convert_item, params=params, max_pixels=MAX_PIXELS),
                payload_shape=(params.grid, params.grid), payload_dtype=word_dtype(params.steps),
                params=params.to_dict(), classes=load_classes().as_list(), source=source, shard_size=shard_size)
        self._BuildSpec = BuildSpec
        self._n = 0
        # run_build's signature changes under development; pass odg_version only where it is taken
        self._extra = {"odg_version": __version__} if "odg_version" in inspect.signature(run_build).parameters else {}

    def build(self, name: str, client, keep: str | None = None, cpu=None):
        """Build tree `name` into a new store; returns (wall s, [worker CPU s, worker minor faults]).
        The store is removed unless `keep` names where it goes."""
        from odg.pipelines.build import run_build
        self._n += 1
        url = keep or os.path.join(self.work, f"store-{self._n}.zarr")
        _rm(url)
        spec = self._BuildSpec(url=url, **self.specs[name])
        c0 = cpu() if cpu else 0.0
        t0 = time.perf_counter()
        rep = run_build(spec, progress=False, client=client, **self._extra)
        dt = time.perf_counter() - t0
        dc = (cpu() - c0) if cpu else np.full(2, np.nan)
        if rep.failed:
            raise RuntimeError(f"build failed: {rep.failed}")
        if keep is None:
            _rm(url)
        return dt, dc

    def decode(self, name: str, client, cpu=None):
        """Read + cv2.imdecode every file of tree `name`, one task per shard; like build()."""
        from distributed import wait
        items, K = self.items[name], self.K
        c0 = cpu() if cpu else 0.0
        t0 = time.perf_counter()
        futs = [client.submit(_decode_shard, items[s * K:(s + 1) * K], pure=False)
                for s in range(-(-len(items) // K))]
        wait(futs)
        n = sum(f.result() for f in futs)
        dt = time.perf_counter() - t0
        dc = (cpu() - c0) if cpu else np.full(2, np.nan)
        if n != len(items):
            raise RuntimeError(f"decode-only job decoded {n} of {len(items)} images")
        return dt, dc


def bench_build(args, roots, n_small, n_large, work):
    from odg.pipelines.build import dask_client
    jobs = Jobs(roots, args.shard_size, work)
    workers = args.workers
    combos = [(w, kind, size) for w in workers for kind in ("build", "decode") for size in ("small", "large")]
    t = {c: [] for c in combos}
    cpu_t = {c: [] for c in combos}
    keep = os.path.join(work, "large.zarr")
    with contextlib.ExitStack() as stack:
        clients, probes = {}, {}
        t0 = time.perf_counter()
        if not args.fresh_cluster:
            for w in workers:
                clients[w] = stack.enter_context(dask_client(w, quiet=True))
                probes[w] = _cpu_probe(clients[w])
            print(f"  clusters up in {time.perf_counter() - t0:.1f} s; warming up (first tasks import odg, load the JIT cache)")
            env = next(iter(clients[max(workers)].run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_")).values()))
            print(f"  worker environment: MALLOC_TRIM_THRESHOLD_={env} (dask's nanny default 65536 turns off glibc's "
                  "dynamic mmap threshold: every large allocation is a fresh mmap, paid in page faults)")
        for w, c in clients.items():       # warm-up: both job kinds once on every cluster (not timed)
            jobs.build("small", c)
            jobs.decode("small", c)
        for rnd in range(args.rounds):
            order = combos[rnd % len(combos):] + combos[:rnd % len(combos)]
            for w, kind, size in order:
                if args.fresh_cluster:         # timed from before the cluster starts, as the command line runs
                    t0 = time.perf_counter()
                    with dask_client(w, quiet=True) as c:
                        cpu = _cpu_probe(c)
                        _, dc = jobs.build(size, c, cpu=cpu) if kind == "build" else jobs.decode(size, c, cpu=cpu)
                        dt = time.perf_counter() - t0
                else:
                    c, cpu = clients[w], probes[w]
                    last = rnd == args.rounds - 1 and kind == "build" and size == "large" and w == max(workers)
                    dt, dc = (jobs.build(size, c, keep=keep if last else None, cpu=cpu) if kind == "build"
                              else jobs.decode(size, c, cpu=cpu))
                t[(w, kind, size)].append(dt)
                cpu_t[(w, kind, size)].append(dc)
            print(f"  round {rnd + 1}/{args.rounds} (load {os.getloadavg()[0]:.1f}): " + ", ".join(
                f"{kind} {size} {w}w {t[(w, kind, size)][-1]:.2f}s" for w, kind, size in combos))
    if args.fresh_cluster or not os.path.exists(keep):
        with dask_client(max(workers), quiet=True) as c:
            jobs.build("large", c, keep=keep)

    dn = n_large - n_small
    print(f"\nbuild vs decode-only, marginal throughput between {n_small} and {n_large} images "
          f"(shard size {args.shard_size}; medians over {args.rounds} rounds; median of per-round values in brackets):")
    rate, cpu_img, flt_img = {}, {}, {}
    for w in workers:
        for kind in ("build", "decode"):
            small, large = t[(w, kind, "small")], t[(w, kind, "large")]
            ms, ml = statistics.median(small), statistics.median(large)
            rate[(w, kind)] = dn / (ml - ms)
            per_round = statistics.median(dn / (b - a) for a, b in zip(small, large))
            cs, cl = np.array(cpu_t[(w, kind, "small")]), np.array(cpu_t[(w, kind, "large")])
            cpu_img[(w, kind)] = (np.median(cl[:, 0]) - np.median(cs[:, 0])) / dn
            flt_img[(w, kind)] = (np.median(cl[:, 1]) - np.median(cs[:, 1])) / dn
            print(f"  {w} worker{'s' if w > 1 else ' '} {kind:6s}: small {ms:6.2f} s, large {ml:6.2f} s -> "
                  f"{rate[(w, kind)]:7.1f} images/s [{per_round:7.1f}]   worker CPU {cpu_img[(w, kind)] * 1e3:6.3f} ms/image, "
                  f"{flt_img[(w, kind)]:5.0f} minor page faults/image")
    print("\nratios (wall-clock marginal throughput; in brackets the same from worker CPU time per image, which "
          "load from other processes does not inflate):")
    for w in workers:
        r = rate[(w, "build")] / rate[(w, "decode")]
        rc = cpu_img[(w, "decode")] / cpu_img[(w, "build")]
        print(f"  build / decode-only, {w} worker{'s' if w > 1 else ' '}    = {r:6.3f}  [CPU {rc:6.3f}]   target >= 0.8   "
              f"{'PASS' if r >= 0.8 else 'FAIL'}")
    if 1 in workers and 2 in workers:
        r = rate[(2, "build")] / rate[(1, "build")]
        rc = cpu_img[(1, "build")] / cpu_img[(2, "build")]
        print(f"  build, 2 workers / 1 worker      = {r:6.3f}  [CPU per image 1w/2w {rc:5.3f}]   target >= 1.8   "
              f"{'PASS' if r >= 1.8 else 'FAIL'}   (decode-only 2w/1w: {rate[(2, 'decode')] / rate[(1, 'decode')]:.3f}; "
              f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})")
    return keep


def profile_build(args, roots, work):
    """Where a build task's time goes: the stages of `_build_shard` on one shard, in this process."""
    import numcodecs

    from odg import ODGParams, odg_events, word_dtype
    from odg.pipelines.decode import decode_image
    from odg.pipelines.imagenet import load_classes
    from odg.pipelines.store import SplitWriter
    from odg.pipelines.store.schema import DISCARDED, KEPT, KIND_IMAGENET
    params = ODGParams()
    jobs = Jobs(roots, args.shard_size, work)
    items = jobs.items["large"][:args.shard_size]
    K = len(items)
    z = numcodecs.Zstd(level=3)
    stages = ("read", "decode", "odg", "zstd", "write_shard")
    st = {k: [] for k in stages}          # wall
    sc = {k: [] for k in stages}          # CPU (process: includes zarr's codec threads)
    clk = (time.perf_counter, time.process_time)
    import resource
    faults = []
    for rep in range(3):
        acc = {k: [0.0, 0.0] for k in stages}
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        words = np.zeros((K, params.grid, params.grid), word_dtype(params.steps))
        status = np.zeros(K, np.int8)
        shape = np.zeros((K, 2), np.int16)
        count = np.zeros((K, 2), np.int32)

        def timed(stage, fn, *a):
            t = [c() for c in clk]
            out = fn(*a)
            for q, c in enumerate(clk):
                acc[stage][q] += c() - t[q]
            return out
        for j, it in enumerate(items):
            data = timed("read", it.read)
            img = timed("decode", decode_image, data)
            r = timed("odg", odg_events, img, params)
            words[j], status[j], shape[j] = r.words, KEPT if r.kept else DISCARDED, r.shape
            count[j] = r.counts.sum(0)
        timed("zstd", lambda: [z.encode(w) for w in words])
        url = os.path.join(work, f"profile-{rep}.zarr")
        SplitWriter(url, "").create_store(KIND_IMAGENET, params.to_dict(), load_classes().as_list(), "")
        SplitWriter(url, "train").create(K, K, (params.grid, params.grid), word_dtype(params.steps), {}, {})
        cols = {"label": np.array([it.label for it in items], np.int16),
                "number": np.array([it.number for it in items], np.int32),
                "name": np.array([it.name for it in items], dtype=str), "status": status,
                "reason": np.array([""] * K, dtype=str), "shape": shape, "count": count, "words": words}
        timed("write_shard", lambda: SplitWriter(url, "train").write_shard(0, cols, {}))
        faults.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / K)
        _rm(url)
        for k in stages:
            st[k].append(acc[k][0] / K)
            sc[k].append(acc[k][1] / K)
    med = {k: statistics.median(v) for k, v in st.items()}
    cmed = {k: statistics.median(v) for k, v in sc.items()}
    main = ("read", "decode", "odg", "write_shard")
    total, ctotal = sum(med[k] for k in main), sum(cmed[k] for k in main)
    print(f"\nwhere a build task's time goes (one shard of {K} images in this process, median of 3; ms/image):")
    print(f"  {'':46s} {'wall':>7s} {'share':>6s}   {'CPU':>7s} {'share':>6s}")
    for k, desc in (("read", "read the file"), ("decode", "decode_image (header checks + cv2.imdecode)"),
                    ("odg", "odg_events (words)"), ("write_shard", "writer.write_shard (zarr, checksums, marker)"),
                    ("zstd", "  for reference: zstd-3 of the words alone")):
        sh = f"{med[k] / total * 100:5.1f}%" if k in main else ""
        csh = f"{cmed[k] / ctotal * 100:5.1f}%" if k in main else ""
        print(f"  {desc:46s} {med[k] * 1e3:7.3f} {sh:>6s}   {cmed[k] * 1e3:7.3f} {csh:>6s}")
    print(f"  => in-process bound on build/decode = (read+decode)/total = {(med['read'] + med['decode']) / total:.3f} "
          f"[CPU {(cmed['read'] + cmed['decode']) / ctotal:.3f}]")
    print(f"  (this process, malloc as configured at its start: {statistics.median(faults):.0f} minor page faults/image; "
          "compare the workers' figure above)")


def published_loader(path: str, a: int, b: int):
    """The published ES-ImageNet loader: npz -> float [2, 8, 224, 224] (ON in channel 0)."""
    import torch
    with np.load(path) as data:
        pos, neg = data["pos"].astype(np.int64), data["neg"].astype(np.int64)
    dr, dc = (254 - a) // 2, (254 - b) // 2
    x = torch.zeros(2, 8, 256, 256)
    pos, neg = torch.from_numpy(pos), torch.from_numpy(neg)
    x[0, pos[:, 2] - 1, pos[:, 0] + dr, pos[:, 1] + dc] = 1
    x[1, neg[:, 2] - 1, neg[:, 0] + dr, neg[:, 1] + dc] = 1
    return x[:, :, 16:240, 16:240]


class Codecs:
    """Per-sample encodings of the same events; decode() gives uint8 [T, 2, 224, 224] frames."""

    def __init__(self, params, level: int = 3):
        import numcodecs
        self.z = numcodecs.Zstd(level=level)
        self.p = params

    def _origin(self, shape):
        """Offset of the event window in the published frame: frame = window shifted by this."""
        a, b = shape
        r0, c0 = self.p.window_origin(a, b)
        sr, sc = self.p.centring(a, b)
        return r0 + sr - self.p.frame_offset, c0 + sc - self.p.frame_offset

    # words
    def enc_words(self, words, shape):
        return self.z.encode(np.ascontiguousarray(words))

    def dec_words(self, blob, shape):
        from odg import words_to_frames
        words = np.frombuffer(self.z.decode(blob), np.uint16).reshape(self.p.grid, self.p.grid)
        return words_to_frames(words, shape, self.p)

    # bits packed along the width
    def enc_packed(self, words, shape):
        from odg import unpack_frames
        return self.z.encode(np.packbits(unpack_frames(words, self.p.steps), axis=-1))

    def dec_packed(self, blob, shape):
        G, T, S = self.p.grid, self.p.steps, self.p.frame_size
        packed = np.frombuffer(self.z.decode(blob), np.uint8).reshape(T, 2, G, -1)
        win = np.unpackbits(packed, axis=-1, count=G)
        dr, dc = self._origin(shape)
        out = np.zeros((T, 2, S, S), np.uint8)
        r0, r1 = max(0, dr), min(S, dr + G)
        c0, c1 = max(0, dc), min(S, dc + G)
        out[:, :, r0:r1, c0:c1] = win[:, :, r0 - dr:r1 - dr, c0 - dc:c1 - dc]
        return out

    # plain event list
    def enc_list(self, words, shape):
        from odg import events_to_published, words_to_events
        pos, neg = events_to_published(words_to_events(words, shape, self.p))
        return self.z.encode(np.concatenate([np.array([len(pos)], "<u4").view(np.uint8),
                                             pos.reshape(-1), neg.reshape(-1)]))

    def dec_list(self, blob, shape):
        raw = np.frombuffer(self.z.decode(blob), np.uint8)
        npos = int(raw[:4].view("<u4")[0])
        ev = raw[4:].reshape(-1, 3)
        T, S = self.p.steps, self.p.frame_size
        sr, sc = self.p.centring(*shape)
        out = np.zeros((T, 2, S, S), np.uint8)
        pol = np.zeros(len(ev), np.int64)
        pol[npos:] = 1
        r = ev[:, 0].astype(np.int64) + (sr - self.p.frame_offset)
        c = ev[:, 1].astype(np.int64) + (sc - self.p.frame_offset)
        ok = (r >= 0) & (r < S) & (c >= 0) & (c < S)
        out[ev[ok, 2].astype(np.int64) - 1, pol[ok], r[ok], c[ok]] = 1
        return out

    # the published npz
    def enc_npz(self, words, shape):
        from odg import events_to_published, words_to_events
        pos, neg = events_to_published(words_to_events(words, shape, self.p))
        f = io.BytesIO()
        np.savez_compressed(f, pos=pos, neg=neg)
        return f.getvalue()

    def dec_npz(self, blob, shape):
        return published_loader(io.BytesIO(blob), *shape)


def bench_bytes(args, url, work):
    from odg.pipelines.export import export_es_imagenet
    from odg.pipelines.store import open_store
    store = open_store(url)
    sr = store["train"]
    kept = sr.kept_indices()
    n_kept = len(kept)
    store_bytes = _dir_bytes(url)
    words_bytes = _dir_bytes(os.path.join(url, "train", "words"))
    pub_dir = os.path.join(work, "published")
    _rm(pub_dir)
    t0 = time.perf_counter()
    export_es_imagenet(url, pub_dir, ["train"], workers=2, progress=False)
    t_export = time.perf_counter() - t0
    npz_files = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(pub_dir, "train")) for f in fs]
    pub_bytes = sum(os.path.getsize(f) for f in npz_files)
    label_bytes = os.path.getsize(os.path.join(pub_dir, "trainlabel.txt"))
    n_events = int(sr.counts[kept].sum())
    print(f"\nbytes ({len(sr)} samples, {n_kept} kept, {len(sr) - n_kept} discarded; "
          f"mean {n_events / n_kept:.0f} events per kept sample):")
    print(f"  store, every file:            {store_bytes / n_kept:9.0f} B per kept sample   "
          f"(words array alone {words_bytes / n_kept:.0f} B; the store also holds the discarded samples)")
    print(f"  published npz files + labels: {(pub_bytes + label_bytes) / n_kept:9.0f} B per kept sample   "
          f"({len(npz_files)} files; export took {t_export:.1f} s)")
    r = store_bytes / (pub_bytes + label_bytes)
    print(f"  ratio store / published = {r:.3f} (1/{1 / r:.2f})   target <= 1/5 = 0.200   {'PASS' if r <= 0.2 else 'FAIL'}")

    # candidate encodings, same kept samples
    import torch
    codecs = Codecs(store.params)
    names = ("words", "packed", "list", "npz")
    idx = kept[:args.samples]
    shapes = {int(i): tuple(int(v) for v in sr.shapes[i]) for i in idx}
    blobs = {n: [] for n in names}
    for i in idx:
        words = sr.words(int(i))
        for n in names:
            blobs[n].append(getattr(codecs, f"enc_{n}")(words, shapes[int(i)]))
    for j, i in enumerate(idx[:50]):        # the encodings decode to the same frames
        ref = sr.frames(int(i))
        for n in names:
            got = getattr(codecs, f"dec_{n}")(blobs[n][j], shapes[int(i)])
            got = got.permute(1, 0, 2, 3).numpy().astype(np.uint8) if isinstance(got, torch.Tensor) else got
            assert np.array_equal(got, ref), f"encoding {n} decodes sample {i} wrongly"
    times = {n: [[] for _ in idx] for n in names}
    cpus = {n: [[] for _ in idx] for n in names}
    for rnd in range(args.read_rounds):
        for j, i in enumerate(idx):
            rot = (rnd + j) % len(names)
            for n in names[rot:] + names[:rot]:
                dec = getattr(codecs, f"dec_{n}")
                c0 = time.process_time()
                t0 = time.perf_counter()
                dec(blobs[n][j], shapes[int(i)])
                times[n][j].append(time.perf_counter() - t0)
                cpus[n][j].append(time.process_time() - c0)
    print(f"\ncandidate encodings on the same {len(idx)} kept samples (zstd level 3 per sample; decode = "
          f"bytes -> dense [T, 2, 224, 224], median per sample over {args.read_rounds} rounds):")
    ref_b = np.mean([len(b) for b in blobs["npz"]])
    for n, desc in zip(names, ("16-bit words [223,223] + zstd (store)", "packbits along width + zstd",
                               "event list (N,3) uint8 + zstd", "published npz (savez_compressed)")):
        mb = np.mean([len(b) for b in blobs[n]])
        mt = np.mean([statistics.median(x) for x in times[n]]) * 1e3
        mc = np.mean([statistics.median(x) for x in cpus[n]]) * 1e3
        print(f"  {n:7s} {desc:40s} {mb:9.0f} B/sample ({mb / ref_b:5.3f} of npz)   decode {mt:7.3f} ms/sample "
              f"[CPU {mc:6.3f}]")
    return sr, kept, pub_dir


# --------------------------------------------------------------------------------------------
# 3. dense-frame reads
# --------------------------------------------------------------------------------------------
def bench_read(args, url, pub_dir):
    from odg import words_to_frames
    from odg.pipelines.export import published_relpath
    from odg.pipelines.store import open_store
    from odg.pipelines.store.schema import KEPT
    sr = open_store(url)["train"]
    params = sr.store.params
    shards = range(min(args.read_shards, sr.n_shards))
    kept = sr.kept_indices()
    kept = kept[kept < min(len(sr), len(shards) * sr.shard_size)]
    names_all = sr.names()
    paths = {int(i): os.path.join(pub_dir, "train", published_relpath(
        "train", int(sr.labels[i]), int(sr.numbers[i]), names_all[i])) for i in kept}
    shapes = {int(i): tuple(int(v) for v in sr.shapes[i]) for i in kept}
    for i in kept[:20]:                      # the three readers agree
        ref = sr.frames(int(i))
        pub = published_loader(paths[int(i)], *shapes[int(i)]).permute(1, 0, 2, 3).numpy().astype(np.uint8)
        assert np.array_equal(ref, pub), f"published loader and store disagree on sample {i}"

    def r_frames():
        s = open_store(url)["train"]
        for i in kept:
            s.frames(int(i))

    def r_shards():
        s = open_store(url)["train"]
        for sh in s.iter_shards(shards):
            for j in np.flatnonzero(sh.status == KEPT):
                words_to_frames(sh.words[j], tuple(sh.shape[j]), params)

    def r_published():
        for i in kept:
            published_loader(paths[int(i)], *shapes[int(i)])

    readers = [("frames(i)", r_frames), ("iter_shards", r_shards), ("published", r_published)]
    res = {n: [] for n, _ in readers}
    cres = {n: [] for n, _ in readers}
    for rnd in range(args.read_rounds):
        for n, f in readers[rnd % 3:] + readers[:rnd % 3]:
            c0 = time.process_time()
            t0 = time.perf_counter()
            f()
            res[n].append((time.perf_counter() - t0) / len(kept))
            cres[n].append((time.process_time() - c0) / len(kept))
    med = {n: statistics.median(v) for n, v in res.items()}
    cmed = {n: statistics.median(v) for n, v in cres.items()}
    print(f"\ndense-frame reads from disk, the {len(kept)} kept samples of {len(shards)} shards, "
          f"median over {args.read_rounds} rounds "
          f"(store: uint8 [8, 2, 224, 224]; published: float [2, 8, 224, 224]):")
    for n, _ in readers:
        print(f"  {n:12s} {med[n] * 1e3:8.3f} ms/sample   {1 / med[n]:8.0f} samples/s   [CPU {cmed[n] * 1e3:7.3f} ms/sample]")
    print("ratios (wall clock; CPU time in brackets):")
    for n in ("frames(i)", "iter_shards"):
        r = med["published"] / med[n]
        print(f"  published loader / {n:12s} = {r:6.2f}x  [CPU {cmed['published'] / cmed[n]:6.2f}x]   target >= 12x   "
              f"{'PASS' if r >= 12 else 'FAIL'}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", metavar="DIR", help="a folder of JPEGs (recursive); default: generated real-photo JPEGs")
    ap.add_argument("--small", type=int, default=256, metavar="N", help="images in the small tree (default 256)")
    ap.add_argument("--factor", type=int, default=5, help="large tree = factor x small (default 5)")
    ap.add_argument("--shard-size", type=int, default=128, metavar="K",
                    help="samples per shard (default 128; the command line's default is 256)")
    ap.add_argument("--workers", default="1,2", help="worker counts to compare (default 1,2)")
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds of the build/decode jobs (default 3)")
    ap.add_argument("--fresh-cluster", action="store_true", help="start a new LocalCluster for every job")
    ap.add_argument("--samples", type=int, default=200, help="kept samples for the encoding comparison (default 200)")
    ap.add_argument("--read-rounds", type=int, default=3, help="rounds of the read timings (default 3)")
    ap.add_argument("--read-shards", type=int, default=2, metavar="S",
                    help="time the reads over the kept samples of the first S shards (default 2)")
    ap.add_argument("--skip-build", action="store_true", help="only build the large store once, then bytes and reads")
    ap.add_argument("--work", metavar="DIR", help="scratch folder (default: a new temporary folder, removed after)")
    args = ap.parse_args(argv)
    args.workers = sorted({int(w) for w in args.workers.split(",")})

    import torch
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    n_large = args.small * args.factor
    files = _images.jpeg_files(args.images) if args.images else _images.tree_files(_images.make_tree(n_large))
    if len(files) < n_large:
        sys.exit(f"need {n_large} JPEGs, {args.images} holds {len(files)}: lower --small or --factor")
    files = files[:n_large]
    work = args.work or tempfile.mkdtemp(prefix="bench-build-")
    os.makedirs(work, exist_ok=True)
    T0 = time.perf_counter()
    try:
        roots = {"small": _images.imagenet_tree(files[:args.small], os.path.join(work, "tree-small")),
                 "large": _images.imagenet_tree(files, os.path.join(work, "tree-large"))}
        print(f"bench_build: {args.small} and {n_large} images from "
              f"{args.images or os.path.dirname(os.path.dirname(os.path.dirname(files[0])))}; "
              f"shard size {args.shard_size}, workers {args.workers}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
        if args.skip_build:
            from odg.pipelines.build import dask_client
            jobs = Jobs(roots, args.shard_size, work)
            url = os.path.join(work, "large.zarr")
            with dask_client(max(args.workers), quiet=True) as c:
                jobs.build("large", c, keep=url)
        else:
            url = bench_build(args, roots, args.small, n_large, work)
        try:
            profile_build(args, roots, work)
        except Exception as e:  # noqa: BLE001 - internal APIs under development: report, go on
            print(f"\n(build-task profile skipped: {type(e).__name__}: {e})")
        _, _, pub_dir = bench_bytes(args, url, work)
        bench_read(args, url, pub_dir)
        print(f"\n(total {time.perf_counter() - T0:.0f} s; load average now {os.getloadavg()[0]:.1f})")
    finally:
        if not args.work:
            _rm(work)


if __name__ == "__main__":
    main()
