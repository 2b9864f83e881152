"""Training input pipeline: `odg.models.data.ESDataset` through a DataLoader vs the published loader.

    python benchmarks/bench_loader.py              # builds 512 real-photo images
    python benchmarks/bench_loader.py --store S.zarr --split val --samples 2000

One run, the same samples for every loader:

  published   the published ES-ImageNet loader, re-implemented faithfully: per sample np.load of the
              `classK/classK_n.npz` file (the published layout, written by `odg export es-imagenet`),
              scatter of `pos`/`neg` into a float32 torch.zeros([2, 8, 256, 256]) with the centring
              shift ((254 - a) // 2, (254 - b) // 2) and t - 1 as the time index, crop
              [:, :, 16:240, 16:240]; DataLoader(shuffle=True), default collate -> [B, 2, 8, 224, 224].
  dense       ESDataset(store).loader(B, num_workers=w) (ShardSampler, ds.collate_fn, pooled
              worker buffers): uint8 [T, B, 2, 224, 224] batches.
  packed      ESDataset(store, packed=True).loader(...): uint16 words [B, 224, 224] per batch
              (unpacked by `unpack_batch` on the GPU; its time is printed separately, not included).
  dense-nopool  (w > 0, for the record) a plain DataLoader with ShardSampler and ds.collate_fn:
              a fresh shared-memory batch per batch, as torch's default_collate does.
The built store has shard size 32 (16 shards) and each process caches 4 shards, so every epoch
reads and decodes (almost) every shard again: no epoch is served from memory.

Each loader runs with 0, 1 and 2 DataLoader workers (persistent), batch size B. Every measurement
is whole epochs (repeated to at least --min-time seconds) and is repeated --rounds times with the
loaders interleaved; the best round is reported (the machine is shared: the minimum is the least
disturbed). Printed per loader and worker count:

  wall ms/s   wall-clock milliseconds per sample (lower is better)
  cpu ms/s    CPU milliseconds per sample over the main process and its workers (/proc), i.e. the
              inverse of per-core throughput
  ratios      published / odg, wall and per core (cpu), same worker count.
Targets: dense per-core >= 12x the published loader, packed per-core >= 25x.
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import shutil
import sys
import tempfile
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

TICK = os.sysconf("SC_CLK_TCK")


# -- the published loader, re-implemented ------------------------------------------------------

class PublishedESImageNet(Dataset):
    """The published loader over `DIR/{split}label.txt` + `DIR/{split}/...npz` (lines "FILE K a b")."""

    def __init__(self, root: str, split: str = "train"):
        self.dir = os.path.join(root, split)
        self.items = []
        with open(os.path.join(root, f"{split}label.txt")) as f:
            for line in f:
                if line.strip():
                    name, k, a, b = line.split()
                    self.items.append((name, int(k), int(a), int(b)))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        name, k, a, b = self.items[index]
        data = np.load(os.path.join(self.dir, name))
        pos = data["pos"].astype(np.int64)
        neg = data["neg"].astype(np.int64)
        dx = (254 - a) // 2
        dy = (254 - b) // 2
        frames = torch.zeros([2, 8, 256, 256])
        frames[0, pos[:, 2] - 1, pos[:, 0] + dx, pos[:, 1] + dy] = 1
        frames[1, neg[:, 2] - 1, neg[:, 0] + dx, neg[:, 1] + dy] = 1
        return frames[:, :, 16:240, 16:240], torch.tensor([k])


# -- inputs ------------------------------------------------------------------------------------

def build_store(n: int, work: str, shard_size: int, workers: int) -> str:
    """A store of `n` real-photo images (benchmarks/_images.py: crops/flips of real photographs)."""
    import _images

    from odg.pipelines.cli import main as odg
    tree = _images.make_tree(n)
    url = os.path.join(work, "bench.zarr")
    rc = odg(["build", "imagenet", tree, url, "--split", "train", "--dask-workers", str(workers),
              "--shard-size", str(shard_size), "--quiet"])
    if rc:
        raise SystemExit(f"odg build failed ({rc})")
    return url


def export_subset(url: str, split: str, samples: np.ndarray, out_dir: str) -> str:
    """The published layout of the given kept samples (what `odg export es-imagenet` writes per sample)."""
    from odg import events_to_published, words_to_events
    from odg.pipelines.export import published_relpath
    from odg.pipelines.store import open_store
    st = open_store(url)
    sr = st[split]
    names = sr.names()
    lines = []
    for i in samples:
        i = int(i)
        label, number = int(sr.labels[i]), int(sr.numbers[i])
        a, b = (int(v) for v in sr.shapes[i])
        rel = published_relpath(split, label, number, names[i])
        path = os.path.join(out_dir, split, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        pos, neg = events_to_published(words_to_events(sr.words(i), (a, b), st.params))
        np.savez_compressed(path, pos=pos, neg=neg)
        lines.append(f"{rel} {label} {a} {b}\n")
    with open(os.path.join(out_dir, f"{split}label.txt"), "w") as f:
        f.writelines(lines)
    return out_dir


# -- measurement -------------------------------------------------------------------------------

def _cpu_seconds(pids) -> float:
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK      # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total


class Run:
    """One loader configuration, kept alive (persistent workers) across rounds."""

    def __init__(self, name, loader, sampler=None):
        self.name, self.loader, self.sampler = name, loader, sampler
        self.epoch = 0
        self.best = None            # (wall s/sample, cpu s/sample)

    def _pids(self):
        it = getattr(self.loader, "_iterator", None)
        workers = getattr(it, "_workers", []) if it is not None else []
        return [os.getpid()] + [w.pid for w in workers]

    def epoch_once(self) -> int:
        if self.sampler is not None:
            self.sampler.set_epoch(self.epoch)
        self.epoch += 1
        n = 0
        for _, y in self.loader:
            n += len(y)
        return n

    def measure(self, min_time: float):
        t0 = time.perf_counter()
        c0 = _cpu_seconds(self._pids())
        n = 0
        while True:
            n += self.epoch_once()
            wall = time.perf_counter() - t0
            if wall >= min_time:
                break
        cpu = _cpu_seconds(self._pids()) - c0
        res = (wall / n, cpu / n)
        if self.best is None or res[0] < self.best[0]:
            self.best = res
        return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", metavar="PATH", help="an existing ES-ImageNet store (default: build one)")
    ap.add_argument("--split", default="train", help="split of --store (default train)")
    ap.add_argument("--samples", type=int, default=512, help="samples: images to build, or kept samples of --store")
    ap.add_argument("--shard-size", type=int, default=32, help="shard size of the built store (default 32)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="DataLoader worker counts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=2.0, help="seconds per measurement (whole epochs)")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary folder)")
    args = ap.parse_args(argv)

    from odg.models.data import ESDataset, ShardSampler, unpack_batch
    from odg.pipelines.store import open_store

    work = args.keep or tempfile.mkdtemp(prefix="odg-bench-loader-")
    os.makedirs(work, exist_ok=True)
    try:
        t0 = time.perf_counter()
        if args.store:
            url, split = args.store, args.split
        else:
            url, split = build_store(args.samples, work, args.shard_size, workers=2), "train"
        sr = open_store(url)[split]
        kept = sr.kept_indices()[:args.samples]
        pub = export_subset(url, split, kept, os.path.join(work, "published"))
        print(f"inputs: {len(kept)} kept samples of {url} [{split}], shard size {sr.shard_size}; "
              f"published layout {pub}; prepared in {time.perf_counter() - t0:.0f} s")
        B = args.batch_size
        # sanity: both loaders give the same frames
        ds = ESDataset(url, split, samples=kept)
        ref = PublishedESImageNet(pub, split)
        for j in (0, len(ds) // 2, len(ds) - 1):
            a = ds[j][0].permute(1, 0, 2, 3)
            b = ref[j][0]
            assert torch.equal(a.float(), b), f"dense frames differ from the published loader at item {j}"
        words = ESDataset(url, split, samples=kept, packed=True).__getitems__(list(range(min(B, len(ds))))).tensor
        assert torch.equal(unpack_batch(words, ds.steps),
                           ds.__getitems__(list(range(min(B, len(ds))))).tensor), "packed != dense"
        print("check: dense frames == published loader's; unpack_batch(packed) == dense")

        runs = []
        for w in args.workers:
            kw = dict(num_workers=w, persistent_workers=w > 0, batch_size=B)
            runs.append(Run(f"published w={w}", DataLoader(PublishedESImageNet(pub, split), shuffle=True, **kw)))
            for packed in (False, True):
                d = ESDataset(url, split, samples=kept, packed=packed)
                dl = d.loader(B, shuffle=True, seed=0, num_workers=w)      # ShardSampler, pooled buffers
                runs.append(Run(f"{'packed' if packed else 'dense'} w={w}", dl, dl.sampler))
            if w > 0:                       # for the record: fresh shared memory per batch (no pool)
                d = ESDataset(url, split, samples=kept)
                s = ShardSampler(d, shuffle=True, seed=0, batch_size=B, num_workers=w)
                runs.append(Run(f"dense-nopool w={w}", DataLoader(d, sampler=s, collate_fn=d.collate_fn, **kw), s))
        for r in runs:                      # warm-up: workers start, numba compiles, page cache
            r.epoch_once()
        for rnd in range(args.rounds):
            for r in (runs if rnd % 2 == 0 else runs[::-1]):
                if r.name.startswith("published"):
                    r.measure(max(args.min_time, 0.1))
                else:
                    r.measure(args.min_time)
            print(f"round {rnd + 1}/{args.rounds} done", flush=True)

        best = {r.name: r.best for r in runs}
        print(f"\nbatch size {B}, {len(kept)} samples per epoch, best of {args.rounds} rounds, "
              f"{os.cpu_count()} cores, torch {torch.__version__}")
        print(f"{'loader':<19}{'wall ms/s':>10}{'cpu ms/s':>10}{'samples/s':>11}{'per-core/s':>11}"
              f"{'wall ratio':>12}{'per-core ratio':>16}")
        for w in args.workers:
            pw, pc = best[f"published w={w}"]
            for kind in ("published", "dense", "packed", "dense-nopool"):
                if f"{kind} w={w}" not in best:
                    continue
                wall, cpu = best[f"{kind} w={w}"]
                ratios = "" if kind == "published" else f"{pw / wall:>11.1f}x{pc / cpu:>15.1f}x"
                print(f"{kind + f' w={w}':<19}{wall * 1e3:>10.3f}{cpu * 1e3:>10.3f}{1 / wall:>11.0f}"
                      f"{1 / cpu:>11.0f}{ratios}")
        # unpack cost of a packed batch (separate: it runs where the model runs)
        dev = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        for d in dev:
            x = words.to(d)
            unpack_batch(x, ds.steps)
            if d == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(10):
                unpack_batch(x, ds.steps)
            if d == "cuda":
                torch.cuda.synchronize()
            dt = (time.perf_counter() - t) / 10
            print(f"unpack_batch on {d}: {dt * 1e3:.2f} ms per batch of {len(x)} "
                  f"({dt / len(x) * 1e3:.3f} ms/sample)")
        targets = []
        for w in args.workers:
            pc = best[f"published w={w}"][1]
            targets.append(f"w={w}: dense {pc / best[f'dense w={w}'][1]:.1f}x (target 12x), "
                           f"packed {pc / best[f'packed w={w}'][1]:.1f}x (target 25x)")
        print("per-core throughput vs published: " + "; ".join(targets))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
