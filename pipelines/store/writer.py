"""Creating a store and writing it one whole shard at a time.

Crash safety: a shard is done only when its completion marker (`_odg/shards/NNNNNN.json`, with
the sha256 of every chunk it wrote) exists; the marker is written last. A build holds a lock
(`_odg/lock.json`) for its whole run; a second build into the same split is refused while the
lock's process is alive. Zarr v3 has no synchronizer, so two tasks never write the same shard.
"""
from __future__ import annotations

import hashlib
import os
import socket
import time

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from . import kv as kvmod
from .shard_read import encode_words_shard, odg_sharding_layout
from .urls import check_url
from .schema import (FORMAT, FORMAT_VERSION, LOCK_KEY, PLAN_KEY, fill_value, marker_key, per_sample_arrays,
                     words_inner_chunk)


class StoreError(Exception):
    """A store that cannot be built or read as asked; the message says what to do."""


# zstd level 1: measured on real samples, the same size as level 3 (within 0.5%) at 70% of its
# compression time; compression is the largest cost of writing a shard
ZSTD_LEVEL = 1


def init_store(url: str, kind: str, params: dict, classes: list, odg_version: str) -> None:
    """Create the root group, or check that an existing store was built with the same kind and parameters."""
    check_url(url)
    try:
        root = zarr.open_group(url, mode="r")
        meta = root.attrs.get("odg")
    except FileNotFoundError:
        root, meta = None, None
    if root is not None:
        if meta is None:
            raise StoreError(f"{url} exists and is not an odg store")
        if meta["kind"] != kind:
            raise StoreError(f"{url} is an {meta['kind']} store; cannot add {kind} data to it")
        if meta["params"] != params:
            raise StoreError(f"{url} was built with other conversion parameters: {meta['params']}; "
                             "use another store for these parameters")
        return
    try:
        root = zarr.open_group(url, mode="a")
        root.attrs["odg"] = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
                             "odg_version": odg_version, "params": params, "classes": classes}
    except OSError as e:        # e.g. a missing bucket, no permission, no credentials
        raise StoreError(f"cannot create a store at {url}: {e}") from None


def _lock_owner_alive(lock: dict) -> bool:
    if lock.get("host") != socket.gethostname():
        return True          # cannot tell for another host: assume alive
    try:
        os.kill(int(lock["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lock(url: str, split: str) -> None:
    kv = kvmod.mapper(url)
    lock = kvmod.read_json(kv, f"{split}/{LOCK_KEY}")
    if lock is not None and _lock_owner_alive(lock):
        raise StoreError(
            f"split '{split}' of {url} is being built by process {lock['pid']} on {lock['host']} "
            f"(since {lock['started']}); refusing a second build. If that build is really gone, "
            f"delete {split}/{LOCK_KEY} and build again with --resume")
    kvmod.write_json(kv, f"{split}/{LOCK_KEY}", {"host": socket.gethostname(), "pid": os.getpid(),
                                                 "started": time.strftime("%Y-%m-%dT%H:%M:%S")})


def release_lock(url: str, split: str) -> None:
    kv = kvmod.mapper(url)
    try:
        del kv[f"{split}/{LOCK_KEY}"]
    except KeyError:
        pass


def check_split(url: str, split: str, plan: dict, resume: bool) -> bool:
    """Whether the split exists; raises StoreError when it exists and may not be (re)built as asked."""
    kv = kvmod.mapper(url)
    root = zarr.open_group(url, mode="a")
    if split not in root:
        return False
    if not resume:
        state = "complete" if root[split].attrs.get("complete") else "incomplete (an interrupted build?)"
        raise StoreError(f"split '{split}' already exists in {url} and is {state}; "
                         "pass --resume to finish it, or build into another store")
    if kvmod.read_json(kv, f"{split}/{PLAN_KEY}") != plan:
        raise StoreError(f"cannot resume split '{split}': its inputs or settings differ from the "
                         "interrupted build's (different files, order, shard size or limit)")
    return True


def init_split(url: str, split: str, n: int, shard_size: int, payload_shape: tuple, payload_dtype,
               plan: dict, source: dict, resume: bool) -> None:
    """Create the split's arrays, or (resume) check that the existing split has the same plan."""
    if check_split(url, split, plan, resume):
        return
    kv = kvmod.mapper(url)
    root = zarr.open_group(url, mode="a")
    g = root.create_group(split)
    for name, (trail, dtype) in per_sample_arrays(payload_shape, payload_dtype).items():
        shape = (n,) + trail
        # format 2: every chunk (every inner chunk of words) ends in its crc32c, checked on every read
        codecs = [ZstdCodec(level=ZSTD_LEVEL), Crc32cCodec()]
        if name == "words":
            g.create_array(name, shape=shape, dtype=dtype, shards=(shard_size,) + trail,
                           chunks=(words_inner_chunk(shard_size),) + trail, compressors=codecs, fill_value=0,
                           config={"write_empty_chunks": True})
        else:
            g.create_array(name, shape=shape, dtype=dtype, chunks=(shard_size,) + trail,
                           compressors=codecs, config={"write_empty_chunks": True},
                           **({} if dtype is str else {"fill_value": fill_value(name)}))
    g.attrs.update({"n": n, "shard_size": shard_size, "source": source, "complete": False,
                    "payload": {"shape": list(payload_shape), "dtype": np.dtype(payload_dtype).name}})
    kvmod.write_json(kv, f"{split}/{PLAN_KEY}", plan)


def done_shards(url: str, split: str) -> set[int]:
    """Indices of shards whose completion marker exists."""
    kv = kvmod.mapper(url)
    prefix = f"{split}/_odg/shards/"
    return {int(k[len(prefix):-5]) for k in kv.keys() if k.startswith(prefix) and k.endswith(".json")}


def write_shard(url: str, split: str, shard: int, columns: dict, summary: dict) -> dict:
    """Write shard `shard` of every per-sample array, then its completion marker; return the marker."""
    g = zarr.open_group(url, mode="r+")[split]
    K = g.attrs["shard_size"]
    start = shard * K
    stop = min(start + K, g.attrs["n"])
    arrays = {name: g[name] for name in columns}
    kv = kvmod.mapper(url)
    sums = {}
    for name, values in columns.items():
        if len(values) != stop - start:
            raise ValueError(f"shard {shard}: {name} has {len(values)} values for {stop - start} samples")
        key = kvmod.chunk_key(split, name, shard, arrays[name].ndim)
        layout = odg_sharding_layout(arrays[name]) if name == "words" else None
        if layout is not None:          # the shard file's bytes directly, as zarr would write them
            data = encode_words_shard(np.asarray(values, arrays[name].dtype), K, *layout)
            kv[key] = data
            sums[name] = hashlib.sha256(data).hexdigest()
        else:
            arrays[name][start:stop] = values
            sums[name] = kvmod.checksum(kv, key)
    marker = {"shard": shard, "start": start, "stop": stop, "sha256": sums, "summary": summary}
    kvmod.write_json(kv, f"{split}/{marker_key(shard)}", marker)
    return marker


def finish_split(url: str, split: str) -> None:
    g = zarr.open_group(url, mode="r+")[split]
    g.attrs["complete"] = True
