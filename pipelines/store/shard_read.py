"""Fast whole-shard reads and writes of the `words` array, beside zarr-python's own codec path.

zarr-python encodes and decodes the inner chunks of a sharded array one by one through its
asyncio codec pipeline, which costs more than the zstd work itself. For the layout the odg writer
creates (`odg_sharding_layout`), `ShardWordsReader` (behind `SplitReader.words_block`) decodes a
shard in one pass and `encode_words_shard` (behind `writer.write_shard`) produces the shard file's
bytes directly: byte for byte what zarr writes (tested), so zarr reads them unchanged.
"""
from __future__ import annotations

import numpy as np


def odg_sharding_layout(array):
    """`(samples per inner chunk, zstd level)` when `array` is laid out as the odg writer creates
    `words` (one `sharding_indexed` codec whose inner chunks are whole samples, `bytes` (little
    endian) + `zstd` inside, a `bytes` + `crc32c` index at the end, fill value 0, zarr v3, on a
    little-endian machine), else None."""
    import sys

    from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec, ZstdCodec
    md = array.metadata
    if sys.byteorder != "little" or getattr(md, "zarr_format", 3) != 3 or len(md.codecs) != 1:
        return None
    sc = md.codecs[0]
    if not isinstance(sc, ShardingCodec) or sc.index_location.value != "end":
        return None
    if [type(c) for c in sc.codecs] != [BytesCodec, ZstdCodec] or sc.codecs[1].checksum:
        return None
    if str(getattr(sc.codecs[0].endian, "value", "little")) != "little":
        return None
    if [type(c) for c in sc.index_codecs] != [BytesCodec, Crc32cCodec]:
        return None
    if str(getattr(sc.index_codecs[0].endian, "value", "little")) != "little" or array.fill_value != 0:
        return None
    shard = tuple(md.chunk_grid.chunk_shape)
    inner = tuple(sc.chunk_shape)
    if inner[1:] != tuple(array.shape[1:]) or shard[1:] != inner[1:] or shard[0] % inner[0]:
        return None
    return inner[0], sc.codecs[1].level


