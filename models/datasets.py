"""ES-ImageNet and ES-UCF101 stores as torchvision / SpikingJelly / tonic style datasets.

    from odg.models import ESImageNet, ESUCF101
    train = ESImageNet("es-imagenet.zarr", split="train")                # (uint8 [8, 2, 224, 224], class)
    events = ESImageNet("es-imagenet.zarr", split="val", data_type="event")   # (tonic events, class)
    clips = ESUCF101("es-ucf101.zarr", fold=1, train=True)                # (uint8 [30, 2, H, W], class)

Both are `ESDataset`s (`odg.models.data`: the same reads, `ds.loader(...)`, `ShardSampler`) with
the attributes and arguments of torchvision's datasets:

- `transform(sample)` and `target_transform(label)` are applied to every item;
- `classes`: list of str, the class of label k at `classes[k]` (ES-ImageNet: the ILSVRC2012 wnids,
  as `torchvision.datasets.ImageFolder` names the training folders; ES-UCF101: the action names
  of `classInd.txt`); `class_names`: ES-ImageNet's English names (not unique: two classes are
  called "crane"), ES-UCF101's action names; `class_to_idx`: `{classes[k]: k}`;
- `targets`: list of int, the label of every item;
- `sensor_size`: tonic's `(width, height, polarities)` of the "event" samples.

`data_type`:

- `"frame"` (default): dense uint8 frames, `[T, 2, H, W]` (`layout="CTHW"`: `[2, T, H, W]`),
  ON in channel 0, as `ESDataset` gives them;
- `"packed"`: the bit-packed words `[H, W]` (see `odg.models.data`);
- `"event"`: every event of the sample as a tonic structured array (`odg.to_tonic`: `x`, `y`
  int16, `t` int64 microseconds with step k at `(k - 1) * step_us`, `p` bool, time-ordered).
  ES-ImageNet events are in the published loader's 256 x 256 canvas: shifted by its centring
  offset (`centre=True`, default) or in the uncentred ODG canvas (`centre=False`, SpikingJelly's
  coordinates); none is cropped, so tonic's `ToFrame(sensor_size, time_window=step_us,
  start_time=0, end_time=T * step_us)` gives the frames before the published 224 x 224 crop:
  `frames == to_frame(events)[:, ::-1, 16:240, 16:240]` (tonic puts OFF in channel 0).
  ES-UCF101 events are the clip's pixels, sensor `(W, H, 2)`, and
  `frames == to_frame(events)[:, ::-1]`.

Batching: without a transform, "frame" and "packed" items are read a batch at a time
(`ESDataset.__getitems__`, and `ds.loader(...)` batches them as `ESDataset` does); with a
transform or for "event" items, item by item, and `ds.collate_fn` is torch's `default_collate`. A
plain `DataLoader(ds, batch_size=B)` gives untransformed "frame" batches time first,
`[T, B, 2, H, W]`, the layout the zoo's models take (the items are `odg.models.data.TimeFirstItem`s,
as `ESDataset`'s); whatever a transform returns is stacked along a new first axis, as in
torchvision; event arrays of different lengths need a transform to tensors first
(e.g. tonic's `ToFrame`) or a collate function of the user's (e.g. `tonic.collation.PadTensors`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from torch.utils.data import default_collate

from odg import STEP_US, frames_to_events, to_tonic
from odg.pipelines.store import KIND_IMAGENET, KIND_UCF101

from .data import ESDataset

DATA_TYPES = ("frame", "event", "packed")

__all__ = ["ESImageNet", "ESUCF101", "DATA_TYPES"]


def _class_name(entry, field: int) -> str:
    """A store's class entry: `[k, wnid, name]` (ES-ImageNet), `[k, name]` (ES-UCF101) or a name."""
    if isinstance(entry, str):
        return entry
    return str(entry[min(field, len(entry) - 1)])


