"""I2E kernel, its published preprocessing and the seeded augmentation.

The kernel is checked bit for bit against `i2e_reference` (a plain-NumPy re-implementation of the
published module), the reference against the module's own PyTorch operations, and the antialiased
resize against `torch.nn.functional.interpolate(..., antialias=True)` on the same uint8 images.
"""
import os

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odg import Augment, I2EParams, i2e_events, i2e_frames, resize_aa, unpack_frames
from odg.augment import apply, crop_box
from odg.i2e import PUBLISHED_DIRECTIONS, TABLE_8BIT, _int_rule, preprocess, random_choice, threshold, write_planes
from odg.resize import centre_crop_anchor, resize_window, resized_shape_short

from .i2e_reference import kernels, reference_i2e, to_float

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "odg", "images")
NAMES = ("astronaut", "coffee", "page", "cell")


def photo(name):
    return cv2.imread(os.path.join(DATA, name + ".png"), cv2.IMREAD_COLOR)


def smooth_image(seed, h, w, c=3, levels=None):
    """A random uint8 image with structure (blurred noise, optionally quantised to few levels)."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    if min(h, w) > 2:
        img = cv2.GaussianBlur(img, (0, 0), 1.5).reshape(h, w, c)
    if levels:
        img = (img // (256 // levels) * (256 // levels)).astype(np.uint8)
    return img


def torch_module(img_f32, ratio=0.12, choice=None, shuffle=(4, 5, 6, 7, 0, 1, 2, 3)):
    """The published module's forward, with torch's own operations (max, replicate pad, conv2d, ge)."""
    x = torch.from_numpy(img_f32).unsqueeze(0)
    w = torch.from_numpy(kernels(choice, shuffle)).unsqueeze(1)
    v, _ = torch.max(x, 1, keepdim=True)
    v = F.pad(v, (1, 1, 1, 1), mode="replicate")
    rng = (torch.max(torch.max(v, 3, True)[0], 2, True)[0] - torch.min(torch.min(v, 3, True)[0], 2, True)[0]).unsqueeze(0)
    resp = F.conv2d(v, w).permute(1, 0, 2, 3)
    pos = resp * resp.ge(0).float()
    neg = -resp * resp.lt(0).float()
    return torch.stack([pos, neg], dim=2).ge(rng * ratio).float()[:, 0].numpy().astype(np.uint8)


sizes = st.integers(1, 48)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), h=sizes, w=sizes, levels=st.sampled_from([None, 2, 4, 16]),
       ratio=st.sampled_from([0.12, 0.07, 0.15, 0.3, 1.0, 0.001]), train=st.booleans(),
       order=st.permutations(range(8)))
def test_kernel_equals_reference_on_float_and_uint8(seed, h, w, levels, ratio, train, order):
    img = smooth_image(seed, h, w, 3, levels)
    params = I2EParams(ratio=ratio, order=tuple(order))
    choice = random_choice(np.random.default_rng(seed), params) if train else None
    want = reference_i2e(to_float(img), ratio, choice, tuple(order))
    np.testing.assert_array_equal(i2e_frames(img, params, choice), want)
    f = np.ascontiguousarray(to_float(img).transpose(1, 2, 0))
    np.testing.assert_array_equal(i2e_frames(f, params, choice), want)
    r = i2e_events(img, params, choice)
    np.testing.assert_array_equal(unpack_frames(r.words, 8), want)
    np.testing.assert_array_equal(r.counts, want.sum(axis=(2, 3)))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), h=sizes, w=sizes)
def test_float_images_off_the_8bit_grid(seed, h, w):
    """Arbitrary float32 values (not k / 255): the kernel still follows the module's float32 rules."""
    rng = np.random.default_rng(seed)
    img = rng.random((h, w, 3), dtype=np.float32) ** 3
    want = reference_i2e(np.ascontiguousarray(img.transpose(2, 0, 1)))
    np.testing.assert_array_equal(i2e_frames(img), want)