class ShardWordsReader:
    """Whole shards of a split's `words` array.

    zarr-python decodes the inner chunks of a sharded array one by one through its asyncio codec
    pipeline: with one sample per inner chunk, about 0.25-0.4 ms of overhead per sample beside the
    ~0.07 ms of zstd decoding. When the array is what the odg writer creates (one
    `sharding_indexed` codec whose inner chunks are whole samples, `bytes` (little endian) + `zstd`
    inside, a `bytes` + `crc32c` index at the end, fill value 0), a shard is fetched with one
    request from the array's own zarr store and the inner chunks holding wanted samples are
    zstd-decoded straight into the block, the index checked against its crc32c.
    Anything else falls back to `array[a:b]` (zarr's own path); both give identical arrays.
    """

    def __init__(self, array):
        self.array = array
        self.n = int(array.shape[0])
        self.fast = False
        try:
            self._setup()
        except Exception:           # noqa: BLE001 - any surprise: zarr's own path
            self.fast = False

    def _setup(self):
        layout = odg_sharding_layout(self.array)
        if layout is None:
            return
        md = self.array.metadata
        shard = tuple(md.chunk_grid.chunk_shape)
        self._m = layout[0]         # samples per inner chunk (1 in early stores, up to 8 now)
        import google_crc32c
        from numcodecs.zstd import decompress
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync
        self._K = shard[0]
        self._decompress = decompress
        self._crc = google_crc32c.value
        self._proto = default_buffer_prototype()
        self._sync = sync
        try:
            from zarr.abc.store import SupportsGetSync
            self._get_sync = isinstance(self.array.store_path.store, SupportsGetSync) and \
                hasattr(self.array.store_path, "get_sync")
        except ImportError:         # zarr < 3.1.5
            self._get_sync = False
        self._md = md
        self._indexes = {}
        self.fast = True

    def _get(self, sp, byte_range=None):
        if self._get_sync:          # local and memory stores: no round trip through zarr's event loop
            return sp.get_sync(prototype=self._proto, byte_range=byte_range)
        return self._sync(sp.get(prototype=self._proto, byte_range=byte_range))

    def _shard_index(self, s: int, sp):
        """The `[n_inner, 2]` (offset, nbytes) index of shard `s` (checked, cached), or None if absent."""
        hit = self._indexes.get(s)
        if hit is not None:
            return hit
        from zarr.abc.store import SuffixByteRequest
        n_inner = self._K // self._m
        isz = 16 * n_inner + 4
        buf = self._get(sp, SuffixByteRequest(isz))
        if buf is None:
            return None
        raw = buf.as_numpy_array().view(np.uint8)
        if raw.size < isz or self._crc(raw[:-4].tobytes()) != int(raw[-4:].view("<u4")[0]):
            raise ValueError(f"shard {s} of {self.array.store_path}: damaged index")
        index = raw[:-4].view("<u8").reshape(n_inner, 2).copy()
        if len(self._indexes) >= 64:
            self._indexes.pop(next(iter(self._indexes)))
        self._indexes[s] = index
        return index

    def read_one(self, i: int) -> np.ndarray:
        """Sample `i`'s words: the shard index (cached) and one inner chunk, read as byte ranges."""
        if not self.fast:
            return self.array[i]
        from zarr.abc.store import RangeByteRequest
        K, m = self._K, self._m
        s, j = divmod(i, K)
        sp = self.array.store_path / self._md.encode_chunk_key((s,) + (0,) * (self.array.ndim - 1))
        index = self._shard_index(s, sp)
        trail = tuple(self.array.shape[1:])
        if index is None or int(index[j // m, 0]) == 2 ** 64 - 1:
            return np.zeros(trail, self.array.dtype)
        off, nb_ = (int(v) for v in index[j // m])
        data = self._get(sp, RangeByteRequest(off, off + nb_)).as_numpy_array().view(np.uint8)
        chunk = np.empty((m,) + trail, self.array.dtype)
        self._decompress(data, chunk.reshape(-1).view(np.uint8))
        return chunk[j % m].copy()

    def read(self, s: int, K: int, rows=None) -> np.ndarray:
        """Samples `[s K, min((s + 1) K, n))` (K: the split's shard size). With `rows` (indices into
        the shard), only the inner chunks holding them are decoded; other rows are left undefined."""
        a, b = s * K, min((s + 1) * K, self.n)
        if not self.fast or K != self._K:
            return np.ascontiguousarray(self.array[a:b])
        sp = self.array.store_path / self._md.encode_chunk_key((s,) + (0,) * (self.array.ndim - 1))
        if self._get_sync:          # local and memory stores: no round trip through zarr's event loop
            buf = sp.get_sync(prototype=self._proto)
        else:
            buf = self._sync(sp.get(prototype=self._proto))
        m = self._m
        n_inner = K // m
        out = np.empty((K,) + tuple(self.array.shape[1:]), self.array.dtype)   # whole inner chunks
        if buf is None:             # shard never written: the fill value
            out.fill(0)
            return out[:b - a]
        raw = buf.as_numpy_array().view(np.uint8)
        isz = 16 * n_inner + 4
        if raw.size < isz:
            raise ValueError(f"shard {s} of {self.array.store_path} is truncated")
        index = raw[raw.size - isz:raw.size - 4]
        crc = int(raw[raw.size - 4:].view("<u4")[0])
        if self._crc(index.tobytes()) != crc:
            raise ValueError(f"shard {s} of {self.array.store_path}: index checksum mismatch")
        oa = index.view("<u8").reshape(n_inner, 2)
        flat = out.reshape(n_inner, -1).view(np.uint8)
        last = -(-(b - a) // m)     # inner chunks holding samples of the array
        chunks = range(last) if rows is None else np.unique(np.asarray(rows) // m)
        for j in chunks:
            off, nb_ = int(oa[j, 0]), int(oa[j, 1])
            if off == 2 ** 64 - 1:
                flat[j] = 0         # empty inner chunk: the fill value
                continue
            self._decompress(raw[off:off + nb_], flat[j])
        return out[:b - a]


def encode_words_shard(block: np.ndarray, shard_samples: int, inner: int, level: int) -> bytes:
    """The bytes of one shard file holding `block` (`[k <= shard_samples, ...]`), as zarr writes them:
    the zstd-compressed inner chunks of `inner` samples (the last one zero-padded; chunks wholly past
    the block marked empty), then the index of `(offset, nbytes)` uint64 pairs and its crc32c."""
    import struct

    import google_crc32c
    from numcodecs.zstd import Zstd
    codec = Zstd(level=level)
    n_inner = shard_samples // inner
    block = np.ascontiguousarray(block, dtype=block.dtype.newbyteorder("<"))
    index = np.empty((n_inner, 2), "<u8")
    parts, off = [], 0
    for j in range(n_inner):
        a = j * inner
        if a >= len(block):
            index[j] = (2 ** 64 - 1, 2 ** 64 - 1)
            continue
        chunk = block[a:a + inner]
        if len(chunk) < inner:
            chunk = np.concatenate([chunk, np.zeros((inner - len(chunk),) + block.shape[1:], block.dtype)])
        data = bytes(codec.encode(chunk))
        parts.append(data)
        index[j] = (off, len(data))
        off += len(data)
    ib = index.tobytes()
    return b"".join(parts) + ib + struct.pack("<I", google_crc32c.value(ib))
