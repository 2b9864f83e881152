"""The dataset card's source digests (`odg.pipelines.card`): what they cost beside reading the source.

    python benchmarks/bench_card.py               # ~1 minute
    python benchmarks/bench_card.py --mb 2048 --files 100000

1. Archive: `file_digest` (sha256 and md5 of every byte, one pass, md5 in a second thread)
   against reading the same file in the same blocks and doing nothing with them, both from the
   page cache, interleaved rounds. Printed: GB/s of each in CPU seconds (`time.process_time`,
   robust to other load on the machine) and in wall seconds (what the build waits; the two
   hashes overlap), the ratio digest / read, and the wall time the digest of a 150 GB ILSVRC2012
   train archive takes on one worker at that rate (it runs beside the shard tasks, streamed once;
   a resume reuses it).
2. Tree: `tree_digest` (names and sizes of every file) against `os.walk` + `os.stat` alone, on a
   generated tree of small files: ratio, and the time for 1,281,167 files (ILSVRC2012 train).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from odg.pipelines.card import BLOCK, file_digest, tree_digest  # noqa: E402


def read_only(path: str) -> int:
    n = 0
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            n += len(block)
    return n


def walk_only(path: str) -> int:
    n = 0
    for d, _, files in os.walk(path):
        for fn in files:
            os.stat(os.path.join(d, fn))
            n += 1
    return n


def cpu(fn, *a) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of fn(*a)."""
    t, w = time.process_time(), time.perf_counter()
    fn(*a)
    return time.process_time() - t, time.perf_counter() - w


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=512, help="size of the archive stand-in (default 512 MB)")
    ap.add_argument("--files", type=int, default=20000, help="files in the generated tree (default 20000)")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        big = os.path.join(work, "archive.tar")
        rng = os.urandom(1 << 20)
        with open(big, "wb") as f:
            for _ in range(args.mb):
                f.write(rng)
        read_only(big)                                    # into the page cache
        t_read, t_dig = [], []
        for _ in range(args.rounds):
            t_read.append(cpu(read_only, big))
            t_dig.append(cpu(file_digest, big))
        gb = args.mb / 1024
        (r, _), (d, dw) = min(t_read), min(t_dig, key=lambda x: x[1])
        print(f"archive {args.mb} MB: read {gb / r:.2f} GB/s, sha256+md5 {gb / d:.2f} GB/s CPU, "
              f"{gb / dw:.2f} GB/s wall; digest / read {d / r:.1f}x (CPU); a 150 GB archive: "
              f"{150 / (gb / dw) / 60:.1f} min wall on one worker")
        tree = os.path.join(work, "tree")
        per = 1000
        for k in range(args.files):
            sub = os.path.join(tree, f"n{k // per:08d}")
            if k % per == 0:
                os.makedirs(sub)
            with open(os.path.join(sub, f"{k}.JPEG"), "wb") as f:
                f.write(b"x" * (k % 97))
        t_walk, t_tree = [], []
        for _ in range(args.rounds):
            t_walk.append(cpu(walk_only, tree))
            t_tree.append(cpu(tree_digest, tree))
        w, t = min(t_walk)[0], min(t_tree)[0]
        print(f"tree {args.files:,} files: walk+stat {w * 1e6 / args.files:.1f} us/file, digest "
              f"{t * 1e6 / args.files:.1f} us/file; digest / walk {t / w:.2f}x; "
              f"1,281,167 files: {t / args.files * 1281167:.0f} s CPU on one worker")


if __name__ == "__main__":
    main()