@pytest.mark.parametrize("name", NAMES)
def test_reference_is_the_published_module(name):
    """The reference against the module's own torch operations, on real photos and both modes."""
    img = preprocess(photo(name))[:, :, None].repeat(3, axis=2)
    f = to_float(img)
    for choice in (None, random_choice(np.random.default_rng(len(name)))):
        np.testing.assert_array_equal(reference_i2e(f, 0.12, choice), torch_module(f, 0.12, choice))


@pytest.mark.parametrize("ratio", [0.12, 0.07, 0.3333, 1.0])
def test_integer_rule_is_the_float32_comparison(ratio):
    """8-bit images go through integer tables: for many value ranges (those where `ratio * range`
    lands on a multiple of 1/255 included, e.g. 0..25 at 0.12), the tables are exactly the published
    float32 comparisons `v[b] - v[a] >= thr` and `-(v[b] - v[a]) >= thr` for all 256 x 256 pairs."""
    t = TABLE_8BIT
    d = t[None, :] - t[:, None]                           # d[a, b] = v[b] - v[a], float32
    ranges = [(0, 25), (0, 50), (0, 250), (3, 28), (0, 255), (17, 18), (100, 101), (0, 1)]
    ranges += [tuple(sorted(p)) for p in np.random.default_rng(int(ratio * 1e4)).integers(0, 256, (40, 2))]
    paths = set()
    for lo, hi in ranges:
        thr = threshold(t[lo], t[hi], ratio)
        if thr <= 0:
            continue
        on_min, off_max, k = _int_rule(t, thr)
        on, off = d >= thr, -d >= thr
        b = np.arange(256)
        np.testing.assert_array_equal(on, b[None, :] >= on_min[:, None].astype(np.int64))
        np.testing.assert_array_equal(off, b[None, :] <= off_max[:, None].astype(np.int64))
        if k > 0:
            np.testing.assert_array_equal(on, (b[None, :] - b[:, None]) >= k)
            np.testing.assert_array_equal(off, (b[:, None] - b[None, :]) >= k)
        paths.add(k > 0)
    assert True in paths and (ratio != 0.12 or False in paths)   # at 0.12 both the difference rule and tables occur


@pytest.mark.parametrize("lo, hi", [(0, 25), (0, 250), (5, 55)])
def test_images_whose_threshold_is_on_the_8bit_grid(lo, hi):
    """Value ranges where 0.12 x range is a multiple of 1/255: no integer difference rule holds,
    the exact tables decide; frames, words and counts still equal the reference."""
    rng = np.random.default_rng(hi)
    img = rng.integers(lo, hi + 1, (30, 40, 3), dtype=np.uint8)
    img[0, 0] = lo
    img[-1, -1] = hi
    assert _int_rule(TABLE_8BIT, threshold(TABLE_8BIT[lo], TABLE_8BIT[hi], 0.12))[2] == -1
    for choice in (None, random_choice(np.random.default_rng(lo))):
        want = reference_i2e(to_float(img), 0.12, choice)
        np.testing.assert_array_equal(i2e_frames(img, choice=choice), want)
        r = i2e_events(img, choice=choice)
        np.testing.assert_array_equal(unpack_frames(r.words, 8), want)
        np.testing.assert_array_equal(r.counts, want.sum(axis=(2, 3)))


def test_threshold_rule_is_float32_times_ratio():
    """`range * ratio` of a float32 tensor and a Python float, as torch computes it, for every 8-bit range."""
    vals = torch.arange(256, dtype=torch.float32).mul_(1.0 / 255)
    for ratio in (0.12, 0.07, 0.1, 0.15, 0.3333):
        want = (vals - vals[0]) * ratio
        got = (vals.numpy() - np.float32(0)) * np.float32(ratio)
        np.testing.assert_array_equal(got.astype(np.float32), want.numpy())
    np.testing.assert_array_equal(np.arange(256, dtype=np.float32) * np.float32(1 / 255), vals.numpy())


def test_flat_image_fires_everything():
    """The published comparisons with a zero range (`0 >= 0`, `-0.0 >= 0`): every bit set."""
    img = np.full((5, 7, 3), 93, np.uint8)
    want = reference_i2e(to_float(img))
    assert want.all()
    np.testing.assert_array_equal(i2e_frames(img), want)
    assert i2e_events(img).count == 8 * 2 * 35


