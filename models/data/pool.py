"""Shared-memory batch buffers of a DataLoader worker, reused once the main process frees a batch.

A fresh shared-memory tensor per batch (what default_collate does) costs about 1 ms per MB on
Linux (allocating the shm file, then a page fault per 4 KiB page on first write): as much as the
rest of the read path for dense frames. `SharedBatchPool` keeps a few such buffers per worker and
hands them out again; `PooledBatch` is how a batch in one of them crosses to the main process.

Private torch API. Two pieces of torch outside its public interface are used, both here and only
here. They were checked against torch 2.13 (`TORCH_CHECKED`, the version the tests ran on; the
project requires torch >= 2.2, whose `default_collate` makes the same first call):

- `Tensor._typed_storage()._new_shared(nbytes, device="cpu")`, to allocate a shared-memory
  storage directly (what torch's own `default_collate` does for a batch in a worker);
- `torch.multiprocessing`'s pickling of a shared CPU tensor (its storage's file descriptor and
  the main process's rebuild of it), on which the `weakref.finalize` release below relies: the
  main process's array over the storage lives exactly as long as the batch's tensors.
"""
from __future__ import annotations

import os
import weakref

import numpy as np
import torch

TORCH_CHECKED = ("2.13",)             # torch versions whose private API above was checked


def new_shared(nbytes: int) -> torch.Tensor:
    """A flat uint8 CPU tensor of `nbytes` in shared memory (private torch API, see the module docstring)."""
    proto = torch.empty(0, dtype=torch.uint8)
    return proto.new(proto._typed_storage()._new_shared(nbytes, device="cpu"))


def release(raw: torch.Tensor) -> None:
    """Give a taken slot back to its pool (clears its in-use flag, the slot's last byte)."""
    raw[-1] = 0


class SharedBatchPool:
    """Shared-memory batch buffers of one process, reused once the main process frees a batch.

    A slot is one shared buffer holding the batch, its labels and, in its last byte, an in-use flag.
    The worker sets the flag when it fills the slot (`take`); the main process clears it when the
    last tensor of the batch it received is freed (a `weakref.finalize` on the array its tensors
    are made from, see `PooledBatch`), and only then is the slot refilled. One buffer per batch
    crosses the process boundary (one file descriptor). A batch that never reaches the main process
    (an iterator abandoned mid-epoch) keeps its slot; once all `cap` slots are taken, `take` gives
    None and the caller uses ordinary fresh shared memory.

    The slots belong to the process that made them: a copy of the pool in another process (a
    forked or spawned DataLoader worker) starts with none, so nothing needs resetting by its users.
    """

    def __init__(self, cap: int = 8):
        self.cap = int(cap)
        self._pid = os.getpid()
        self._slots: list[tuple[torch.Tensor, np.ndarray]] = []

    def __getstate__(self) -> dict:
        return {"cap": self.cap}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["cap"])

    def __len__(self) -> int:
        return len(self._own())

    def _own(self) -> list:
        if self._pid != os.getpid():            # inherited by fork: the parent's slots are not ours
            self._pid, self._slots = os.getpid(), []
        return self._slots

    def take(self, nbytes: int) -> torch.Tensor | None:
        """A free slot buffer (flat uint8 shared tensor, capacity >= nbytes + 1, flag set), or None."""
        slots = self._own()
        for b, f in slots:
            if f[-1] == 0 and b.numel() > nbytes:
                f[-1] = 1
                return b
        if len(slots) < self.cap:
            size = (nbytes // (1 << 20) + 1) << 20          # whole MiB: a short last batch fits too
            b = new_shared(size)
            f = b.numpy()
            f[-1] = 1
            slots.append((b, f))
            return b
        return None


def _rebuild_pooled(raw: torch.Tensor, shape: tuple, dtype: torch.dtype, nbytes: int, loff: int, B: int):
    """Main process side of a pooled batch: `(frames, labels)` over the slot's memory; when the last
    tensor over it is freed, the slot's flag is cleared."""
    arr = raw.numpy()
    t = torch.from_numpy(arr)            # its storage holds `arr`: released with the last view
    weakref.finalize(arr, release, raw)
    frames = t[:nbytes].view(dtype).view(shape)
    labels = t[loff:loff + 8 * B].view(torch.int64)
    return frames, labels


class PooledBatch(tuple):
    """`(frames, labels)` in a worker's pool slot: a plain tuple to any code in the worker; pickled to
    the main process it rebuilds as `(frames, labels)` whose release returns the slot to the pool."""

    def __new__(cls, frames, labels, raw, nbytes, loff):
        obj = super().__new__(cls, (frames, labels))
        obj._raw, obj._nbytes, obj._loff = raw, nbytes, loff
        return obj

    def __reduce__(self):
        frames, labels = self
        return _rebuild_pooled, (self._raw, tuple(frames.shape), frames.dtype, self._nbytes, self._loff, len(labels))
