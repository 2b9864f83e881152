"""Seeded data augmentation of still images before their conversion to events.

`Augment` names each option; its defaults are the usual ImageNet training augmentation, as the I2E
training scripts use it (torchvision `RandomResizedCrop(224)` with scale (0.08, 1) and ratio
(3/4, 4/3), then `RandomHorizontalFlip(0.5)`), plus I2E's training-mode random choice of
directions. Every random number of a sample comes from `numpy.random.default_rng([seed, epoch,
index])`, drawn in a fixed order (crop, flip, directions), so a sample's augmentation depends only
on the seed, the epoch and its index: never on the worker that converts it or on the order of
conversion. The crop box follows torchvision's `RandomResizedCrop.get_params` (ten tries, then the
central crop of the nearest allowed aspect ratio), drawn from that generator instead of torch's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Draw:
    """One sample's augmentation: `box` (top, left, height, width) of the source image to keep
    (None: the whole image), `flip` (mirror left-right), `choice` (I2E direction pair per group,
    None: evaluation mode's first pairs)."""
    box: tuple | None
    flip: bool
    choice: np.ndarray | None


@dataclass(frozen=True)
class Augment:
    """Augmentation options (each can be turned off):

    - `crop`: a random resized crop, area share uniform in `scale`, aspect ratio log-uniform in
      `ratio` (width / height), as `RandomResizedCrop`;
    - `flip`: probability of a left-right mirror (0: never);
    - `directions`: I2E only: a random direction pair per group, as the published module's
      training mode (one draw per sample here; the published module draws once per batch);
    - `seed`: with the epoch and the sample index, the seed of every random number.
    """
    crop: bool = True
    scale: tuple = (0.08, 1.0)
    ratio: tuple = (3 / 4, 4 / 3)
    flip: float = 0.5
    directions: bool = True
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "scale", tuple(float(v) for v in self.scale))
        object.__setattr__(self, "ratio", tuple(float(v) for v in self.ratio))
        lo, hi = self.scale
        if len(self.scale) != 2 or not 0 < lo <= hi <= 1:
            raise ValueError(f"scale must be (lo, hi) with 0 < lo <= hi <= 1, got {self.scale}")
        r0, r1 = self.ratio
        if len(self.ratio) != 2 or not 0 < r0 <= r1:
            raise ValueError(f"ratio must be (lo, hi) with 0 < lo <= hi, got {self.ratio}")
        if not 0.0 <= float(self.flip) <= 1.0:
            raise ValueError(f"flip is a probability in [0, 1], got {self.flip}")

    def draw(self, epoch: int, index: int, height: int, width: int, groups=None) -> Draw:
        """The augmentation of sample `index` in `epoch`, for a source image of `height x width`.
        `groups`: the number of pairs of every I2E direction group (None: not an I2E conversion)."""
        rng = np.random.default_rng([int(self.seed), int(epoch), int(index)])
        box = crop_box(rng, height, width, self.scale, self.ratio) if self.crop else None
        flip = bool(rng.random() < self.flip) if self.flip > 0 else False
        choice = None
        if groups is not None and self.directions:
            choice = np.array([rng.integers(n) for n in groups], np.int64)
        return Draw(box, flip, choice)


def crop_box(rng: np.random.Generator, height: int, width: int, scale=(0.08, 1.0),
             ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """torchvision `RandomResizedCrop.get_params` with numbers from `rng`: (top, left, h, w)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w = width
        h = int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        h = height
        w = int(round(h * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def apply(image: np.ndarray, draw: Draw) -> np.ndarray:
    """The image cropped to `draw.box` and mirrored when `draw.flip` (C-contiguous)."""
    if draw.box is not None:
        top, left, h, w = draw.box
        image = image[top:top + h, left:left + w]
    if draw.flip:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)
