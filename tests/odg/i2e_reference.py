"""Plain-NumPy re-implementation of the published I2E module (Ruichen0424/I2E, `i2e.py`), written from
its description, independently of `odg.i2e`: float32 throughout, the 3 x 3 kernels applied as a
correlation over the replicate-padded value image, the published comparisons."""
import numpy as np

DIRECTIONS = (
    ((5, 6), (1, 2), (2, 3), (4, 5), (7, 8), (8, 9)),
    ((5, 2), (4, 1), (6, 3), (7, 4), (8, 5), (9, 6)),
    ((5, 3), (4, 2), (7, 5), (8, 6)),
    ((5, 1), (6, 2), (8, 4), (9, 5)),
    ((9, 4), (6, 1)),
    ((4, 3), (7, 6)),
    ((3, 8), (2, 7)),
    ((8, 1), (9, 2)),
)
SHUFFLE = (4, 5, 6, 7, 0, 1, 2, 3)


def kernels(choice=None, shuffle=SHUFFLE, directions=DIRECTIONS) -> np.ndarray:
    """The module's weight `[8, 3, 3]`: -1 at the pair's first cell, +1 at its second, then shuffled."""
    w = np.zeros((len(directions), 3, 3), np.float32)
    for g, group in enumerate(directions):
        a, b = group[0 if choice is None else int(choice[g])]
        w[g, (a - 1) // 3, (a - 1) % 3] = -1
        w[g, (b - 1) // 3, (b - 1) % 3] = 1
    return w[list(shuffle)]


def reference_i2e(img: np.ndarray, ratio: float = 0.12, choice=None, shuffle=SHUFFLE,
                  directions=DIRECTIONS) -> np.ndarray:
    """float32 image `[C, H, W]` in [0, 1] -> uint8 `[T, 2, H, W]` (0/1), as the module's forward."""
    img = np.asarray(img, np.float32)
    v = img.max(axis=0)
    H, W = v.shape
    vp = np.pad(v, 1, mode="edge")
    rng = np.float32(vp.max() - vp.min())
    thr = np.float32(rng * np.float32(ratio))          # float32 tensor times a Python float
    w = kernels(choice, shuffle, directions)
    out = np.zeros((len(w), 2, H, W), np.uint8)
    for k in range(len(w)):
        resp = np.zeros((H, W), np.float32)
        for u in range(3):
            for t in range(3):
                resp = resp + w[k, u, t] * vp[u:u + H, t:t + W]
        pos = resp * (resp >= 0).astype(np.float32)
        neg = -resp * (resp < 0).astype(np.float32)
        out[k, 0] = pos >= thr
        out[k, 1] = neg >= thr
    return out


def to_float(image_u8: np.ndarray) -> np.ndarray:
    """uint8 `H x W x C` -> float32 `[C, H, W]` as torchvision's ToDtype(float32, scale=True)."""
    return np.ascontiguousarray(image_u8.transpose(2, 0, 1)).astype(np.float32) * np.float32(1.0 / 255)