def test_channel_order_and_grey_do_not_matter():
    img = smooth_image(3, 20, 30)
    np.testing.assert_array_equal(i2e_frames(img), i2e_frames(img[:, :, ::-1].copy()))
    grey = img[:, :, 0]
    np.testing.assert_array_equal(i2e_frames(grey), i2e_frames(np.repeat(grey[:, :, None], 3, axis=2)))


def test_write_planes_fills_a_batch_slot():
    img = smooth_image(5, 16, 16)
    T, B = 8, 3
    out = np.full((B * 2 * T, 256), 7, np.uint8)            # TCHW batch [T, B, 2, 16, 16], slot 1
    write_planes(img, out, 2 * 1, 2 * B, 1)
    got = out.reshape(T, B, 2, 16, 16)[:, 1]
    np.testing.assert_array_equal(got, i2e_frames(img))
    assert (out.reshape(T, B, 2, 256)[:, [0, 2]] == 7).all()


def test_params_validation_and_round_trip():
    p = I2EParams()
    assert p.ratio == 0.12 and p.order == (4, 5, 6, 7, 0, 1, 2, 3) and p.steps == 8 and p.size == 224
    assert p.directions == PUBLISHED_DIRECTIONS and [len(g) for g in p.directions] == [6, 6, 4, 4, 2, 2, 2, 2]
    d = p.to_dict()
    assert d["method"] == "i2e" and I2EParams.from_dict(d) == p
    for bad in ({"ratio": 0}, {"ratio": float("nan")}, {"order": (0, 1, 2)}, {"order": (0,) * 8},
                {"directions": (((5, 5),),)}, {"directions": (((0, 1),),)}, {"size": 0}, {"val_resize": 100}):
        with pytest.raises(ValueError):
            I2EParams(**bad)
    with pytest.raises(ValueError, match="one pair index per direction group"):
        i2e_frames(smooth_image(1, 4, 4), choice=[0, 0])
    with pytest.raises(ValueError, match="out of range"):
        i2e_frames(smooth_image(1, 4, 4), choice=[6, 0, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="NaN"):
        i2e_frames(np.full((3, 3), np.nan, np.float32))


def test_random_choice_covers_every_pair():
    rng = np.random.default_rng(0)
    draws = np.array([random_choice(rng) for _ in range(400)])
    for g, group in enumerate(PUBLISHED_DIRECTIONS):
        assert set(draws[:, g]) == set(range(len(group)))


# -- the published preprocessing --------------------------------------------------------------

def torch_resize(img, h, w):
    t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).unsqueeze(0)
    out = F.interpolate(t, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0).numpy()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), H=st.integers(1, 300), W=st.integers(1, 300), h=st.integers(1, 260),
       w=st.integers(1, 260), c=st.sampled_from([1, 3, 4]))
def test_resize_equals_torch_uint8_antialias(seed, H, W, h, w, c):
    img = smooth_image(seed, H, W, c)
    np.testing.assert_array_equal(resize_aa(img, h, w), torch_resize(img, h, w))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), data=st.data())
def test_resize_window_and_box(seed, data):
    H, W = data.draw(st.integers(2, 200)), data.draw(st.integers(2, 200))
    img = smooth_image(seed, H, W)
    bt, bl = data.draw(st.integers(0, H - 1)), data.draw(st.integers(0, W - 1))
    bh, bw = data.draw(st.integers(1, H - bt)), data.draw(st.integers(1, W - bl))
    oh, ow = data.draw(st.integers(1, 120)), data.draw(st.integers(1, 120))
    wt, wl = data.draw(st.integers(0, oh - 1)), data.draw(st.integers(0, ow - 1))
    wh, ww = data.draw(st.integers(1, oh - wt)), data.draw(st.integers(1, ow - wl))
    got = resize_window(img, oh, ow, (wt, wl, wh, ww), (bt, bl, bh, bw))
    want = torch_resize(img[bt:bt + bh, bl:bl + bw], oh, ow)[wt:wt + wh, wl:wl + ww]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", NAMES)
