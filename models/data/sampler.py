"""Sampling in shard order: `ShardSampler`, for reads of whole store shards."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["ShardSampler", "rank_and_world"]


def rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """`(rank, world_size)`, each defaulting to torch.distributed's when it is initialised, else 0 / 1."""
    if world_size is None or rank is None:
        dist = torch.distributed
        ready = dist.is_available() and dist.is_initialized()
        world_size = (dist.get_world_size() if ready else 1) if world_size is None else world_size
        rank = (dist.get_rank() if ready else 0) if rank is None else rank
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    return int(rank), int(world_size)


class ShardSampler(Sampler):
    """Dataset items in shard order, for reads of whole shards.

    Each epoch: the store shards holding items are taken in order (with `shuffle`, in a random
    order drawn from `(seed, epoch)`: the same on every rank), their items one shard after
    another; that sequence is padded by repeating its start (or cut, with `drop_last`) to a
    multiple of `world_size` (as DistributedSampler does), and rank `rank` takes its own contiguous
    part, so every rank gets `num_samples` items and ranks share at most their boundary shards.
    With `shuffle`, items are shuffled within windows of `buffer_shards` consecutive shards of the
    rank's part (a dataset with `cache_shards >= 2 * buffer_shards` then reads each shard once).
    Any dataset with a `shard_ids` array (one store shard per item) can be sampled.

    `batch_size` and `num_workers` (those of the DataLoader) are optional hints: with both, and
    `num_workers > 1`, the rank's shards are dealt to `num_workers` streams and the sequence
    interleaves `batch_size` items of each stream in turn, so the DataLoader (which hands batch `i`
    to worker `i % num_workers`) lets every worker read only its own shards.
    `rank`/`world_size` default to torch.distributed's when it is initialised, else 0 / 1.
    """

    def __init__(self, dataset, shuffle: bool = True, seed: int = 0, buffer_shards: int = 2,
                 rank: int | None = None, world_size: int | None = None, drop_last: bool = False,
                 batch_size: int | None = None, num_workers: int = 0):
        rank, world_size = rank_and_world(rank, world_size)
        if buffer_shards < 1:
            raise ValueError(f"buffer_shards must be >= 1, got {buffer_shards}")
        self.shuffle, self.seed, self.buffer_shards = bool(shuffle), int(seed), int(buffer_shards)
        self.rank, self.world_size, self.drop_last = int(rank), int(world_size), bool(drop_last)
        self.batch_size = batch_size
        self.num_workers = int(num_workers)
        self.epoch = 0
        shard_ids = np.asarray(dataset.shard_ids)
        self._shards = np.unique(shard_ids)
        order = np.argsort(shard_ids, kind="stable")
        bounds = np.searchsorted(shard_ids[order], self._shards)
        self._members = np.split(order.astype(np.int64), bounds[1:])
        n = len(shard_ids)
        if self.drop_last:
            self.num_samples = n // self.world_size
        else:
            self.num_samples = -(-n // self.world_size)
        self.total_size = self.num_samples * self.world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def _epoch_sequence(self) -> tuple[np.ndarray, np.ndarray]:
        """(items, shard position) of all ranks for this epoch, before the rank split."""
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self._members)) if self.shuffle else np.arange(len(self._members))
        if not len(order):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        items = np.concatenate([self._members[s] for s in order])
        pos = np.repeat(np.arange(len(order)), [len(self._members[s]) for s in order])
        return items, pos

    def indices(self) -> np.ndarray:
        """This rank's items for the current epoch, in sampling order."""
        items, pos = self._epoch_sequence()
        if len(items) == 0:
            return items
        if self.total_size > len(items):              # pad like DistributedSampler
            reps = -(-self.total_size // len(items))
            items = np.tile(items, reps)[:self.total_size]
            pos = np.concatenate([pos + r * (pos[-1] + 1) for r in range(reps)])[:self.total_size]
        else:
            items, pos = items[:self.total_size], pos[:self.total_size]
        a = self.rank * self.num_samples
        mine, mpos = items[a:a + self.num_samples], pos[a:a + self.num_samples]
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, 1])
        # runs of one shard, in order
        cuts = np.flatnonzero(np.diff(mpos)) + 1
        runs = np.split(mine, cuts)
        nw = self.num_workers if (self.batch_size and self.num_workers > 1) else 1
        streams = []
        for w in range(nw):
            mine_w = runs[w::nw]
            parts = []
            for g in range(0, len(mine_w), self.buffer_shards):
                chunk = np.concatenate(mine_w[g:g + self.buffer_shards])
                parts.append(rng.permutation(chunk) if self.shuffle else chunk)
            streams.append(np.concatenate(parts) if parts else np.zeros(0, np.int64))
        if nw == 1:
            return streams[0]
        B = int(self.batch_size)
        out, offs = [], [0] * nw
        while any(offs[w] < len(streams[w]) for w in range(nw)):
            for w in range(nw):
                if offs[w] < len(streams[w]):
                    out.append(streams[w][offs[w]:offs[w] + B])
                    offs[w] += B
        return np.concatenate(out)

    def __iter__(self):
        return iter(self.indices().tolist())

