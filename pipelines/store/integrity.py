"""What a reader trusts: built shards (valid completion markers) and chunks that match their checksums.

The errors every reader raises (`DamagedShard`, `IncompleteSplit`, `NotBuilt`: all `StoreError`s,
which the CLI prints as one `odg: error:` line) and the raw-key work behind them: the markers of a
split, which chunk keys exist, the bytes of chunks (format 1 stores, checked against the markers'
sha256). Keys are read through `StoreKeys` on the array's own zarr store object (local path or
fsspec URL alike), concurrently. docs/STORE.md ("Integrity") says what is checked when.
"""
from __future__ import annotations

import hashlib
import re

from .keys import StoreKeys
from .markers import MarkerState, marker_path, parse_marker
from .writer import StoreError


class ReadError(StoreError):
    """A store read refused. Re-raised from a DataLoader worker, torch builds it again from the
    worker's whole traceback: the message is then cut back to the original one line."""

    def __init__(self, message: str):
        if message.startswith("Caught ") and "Traceback" in message:
            last = message.rstrip().splitlines()[-1]
            message = last.split(": ", 1)[1] if ": " in last else last
        super().__init__(message)


class DamagedShard(ReadError):
    """A chunk of a built shard is missing or does not match its checksum."""

    def __init__(self, message: str, split: str | None = None, shard: int | None = None, array: str | None = None):
        super().__init__(message)
        if split is None:           # rebuilt from its message (a DataLoader worker's exception)
            m = re.search(r"split '(.*)' shard (\d+) array '(\w+)'", str(self))
            if m:
                split, shard, array = m.group(1), int(m.group(2)), m.group(3)
        self.split, self.shard, self.array = split, shard, array


class IncompleteSplit(ReadError):
    """A split whose build did not finish, opened without `allow_incomplete`."""


class NotBuilt(ReadError):
    """A sample or shard of a shard that was never built (readers with `allow_incomplete`)."""


def damaged(url: str, split: str, shard: int, array: str, why: str) -> DamagedShard:
    return DamagedShard(f"store {url} split '{split}' shard {shard} array '{array}' is damaged ({why}): "
                        "run odg verify", split, shard, array)


def shard_range(shard: int, shard_size: int, n: int) -> tuple[int, int]:
    return shard * shard_size, min((shard + 1) * shard_size, n)


def read_markers(store, split: str, shards, shard_size: int, n: int) -> dict:
    """shard -> `MarkerState` of each of `shards` (a valid marker must also record its shard's samples)."""
    shards = list(shards)
    raws = StoreKeys(store).get_many([marker_path(split, s) for s in shards])
    out = {}
    for s, raw in zip(shards, raws):
        ms = parse_marker(s, raw)
        if ms.built and (ms.marker["start"], ms.marker["stop"]) != shard_range(s, shard_size, n):
            ms = MarkerState(s, None, f"inconsistent (records samples {ms.marker['start']}-{ms.marker['stop']})")
        out[s] = ms
    return out


def chunk_crc(array) -> bool:
    """Whether every chunk of `array` (every inner chunk of a sharded one) carries a crc32c (format 2)."""
    from zarr.codecs import Crc32cCodec, ShardingCodec
    codecs = array.metadata.codecs
    if len(codecs) == 1 and isinstance(codecs[0], ShardingCodec):
        codecs = codecs[0].codecs
    return any(isinstance(c, Crc32cCodec) for c in codecs)


def chunk_problem(raw, want: str | None, digest: bool) -> str:
    """'' when a chunk agrees with the digest `want` its shard's marker recorded, else what is wrong.

    `raw`: the chunk's bytes (None: no such key), or with `digest` False only whether it exists.
    zarr does not write a chunk that equals the fill value, so a marker may record "absent": the
    chunk then reads as the fill value, which is what was written. With `digest` (format 1) the
    bytes must match the recorded sha256."""
    exists = raw is not None and raw is not False
    if want == "absent":
        return "a chunk exists where its marker records none" if exists else ""
    if not exists:
        return "chunk missing"
    if digest and want is not None and hashlib.sha256(raw).hexdigest() != want:
        return "checksum differs from its completion marker (sha256)"
    return ""
