"""What the networks are fed: loaders over a store's split, and batches turned into model inputs.

Inputs (`ModelConfig.input`):
- `events`: the event frames as `odg.models.data.ESDataset` gives them, `[T, B, 2, H, W]`, 0/1;
- `mean`: the frames averaged over time, a static 2-channel image in [0, 1];
- `ei`: the Edge-Integral relief (`odg.edge_integral`, computed here on the batch with torch),
  divided by T: a 1-channel image of the source's edges in [-1, 1] (ES-ImageNet stores);
- `rgb`: the split's source ILSVRC2012 JPEGs, read from the folder the split was built from (the
  path recorded in the store) and framed as the published loader frames the events (resized to the
  sample's (a, b), centred on the 254 canvas, 224 x 224 crop at 16), ImageNet mean/std normalised.
Without a store (`image_datasets`), the events come from ILSVRC2012 JPEGs converted on the fly
(`odg.models.imagenet_events.ImageNetEvents`, ODG or I2E, optionally augmented).
Static inputs go to an SNN repeated over `steps` time steps, to the pipeS ANN as one step.
`input_size` S (optional) average-pools every frame or image from 224 x 224 down to S x S.
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from odg.framing import frame_image

from ..data import ESDataset, ShardSampler
from ..imagenet_events import ImageNetEvents
from .model_config import ModelConfig

RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)


class ChunkSampler(Sampler):
    """Evaluation order: every item once, rank `rank` takes the contiguous chunk
    `[rank * n // world, (rank + 1) * n // world)` (shard-local reads, no padding, no repeats)."""

    def __init__(self, n: int, rank: int = 0, world_size: int = 1):
        self.a, self.b = rank * n // world_size, (rank + 1) * n // world_size

    def __len__(self) -> int:
        return self.b - self.a

    def __iter__(self):
        return iter(range(self.a, self.b))


class SourceImages(Dataset):
    """The source JPEGs of a split's kept samples, framed like their events: `(uint8 [3, 224, 224],
    label)`, in the order and with the `shard_ids` of `ESDataset(store, split)` (so a
    `ShardSampler` works on it). Needs a split built from a folder that is still reachable."""

    def __init__(self, store, split: str, allow_incomplete: bool = False):
        from odg.pipelines.store import open_store
        es = ESDataset(store, split, allow_incomplete=allow_incomplete)
        st = open_store(es.url)
        if st.layout.odg_params is None:
            raise ValueError("input 'rgb' needs an ES-ImageNet store (the source JPEGs)")
        sr = st.split(split, allow_incomplete)
        src = sr.attrs.get("source") or {}
        if src.get("layout") != "folder" or not src.get("path"):
            raise ValueError(f"split {split!r} of {es.url} was not built from a folder of JPEGs "
                             f"(source layout {src.get('layout')!r}): input 'rgb' cannot read its images; "
                             "use --input mean or ei")
        self.root = src["path"]
        self.names = [str(n) for n in sr.names()[es.indices]]
        missing = [n for n in self.names if not os.path.isfile(os.path.join(self.root, n))]
        if missing:
            raise ValueError(f"{len(missing)} of {len(self.names)} source images of split {split!r} are not "
                             f"under {self.root} (e.g. {missing[0]}); use --input mean or ei")
        self.shapes = sr.shapes[es.indices].astype(np.int64)
        self.params = st.params
        self.labels, self.indices, self.shard_ids = es.labels, es.indices, es.shard_ids
        self.classes = es.classes

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int):
        import cv2
        path = os.path.join(self.root, self.names[i])
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f"cannot read {path}")
        img = frame_image(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), self.shapes[i], self.params)
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))), int(self.labels[i])


def make_dataset(store: str, split: str, cfg: ModelConfig, allow_incomplete: bool = False) -> Dataset:
    if cfg.input == "rgb":
        return SourceImages(store, split, allow_incomplete)
    return ESDataset(store, split, allow_incomplete=allow_incomplete)


def image_datasets(root: str, train_split: str, val_split: str | None, cfg: ModelConfig, method: str,
                   augment=None, skip_log=None, log=print) -> tuple[Dataset, Dataset | None]:
    """`(train, val or None)`: `root`'s ILSVRC2012 JPEGs converted with `method` on the fly, the
    training split augmented with `augment` (the validation split never); a source without the
    validation split gives no validation (logged)."""
    if cfg.input == "rgb":
        raise ValueError("input 'rgb' reads a store's source images; training from --images takes events, mean or ei")
    if cfg.input == "ei" and method != "odg":
        raise ValueError("input 'ei' (Edge-Integral) undoes ODG's motion: it needs --method odg")
    train = ImageNetEvents(root, train_split, method=method, augment=augment, skip_log=skip_log)
    val = None
    if val_split:
        try:
            val = ImageNetEvents(root, val_split, method=method, skip_log=skip_log, skips="drop")
        except ValueError as e:
            log(f"odg train: no validation: {e}")
    return train, val


def train_loader(ds: Dataset, batch_size: int, seed: int, workers: int, rank: int, world_size: int,
                 generator: torch.Generator, pin_memory: bool = False) -> DataLoader:
    """Shuffled training batches of this process's share (`ShardSampler` in shard order for stores,
    `EpochSampler` for images converted on the fly)."""
    if isinstance(ds, (ESDataset, ImageNetEvents)):
        return ds.loader(batch_size, shuffle=True, seed=seed, num_workers=workers, rank=rank,
                         world_size=world_size, generator=generator, pin_memory=pin_memory)
    sampler = ShardSampler(ds, shuffle=True, seed=seed, rank=rank, world_size=world_size,
                           batch_size=batch_size, num_workers=workers)
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      persistent_workers=workers > 0, generator=generator, pin_memory=pin_memory)


def eval_loader(ds: Dataset, batch_size: int, workers: int, rank: int, world_size: int,
                generator: torch.Generator, pin_memory: bool = False) -> DataLoader:
    """Every sample once over all processes, in store order (`ChunkSampler`)."""
    kw = {"collate_fn": ds.collate_fn} if isinstance(ds, (ESDataset, ImageNetEvents)) else {}
    return DataLoader(ds, batch_size=batch_size, sampler=ChunkSampler(len(ds), rank, world_size),
                      num_workers=workers, persistent_workers=workers > 0, generator=generator,
                      pin_memory=pin_memory, **kw)


def edge_integral_batch(frames: torch.Tensor, params) -> torch.Tensor:
    """`odg.edge_integral` of a batch of dense frames uint8 `[T, B, 2, S, S]` -> int16 `[B, S, S]`
    (same values), on the frames' device."""
    T, B, _, S, _ = frames.shape
    if T != params.steps:
        raise ValueError(f"frames have {T} steps, the store's ODG parameters {params.steps}")
    m = params.canvas_pad
    diff = frames[:, :, 0].to(torch.int16) - frames[:, :, 1].to(torch.int16)
    canvas = torch.zeros((B, S + 2 * m + 2, S + 2 * m + 2), dtype=torch.int16, device=frames.device)
    for k in range(T):
        r, c = params.trajectory[k + 1]
        canvas[:, m + 2 - r:m + 2 - r + S, m + 2 - c:m + 2 - c + S] += diff[k]
    return canvas[:, m + 1:m + 1 + S, m + 1:m + 1 + S]


def _pool(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Average-pool the last two axes of `x` to `size` x `size` (None or already that size: as is)."""
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    lead = x.shape[:-3]
    y = F.adaptive_avg_pool2d(x.reshape((-1,) + tuple(x.shape[-3:])), size)
    return y.reshape(tuple(lead) + tuple(y.shape[1:]))


def prepare(batch: torch.Tensor, cfg: ModelConfig, input_size: int | None, device: torch.device,
            odg_params=None) -> torch.Tensor:
    """A loader batch -> the network's input (float32, on `device`).

    events: `[T, B, 2, S, S]`; static inputs: `[B, C, S, S]`, then `[1, B, C, S, S]` for the
    sharpened ANN, `[steps, B, C, S, S]` (the image repeated) for an SNN, as is for a network that
    takes images (the 2D ResNet).
    """
    x = batch.to(device, non_blocking=True)
    if cfg.input == "events":
        img = None
        x = _pool(x.float(), input_size)
    elif cfg.input == "mean":
        img = _pool(x.float().mean(dim=0), input_size)
    elif cfg.input == "ei":
        if odg_params is None:
            raise ValueError("input 'ei' needs the store's ODG parameters (an ES-ImageNet store)")
        img = _pool((edge_integral_batch(x, odg_params).float() / x.shape[0]).unsqueeze(1), input_size)
    else:                                   # rgb uint8 [B, 3, H, W]
        mean = torch.tensor(RGB_MEAN, device=device).view(1, 3, 1, 1)
        std = torch.tensor(RGB_STD, device=device).view(1, 3, 1, 1)
        img = _pool((x.float() / 255.0 - mean) / std, input_size)
    if img is None:
        return x
    if cfg.spec.input_kind == "image":
        return img
    if cfg.ann:
        return img.unsqueeze(0)
    steps = cfg.steps or 1
    return img.unsqueeze(0).expand((steps,) + tuple(img.shape)).contiguous()


def odg_params_of(store: str):
    """The store's ODG parameters (ES-ImageNet) or None."""
    from odg.pipelines.store import open_store
    return open_store(store).layout.odg_params
