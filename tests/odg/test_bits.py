"""`odg.bits`: the packed-word convention against its literal definition (bit 2 k + c, c = 0 ON), in
both dense layouts, the counting kernel and the loader's batch scatter; and every caller agreeing
with it (ES-ImageNet events, ES-UCF101 clips, I2E frames)."""
import numpy as np
import pytest

from odg import bits


def literal_pack(frames_tchw: np.ndarray) -> np.ndarray:
    """Python-int words of one sample `[T, 2, H, W]`, one bit at a time."""
    T, _, H, W = frames_tchw.shape
    out = np.zeros((H, W), np.uint64)
    for r in range(H):
        for x in range(W):
            w = 0
            for k in range(T):
                for c in range(2):
                    if frames_tchw[k, c, r, x]:
                        w |= 1 << (2 * k + c)
            out[r, x] = w
    return out


@pytest.mark.parametrize("steps", [1, 3, 8, 16, 30, 32])
def test_pack_unpack_follow_the_literal_definition(steps):
    rng = np.random.default_rng(steps)
    f = (rng.random((steps, 2, 5, 6)) < 0.4).astype(np.uint8)
    want = literal_pack(f)
    w = bits.pack(f)
    assert w.dtype == bits.word_dtype(steps) and w.shape == (5, 6)
    assert np.array_equal(w.astype(np.uint64), want)
    assert np.array_equal(bits.unpack(w, steps), f)
    # the published clip layout [2, T, H, W] packs to the same words
    clip = np.ascontiguousarray(f.transpose(1, 0, 2, 3))
    assert np.array_equal(bits.pack(clip, "CTHW", np.uint64), want)
    assert np.array_equal(bits.unpack(want, steps, "CTHW"), clip)
    assert bits.bit(steps - 1, bits.OFF) == 2 * steps - 1 and bits.channel(1) == bits.ON


def test_leading_axes_bool_and_counts():
    rng = np.random.default_rng(0)
    f = rng.random((3, 4, 8, 2, 7, 5)) < 0.3                         # bool, two leading axes
    w = bits.pack(f)
    assert w.shape == (3, 4, 7, 5) and w.dtype == np.uint16
    assert np.array_equal(bits.unpack(w, 8), f.astype(np.uint8))
    per, density, stray = bits.bit_counts(w.reshape(12, 7, 5), 8, np.arange(12) % 2 == 0)
    flat = f.reshape(12, 8, 2, 7, 5)
    assert np.array_equal(per, flat.sum(axis=(3, 4)))
    assert np.array_equal(density, flat[::2].sum(axis=(0, 1, 2)))
    assert stray == 0
    # bits beyond the steps: ignored by unpack, counted as stray
    w2 = w[0, 0] | np.uint16(1 << 15)
    assert np.array_equal(bits.unpack(w2, 7), bits.unpack(w[0, 0], 7))
    assert bits.bit_counts(w2[None], 7)[2] == w2.size + int(f[0, 0, 7, bits.ON].sum())     # bits 15 and 14


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="only 0 and 1"):
        bits.pack(np.full((2, 2, 3, 3), 2, np.uint8))
    with pytest.raises(ValueError, match="only 0 and 1"):
        bits.pack(np.full((2, 2, 3, 3), 0.5))
    with pytest.raises(ValueError, match="2 channels"):
        bits.pack(np.zeros((2, 3, 3, 3), np.uint8))
    with pytest.raises(ValueError, match="do not fit"):
        bits.pack(np.zeros((9, 2, 3, 3), np.uint8), dtype=np.uint16)
    with pytest.raises(ValueError, match="do not fit"):
        bits.unpack(np.zeros((3, 3), np.uint16), 9)
    with pytest.raises(ValueError, match="integers"):
        bits.unpack(np.zeros((3, 3), np.float32), 2)
    with pytest.raises(ValueError, match="layout"):
        bits.unpack(np.zeros((3, 3), np.uint16), 2, "HWTC")
    with pytest.raises(ValueError, match="at most 64"):
        bits.word_dtype(33)


@pytest.mark.parametrize("layout", bits.LAYOUTS)
def test_batch_scatter_places_shifted_words(layout):
    """`packed_batch` / `dense_batch`: each sample's words shifted by (dr, dc) into an S0 x S1 frame,
    cropped, zero outside, at its batch position; checked against plain slicing."""
    rng = np.random.default_rng(1)
    T, G, S0, S1 = 4, 6, 5, 7
    block = rng.integers(0, 1 << (2 * T), (3, G, G)).astype(np.uint8)
    rows = np.array([2, 0, 1], np.int64)
    bpos = np.array([1, 2, 0], np.int64)
    dr = np.array([-2, 3, 0], np.int64)
    dc = np.array([1, -4, 9], np.int64)
    B = 3
    want = np.zeros((B, S0, S1), np.uint8)
    for n in range(3):
        for i in range(G):
            for j in range(G):
                r, c = i + dr[n], j + dc[n]
                if 0 <= r < S0 and 0 <= c < S1:
                    want[bpos[n], r, c] = block[rows[n], i, j]
    out = np.full((B, S0 * S1), 255, np.uint8)                     # every value is written
    bits.packed_batch(block, rows, bpos, dr, dc, S0, S1, out)
    assert np.array_equal(out.reshape(B, S0, S1), want)
    # dense: sample-first strides of `layout`, planes (k, c) of the unpacked words
    sk, sb, sc = bits.sample_strides(layout, T)
    dense = np.full((B * 2 * T, S0 * S1), 255, np.uint8)
    bits.dense_batch(block, rows, bpos, dr, dc, T, S0, S1, dense, sk, sb, sc)
    shape = (B, T, 2, S0, S1) if layout == "TCHW" else (B, 2, T, S0, S1)
    assert np.array_equal(dense.reshape(shape), bits.unpack(want, T, layout))


def test_every_kind_packs_by_this_convention():
    """ES-ImageNet events, ES-UCF101 clips and I2E words are `bits.pack` of their dense frames."""
    from pathlib import Path

    import cv2

    from odg import odg_events, unpack_frames, words_to_frames
    from odg.i2e import i2e_events, i2e_frames
    from odg.video import pack_clip, unpack_clip
    img = cv2.imread(str(Path(__file__).resolve().parent.parent / "data" / "odg" / "images" / "astronaut.png"))
    r = odg_events(img)
    ev = r.events
    dense = np.zeros((8, 2) + r.words.shape, np.uint8)               # events -> [T, 2, window]
    r0, c0 = r.params.window_origin(*r.shape)
    dense[ev["t"] - 1, 1 - ev["p"], ev["y"] - r0, ev["x"] - c0] = 1
    assert np.array_equal(bits.pack(dense), r.words)
    assert np.array_equal(unpack_frames(r.words, 8), dense)
    assert words_to_frames(r.words, r.shape).sum() <= len(ev)
    rng = np.random.default_rng(2)
    clip = (rng.random((2, 30, 9, 11)) < 0.2).astype(np.uint8)
    assert np.array_equal(pack_clip(clip), bits.pack(clip, "CTHW", np.uint64))
    assert np.array_equal(unpack_clip(pack_clip(clip), 30), clip)
    value = rng.random((224, 224)).astype(np.float32)
    assert np.array_equal(i2e_events(value).words, bits.pack(i2e_frames(value)))
