"""ODG's dense frames written straight into a batch (`odg.odg.odg_frames_into`), and the counts.

The frames are checked against the published loader's frames of the plain-NumPy reference's events
(`reference.reference_odg`, `reference_loader_frames`) and against `events_to_frames`, in batch
slots of both layouts over buffers holding stale values; the per-step counts against the
reference's events, also for windows of more than 255 rows and words wider than 16 bits.
"""
import os

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odg import ODGParams, events_to_frames, odg_events
from odg.events import published_to_events
from odg.odg import odg_frames_into

from .reference import reference_loader_frames, reference_odg

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "odg", "images")
S = 224


def photo(name):
    return cv2.imread(os.path.join(DATA, name + ".png"), cv2.IMREAD_COLOR)


def noisy(seed, h, w, c=3):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    return cv2.GaussianBlur(img, (0, 0), 1.0).reshape(h, w, c)


def stale(planes):
    """A batch buffer holding a previous batch's values (not zeroed, as a reused buffer is)."""
    return np.random.default_rng(planes).integers(0, 256, (planes, S * S), dtype=np.uint8)


def step_counts(pos, neg, steps):
    return np.stack([np.bincount(pos[:, 2], minlength=steps + 1)[1:],
                     np.bincount(neg[:, 2], minlength=steps + 1)[1:]], axis=1)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "page", "cell", "clock_motion"])
def test_frames_equal_the_published_loader_in_a_tchw_slot(name):
    img = photo(name)
    pos, neg, (a, b), kept = reference_odg(img)
    T, B, slot = 8, 3, 1
    out = stale(T * B * 2)
    before = out.copy()
    r = odg_frames_into(img, out, 2 * slot, 2 * B, 1)         # TCHW [T, B, 2, S, S]: (sk, sb, sc) = (2B, 2, 1)
    assert r.shape == (a, b) and r.kept == kept                # clock_motion: under the floor, framed all the same
    np.testing.assert_array_equal(r.counts, step_counts(pos, neg, T))
    got = out.reshape(T, B, 2, S, S)[:, slot]
    want = reference_loader_frames(pos, neg, a, b).transpose(1, 0, 2, 3)      # [2, T, ...] -> [T, 2, ...]
    np.testing.assert_array_equal(got, want.astype(np.uint8))
    others = [s for s in range(B) if s != slot]
    np.testing.assert_array_equal(out.reshape(T, B, 2, S * S)[:, others], before.reshape(T, B, 2, S * S)[:, others])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), h=st.integers(1, 700), w=st.integers(1, 700),
       channels=st.sampled_from([1, 3, 4]), centre=st.booleans(), centred_window=st.booleans())
def test_frames_equal_events_to_frames_in_a_cthw_slot(seed, h, w, channels, centre, centred_window):
    img = noisy(seed, h, w, channels)
    params = ODGParams(centred_window=centred_window)
    try:
        r0 = odg_events(img, params)
    except ValueError:
        return                                                   # resizes to a side of 0 (tested elsewhere)
    T, B, slot = 8, 2, 1
    out = stale(T * B * 2)
    r = odg_frames_into(img, out, slot * 2 * T, 1, T, params, centre)   # CTHW [B, 2, T, S, S]: (1, 2T, T)
    np.testing.assert_array_equal(r.words, r0.words)
    np.testing.assert_array_equal(r.counts, r0.counts)
    got = out.reshape(B, 2, T, S, S)[slot].transpose(1, 0, 2, 3)
    np.testing.assert_array_equal(got, events_to_frames(r0.events, r0.shape, params, centre))


@pytest.mark.parametrize("params", [ODGParams(window=(-1, 300), frame_offset=0),
                                    ODGParams(trajectory=((1, 0), (0, 2), (2, 1), (1, 0), (0, 1), (2, 2), (1, 0),
                                                          (1, 1), (2, 1), (0, 0), (2, 2), (0, 2), (1, 2)))])
def test_counts_of_large_windows_and_wide_words(params):
    """A 300-row window (per-column byte sums are flushed every 255 rows; events down to row 257)
    and 12 steps (uint32 words)."""
    img = noisy(7, 400, 500)
    pos, neg, shape, _ = reference_odg(img, long_side=params.long_side, window=params.window,
                                       traj=list(params.trajectory))
    out = stale(2 * params.steps)
    r = odg_frames_into(img, out, 0, 2, 1, params)
    assert r.shape == shape
    np.testing.assert_array_equal(r.counts, step_counts(pos, neg, params.steps))
    np.testing.assert_array_equal(r.events, published_to_events(pos, neg))
    want = events_to_frames(r.events, shape, params).reshape(2 * params.steps, S * S)
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("name", ["astronaut", "clock_motion"])
def test_the_floor_decided_from_the_first_rows_is_the_floor_of_all(name):
    """With frames the rows are counted only until the floor is reached; `kept` is still the
    floor of every event, on either side of it, and `counts` (then counted on first access) exact."""
    img = photo(name)
    full = odg_events(img)
    n = full.count
    for floor in (0, 1, n // 3, n - 1, n, n + 1):
        r = odg_frames_into(img, stale(16), 0, 2, 1, ODGParams(min_events=floor))
        assert r.kept == (n >= floor), (floor, n)
        if floor == 0 or floor > n:                                 # decided on the first band / on the last
            assert (r.counted is None) == (floor == 0)
        np.testing.assert_array_equal(r.counts, full.counts)
        np.testing.assert_array_equal(r.words, full.words)


def test_bad_batch_buffers_are_refused():
    img = photo("astronaut")
    with pytest.raises(ValueError, match="uint8"):
        odg_frames_into(img, np.zeros((16, S * S), np.uint16), 0, 2, 1)
    with pytest.raises(ValueError, match="uint8"):
        odg_frames_into(img, np.zeros((16, S * S - 1), np.uint8), 0, 2, 1)
    with pytest.raises(ValueError, match="outside"):
        odg_frames_into(img, np.zeros((16, S * S), np.uint8), 2, 2, 1)
    with pytest.raises(ValueError, match="outside"):
        odg_frames_into(img, np.zeros((16, S * S), np.uint8), -1, 2, 1)
