"""ODG kernel: exactness against the published generator's outputs and a NumPy reference of the spec."""
import os

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odg import (
    EVENT_DTYPE,
    ODGParams,
    events_to_frames,
    events_to_published,
    events_to_words,
    odg_events,
    odg_events_batch,
    odg_events_published,
    published_to_events,
    word_dtype,
    words_to_events,
)

from .reference import reference_odg

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "odg")
VECTORS = {"astronaut": (True, (254, 254), 19909, 20031), "page": (True, (126, 254), 16320, 16436),
           "cell": (True, (254, 211), 625, 611), "coffee": (True, (169, 254), 10238, 9961),
           "clock_motion": (False, (190, 254), None, None)}


def load(name):
    return cv2.imread(os.path.join(DATA, "images", name + ".png"), cv2.IMREAD_COLOR)


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_published_vectors_exact(name):
    kept, shape, n_pos, n_neg = VECTORS[name]
    r = odg_events(load(name))
    assert r.kept == kept and r.shape == shape
    pos, neg = r.published()
    if kept:
        z = np.load(os.path.join(DATA, "expected", name + ".npz"))
        assert pos.dtype == np.uint8 and pos.shape == (n_pos, 3) and neg.shape == (n_neg, 3)
        np.testing.assert_array_equal(pos, z["pos"])
        np.testing.assert_array_equal(neg, z["neg"])
    else:
        assert r.count == 710                                 # under the 1000-event floor
        assert not os.path.exists(os.path.join(DATA, "expected", name + ".npz"))


def test_event_record_fields_and_order():
    r = odg_events(load("coffee"))
    ev = r.events
    assert ev.dtype == EVENT_DTYPE and len(ev) == r.count == int(r.counts.sum())
    key = ev["t"].astype(np.int64) * 10**6 + ev["y"].astype(np.int64) * 1000 + ev["x"]
    assert np.all(np.diff(key) >= 0)                          # t, then row-major
    assert set(np.unique(ev["p"])) == {0, 1} and ev["t"].min() == 1 and ev["t"].max() == 8
    assert ev["x"].min() > 16 and ev["x"].max() < 240 and ev["y"].min() > 16 and ev["y"].max() < 240
    np.testing.assert_array_equal(r.counts.sum(0), [(ev["p"] == 1).sum(), (ev["p"] == 0).sum()])
    for t in range(1, 9):
        assert r.counts[t - 1].sum() == (ev["t"] == t).sum()


def test_published_round_trip_and_words():
    r = odg_events(load("astronaut"))
    pos, neg = events_to_published(r.events)
    again = published_to_events(pos, neg)
    np.testing.assert_array_equal(again, r.events)
    np.testing.assert_array_equal(events_to_words(r.events, r.shape), r.words)
    np.testing.assert_array_equal(words_to_events(r.words, r.shape), r.events)
    p2, n2, shape, kept = odg_events_published(load("astronaut"))
    np.testing.assert_array_equal(p2, pos) and np.testing.assert_array_equal(n2, neg)
    assert shape == r.shape and kept


def test_grey_and_bgra_inputs():
    bgr = load("page")
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    ref = odg_events(np.repeat(grey[:, :, None], 3, axis=2))
    for im in (grey, grey[:, :, None]):
        np.testing.assert_array_equal(odg_events(im).words, ref.words)
    bgra = np.dstack([bgr, np.full(bgr.shape[:2], 7, np.uint8)])
    np.testing.assert_array_equal(odg_events(bgra).words, odg_events(bgr).words)
    assert not np.array_equal(odg_events(bgr).words, ref.words) or np.array_equal(bgr.max(2), grey)


def test_batch_equals_single():
    imgs = [load(n) for n in sorted(VECTORS)]
    for threads in (1, 2):
        batch = odg_events_batch(imgs, threads=threads)
        for im, r in zip(imgs, batch):
            one = odg_events(im)
            np.testing.assert_array_equal(r.words, one.words)
            assert r.shape == one.shape and r.kept == one.kept
    with pytest.raises(ValueError, match="image 1"):
        odg_events_batch([imgs[0], None])


@pytest.mark.parametrize("bad, match", [
    (None, "None"), ([[1, 2]], "numpy array"), (np.zeros((0, 5, 3), np.uint8), "empty"),
    (np.zeros((5, 0), np.uint8), "empty"), (np.zeros((4, 4, 3), np.float64), "uint8"),
    (np.full((4, 4, 3), np.nan, np.float32), "NaN"), (np.zeros((4, 4, 3), np.int32), "uint8"),
    (np.zeros((4, 4, 3, 1), np.uint8), "ndim"), (np.zeros((4, 4, 2), np.uint8), "channels"),
    (np.zeros((1, 1000, 3), np.uint8), "resizes to"), (np.zeros(7, np.uint8), "ndim"),
])
def test_bad_inputs_raise_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        odg_events(bad)