def test_preprocess_train_and_val_as_torchvision(name):
    """Resize((224, 224)) for train; Resize(256) then CenterCrop(224) for val (torchvision's sizes and
    anchor rules), the channel maximum taken after resizing, on real photos: exact."""
    img = photo(name)
    p = I2EParams()
    np.testing.assert_array_equal(preprocess(img, p, "train"), torch_resize(img, 224, 224).max(axis=2))
    h, w = resized_shape_short(*img.shape[:2], 256)
    assert min(h, w) == 256 and max(h, w) == int(256 * max(img.shape[:2]) / min(img.shape[:2]))
    top, left = centre_crop_anchor(h, w, 224)
    want = torch_resize(img, h, w)[top:top + 224, left:left + 224].max(axis=2)
    np.testing.assert_array_equal(preprocess(img, p, "val"), want)
    box = (10, 20, 100, 150)
    flipped = preprocess(img, p, "train", box=box, flip=True)
    np.testing.assert_array_equal(flipped, torch_resize(img[10:110, 20:170], 224, 224).max(axis=2)[:, ::-1])
    with pytest.raises(ValueError):
        preprocess(img, p, "test")


def test_resize_errors():
    with pytest.raises(ValueError, match="8-bit"):
        resize_aa(np.zeros((4, 4), np.float32), 2, 2)
    with pytest.raises(ValueError, match="box"):
        resize_window(np.zeros((4, 4), np.uint8), 2, 2, box=(0, 0, 5, 4))
    with pytest.raises(ValueError, match="window"):
        resize_window(np.zeros((4, 4), np.uint8), 2, 2, window=(1, 0, 2, 2))


# -- augmentation -----------------------------------------------------------------------------

def test_augment_is_a_function_of_seed_epoch_index():
    a = Augment(seed=3)
    g = [len(x) for x in PUBLISHED_DIRECTIONS]
    d1, d2 = a.draw(2, 17, 375, 500, g), a.draw(2, 17, 375, 500, g)
    assert d1.box == d2.box and d1.flip == d2.flip and np.array_equal(d1.choice, d2.choice)
    others = [a.draw(e, i, 375, 500, g) for e, i in ((3, 17), (2, 18))] + [Augment(seed=4).draw(2, 17, 375, 500, g)]
    assert all(o.box != d1.box for o in others)
    flips = [a.draw(0, i, 100, 100).flip for i in range(400)]
    assert 150 < sum(flips) < 250
    off = Augment(crop=False, flip=0.0, directions=False).draw(0, 0, 10, 10, g)
    assert off.box is None and not off.flip and off.choice is None


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**31), h=st.integers(1, 2000), w=st.integers(1, 2000))
def test_crop_box_inside_the_image(seed, h, w):
    top, left, bh, bw = crop_box(np.random.default_rng(seed), h, w)
    assert 0 <= top and 0 <= left and 1 <= bh and 1 <= bw and top + bh <= h and left + bw <= w


def test_crop_box_scale_and_ratio():
    rng = np.random.default_rng(0)
    boxes = np.array([crop_box(rng, 400, 600) for _ in range(2000)], np.float64)
    area = boxes[:, 2] * boxes[:, 3] / (400 * 600)
    aspect = boxes[:, 3] / boxes[:, 2]
    assert area.min() >= 0.07 and area.max() <= 1.0 and 0.3 < np.median(area) < 0.7
    assert aspect.min() >= 0.74 and aspect.max() <= 1.34


def test_apply_crops_and_mirrors():
    img = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    from odg.augment import Draw
    out = apply(img, Draw((1, 2, 3, 4), True, None))
    np.testing.assert_array_equal(out, img[1:4, 2:6][:, ::-1])
    assert out.flags.c_contiguous
    with pytest.raises(ValueError):
        Augment(scale=(0.5, 0.1))
    with pytest.raises(ValueError):
        Augment(flip=2)
