"""Batches of event frames: the batch tensor and its layouts, items, `collate_events`, `unpack_batch`.

A batch is one tensor: dense `"TCHW"` frames time first `[T, B, 2, H, W]`, dense `"CTHW"` frames
`[B, 2, T, H, W]`, or packed words `[B, H, W]` (`odg.bits`). In a DataLoader worker it is shared
memory, from the dataset's `SharedBatchPool` when pooled.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import get_worker_info

from odg.bits import LAYOUTS, bit

from .pool import PooledBatch, new_shared

__all__ = ["LAYOUTS", "TimeFirstItem", "collate_events", "unpack_batch", "batch_shape", "plane_strides",
           "new_batch", "fill_batch", "as_batch"]


class TimeFirstItem(tuple):
    """A dense `"TCHW"` item `(frames [T, 2, H, W], label)`, a plain tuple to any code, whose batches
    are time first under torch's `default_collate` too.

    `default_collate` batches an item type with `_fields` (a named tuple) by calling the type on
    the batched fields: here `(frames [B, T, 2, H, W], labels int64 [B])`, and this type returns
    `(frames [T, B, 2, H, W] (a transposed view), labels)`, a plain tuple, as `collate_events` does.
    Called with an item's own fields (an int label: building, copying, pickling, `default_convert`)
    it is an item.
    """

    _fields = ("frames", "label")

    def __new__(cls, frames, label):
        if isinstance(label, torch.Tensor) and label.dim() == 1 and frames.dim() == 5:
            return frames.transpose(0, 1), label
        return super().__new__(cls, (frames, label))

    def __getnewargs__(self):
        return tuple(self)


class Batch(list):
    """What `ESDataset.__getitems__` returns: the list of `(frames, label)` items a collate function
    expects (views into one batch tensor), carrying that tensor so `collate_events` needs no copy."""
    tensor: torch.Tensor
    labels: torch.Tensor
    pool = None                 # (slot buffer, payload bytes, labels offset) of a pooled batch


def batch_shape(layout: str, packed: bool, steps: int, frame_shape: tuple, B: int) -> tuple:
    """Shape of a batch of B samples: words `[B, H, W]`, `[T, B, 2, H, W]` (TCHW), `[B, 2, T, H, W]`."""
    H, W = frame_shape
    if packed:
        return (B, H, W)
    if layout == "TCHW":
        return (steps, B, 2, H, W)
    return (B, 2, steps, H, W)


def plane_strides(layout: str, B: int, steps: int) -> tuple[int, int, int]:
    """`(sk, sb, sc)`: plane `k sk + b sb + c sc` of a dense batch (its `H x W` planes in order) is
    step k, sample b, channel c. TCHW `[T, B, 2, ...]`: (2B, 2, 1); CTHW `[B, 2, T, ...]`: (1, 2T, T)."""
    return (2 * B, 2, 1) if layout == "TCHW" else (1, 2 * steps, steps)


def new_batch(shape: tuple, word_dtype, packed: bool, dtype: torch.dtype, n: int, pool=None):
    """A batch's tensors: `(frames [shape], labels int64 [n], pool slot or None, payload bytes,
    labels offset)`. Frames are of the words' dtype when `packed`, else `dtype`. In a DataLoader
    worker they are shared memory: a slot of `pool` (a `SharedBatchPool`) when given and one is
    free, else a fresh buffer."""
    final = torch.from_numpy(np.empty(0, word_dtype)).dtype if packed else dtype
    nbytes = math.prod(shape) * torch.empty(0, dtype=final).element_size()
    loff = -(-nbytes // 8) * 8
    in_worker = get_worker_info() is not None
    raw = pool.take(loff + 8 * n) if (in_worker and pool is not None) else None
    if raw is not None:
        t = raw[:nbytes].view(final).view(shape)
        labels = raw[loff:loff + 8 * n].view(torch.int64)
    else:
        t = (new_shared(nbytes).view(final).view(shape) if in_worker     # shared memory, as default_collate
             else torch.empty(shape, dtype=final))
        labels = torch.empty(n, dtype=torch.int64)
    return t, labels, raw, nbytes, loff


def fill_batch(t: torch.Tensor, packed: bool, dtype: torch.dtype, fill) -> None:
    """`fill(out)` writes the batch's uint8 frames (or its words, `packed`) into the numpy array `out`;
    a float `dtype` is filled through a uint8 buffer and converted into `t`."""
    if packed or dtype == torch.uint8:
        fill(t.numpy())
    else:
        tmp = torch.empty(tuple(t.shape), dtype=torch.uint8)
        fill(tmp.numpy())
        t.copy_(tmp)


def as_batch(t, labels, raw, nbytes, loff, layout: str, packed: bool) -> "Batch":
    """The `Batch` of `(frames, label)` item views over a batch tensor (what `collate_events` passes on)."""
    if packed or layout == "CTHW":
        b = Batch((t[j], lab) for j, lab in enumerate(labels.tolist()))
    else:                        # time-first items: batched time first by default_collate too
        b = Batch(TimeFirstItem(t[:, j], lab) for j, lab in enumerate(labels.tolist()))
    b.tensor, b.labels = t, labels
    if raw is not None:
        b.pool = (raw, nbytes, loff)
    return b


def collate_events(samples, layout: str = "TCHW", packed: bool = False):
    """Batch `(frames, label)` items: `(frames, labels int64 [B])` with frames

    - dense `"TCHW"` items: `[T, B, 2, H, W]` (time first, the layout of this package's models);
    - dense `"CTHW"` items: `[B, 2, T, H, W]` (the published loader's batches);
    - packed items: words `[B, H, W]` (give them to `unpack_batch`, best on the GPU).

    A batch from `ESDataset.__getitems__` is passed on as is (it is already in this layout).
    """
    if isinstance(samples, Batch):
        if samples.pool is not None:
            return PooledBatch(samples.tensor, samples.labels, *samples.pool)
        return samples.tensor, samples.labels
    labels = torch.as_tensor([int(s[1]) for s in samples], dtype=torch.int64)
    frames = [s[0] if isinstance(s[0], torch.Tensor) else torch.from_numpy(np.asarray(s[0])) for s in samples]
    if packed or layout == "CTHW":
        return torch.stack(frames), labels
    return torch.stack(frames, dim=1), labels


_SIGNED = {torch.uint8: torch.int8, torch.uint16: torch.int16, torch.uint32: torch.int32, torch.uint64: torch.int64}


def unpack_batch(words: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """Bit-packed words `[B, H, W]` (or `[H, W]`) -> uint8 0/1 frames `[T, B, 2, H, W]` (`[T, 2, H, W]`).

    Bit `odg.bits.bit(k, c) = 2 * k + c` of a word is frame `[k, c]` (c = 0 ON), the convention of
    `odg.bits` (whose `unpack` is this on the CPU). Pure torch bit operations on the words'
    device; unsigned words are reinterpreted as signed of the same width (torch shifts no unsigned
    16/32/64-bit integers), which leaves every bit below the top one unchanged.
    """
    if not isinstance(words, torch.Tensor):
        words = torch.as_tensor(np.asarray(words))
    if words.is_floating_point() or words.is_complex() or words.dtype == torch.bool:
        raise ValueError(f"words must be an integer tensor, got {words.dtype}")
    if not 1 <= steps <= words.element_size() * 4:
        raise ValueError(f"{steps} steps do not fit {words.dtype} words ({words.element_size() * 8} bits)")
    single = words.dim() == 2
    if single:
        words = words.unsqueeze(0)
    if words.dim() != 3:
        raise ValueError(f"words must be [B, H, W] or [H, W], got shape {tuple(words.shape)}")
    w = words.view(_SIGNED.get(words.dtype, words.dtype))
    B, H, W = w.shape
    out = torch.empty((steps, B, 2, H, W), dtype=torch.uint8, device=w.device)
    if w.element_size() <= 2:      # one broadcast op; the intermediate is at most 2x the output
        sh = torch.arange(2 * steps, device=w.device, dtype=w.dtype).view(steps, 1, 2, 1, 1)   # [k, c]: bit(k, c)
        torch.bitwise_and(torch.bitwise_right_shift(w.unsqueeze(0).unsqueeze(2), sh), 1, out=out)
    else:                          # plane by plane: no [T, B, 2, H, W] intermediate of wide ints
        for k in range(steps):
            for c in range(2):
                torch.bitwise_and(torch.bitwise_right_shift(w, bit(k, c)), 1, out=out[k, :, c])
    return out[:, 0] if single else out