@pytest.mark.parametrize("kw, match", [
    ({"threshold": 0}, "threshold"), ({"threshold": float("nan")}, "threshold"), ({"long_side": 0}, "long_side"),
    ({"trajectory": ((0, 0),)}, "at least 2"), ({"trajectory": ((0, 0), (5, 0))}, "leaves the canvas"),
    ({"window": (10, 11)}, "window"), ({"min_events": -1}, "min_events"),
])
def test_params_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        ODGParams(**kw)


def test_params_round_trip_and_threshold_rule():
    p = ODGParams()
    assert ODGParams.from_dict(p.to_dict()) == p
    assert p.integer_threshold() == 46 and p.steps == 8 and p.grid == 223
    assert ODGParams(threshold=51 / 255).integer_threshold() == -1   # on a k/255 boundary: exact tables


def _image(seed, h, w, channels, pattern):
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels is None else (h, w, channels)
    if pattern == "noise":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if pattern == "plateaus":                 # 0/255 blocks: uniform regions and hard edges
        blocks = rng.integers(0, 2, (max(1, h // 7 + 1), max(1, w // 5 + 1)) + shape[2:], dtype=np.uint8) * 255
        return np.ascontiguousarray(np.repeat(np.repeat(blocks, 7, 0), 5, 1)[:h, :w])
    base = rng.integers(0, 200, shape[:1] + (1,) * (len(shape) - 1), dtype=np.int64)
    step = rng.choice([44, 45, 46, 47, 48], size=shape)          # differences around the threshold
    return np.clip(base + step * rng.integers(0, 2, shape), 0, 255).astype(np.uint8)


sizes = st.one_of(st.integers(1, 40), st.integers(40, 600), st.integers(600, 1500))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), h=sizes, w=sizes, channels=st.sampled_from([None, 1, 3, 4]),
       pattern=st.sampled_from(["noise", "plateaus", "threshold"]))
def test_matches_numpy_reference(seed, h, w, channels, pattern):
    img = _image(seed, h, w, channels, pattern)
    try:
        pos, neg, shape, kept = reference_odg(img)
    except ValueError:
        with pytest.raises(ValueError, match="resizes to"):
            odg_events(img)
        return
    r = odg_events(img)
    p2, n2 = r.published()
    assert r.shape == shape and r.kept == kept
    np.testing.assert_array_equal(p2, pos)
    np.testing.assert_array_equal(n2, neg)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), threshold=st.sampled_from([0.05, 0.1, 46 / 255, 51 / 255, 0.2, 0.3, 0.5]))
def test_other_thresholds_match_reference(seed, threshold):
    img = _image(seed, 300, 400, 3, "threshold" if seed % 2 else "noise")
    pos, neg, shape, _ = reference_odg(img, threshold=threshold)
    p2, n2 = odg_events(img, ODGParams(threshold=threshold)).published()
    np.testing.assert_array_equal(p2, pos)
    np.testing.assert_array_equal(n2, neg)


def test_extreme_aspect_ratios():
    rng = np.random.default_rng(0)
    for h, w in ((1, 254), (6, 1500), (1500, 6), (254, 1), (1500, 1500)):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        pos, neg, shape, kept = reference_odg(img)
        r = odg_events(img)
        assert r.shape == shape
        np.testing.assert_array_equal(r.published()[0], pos)
        np.testing.assert_array_equal(r.published()[1], neg)


def test_uniform_image_gives_no_events():
    for v in (0, 128, 255):
        r = odg_events(np.full((300, 200, 3), v, np.uint8))
        assert r.count == 0 and not r.kept


def test_centred_window_option():
    img = load("page")                     # 126 x 254: the uncentred window drops the image's top rows
    pub = odg_events(img)
    params = ODGParams(centred_window=True)
    cen = odg_events(img, params)
    assert cen.count > pub.count and cen.events["y"].min() < 17
    # every event of the centred window lands inside the published loader's crop
    assert int(events_to_frames(cen.events, cen.shape, params).sum()) == cen.count
    assert int(events_to_frames(pub.events, pub.shape).sum()) == pub.count
    np.testing.assert_array_equal(words_to_events(cen.words, cen.shape, params), cen.events)


@pytest.mark.parametrize("steps", [3, 12, 20])
def test_other_trajectories_match_reference(steps):
    rng = np.random.default_rng(steps)
    traj = tuple((int(r), int(c)) for r, c in rng.integers(0, 3, (steps + 1, 2)))
    img = _image(steps, 333, 500, 3, "noise")
    params = ODGParams(trajectory=traj)
    pos, neg, shape, kept = reference_odg(img, traj=traj)
    r = odg_events(img, params)
    assert r.words.dtype == word_dtype(steps) and r.counts.shape == (steps, 2)
    p2, n2 = r.published()
    np.testing.assert_array_equal(p2, pos)
    np.testing.assert_array_equal(n2, neg)
    np.testing.assert_array_equal(words_to_events(r.words, r.shape, params), r.events)
