"""The odg event store: names, codes and array layout (documented in docs/STORE.md).

A store is one Zarr v3 group (a local path or any fsspec URL zarr accepts) with one sub-group
per split. Every per-sample array is chunked along the sample axis by the split's shard size
`K`, so shard `i` (samples `[i K, (i + 1) K)`) is one chunk or shard file per array, written
whole by one build task. The events are kept as bit-packed words (`odg.events`): lossless with
respect to the published per-sample files, in uncropped canvas coordinates.
"""
from __future__ import annotations

import numpy as np

FORMAT = "odg-store"
FORMAT_VERSION = 1

KIND_IMAGENET = "es-imagenet"
KIND_UCF101 = "es-ucf101"

# status codes of a sample
KEPT, DISCARDED, REJECTED = 0, 1, 2
STATUS_NAMES = {KEPT: "kept", DISCARDED: "discarded", REJECTED: "rejected"}

# bookkeeping keys under a split, outside zarr's own metadata
META_DIR = "_odg"
LOCK_KEY = f"{META_DIR}/lock.json"
PLAN_KEY = f"{META_DIR}/plan.json"


def marker_key(shard: int) -> str:
    return f"{META_DIR}/shards/{shard:06d}.json"


def per_sample_arrays(payload_shape: tuple, payload_dtype) -> dict:
    """name -> (trailing shape, dtype) of every per-sample array of a split."""
    return {
        "label": ((), np.dtype(np.int16)),         # class index, 0-based
        "number": ((), np.dtype(np.int32)),        # published running number n (1-based within class)
        "name": ((), str),                         # source name (file name or archive member)
        "status": ((), np.dtype(np.int8)),         # KEPT / DISCARDED / REJECTED
        "reason": ((), str),                       # why rejected or discarded ('' when kept)
        "shape": ((2,), np.dtype(np.int16)),       # resized (a, b) of an image, (H, W) of a clip
        "count": ((2,), np.dtype(np.int32)),       # events (ON, OFF)
        "words": (tuple(payload_shape), np.dtype(payload_dtype)),   # bit-packed events
    }
