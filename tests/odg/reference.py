"""A plain-NumPy reference of the published ODG conversion (docs/ALGORITHMS.md), step by step, with
no attempt at speed: float32 values V/255 on explicit canvases, as the published PyTorch code."""
import numpy as np

TRAJ = [(1, 0), (0, 2), (2, 1), (1, 0), (0, 1), (2, 2), (1, 0), (1, 1), (2, 1)]


def resized_shape(h, w, long_side=254):
    if h > w:
        return long_side, int(w * long_side / h)
    return int(h * long_side / w), long_side


def torch_nearest(src, dst):
    scale = np.float32(src) / np.float32(dst)
    return np.minimum(np.floor(np.arange(dst, dtype=np.float32) * scale).astype(np.int64), src - 1)


def reference_odg(img, threshold=0.18, long_side=254, min_events=1000, window=(16, 240), traj=TRAJ):
    """-> (pos, neg, (a, b), kept) exactly as the published generator (pos/neg (N, 3) uint8 row, col, t)."""
    if img.ndim == 2:
        img = img[:, :, None]
    img = img[:, :, :3]
    h, w = img.shape[:2]
    a, b = resized_shape(h, w, long_side)
    if a < 1 or b < 1:
        raise ValueError("resizes to 0")
    small = img[torch_nearest(h, a)][:, torch_nearest(w, b)].astype(np.float32) / np.float32(255)
    V = small.max(axis=2)
    canvases = []
    for r, c in traj:
        cv = np.zeros((a + 4, b + 4), np.float32)
        cv[r:r + a, c:c + b] = V
        canvases.append(cv)
    th = np.float32(threshold)
    pos, neg = [], []
    rows = np.arange(a + 4)[:, None]
    cols = np.arange(b + 4)[None, :]
    inside = (rows > window[0]) & (rows < window[1]) & (cols > window[0]) & (cols < window[1])
    for t in range(1, len(traj)):
        d = canvases[t] - canvases[t - 1]
        on, off = (d >= th) & inside, (-d >= th) & inside
        (rp, cp), (rc, cc) = traj[t - 1], traj[t]
        for lo, hi in ((min(rp, rc), max(rp, rc)), (min(rp, rc) + a, max(rp, rc) + a)):
            on[lo:hi, :] = False
            off[lo:hi, :] = False
        for lo, hi in ((min(cp, cc), max(cp, cc)), (min(cp, cc) + b, max(cp, cc) + b)):
            on[:, lo:hi] = False
            off[:, lo:hi] = False
        for mask, out in ((on, pos), (off, neg)):
            r, c = np.nonzero(mask)              # row-major
            out.append(np.stack([r, c, np.full_like(r, t)], axis=1))
    pos = np.concatenate(pos).astype(np.uint8).reshape(-1, 3)
    neg = np.concatenate(neg).astype(np.uint8).reshape(-1, 3)
    return pos, neg, (a, b), len(pos) + len(neg) >= min_events


def reference_loader_frames(pos, neg, a, b, long_side=254):
    """The published loader: [2, 8, 256, 256] float canvas with the centring shift, crop [16:240]."""
    frames = np.zeros((2, 8, 256, 256), np.float32)
    dr, dc = (long_side - a) // 2, (long_side - b) // 2
    for ch, ev in ((0, pos), (1, neg)):
        ev = ev.astype(np.int64)
        frames[ch, ev[:, 2] - 1, ev[:, 0] + dr, ev[:, 1] + dc] = 1
    return frames[:, :, 16:240, 16:240]
