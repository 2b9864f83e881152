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
# 1: chunks zstd-compressed only (checked against the markers' sha256 when read);
# 2: every chunk (every inner chunk of `words`) ends in its crc32c, checked by every read
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)

KIND_IMAGENET = "es-imagenet"
KIND_UCF101 = "es-ucf101"
KIND_I2E = "i2e-imagenet"          # ILSVRC2012 converted with I2E (params["method"] == "i2e")

# status codes of a sample; NOT_BUILT is the fill value of `status` (format 2) and what a reader
# reports for every sample of a shard without a valid completion marker (any format)
KEPT, DISCARDED, REJECTED, NOT_BUILT = 0, 1, 2, -1
STATUS_NAMES = {KEPT: "kept", DISCARDED: "discarded", REJECTED: "rejected", NOT_BUILT: "not built"}
NO_LABEL = -1               # the fill value of `label` (format 2): no class

# bookkeeping keys under a split, outside zarr's own metadata
META_DIR = "_odg"
LOCK_KEY = f"{META_DIR}/lock.json"
PLAN_KEY = f"{META_DIR}/plan.json"


WORDS_INNER_MAX = 8   # samples per inner chunk of the sharded words array


def words_inner_chunk(shard_size: int) -> int:
    """Samples per inner chunk of `words`: the largest divisor of the shard size up to 8.

    Measured on real samples: 8 samples per inner chunk write 3x and read a shard 2.7x faster
    than one sample per inner chunk, while a single-sample read costs about the same (it is
    dominated by zarr's per-call overhead, not by decompressing 8 x 100 KB).
    """
    return max(d for d in range(1, WORDS_INNER_MAX + 1) if shard_size % d == 0)


def marker_key(shard: int) -> str:
    return f"{META_DIR}/shards/{shard:06d}.json"


def fill_value(name: str):
    """The fill value of a per-sample array (format 2): what an unwritten chunk reads as."""
    return {"status": NOT_BUILT, "label": NO_LABEL}.get(name, 0)


def per_sample_arrays(payload_shape: tuple, payload_dtype) -> dict:
    """name -> (trailing shape, dtype) of every per-sample array of a split."""
    return {
        "label": ((), np.dtype(np.int16)),         # class index, 0-based
        "number": ((), np.dtype(np.int32)),        # published running number n (1-based within class)
        "name": ((), str),                         # source name (file name or archive member)
        "status": ((), np.dtype(np.int8)),         # KEPT / DISCARDED / REJECTED (NOT_BUILT: fill)
        "reason": ((), str),                       # why rejected or discarded ('' when kept)
        "shape": ((2,), np.dtype(np.int16)),       # resized (a, b) of an image, (H, W) of a clip
        "count": ((2,), np.dtype(np.int32)),       # events (ON, OFF)
        "words": (tuple(payload_shape), np.dtype(payload_dtype)),   # bit-packed events
    }
