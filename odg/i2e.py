"""I2E (Ruichen0424/I2E, AAAI 2026): a still image to 8 steps of ON/OFF events, as the published module.

The published `I2E` module takes a float image batch in [0, 1] (`[B, 3, H, W]`) and computes:

- `V = max(R, G, B)` per pixel, padded by one pixel on each side with replicate padding;
- eight 3 x 3 difference kernels, one per *direction group*: group `g` holds direction pairs
  `(a, b)` of cells 1..9 of the 3 x 3 neighbourhood (row-major; cell 5 the centre), kernel
  weight -1 at `a` and +1 at `b`, so its response is `D = V[b] - V[a]` (a float32 difference);
  in evaluation mode the first pair of every group, in training mode a random pair per group
  (`random.choice`, drawn once per forward call, i.e. one draw per batch);
- the eight responses reordered by `shuffle` (published `[4, 5, 6, 7, 0, 1, 2, 3]`): output step
  `k` is group `shuffle[k]`;
- ON where `D >= thr` and OFF where `-D >= thr`, `thr = ratio * (max(V) - min(V))` per image
  (float32; `ratio` 0.12 for ImageNet). A flat image (`thr = 0`) fires every ON and OFF bit (the
  published comparisons `0 >= 0`, `-0.0 >= 0`).

Output `[8, 2, H, W]` bits, ON in channel 0. Here `i2e_frames(image, params, choice)` computes the
same bits as uint8 `[8, 2, H, W]` from an 8-bit image (values `float32(v) * float32(1 / 255)`, as
torchvision's `ToDtype(float32, scale=True)`) or a float32 image; `write_planes` writes them into a
sample's slot of a batch; `i2e_events` gives them as per-pixel words (uint16 `[H, W]`, bit `2 k + c`
for step `k`, channel `c`, the form a store keeps: `odg.unpack_frames(words, 8)` is the frames) and
per-step counts. `choice` is the pair index of every group (`None`: evaluation mode's first
pairs); `random_choice(rng, params)` draws one as training mode does, from a seeded generator.
`preprocess` is the published image pipeline before the module (see `odg.resize`). No torch.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numba as nb
import numpy as np

from .bits import OFF, ON, bit, frame_planes
from .events import word_counts, word_dtype
from .resize import centre_crop_anchor, check_u8_image, resize_window, resized_shape_short

# the published `selectable_directions`: per group, its (a, b) cell pairs, the first used in evaluation
PUBLISHED_DIRECTIONS = (
    ((5, 6), (1, 2), (2, 3), (4, 5), (7, 8), (8, 9)),
    ((5, 2), (4, 1), (6, 3), (7, 4), (8, 5), (9, 6)),
    ((5, 3), (4, 2), (7, 5), (8, 6)),
    ((5, 1), (6, 2), (8, 4), (9, 5)),
    ((9, 4), (6, 1)),
    ((4, 3), (7, 6)),
    ((3, 8), (2, 7)),
    ((8, 1), (9, 2)),
)
PUBLISHED_ORDER = (4, 5, 6, 7, 0, 1, 2, 3)
SCALE_8BIT = np.float32(1.0 / 255)          # torchvision's ToDtype(float32, scale=True) factor


@dataclass(frozen=True)
class I2EParams:
    """Parameters of I2E; the defaults are the published ImageNet values.

    - `ratio`: threshold as a share of each image's value range (published 0.12 for ImageNet,
      0.07 CIFAR);
    - `order`: the published `shuffle`, output step `k` is direction group `order[k]`;
    - `directions`: the direction groups, pairs of cells 1..9 (published `selectable_directions`);
    - `size`: the frame side: training images are resized to `size x size`, validation images
      resized to a short side of `val_resize` then centre-cropped to `size` (published 224, 256).
    """
    ratio: float = 0.12
    order: tuple = PUBLISHED_ORDER
    directions: tuple = PUBLISHED_DIRECTIONS
    size: int = 224
    val_resize: int = 256

    def __post_init__(self):
        order = tuple(int(v) for v in self.order)
        dirs = tuple(tuple(tuple(int(c) for c in pair) for pair in g) for g in self.directions)
        object.__setattr__(self, "order", order)
        object.__setattr__(self, "directions", dirs)
        if not (0.0 < float(self.ratio) <= 1.0) or not np.isfinite(self.ratio):
            raise ValueError(f"ratio must lie in (0, 1] (a share of the image's value range), got {self.ratio!r}")
        if not dirs or any(not g for g in dirs):
            raise ValueError("directions must be non-empty groups of (a, b) cell pairs")
        for g in dirs:
            for pair in g:
                if len(pair) != 2 or not all(1 <= c <= 9 for c in pair) or pair[0] == pair[1]:
                    raise ValueError(f"direction pair {pair} must be two different cells of 1..9")
        if sorted(order) != list(range(len(dirs))):
            raise ValueError(f"order must be a permutation of 0..{len(dirs) - 1}, got {order}")
        if len(dirs) > 32:
            raise ValueError(f"at most 32 direction groups are supported, got {len(dirs)}")
        if self.size < 1 or self.val_resize < self.size:
            raise ValueError(f"need size >= 1 and val_resize >= size, got {self.size}, {self.val_resize}")

    @property
    def steps(self) -> int:
        """T, the number of event steps (one per direction group)."""
        return len(self.directions)

    def to_dict(self) -> dict:
        d = {"method": "i2e", **dataclasses.asdict(self)}
        d["order"] = list(self.order)
        d["directions"] = [[list(p) for p in g] for g in self.directions]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "I2EParams":
        d = {k: v for k, v in d.items() if k != "method"}
        return cls(**d)


@dataclass(frozen=True)
class I2EResult:
    """One converted image: `words` uint `[H, W]` (bit `2 k + c`, c = 0 ON), `counts` int64 `[T, 2]`."""
    words: np.ndarray
    counts: np.ndarray

    @property
    def count(self) -> int:
        return int(self.counts.sum())


def random_choice(rng: np.random.Generator, params: I2EParams = I2EParams()) -> np.ndarray:
    """A pair index per direction group, uniform within each group (training mode), int64 `[T]`."""
    return np.array([rng.integers(len(g)) for g in params.directions], np.int64)


def _offsets(params: I2EParams, choice) -> np.ndarray:
    """Per output step: (row, col) of cell a then of cell b in the padded image, int64 `[T, 4]`
    (read-only, cached)."""
    return _offsets_of(params, None if choice is None else tuple(int(c) for c in np.asarray(choice).reshape(-1)))


@lru_cache(maxsize=1024)
def _offsets_of(params: I2EParams, choice) -> np.ndarray:
    T = params.steps
    choice = np.zeros(T, np.int64) if choice is None else np.asarray(choice, np.int64).reshape(-1)
    if len(choice) != T:
        raise ValueError(f"choice needs one pair index per direction group ({T}), got {len(choice)}")
    out = np.empty((T, 4), np.int64)
    for k, g in enumerate(params.order):
        group = params.directions[g]
        if not 0 <= choice[g] < len(group):
            raise ValueError(f"choice {choice[g]} out of range for direction group {g} of {len(group)} pairs")
        a, b = group[int(choice[g])]
        out[k] = ((a - 1) // 3, (a - 1) % 3, (b - 1) // 3, (b - 1) % 3)
    out.flags.writeable = False
    return out


@nb.njit(nogil=True, cache=True)
def _pad_u8(v, table):
    """`table[v]` with one replicated pixel on each side: float32 `[H + 2, W + 2]`."""
    H, W = v.shape
    out = np.empty((H + 2, W + 2), np.float32)
    for i in range(H + 2):
        src = v[min(max(i - 1, 0), H - 1)]
        dst = out[i]
        for j in range(W):
            dst[j + 1] = table[src[j]]
        dst[0] = dst[1]
        dst[W + 1] = dst[W]
    return out


@nb.njit(nogil=True, cache=True)
def _i2e_words(vp, offs, thr, words):
    """The bits of every step of a float32 padded value image `vp`, OR-ed into per-pixel words
    (zeroed): bit `bit(k, ON)` ON, `bit(k, OFF)` OFF (`odg.bits`).
    (Selects of constant bits, not variable shifts: AVX2 has no variable 16-bit shift.)"""
    H, W = words.shape
    zero = words.dtype.type(0)
    for k in range(offs.shape[0]):
        b_on = words.dtype.type(1 << bit(k, ON))
        b_off = words.dtype.type(1 << bit(k, OFF))
        if thr <= 0:                    # a flat image: the published 0 >= 0 and -0.0 >= 0 hold everywhere
            words[:] |= b_on | b_off
            continue
        ar, ac, br, bc = offs[k, 0], offs[k, 1], offs[k, 2], offs[k, 3]
        for y in range(H):
            ra = vp[y + ar, ac:ac + W]
            rb = vp[y + br, bc:bc + W]
            wr = words[y]
            for x in range(W):
                d = rb[x] - ra[x]
                wr[x] |= (b_on if d >= thr else zero) | (b_off if -d >= thr else zero)


@nb.njit(nogil=True, cache=True)
def _max_rows(img, flip, out):
    H, W, C = img.shape
    flat = img.reshape(-1)
    o = out.reshape(-1)
    n = np.uint64(H * W)
    if C == 3:
        for q in range(n):
            i = np.uint64(3) * q
            o[q] = max(max(flat[i], flat[i + np.uint64(1)]), flat[i + np.uint64(2)])
    else:
        for q in range(n):
            i = np.uint64(C) * q
            m = flat[i]
            for c in range(1, C):
                m = max(m, flat[i + np.uint64(c)])
            o[q] = m
    if flip:
        for y in range(H):
            row = out[y]
            for x in range(W // 2):
                row[x], row[W - 1 - x] = row[W - 1 - x], row[x]


def _channel_max(img: np.ndarray, flip: bool) -> np.ndarray:
    """uint8 `[H, W]`: the maximum over the channels of a uint8 `H x W x C` image, mirrored
    left-right when `flip`."""
    out = np.empty(img.shape[:2], np.uint8)
    _max_rows(np.ascontiguousarray(img), flip, out)
    return out


@nb.njit(nogil=True, cache=True)
def _pad_int(v):
    """uint8 `[H, W]` with one replicated pixel on each side, as int16 `[H + 2, W + 2]`; and its
    minimum and maximum."""
    H, W = v.shape
    out = np.empty((H + 2, W + 2), np.int16)
    lo = 255
    hi = 0
    for i in range(H):
        src = v[i]
        dst = out[i + 1]
        for j in range(W):
            x = src[j]
            dst[j + 1] = x
            lo = min(lo, x)
            hi = max(hi, x)
        dst[0] = dst[1]
        dst[W + 1] = dst[W]
    out[0] = out[1]
    out[H + 1] = out[H]
    return out, lo, hi


@nb.njit(nogil=True, cache=True)
def _int_rule(table, thr):
    """The float32 comparisons of 8-bit values as integer tables: per value `a` of cell a,
    `on_min[a]`, the smallest `b` with `table[b] - table[a] >= thr` (256: none), and `off_max[a]`,
    the largest `b` with `-(table[b] - table[a]) >= thr` (-1: none); and `k` when these are the pure
    difference rule `b - a >= k` / `a - b >= k` (else -1). Float32 differences are monotone in `b`
    (rounding is), so a binary search per value finds both bounds."""
    on_min = np.empty(256, np.int16)
    off_max = np.empty(256, np.int16)
    for a in range(256):
        ta = table[a]
        lo, hi = 0, 256                       # first b with table[b] - ta >= thr
        while lo < hi:
            m = (lo + hi) // 2
            if np.float32(table[m] - ta) >= thr:
                hi = m
            else:
                lo = m + 1
        on_min[a] = lo
        lo, hi = -1, 255                      # last b with -(table[b] - ta) >= thr
        while lo < hi:
            m = (lo + hi + 1) // 2
            if -np.float32(table[m] - ta) >= thr:
                lo = m
            else:
                hi = m - 1
        off_max[a] = lo
    k = on_min[0]
    for a in range(256):
        want_on = a + k if a + k <= 255 else 256
        want_off = a - k if a - k >= 0 else -1
        if k < 1 or on_min[a] != want_on or off_max[a] != want_off:
            return on_min, off_max, -1
    return on_min, off_max, k


@nb.njit(nogil=True, cache=True)
def _int_prep(v, table, ratio):
    """(padded int16 value image, float32 threshold, `_int_rule`'s on_min, off_max, k) of an
    8-bit value image: the published `ratio * (max - min)` of its float32 values."""
    vp, lo, hi = _pad_int(v)
    thr = np.float32(np.float32(table[hi] - table[lo]) * ratio)
    on_min, off_max, k = _int_rule(table, thr)
    return vp, thr, on_min, off_max, k


@nb.njit(nogil=True, cache=True)
def _i2e_planes_u8(v, offs, table, ratio, out, base, sk, sc):
    """The bits of every step of an 8-bit value image `v` (uint8 `[H, W]`) as 0/1 planes: ON of
    step k into `out[base + k sk]`, OFF into `out[base + k sk + sc]` (`out`: uint8 `[planes, H * W]`).
    In integers: the published float32 rule of `table[v]` as integer tables (`_int_rule`)."""
    H, W = v.shape
    vp, thr, on_min, off_max, k = _int_prep(v, table, ratio)
    kk = np.int16(k)
    mk = np.int16(-k)
    for s in range(offs.shape[0]):
        on_p = out[base + s * sk]
        off_p = out[base + s * sk + sc]
        if thr <= 0:
            on_p[:] = 1
            off_p[:] = 1
            continue
        ar, ac, br, bc = offs[s, 0], offs[s, 1], offs[s, 2], offs[s, 3]
        for y in range(H):
            ra = vp[y + ar, ac:ac + W]
            rb = vp[y + br, bc:bc + W]
            o1 = on_p[y * W:(y + 1) * W]
            o2 = off_p[y * W:(y + 1) * W]
            if k > 0:
                for x in range(W):
                    d = np.int16(rb[x] - ra[x])
                    o1[x] = np.uint8(d >= kk)
                    o2[x] = np.uint8(d <= mk)
            else:
                for x in range(W):
                    o1[x] = rb[x] >= on_min[ra[x]]
                    o2[x] = rb[x] <= off_max[ra[x]]


@nb.njit(nogil=True, cache=True)
def _i2e_words_u8(v, offs, table, ratio, words):
    """`_i2e_words` of an 8-bit value image in integers (see `_i2e_planes_u8`)."""
    H, W = v.shape
    vp, thr, on_min, off_max, k = _int_prep(v, table, ratio)
    kk = np.int16(k)
    mk = np.int16(-k)
    zero = words.dtype.type(0)
    for s in range(offs.shape[0]):
        b_on = words.dtype.type(1 << bit(s, ON))
        b_off = words.dtype.type(1 << bit(s, OFF))
        if thr <= 0:
            words[:] |= b_on | b_off
            continue
        ar, ac, br, bc = offs[s, 0], offs[s, 1], offs[s, 2], offs[s, 3]
        for y in range(H):
            ra = vp[y + ar, ac:ac + W]
            rb = vp[y + br, bc:bc + W]
            wr = words[y]
            if k > 0:
                for x in range(W):
                    d = np.int16(rb[x] - ra[x])
                    wr[x] |= (b_on if d >= kk else zero) | (b_off if d <= mk else zero)
            else:
                for x in range(W):
                    a = ra[x]
                    wr[x] |= (b_on if rb[x] >= on_min[a] else zero) | (b_off if rb[x] <= off_max[a] else zero)


TABLE_8BIT = np.arange(256, dtype=np.float32) * SCALE_8BIT     # an 8-bit value's float32 image value
TABLE_8BIT.flags.writeable = False


def threshold(vmin, vmax, ratio: float) -> np.float32:
    """The published per-image threshold `ratio * (max - min)` in float32."""
    return np.float32(np.float32(np.float32(vmax) - np.float32(vmin)) * np.float32(ratio))


def value_padded(image) -> np.ndarray:
    """The module's padded value image float32 `[H + 2, W + 2]` of an image (see `i2e_events`)."""
    image = np.asarray(image)
    if image.dtype == np.float32:
        if image.ndim not in (2, 3) or 0 in image.shape:
            raise ValueError(f"image must be H x W or H x W x C with no empty axis, got shape {image.shape}")
        v = image.max(axis=2) if image.ndim == 3 else image
        if not np.isfinite(v).all():
            raise ValueError("image contains NaN or infinite values")
        return np.pad(np.ascontiguousarray(v), 1, mode="edge")
    image = check_u8_image(image)
    v = image[:, :, 0] if image.shape[2] == 1 else image.max(axis=2)
    return _pad_u8(np.ascontiguousarray(v), np.arange(256, dtype=np.float32) * SCALE_8BIT)


def _prepared(image, params: I2EParams, choice):
    """(padded value image, per-step cell offsets, threshold) of one float32 image."""
    vp = value_padded(image)
    return vp, _offsets(params, choice), threshold(vp.min(), vp.max(), params.ratio)


def _value_u8(image):
    """The channel maximum uint8 `[H, W]` of an 8-bit image, or None for a float32 image."""
    image = np.asarray(image)
    if image.dtype == np.float32:
        return None
    if image.ndim == 2 and image.dtype == np.uint8 and image.size and image.flags.c_contiguous:
        return image
    return _channel_max(check_u8_image(image), False)


def write_planes(image, out: np.ndarray, base: int, sk: int, sc: int, params: I2EParams = I2EParams(),
                 choice=None) -> None:
    """I2E bits of `image` as 0/1 planes of `out` (uint8 `[planes, H * W]`): ON of step k at
    `out[base + k sk]`, OFF at `out[base + k sk + sc]` (a sample's slot in a batch of frames).
    8-bit images go through integer arithmetic with the same results (`_int_rule`)."""
    v = _value_u8(image)
    if v is None:                       # float32 images: through words
        words = i2e_words(image, params, choice)
        frame_planes(words, params.steps, out, base, sk, sc, 0, 0, words.shape[1])
    else:
        _i2e_planes_u8(v, _offsets(params, choice), TABLE_8BIT, np.float32(params.ratio), out, base, sk, sc)


def i2e_frames(image, params: I2EParams = I2EParams(), choice=None) -> np.ndarray:
    """I2E frames uint8 `[T, 2, H, W]` (0/1, ON in channel 0) of one preprocessed image.

    `image`: uint8 `H x W x C` / `H x W` (any channel order: only the channel maximum matters), or
    float32 `H x W x C` / `H x W` values in [0, 1]. See the module docstring."""
    H, W = np.shape(image)[:2]
    out = np.empty((2 * params.steps, H * W), np.uint8)
    write_planes(image, out, 0, 2, 1, params, choice)
    return out.reshape(params.steps, 2, H, W)


def i2e_words(image, params: I2EParams = I2EParams(), choice=None) -> np.ndarray:
    """`i2e_frames` as per-pixel words uint `[H, W]` (bit `2 k + c`)."""
    v = _value_u8(image)
    if v is None:
        vp, offs, thr = _prepared(image, params, choice)
        words = np.zeros((vp.shape[0] - 2, vp.shape[1] - 2), word_dtype(params.steps))
        _i2e_words(vp, offs, thr, words)
    else:
        words = np.zeros(v.shape, word_dtype(params.steps))
        _i2e_words_u8(v, _offsets(params, choice), TABLE_8BIT, np.float32(params.ratio), words)
    return words


def i2e_events(image, params: I2EParams = I2EParams(), choice=None) -> I2EResult:
    """`i2e_frames` as per-pixel words and per-step counts (the form a store keeps)."""
    words = i2e_words(image, params, choice)
    return I2EResult(words, word_counts(words, params.steps))


def preprocess(image, params: I2EParams = I2EParams(), split: str = "train", box=None, flip: bool = False) -> np.ndarray:
    """The published image pipeline before the module, as the channel maximum uint8 `[S, S]`.

    `split="train"`: the antialiased bilinear resize of the image (or of `box` `(top, left, height,
    width)` of it: a random resized crop) to `S x S` (published `Resize((224, 224))`, or
    `RandomResizedCrop(224)`); `split="val"`: resize to a short side of `val_resize`, then the
    centre `S x S` crop (`Resize(256)`, `CenterCrop(224)`). `flip` mirrors the result left-right
    (`RandomHorizontalFlip`, after the resize). The maximum over channels is taken after resizing
    each channel, as the module does.
    """
    image = check_u8_image(image)
    S = params.size
    if split == "train":
        resized = resize_window(image, S, S, box=box)
    elif split == "val":
        if box is not None:
            raise ValueError("a crop box applies to training images only")
        h, w = resized_shape_short(image.shape[0], image.shape[1], params.val_resize)
        top, left = centre_crop_anchor(h, w, S)
        resized = resize_window(image, h, w, window=(top, left, S, S))
    else:
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    return _channel_max(resized, bool(flip))
