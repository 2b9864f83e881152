"""Creating a store and writing it one whole shard at a time: `SplitWriter`.

A `SplitWriter` is one split of a store opened for writing, on zarr's own store object
(`keys.StoreKeys`): the build's lock (`lock.SplitLock`), the resume plan, the shard writes and
their completion markers, and the split's completion. The build's client opens one for the
split; each Dask task opens its own from the store's absolute URL for its shard write.

Crash safety: a shard is done only when its completion marker (`_odg/shards/NNNNNN.json`, with
the sha256 of every chunk it wrote) is valid (`markers.parse_marker`); the marker is written last.
Every small file is written atomically (a temporary file renamed; an object store's PUT), so a
kill or a full disk leaves the old file or none, never a truncated one; a marker that is invalid
anyway means "not built" and a resume rebuilds its shard. Zarr v3 has no synchronizer, so two
tasks never write the same shard.
"""
from __future__ import annotations

import hashlib
import os
import re

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec

from .keys import StoreKeys, absolute_url
from .lock import BusyError, SplitLock
from .markers import MarkerState, marker_path, parse_marker
from .schema import FORMAT, FORMAT_VERSION, LOCK_KEY, META_DIR, PLAN_KEY, fill_value, per_sample_arrays, words_inner_chunk
from .shard_read import chunk_key, encode_words_shard, odg_sharding_layout
from .urls import check_url


class StoreError(Exception):
    """A store that cannot be built or read as asked; the message says what to do."""


# zstd level 1: measured on real samples, the same size as level 3 (within 0.5%) at 70% of its
# compression time; compression is the largest cost of writing a shard
ZSTD_LEVEL = 1

SETTINGS_KEY = f"{META_DIR}/settings.json"     # under the split: the command's options, for --resume

_MARKER_NAME = re.compile(r"^(\d{6,})\.json$")


def plan_differences(recorded: dict, plan: dict, prefix: str = "") -> list[str]:
    """`'name: recorded X, now Y'` for every setting where two plans differ (nested keys dotted)."""
    out = []
    for k in sorted(set(recorded) | set(plan)):
        a, b = recorded.get(k), plan.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += plan_differences(a, b, f"{prefix}{k}.")
        elif a != b and k == "sha256":      # the digest of the input list: its values say nothing
            out.append(f"{prefix}the input list (names, labels, numbers or their order) differs")
        elif a != b:
            out.append(f"{prefix}{k}: recorded {a!r}, now {b!r}")
    return out


