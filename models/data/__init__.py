"""PyTorch input pipeline over odg stores: dense or bit-packed event frames, shard-ordered sampling.

    from odg.models.data import ESDataset, unpack_batch
    ds = ESDataset("es-imagenet.zarr", "train")           # items: (uint8 [T, 2, 224, 224], label)
    dl = ds.loader(batch_size=64, shuffle=True, seed=0, num_workers=4)
    for epoch in range(E):
        dl.sampler.set_epoch(epoch)
        for frames, labels in dl:                         # frames: uint8 [T, B, 2, 224, 224]
            ...

    packed = ESDataset("es-imagenet.zarr", "train", packed=True)
    for words, labels in packed.loader(64, num_workers=4, pin_memory=True):
        frames = unpack_batch(words.cuda(non_blocking=True))   # [T, B, 2, 224, 224] uint8 on the GPU

`ds.loader(...)` is a plain `DataLoader` with a `ShardSampler`, `ds.collate_fn`, persistent workers
and pooled worker buffers; the pieces can be used separately (`DataLoader(ds, batch_size=B,
sampler=ShardSampler(ds, ...), collate_fn=ds.collate_fn)`, or any sampler and collate function).
Every way of batching dense `"TCHW"` items gives time-first `[T, B, 2, H, W]` frames, the layout of
the zoo's models: `ds.loader`, `collate_events` / `ds.collate_fn`, the batch tensor of
`__getitems__`, and a plain `DataLoader(ds, batch_size=B)` too (its `default_collate` stacks the
items batch first, and the items' type, `TimeFirstItem`, turns that into a time-first view).

Stores are read only through `odg.pipelines.store` (`open_store`, `SplitReader.words_block`), opened lazily
in each process on first use (nothing of zarr is pickled into DataLoader workers). Reads are served
from whole shards: a shard's words block is read with one request and kept in a small per-process
cache, so in a `ShardSampler` order (shards one after another, shuffled within a buffer of shards;
with its `num_workers` hint, each DataLoader worker gets batches from its own shards) every shard
is read and decoded once per epoch. `DataLoader` batches go through `ESDataset.__getitems__`, which
unpacks the whole batch straight from the cached words into one tensor with a numba kernel (in a
worker, a shared-memory buffer of the dataset's `SharedBatchPool`, reused across batches with
`ds.loader`); `collate_fn` passes it on without another copy.

Frames: ES-ImageNet samples are the published loader's dense `[T, 2, 224, 224]` (`centre=True`:
events shifted by `((254 - a) // 2, (254 - b) // 2)`, cropped at 16; equal to
`SplitReader.frames(i)`), ON in channel 0. I2E samples are the module's `[8, 2, 224, 224]`.
ES-UCF101 clips are `[S, 2, H, W]` (`layout="CTHW"`: the published `[2, S, H, W]`, equal to
`SplitReader.frames(i)`).

`packed=True` gives each sample as its per-pixel words in frame coordinates (ES-ImageNet:
uint16 `[224, 224]` in the convention of `odg.bits` (bit `2 * k + c` = frame `[k, c]` at that
pixel, `c = 0` ON), i.e. `odg.pack_frames` of the dense frames; ES-UCF101: uint64 `[H, W]`):
8 times fewer bytes than dense uint8 for T = 8. `unpack_batch` turns a batch `[B, H, W]` of words into uint8
`[T, B, 2, H, W]` with torch bit operations on whatever device the words are (move the words to
the GPU first: an 8x smaller host-to-device copy).

The package's modules: `dataset` (`ESDataset`), `sampler` (`ShardSampler`), `collate` (batch
tensors, `TimeFirstItem`, `collate_events`, `unpack_batch`) and `pool` (`SharedBatchPool`, the
shared-memory buffers, and the private torch API they use). The words' bit layout is `odg.bits`,
and what a store's kind means for its frames is `odg.pipelines.store.layout`.
"""
from .collate import (
                      LAYOUTS,
                      TimeFirstItem,
                      as_batch,
                      batch_shape,
                      collate_events,
                      fill_batch,
                      new_batch,
                      plane_strides,
                      unpack_batch,
)
from .dataset import ESDataset
from .pool import SharedBatchPool
from .sampler import ShardSampler, rank_and_world

__all__ = ["ESDataset", "ShardSampler", "TimeFirstItem", "collate_events", "unpack_batch", "LAYOUTS", "SharedBatchPool"]
