"""Raw keys of a store through zarr's own store object: odg's bookkeeping files and chunk digests.

Every byte odg reads or writes outside zarr's arrays (markers, lock, plan, cards, digests of chunk
files) goes through `StoreKeys`, on the same `zarr.abc.store.Store` zarr itself uses for the group,
so a local path and an fsspec URL (s3://, gs://) behave alike. Keys are '/'-separated and relative
to the store's root. zarr's stores are asynchronous; these calls run them to completion (zarr's own
`sync`, as its synchronous API does).

Small files are written atomically: zarr's `LocalStore` writes a temporary file and renames it
(zarr 3.1); an object store's PUT replaces an object whole.
"""
from __future__ import annotations

import hashlib
import json

import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from .urls import check_url


class StoreKeys:
    """Synchronous get/put/delete/list of raw keys on the zarr store at `url` (path or URL)."""

    def __init__(self, url_or_store):
        if isinstance(url_or_store, str):
            check_url(url_or_store)
            self.store = zarr.storage.FsspecStore.from_url(url_or_store) if "://" in url_or_store \
                else zarr.storage.LocalStore(url_or_store)
        else:
            self.store = url_or_store
        self._proto = default_buffer_prototype()

    def get(self, key: str) -> bytes | None:
        """The key's bytes, or None when it does not exist."""
        buf = sync(self.store.get(key, self._proto))
        return None if buf is None else buf.to_bytes()

    def put(self, key: str, data: bytes) -> None:
        """Write `data` at `key`, replacing it whole (atomically on a local store)."""
        sync(self.store.set(key, self._proto.buffer.from_bytes(data)))

    def delete(self, key: str) -> None:
        """Remove `key`; nothing happens when it does not exist."""
        sync(self.store.delete(key))

    def exists(self, key: str) -> bool:
        return sync(self.store.exists(key))

    def list(self, prefix: str) -> list[str]:
        """Every key under `prefix` (a folder-like prefix ending in '/'), sorted."""
        async def collect():
            return [k async for k in self.store.list_prefix(prefix)]
        return sorted(sync(collect()))

    def get_json(self, key: str):
        """The parsed JSON at `key`, or None when it does not exist (invalid JSON raises ValueError)."""
        raw = self.get(key)
        return None if raw is None else json.loads(raw)

    def put_json(self, key: str, obj) -> None:
        self.put(key, json.dumps(obj, indent=1, sort_keys=True).encode())

    def sha256(self, key: str) -> str:
        """sha256 of the key's bytes, or 'absent' when it does not exist."""
        raw = self.get(key)
        return "absent" if raw is None else hashlib.sha256(raw).hexdigest()