def _extent(lo: int, hi: int, offsets, long_side: int, centre: bool) -> int:
    """One past the largest event coordinate along one axis of an ODG sample of any size.

    The image of extent `a` sits at canvas offsets `offsets`, so events lie below
    `a + max(offsets)`, inside the window `(lo, hi)`, then are shifted by the centring
    offset `(long_side - a) // 2` when `centre`.
    """
    return max(min(hi - 1, a - 1 + max(offsets)) + ((long_side - a) // 2 if centre else 0)
               for a in range(1, long_side + 1)) + 1


class _TorchvisionStyle(ESDataset):
    """`ESDataset` with `transform`, `target_transform`, `data_type` and torchvision's attributes."""

    def __init__(self, store, split: str, transform: Callable | None, target_transform: Callable | None,
                 data_type: str, step_us: int, **options):
        if data_type not in DATA_TYPES:
            raise ValueError(f"data_type must be one of {DATA_TYPES}, got {data_type!r}")
        if "packed" in options:
            raise ValueError("choose packed words with data_type='packed'")
        super().__init__(store, split, packed=data_type == "packed", **options)
        if self.kind != self.expected_kind:
            raise ValueError(f"{self.url} is an {self.kind} store; {type(self).__name__} reads {self.expected_kind} stores")
        self.transform = transform
        self.target_transform = target_transform
        self.data_type = data_type
        self.step_us = int(step_us)
        entries = self.classes
        self.classes = [_class_name(c, 1) for c in entries]
        self.class_names = [_class_name(c, 2) for c in entries]
        self.class_to_idx = {c: k for k, c in enumerate(self.classes)}
        self.targets = self.labels.tolist()

    def __getitem__(self, i: int):
        if self.data_type == "event":
            n = len(self)
            if not -n <= i < n:
                raise IndexError(f"item {i} out of range for {n} samples")
            sample, target = to_tonic(self._events(i % n), self.step_us), int(self.labels[i])
        else:
            sample, target = super().__getitem__(i)
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def _itemwise(self) -> bool:
        return self.data_type == "event" or self.transform is not None or self.target_transform is not None

    def __getitems__(self, items):
        if self._itemwise():
            return [self[int(i)] for i in items]
        return super().__getitems__(items)

    @property
    def collate_fn(self):
        """`ESDataset.collate_fn` for untransformed frames and words; torch's `default_collate` (a new
        first axis) for transformed or event items, so that `ds.loader(...)` batches them too."""
        return default_collate if self._itemwise() else super().collate_fn

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.split!r} of {self.url}: {len(self)} samples, {self.data_type}>"


class ESImageNet(_TorchvisionStyle):
    """ES-ImageNet split of an odg store, torchvision-style (see the module docstring).

    `split`: "train" or "val" (any split of the store); `options`: those of `ESDataset`
    (`layout`, `dtype`, `kept_only`, `centre`, `cache_shards`, `samples`); `step_us`: microseconds
    per time step of "event" samples.
    """
    expected_kind = KIND_IMAGENET

    def __init__(self, store, split: str = "train", transform: Callable | None = None,
                 target_transform: Callable | None = None, data_type: str = "frame", step_us: int = STEP_US,
                 **options):
        super().__init__(store, split, transform, target_transform, data_type, step_us, **options)
        params = self._params = self._reader().store.params
        window, traj, L = params.window, params.trajectory, params.long_side
        canvas = 2 * params.frame_offset + params.frame_size     # the published loader's 256 x 256
        width = max(canvas, _extent(*window, [c for _, c in traj], L, self.centre))
        height = max(canvas, _extent(*window, [r for r, _ in traj], L, self.centre))
        self.sensor_size = (width, height, 2)

    def _events(self, i: int) -> np.ndarray:
        sr = self._reader()
        idx = int(self.indices[i])
        ev = sr.events(idx)
        if self.centre:
            dr, dc = self._params.centring(*(int(v) for v in sr.shapes[idx]))
            ev["x"] += dc
            ev["y"] += dr
        return ev


class ESUCF101(_TorchvisionStyle):
    """ES-UCF101 store split of UCF101's official `fold` (1-3), training or test part, torchvision-style.

    Reads the store split `train<fold>` or `test<fold>` (as `odg build ucf101 --split FOLD
    --subset train|test` names them); `options` as `ESImageNet`.
    """
    expected_kind = KIND_UCF101

    def __init__(self, store, fold: int = 1, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, data_type: str = "frame", step_us: int = STEP_US,
                 **options):
        if fold not in (1, 2, 3):
            raise ValueError(f"fold must be 1, 2 or 3 (UCF101's official splits), got {fold!r}")
        self.fold, self.train = fold, bool(train)
        super().__init__(store, f"{'train' if train else 'test'}{fold}", transform, target_transform,
                         data_type, step_us, **options)
        H, W = self.frame_shape
        self.sensor_size = (W, H, 2)

    def _events(self, i: int) -> np.ndarray:
        frames = self._reader().frames(int(self.indices[i]))       # uint8 [2, S, H, W], ON first
        return frames_to_events(np.ascontiguousarray(frames.transpose(1, 0, 2, 3)))
