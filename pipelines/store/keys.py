"""Raw keys of a store through zarr's own store object: odg's bookkeeping files and chunk digests.

Every byte odg reads or writes outside zarr's arrays (markers, lock, plan, cards, digests of chunk
files) goes through `StoreKeys`, on the same `zarr.abc.store.Store` zarr itself uses for the group,
so a local path and an fsspec URL (s3://, gs://) behave alike. Keys are '/'-separated and relative
to the store's root. zarr's stores are asynchronous; these calls run them to completion (zarr's own
`sync`, as its synchronous API does), or call a store's synchronous methods where it has them
(a local store's `get_sync` / `set_sync` / `delete_sync`: no round trip through zarr's event loop,
which costs more than a small file's read on a busy machine).

Small files are written atomically: zarr's `LocalStore` writes a temporary file and renames it
(zarr 3.1; a write that fails, e.g. on a full disk, removes its temporary file and leaves the old
key as it was); an object store's PUT replaces an object whole. `create` is an exclusive create:
a hard link of the written temporary file on a local store, a conditional PUT (`If-None-Match: *`)
on S3.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os

import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from .urls import check_url


def absolute_url(url: str) -> str:
    """`url` as every process can open it, whatever its working directory: a local path made
    absolute (`file://` URLs too); any other URL as given."""
    url = str(url)
    if url.startswith("file://"):
        return "file://" + os.path.abspath(url[len("file://"):])
    return url if "://" in url or "::" in url else os.path.abspath(url)


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
        if hasattr(self.store, "get_sync"):
            buf = self.store.get_sync(key, prototype=self._proto)
        else:
            buf = sync(self.store.get(key, self._proto))
        return None if buf is None else buf.to_bytes()

    def put(self, key: str, data: bytes) -> None:
        """Write `data` at `key`, replacing it whole (atomically on a local store)."""
        buf = self._proto.buffer.from_bytes(data)
        if hasattr(self.store, "set_sync"):
            self.store.set_sync(key, buf)
        else:
            sync(self.store.set(key, buf))

    def delete(self, key: str) -> None:
        """Remove `key`; nothing happens when it does not exist."""
        if hasattr(self.store, "delete_sync"):
            self.store.delete_sync(key)
        else:
            sync(self.store.delete(key))

    def create(self, key: str, data: bytes) -> bool:
        """Write `data` at `key` only if `key` does not exist, atomically; whether it was written.

        Exclusive on a local store and on S3 (a conditional PUT); on another object store a check
        then a PUT, which two writers can both pass (odg's lock says so: `lock.py`)."""
        buf = self._proto.buffer.from_bytes(data)
        if isinstance(self.store, zarr.storage.LocalStore):
            try:
                sync(self.store._set(key, buf, exclusive=True))
            except FileExistsError:
                return False
            return True
        fs, path = getattr(self.store, "fs", None), f"{getattr(self.store, 'path', '')}/{key}"
        protocols = getattr(fs, "protocol", ())
        if "s3" in ((protocols,) if isinstance(protocols, str) else protocols):    # s3fs: If-None-Match: *
            try:
                sync(fs._pipe_file(path, data, mode="create"))
                return True
            except FileExistsError:
                return False
            except OSError as e:    # S3's 412 Precondition Failed
                if "Precondition" in str(e) or "412" in str(e):
                    return False
                raise
        if self.exists(key):
            return False
        self.put(key, data)
        return True

    def local_path(self, key: str = "") -> str | None:
        """The file of `key` on a local store; None on an object store."""
        if isinstance(self.store, zarr.storage.LocalStore):
            return os.path.join(str(self.store.root), *[k for k in key.split("/") if k])
        return None

    def exists(self, key: str) -> bool:
        return sync(self.store.exists(key))

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        """The bytes of each key (None where it does not exist), fetched concurrently."""
        async def one(k):
            buf = await self.store.get(k, self._proto)
            return None if buf is None else buf.to_bytes()

        async def every():
            return await asyncio.gather(*(one(k) for k in keys))
        return list(sync(every())) if keys else []

    def exists_many(self, keys: list[str]) -> list[bool]:
        """Whether each key exists, asked concurrently."""
        async def every():
            return await asyncio.gather(*(self.store.exists(k) for k in keys))
        return list(sync(every())) if keys else []

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
