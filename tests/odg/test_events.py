"""Event forms: published loader frames, lossless words, bit-packed frames, Edge-Integral."""
import os

import cv2
import numpy as np
import pytest

from odg import (
    EVENT_DTYPE,
    ODGParams,
    edge_integral,
    edge_integral_events,
    edge_integral_image,
    events_to_frames,
    events_to_words,
    frames_to_events,
    odg_events,
    pack_frames,
    published_to_events,
    unpack_frames,
    word_dtype,
    words_to_frames,
)

from .reference import reference_loader_frames

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "odg")
KEPT = ("astronaut", "page", "cell", "coffee")


@pytest.mark.parametrize("name", KEPT)
def test_frames_equal_published_loader(name):
    z = np.load(os.path.join(DATA, "expected", name + ".npz"))
    r = odg_events(cv2.imread(os.path.join(DATA, "images", name + ".png")))
    ref = reference_loader_frames(z["pos"], z["neg"], *r.shape)          # [2, 8, 224, 224] float
    frames = events_to_frames(published_to_events(z["pos"], z["neg"]), r.shape)
    assert frames.shape == (8, 2, 224, 224) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames.transpose(1, 0, 2, 3), ref.astype(np.uint8))
    np.testing.assert_array_equal(words_to_frames(r.words, r.shape), frames)


def test_loader_crop_is_lossy_but_words_are_not():
    # page: (126, 254), the loader crop keeps everything; cell (254, 211): centring shifts columns by 21
    for name in KEPT:
        r = odg_events(cv2.imread(os.path.join(DATA, "images", name + ".png")))
        w = events_to_words(r.events, r.shape)
        assert int(np.unpackbits(w.view(np.uint8)).sum()) == r.count
    # a 254 x 234 image: shifted by 10 columns, events at columns >= 230 fall outside the crop
    img = np.random.default_rng(1).integers(0, 256, (254, 234, 3), dtype=np.uint8)
    r = odg_events(img)
    assert r.shape == (254, 234)
    assert int(events_to_frames(r.events, r.shape).sum()) < r.count


def test_pack_unpack_frames_round_trip():
    rng = np.random.default_rng(0)
    for T in (1, 4, 8, 16, 32):
        f = (rng.random((3, T, 2, 5, 7)) < 0.3).astype(np.uint8)
        w = pack_frames(f)
        assert w.dtype == word_dtype(T) and w.shape == (3, 5, 7)
        np.testing.assert_array_equal(unpack_frames(w, T), f)
    with pytest.raises(ValueError):
        word_dtype(33)


def test_frames_to_events_inverse():
    r = odg_events(cv2.imread(os.path.join(DATA, "images", "coffee.png")))
    f = events_to_frames(r.events, r.shape)
    ev = frames_to_events(f)
    np.testing.assert_array_equal(events_to_frames(ev, (254, 254), centre=False, params=ODGParams(frame_offset=0)), f)


def test_edge_integral_hand_worked():
    # An edge fixed in the image at (Y, X) = (2, 3) appears at step k at canvas (Y + r_k, X + c_k) where
    # (r_k, c_k) is the trajectory position of step k; Edge-Integral undoes the motion: all 8 ON events
    # pile up at (Y + 1, X + 1) after the crop [1:1+S].
    p = ODGParams()
    S = 9
    frames = np.zeros((8, 2, S, S), np.uint8)
    for k in range(8):
        r, c = p.trajectory[k + 1]
        frames[k, 0, 2 + r, 3 + c] = 1
    m = edge_integral(frames)
    assert m.dtype == np.int8 and m.shape == (S, S)
    expected = np.zeros((S, S), np.int8)
    expected[3, 4] = 8
    np.testing.assert_array_equal(m, expected)
    frames[:, 1] = frames[:, 0]                          # OFF at the same places cancels
    assert not edge_integral(frames).any()
    frames[:, 0] = 0
    assert edge_integral(frames)[3, 4] == -8


def test_edge_integral_published_shapes_and_display():
    r = odg_events(cv2.imread(os.path.join(DATA, "images", "astronaut.png")))
    m = edge_integral_events(r.events, r.shape)
    assert m.shape == (224, 224) and -8 <= m.min() < 0 < m.max() <= 8
    img = edge_integral_image(m)
    assert img.dtype == np.uint8 and img.shape == (224, 224)
    assert img[m == 0].min() == 128 == img[m == 0].max() and img.max() == 255
    assert (edge_integral_image(np.zeros((4, 4), np.int8)) == 128).all()
    with pytest.raises(ValueError, match="frames must be"):
        edge_integral(np.zeros((8, 224, 224), np.uint8))


def test_words_reject_events_outside_window():
    ev = published_to_events(np.array([[5, 30, 1]], np.uint8), np.zeros((0, 3), np.uint8))
    with pytest.raises(ValueError, match="outside the event window"):
        events_to_words(ev, (254, 254))


def test_frame_shift_is_the_one_geometry_of_frames():
    """`ODGParams.frame_shift`: canvas position origin + (i, j) lands at frame pixel (i + dr, j + dc);
    events (origin 0), words (the window origin) and the framed source image (origin (1, 1))."""
    from odg.framing import IMAGE_ORIGIN, frame_image
    p = ODGParams()
    for a, b in ((254, 190), (169, 254), (254, 254), (240, 254)):
        sr, sc = (254 - a) // 2, (254 - b) // 2
        assert p.frame_shift(a, b) == (sr - 16, sc - 16)
        assert p.frame_shift(a, b, centre=False) == (-16, -16)
        assert p.words_shift(a, b) == (17 + sr - 16, 17 + sc - 16)
        assert ODGParams(centred_window=True).words_shift(a, b) == (1, 1)
        # a single event at canvas (y, x) = (40, 50) lands where frame_shift says
        ev = np.zeros(1, EVENT_DTYPE)
        ev["x"], ev["y"], ev["t"], ev["p"] = 50, 40, 3, 0
        dr, dc = p.frame_shift(a, b)
        f = events_to_frames(ev, (a, b), p)
        assert f[2, 1, 40 + dr, 50 + dc] == 1 and f.sum() == 1
        # the image: already (a, b) (INTER_AREA leaves it as is), pixel [i, j] at origin (1, 1) + (i, j)
        img = np.random.default_rng(a + b).integers(1, 256, (a, b, 3)).astype(np.uint8)
        framed = frame_image(img, (a, b), p)
        dr, dc = p.frame_shift(a, b, True, IMAGE_ORIGIN)
        want = np.zeros((224, 224, 3), np.uint8)
        for i in range(a):
            if 0 <= i + dr < 224:
                for j in range(b):
                    if 0 <= j + dc < 224:
                        want[i + dr, j + dc] = img[i, j]
        assert np.array_equal(framed, want)