class SplitWriter:
    """Split `split` of the store at `url` (a path, made absolute, or an fsspec URL), for writing.

    The client side: `check_store`, `lock`, `check`, `create_store`, `create`, `done_shards`,
    `finish`, `unlock`, `discard`; the task side: `write_shard`."""

    def __init__(self, url: str, split: str):
        check_url(url)
        self.url = absolute_url(url)
        self.split = split
        self.keys = StoreKeys(self.url)
        self._lock = SplitLock(self.keys, split)
        self._group = None

    def __repr__(self) -> str:
        return f"<SplitWriter {self.split!r} of {self.url}>"

    def _root(self, mode: str = "r+"):
        return zarr.open_group(store=self.keys.store, mode=mode)

    @property
    def group(self):
        """The split's zarr group (opened once)."""
        if self._group is None:
            self._group = self._root()[self.split]
        return self._group

    # -- the store ----------------------------------------------------------------------------

    def store_meta(self) -> dict | None:
        """The store's `odg` attributes, or None when there is no store (nothing, or an empty
        folder). Raises StoreError for something else at the URL: a file, a folder or a group that
        is not an odg store."""
        path = self.keys.local_path()
        if path is not None and os.path.exists(path) and not os.path.isdir(path):
            raise StoreError(f"{self.url} is a file, not a store")
        try:
            meta = self.keys.get_json("zarr.json")
            entries = self._contents() if meta is None else []
        except ValueError:
            raise StoreError(f"{self.url}/zarr.json is not JSON: not an odg store") from None
        except OSError as e:        # e.g. a missing bucket, no permission, no credentials
            raise StoreError(f"cannot create a store at {self.url}: {e}") from None
        if meta is None:
            if entries:
                raise StoreError(f"{self.url} is not empty and is not an odg store (it holds "
                                 f"{'e.g. ' if path is None else ''}{', '.join(sorted(entries)[:3])}"
                                 f"{', ...' if len(entries) > 3 else ''}); build into a new or empty folder")
            return None
        odg = meta.get("attributes", {}).get("odg") if isinstance(meta, dict) else None
        if odg is None:
            raise StoreError(f"{self.url} exists and is not an odg store")
        return odg

    def _contents(self, most: int = 4) -> list[str]:
        """Up to `most` keys found where the store would be, leaving out build locks (a build that
        has just taken its lock, before it creates the store, leaves nothing else)."""
        lock = "/" + LOCK_KEY
        path = self.keys.local_path()
        if path is None:
            keys = self.keys.list("")
        elif not os.path.isdir(path):
            return []
        else:
            keys = []
            for d, dirs, files in os.walk(path):
                rel = os.path.relpath(d, path).replace(os.sep, "/")
                keys += [fn if rel == "." else f"{rel}/{fn}" for fn in files]
                if len(keys) > 64:
                    break
        return [k for k in keys if not k.endswith(lock) or k.count("/") != LOCK_KEY.count("/") + 1][:most]

    def check_store(self, kind: str, params: dict) -> bool:
        """Whether the store exists; raises StoreError when it may not receive this build."""
        meta = self.store_meta()
        if meta is None:
            return False
        if meta["kind"] != kind:
            raise StoreError(f"{self.url} is an {meta['kind']} store; cannot add {kind} data to it")
        if meta["params"] != params:
            raise StoreError(f"{self.url} was built with other conversion parameters: {meta['params']}; "
                             "use another store for these parameters")
        return True

    def create_store(self, kind: str, params: dict, classes: list, odg_version: str) -> bool:
        """Create the root group unless it exists (after `check_store`, which refuses a folder that
        is not a store: the lock's own folders may be there by now); whether it was created."""
        if self.keys.exists("zarr.json"):
            self.check_store(kind, params)
            return False
        try:
            root = self._root(mode="a")
            root.attrs["odg"] = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
                                 "odg_version": odg_version, "params": params, "classes": classes}
        except OSError as e:        # e.g. a missing bucket, no permission, no credentials
            raise StoreError(f"cannot create a store at {self.url}: {e}") from None
        return True

    # -- the lock -----------------------------------------------------------------------------

    def lock(self) -> None:
        """Take the split's build lock, or raise StoreError naming the build holding it."""
        try:
            self._lock.acquire()
        except OSError as e:
            raise StoreError(f"cannot take the build lock of split '{self.split}' of {self.url}: {e}") from None
        except BusyError as e:
            raise StoreError(
                f"split '{self.split}' of {self.url} is being built by {e}; refusing a second build. "
                f"If that build is really gone (on another host), delete {self.split}/{LOCK_KEY} and "
                "build again with --resume") from None

    def unlock(self) -> None:
        self._lock.release()

    # -- the split ----------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.keys.exists(f"{self.split}/zarr.json")

    def plan(self) -> dict | None:
        """The recorded resume plan (None when absent or unreadable)."""
        try:
            return self.keys.get_json(f"{self.split}/{PLAN_KEY}")
        except ValueError:
            return None

    def check(self, plan: dict, resume: bool) -> bool:
        """Whether the split exists; raises StoreError when it exists and may not be (re)built as asked."""
        if not self.exists():
            return False
        if not resume:
            state = "complete" if self.group.attrs.get("complete") else "incomplete (an interrupted build?)"
            raise StoreError(f"split '{self.split}' already exists in {self.url} and is {state}; "
                             "pass --resume to finish it, or build into another store")
        recorded = self.plan()
        if recorded != plan:
            diff = plan_differences(recorded, plan) if recorded is not None else ["no readable plan is recorded"]
            raise StoreError(f"cannot resume split '{self.split}': its inputs or settings differ from the "
                             f"interrupted build's ({'; '.join(diff[:3])}{'; ...' if len(diff) > 3 else ''})")
        return True

    def settings(self) -> dict | None:
        """The command-line options recorded by the split's build (None when absent or unreadable)."""
        try:
            got = self.keys.get_json(f"{self.split}/{SETTINGS_KEY}")
        except (ValueError, OSError):
            return None
        return got if isinstance(got, dict) else None

    def create(self, n: int, shard_size: int, payload_shape: tuple, payload_dtype, plan: dict,
               source: dict, settings: dict | None = None) -> None:
        """Create the split's arrays and record its plan and the command's `settings` (option ->
        value: what `--resume` reuses)."""
        g = self._root(mode="a").create_group(self.split)
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
        self._group = g
        self.keys.put_json(f"{self.split}/{PLAN_KEY}", plan)
        if settings:
            self.keys.put_json(f"{self.split}/{SETTINGS_KEY}", settings)

    def marker(self, shard: int) -> MarkerState:
        return parse_marker(shard, self.keys.get(marker_path(self.split, shard)))

    def done_shards(self) -> set[int]:
        """Indices of shards with a valid completion marker (`markers.parse_marker`)."""
        prefix = f"{self.split}/{META_DIR}/shards/"
        out = set()
        for k in self.keys.list(prefix):
            m = _MARKER_NAME.match(k[len(prefix):])
            if m and self.marker(int(m.group(1))).built:
                out.add(int(m.group(1)))
        return out

    def remove_partial_files(self) -> int:
        """Remove the temporary files of writes a killed build left under the split (local
        stores; zarr names them `*.partial`); how many."""
        path = self.keys.local_path(self.split)
        n = 0
        if path is None:
            return n
        for d, _, files in os.walk(path):
            for fn in files:
                if fn.endswith(".partial"):
                    os.remove(os.path.join(d, fn))
                    n += 1
        return n

    def write_shard(self, shard: int, columns: dict, summary: dict) -> dict:
        """Write shard `shard` of every per-sample array, then its completion marker; return the marker."""
        g = self.group
        K = g.attrs["shard_size"]
        start = shard * K
        stop = min(start + K, g.attrs["n"])
        # every chunk written, fill values too (zarr does not persist write_empty_chunks): a finished
        # shard has every file, so a missing one is damage
        arrays = {name: g[name].with_config({"write_empty_chunks": True}) for name in columns}
        sums = {}
        for name, values in columns.items():
            if len(values) != stop - start:
                raise ValueError(f"shard {shard}: {name} has {len(values)} values for {stop - start} samples")
            key = f"{arrays[name].store_path.path}/{chunk_key(arrays[name], shard)}"
            layout = odg_sharding_layout(arrays[name]) if name == "words" else None
            if layout is not None:          # the shard file's bytes directly, as zarr would write them
                data = encode_words_shard(np.asarray(values, arrays[name].dtype), K, *layout)
                self.keys.put(key, data)
                sums[name] = hashlib.sha256(data).hexdigest()
            else:
                arrays[name][start:stop] = values
                sums[name] = self.keys.sha256(key)
        marker = {"shard": shard, "start": start, "stop": stop, "sha256": sums, "summary": summary}
        self.keys.put_json(marker_path(self.split, shard), marker)
        return marker

    def finish(self) -> None:
        """Mark the split complete."""
        self.group.attrs["complete"] = True

    def discard(self, created: list[str], made_root: bool = False) -> None:
        """Undo a refused build: release the lock, remove the root group when this build made it
        (`made_root`) and the folders of `created` (local paths this build made, outermost first)
        that are empty again, so the store is as it was."""
        self.unlock()
        if made_root:
            self.keys.delete("zarr.json")
        for path in reversed(created):
            try:
                os.rmdir(path)
            except OSError:
                pass

