"""The shard fast path (`odg.pipelines.store.shard_read`) against zarr-python's own codec path.

    python benchmarks/bench_shard_read.py              # builds 256 real-photo images, shard size 32
    python benchmarks/bench_shard_read.py --store S.zarr --split train

On the `words` array of one store (format 2: zstd + crc32c inner chunks; `--format1` also makes a
format 1 copy, zstd only, checked against the markers' sha256), interleaved over --rounds rounds,
the best round reported:

  whole shard     ShardWordsReader.read(s) (one request, one decode pass, crc32c / sha256 checked)
                  vs array[a:b] (zarr's pipeline, one inner chunk at a time), ms per shard
  one sample      ShardWordsReader.read_one(i) (cached index, one byte-range read) vs array[i], ms
  shard write     encode_words_shard + one put of the file vs array[a:b] = block, ms per shard
Both paths give identical arrays and bytes (checked first). The fast path is kept where the ratio
zarr / fast is clearly above 1 in CPU time (what a build's workers, one per core, spend).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def best_of(fn, items, rounds, min_time=0.5):
    """Best (over rounds) mean `(wall, CPU)` seconds per item of `fn(item)` over `items`, repeated to
    `min_time`; CPU is this process's, all threads (zarr's codec pipeline uses several)."""
    best = None
    for _ in range(rounds):
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            for it in items:
                fn(it)
            n += len(items)
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        got = (dt / n, (time.process_time() - c0) / n)
        best = got if best is None else min(best, got)
    return best


def measure(sr, rounds, scratch):
    import zarr

    from odg.pipelines.store.shard_read import ShardWordsReader, encode_words_shard, odg_sharding_layout
    words = sr.array("words")
    digest = None
    from odg.pipelines.store.integrity import chunk_crc
    if not chunk_crc(words):
        digest = lambda s: sr.marker(s).marker["sha256"]["words"]      # noqa: E731
    fast = ShardWordsReader(words, digest)
    assert fast.fast, "the fast path is off for this store"
    K, n = sr.shard_size, len(sr)
    shards = list(range(sr.n_shards))
    samples = np.random.default_rng(0).permutation(n)[:256].tolist()
    for s in shards:
        assert np.array_equal(fast.read(s, K), words[s * K:(s + 1) * K])
    layout = odg_sharding_layout(words)
    g = zarr.open_group(scratch, mode="w")
    out = g.create_array("w", shape=words.shape, dtype=words.dtype, shards=words.shards, chunks=words.chunks,
                         compressors=words.metadata.codecs[0].codecs[1:], fill_value=0,
                         config={"write_empty_chunks": True})
    blocks = {s: fast.read(s, K) for s in shards}
    key = lambda s: out.metadata.chunk_key_encoding.encode_chunk_key((s, 0, 0))       # noqa: E731
    out[0:K] = blocks[0]
    with open(os.path.join(scratch, "w", key(0)), "rb") as f:
        assert f.read() == encode_words_shard(blocks[0], K, *layout), "direct bytes differ from zarr's"

    def fast_write(s):
        data = encode_words_shard(blocks[s], K, *layout)
        with open(os.path.join(scratch, "w", key(s)), "wb") as f:
            f.write(data)

    def zarr_write(s):
        out[s * K:(s + 1) * K] = blocks[s]

    os.makedirs(os.path.dirname(os.path.join(scratch, "w", key(len(shards) - 1))), exist_ok=True)
    for s in shards:
        os.makedirs(os.path.dirname(os.path.join(scratch, "w", key(s))), exist_ok=True)
    rows = {}
    for name, f_fast, f_zarr, items in (
            ("whole shard", lambda s: fast.read(s, K), lambda s: words[s * K:(s + 1) * K], shards),
            ("one sample", lambda i: fast.read_one(i), lambda i: words[i], samples),
            ("shard write", fast_write, zarr_write, shards)):
        a = b = None
        for _ in range(rounds):          # interleaved
            ta = best_of(f_fast, items, 1)
            tb = best_of(f_zarr, items, 1)
            a, b = (ta if a is None else min(a, ta)), (tb if b is None else min(b, tb))   # by wall time
        rows[name] = (a, b)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", metavar="PATH", help="an existing ES-ImageNet store (default: build one)")
    ap.add_argument("--split", default="train")
    ap.add_argument("--samples", type=int, default=256, help="images to build (without --store)")
    ap.add_argument("--shard-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--format1", action="store_true", help="also measure a format 1 copy of the store")
    args = ap.parse_args(argv)
    import zarr

    from odg.pipelines.store import open_store
    work = tempfile.mkdtemp(prefix="odg-bench-shard-")
    try:
        if args.store:
            url, split = args.store, args.split
        else:
            from bench_loader import build_store
            url, split = build_store(args.samples, work, args.shard_size, workers=2), "train"
        stores = [("format 2", url)]
        if args.format1:
            sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
            from tests.pipelines.test_store_integrity_read import to_format1
            stores.append(("format 1", to_format1(url, os.path.join(work, "f1.zarr"))))
        sr0 = open_store(url)[split]
        print(f"zarr {zarr.__version__}; {url} [{split}]: {len(sr0)} samples, shard size {sr0.shard_size}, "
              f"{sr0.array('words').chunks[0]} samples per inner chunk")
        for label, u in stores:
            rows = measure(open_store(u)[split], args.rounds, os.path.join(work, "scratch.zarr"))
            for name, (a, b) in rows.items():
                print(f"{label:9s} {name:12s} fast {a[0] * 1e3:8.3f} ms (CPU {a[1] * 1e3:8.3f})   "
                      f"zarr {b[0] * 1e3:8.3f} ms (CPU {b[1] * 1e3:8.3f})   zarr/fast {b[0] / a[0]:5.2f}x "
                      f"(CPU {b[1] / a[1]:5.2f}x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
