"""Raw key access to a store (local path or fsspec URL) for odg's bookkeeping files and checksums."""
from __future__ import annotations

import hashlib
import json

import fsspec

from .urls import check_url


def mapper(url: str, storage_options: dict | None = None):
    check_url(url)
    return fsspec.get_mapper(url, **(storage_options or {}))


def read_json(kv, key: str):
    try:
        return json.loads(kv[key])
    except KeyError:
        return None


def write_json(kv, key: str, obj) -> None:
    kv[key] = json.dumps(obj, indent=1, sort_keys=True).encode()


def checksum(kv, key: str) -> str:
    """sha256 of a stored key's bytes, or 'absent' when the key does not exist."""
    try:
        return hashlib.sha256(kv[key]).hexdigest()
    except KeyError:
        return "absent"


def chunk_key(split: str, array: str, shard: int, ndim: int) -> str:
    """Key of shard `shard`'s chunk (or shard file) of a per-sample array chunked only along samples."""
    return "/".join([split, array, "c", str(shard)] + ["0"] * (ndim - 1))
