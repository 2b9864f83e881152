"""Whole-shard reads and writes of the `words` array, beside zarr-python's own codec path, checked.

zarr-python encodes and decodes the inner chunks of a sharded array one by one through its
asyncio codec pipeline, which costs more than the zstd work itself. For the layout the odg writer
creates (`odg_sharding_layout`), `ShardWordsReader` (behind `SplitReader.words_block` and
`SplitReader.words`) decodes a shard in one pass, and `encode_words_shard` (behind
`SplitWriter.write_shard`) produces the shard file's bytes directly: byte for byte what zarr
writes (tested), so zarr reads them unchanged. Measured (benchmarks/bench_shard_read.py, zarr
3.1.6): reads 1.4-2.4x (whole shard) and 2.3-3.2x (one sample) faster; the write about as fast in
wall time (0.9-1.1x: zarr compresses on several threads) for 1.5x less CPU (0.12 against 0.18
ms per image at 128 samples per shard), which is what a build's workers, one per core, spend.

The fast path uses zarr internals beyond its documented API (`StorePath.get`/`get_sync`,
`zarr.core.sync.sync`, the sharding codec's attributes); it was checked against the zarr versions
in `CHECKED_ZARR` (what Python 3.11 gets: zarr 3.2 needs Python 3.12). Under any other zarr, or on
a layout it does not handle, it is not used: reads take zarr's own path, and one warning per
process names the reason. Chunk keys come from the array's own chunk-key encoding.

Integrity (docs/STORE.md, "Integrity"): every inner chunk's crc32c is checked (format 2), or the
whole shard file's sha256 against its completion marker (format 1: `digest`). Damage raises
`ChunkDamage`, which `SplitReader` turns into a `DamagedShard` naming split, shard and array.
"""
from __future__ import annotations

import hashlib
import warnings

import numpy as np

# zarr versions the fast path was measured and checked against (first, last-exclusive)
CHECKED_ZARR = ((3, 1, 0), (3, 2, 0))
EMPTY = 2 ** 64 - 1             # an index entry of an inner chunk that was never written

_warned: set = set()


class ChunkDamage(Exception):
    """Shard `shard` of the array is missing or does not match its checksum (`why`)."""

    def __init__(self, shard: int, why: str):
        super().__init__(f"shard {shard}: {why}")
        self.shard, self.why = shard, why


def _warn_once(reason: str) -> None:
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"odg: the fast shard reader is off ({reason}); reading through zarr's own "
                      "codec path, which is slower", RuntimeWarning, stacklevel=3)


def zarr_version_checked(version: str | None = None) -> bool:
    """Whether `version` (default: the installed zarr's) is in `CHECKED_ZARR`."""
    import re

    import zarr
    m = re.match(r"(\d+)\.(\d+)\.(\d+)", version or zarr.__version__)
    return bool(m) and CHECKED_ZARR[0] <= tuple(int(v) for v in m.groups()) < CHECKED_ZARR[1]


def chunk_key(array, shard: int) -> str:
    """Key (relative to the array) of the chunk, or shard file, holding samples of shard `shard`."""
    return array.metadata.chunk_key_encoding.encode_chunk_key((shard,) + (0,) * (array.ndim - 1))


def odg_sharding_layout(array):
    """`(samples per inner chunk, zstd level, crc32c)` when `array` is laid out as the odg writer
    creates `words` (one `sharding_indexed` codec whose inner chunks are whole samples, `bytes`
    (little endian) + `zstd` (+ `crc32c` in format 2) inside, a `bytes` + `crc32c` index at the end,
    fill value 0, zarr v3, on a little-endian machine), else None (`layout_problem` says why)."""
    return None if layout_problem(array) else _layout(array)


def _layout(array):
    sc = array.metadata.codecs[0]
    return sc.chunk_shape[0], sc.codecs[1].level, len(sc.codecs) == 3


def layout_problem(array) -> str:
    """'' when `odg_sharding_layout` handles `array`, else what it does not handle."""
    import sys

    from zarr.codecs import BytesCodec, Crc32cCodec, ShardingCodec, ZstdCodec
    md = array.metadata
    if sys.byteorder != "little":
        return "a big-endian machine"
    if getattr(md, "zarr_format", 3) != 3 or len(md.codecs) != 1 or not isinstance(md.codecs[0], ShardingCodec):
        return "not one zarr v3 sharding codec"
    sc = md.codecs[0]
    if sc.index_location.value != "end":
        return "shard index not at the end"
    inner = [type(c) for c in sc.codecs]
    if inner not in ([BytesCodec, ZstdCodec], [BytesCodec, ZstdCodec, Crc32cCodec]) or sc.codecs[1].checksum:
        return f"inner codecs {[c.__name__ for c in inner]}"
    if str(getattr(sc.codecs[0].endian, "value", "little")) != "little":
        return "big-endian inner chunks"
    if [type(c) for c in sc.index_codecs] != [BytesCodec, Crc32cCodec] or \
            str(getattr(sc.index_codecs[0].endian, "value", "little")) != "little":
        return "shard index codecs other than bytes + crc32c"
    if array.fill_value != 0:
        return "fill value other than 0"
    shard, inner_shape = tuple(md.chunk_grid.chunk_shape), tuple(sc.chunk_shape)
    if inner_shape[1:] != tuple(array.shape[1:]) or shard[1:] != inner_shape[1:] or shard[0] % inner_shape[0]:
        return "inner chunks that are not whole samples"
    return ""


class ShardWordsReader:
    """Whole shards (and single samples) of a split's `words` array, checked.

    zarr-python decodes the inner chunks of a sharded array one by one through its asyncio codec
    pipeline: with one sample per inner chunk, about 0.25-0.4 ms of overhead per sample beside the
    ~0.07 ms of zstd decoding. On the odg writer's layout (`odg_sharding_layout`) and a checked
    zarr, a shard is fetched with one request from the array's own zarr store, the index checked
    against its crc32c, and the inner chunks holding wanted samples checked (their crc32c, format 2)
    and zstd-decoded straight into the block. Anything else takes `array[a:b]` (zarr's own path,
    which checks crc32c codecs itself); both give identical arrays.

    `digest(shard) -> sha256 hex or None`: for arrays without per-chunk crc32c (format 1), the
    digest of the whole shard file recorded in its completion marker; every whole-shard read is
    checked against it, and a single-sample read checks its shard once (the first time the shard
    is touched: one whole-shard read) and remembers it.
    """

    def __init__(self, array, digest=None):
        self.array = array
        self.n = int(array.shape[0])
        self.fast = False
        self._digest = digest
        self._verified: set = set()          # format 1: shards whose file matched its sha256
        self._indexes = {}
        self._sync = None
        try:
            self._setup()
        except Exception as e:      # noqa: BLE001 - e.g. a zarr whose internals moved: zarr's own path
            self.fast = False
            _warn_once(f"{type(e).__name__}: {e}")

    def _setup(self):
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync
        self._proto = default_buffer_prototype()
        self._sync = sync
        import zarr
        if not zarr_version_checked():
            _warn_once(f"zarr {zarr.__version__} is outside the checked range "
                       f"{'.'.join(map(str, CHECKED_ZARR[0]))} to <{'.'.join(map(str, CHECKED_ZARR[1]))}")
            return
        problem = layout_problem(self.array)
        if problem:
            _warn_once(f"{self.array.store_path}: {problem}")
            return
        self._m, _, self._crc_inner = _layout(self.array)   # samples per inner chunk: 1 (early stores) to 8
        import google_crc32c
        from numcodecs.zstd import decompress
        self._K = int(self.array.metadata.chunk_grid.chunk_shape[0])
        self._decompress = decompress
        self._crc = google_crc32c.value
        from zarr.abc.store import SupportsGetSync
        self._get_sync = isinstance(self.array.store_path.store, SupportsGetSync) and \
            hasattr(self.array.store_path, "get_sync")
        self.fast = True

    def _path(self, s: int):
        return self.array.store_path / chunk_key(self.array, s)

    def _get(self, sp, byte_range=None):
        if self.fast and self._get_sync:    # local and memory stores: no round trip through zarr's event loop
            return sp.get_sync(prototype=self._proto, byte_range=byte_range)
        return self._sync(sp.get(prototype=self._proto, byte_range=byte_range))

    def _check_digest(self, s: int, raw) -> None:
        """Format 1: the whole shard file `raw` (bytes-like or None) against its marker's sha256."""
        want = self._digest(s) if self._digest else None
        if want is None:
            return
        if raw is None:
            raise ChunkDamage(s, "shard file missing")
        if hashlib.sha256(raw).hexdigest() != want:
            raise ChunkDamage(s, "checksum differs from its completion marker (sha256)")
        self._verified.add(s)

    def _zarr_read(self, s: int, sel):
        """zarr's own path, after the format 1 check; zarr's codec errors become ChunkDamage."""
        if self._digest is not None and s not in self._verified:
            buf = self._get(self._path(s))
            self._check_digest(s, None if buf is None else buf.to_bytes())
        elif not self._sync(self._path(s).exists()):
            raise ChunkDamage(s, "shard file missing")
        try:
            return np.ascontiguousarray(self.array[sel])
        except (ValueError, RuntimeError) as e:       # crc32c mismatch, corrupt zstd frame, bad index
            raise ChunkDamage(s, f"cannot be decoded ({e})") from None

    def _shard_index(self, s: int, sp):
        """The `[n_inner, 2]` (offset, nbytes) index of shard `s` (checked, cached)."""
        hit = self._indexes.get(s)
        if hit is not None:
            return hit
        from zarr.abc.store import SuffixByteRequest
        n_inner = self._K // self._m
        isz = 16 * n_inner + 4
        buf = self._get(sp, SuffixByteRequest(isz))
        if buf is None:
            raise ChunkDamage(s, "shard file missing")
        raw = buf.as_numpy_array().view(np.uint8)
        if raw.size < isz or self._crc(raw[:-4].tobytes()) != int(raw[-4:].view("<u4")[0]):
            raise ChunkDamage(s, "shard index crc32c mismatch")
        index = raw[:-4].view("<u8").reshape(n_inner, 2).copy()
        if len(self._indexes) >= 64:
            self._indexes.pop(next(iter(self._indexes)))
        self._indexes[s] = index
        return index

    def _inner(self, s: int, j: int, data: np.ndarray, out: np.ndarray) -> None:
        """Decode inner chunk `j` of shard `s` (its stored bytes `data`) into `out` (uint8 view)."""
        if self._crc_inner:
            if data.size < 4 or self._crc(data[:-4]) != int(data[-4:].view("<u4")[0]):
                raise ChunkDamage(s, f"inner chunk {j} crc32c mismatch")
            data = data[:-4]
        try:
            self._decompress(data, out)
        except Exception as e:          # noqa: BLE001 - numcodecs raises RuntimeError/ValueError
            raise ChunkDamage(s, f"inner chunk {j} cannot be decoded ({e})") from None

    def _needed(self, s: int, j: int) -> bool:
        """Whether inner chunk `j` of shard `s` holds samples of the array (else it may be empty)."""
        return s * self._K + j * self._m < self.n

    def read_one(self, i: int) -> np.ndarray:
        """Sample `i`'s words: the shard index (cached) and one inner chunk, read as byte ranges
        (format 1: the sample's shard is checked whole the first time it is touched)."""
        if not self.fast:
            return self._zarr_read(self._shard_of(i), i)
        from zarr.abc.store import RangeByteRequest
        K, m = self._K, self._m
        s, j = divmod(i, K)
        sp = self._path(s)
        if self._digest is not None and s not in self._verified:
            self.read(s, K)                 # checks the whole shard file once
        index = self._shard_index(s, sp)
        trail = tuple(self.array.shape[1:])
        if int(index[j // m, 0]) == EMPTY:      # not written by zarr (all fill value); the index crc vouches
            return np.zeros(trail, self.array.dtype)
        off, nb_ = (int(v) for v in index[j // m])
        buf = self._get(sp, RangeByteRequest(off, off + nb_))
        data = buf.as_numpy_array().view(np.uint8) if buf is not None else np.zeros(0, np.uint8)
        if data.size != nb_:
            raise ChunkDamage(s, f"inner chunk {j // m} is truncated")
        chunk = np.empty((m,) + trail, self.array.dtype)
        self._inner(s, j // m, data, chunk.reshape(-1).view(np.uint8))
        return chunk[j % m].copy()

    def _shard_of(self, i: int) -> int:
        return i // int(self.array.metadata.chunk_grid.chunk_shape[0])

    def read(self, s: int, K: int, rows=None) -> np.ndarray:
        """Samples `[s K, min((s + 1) K, n))` (K: the split's shard size). With `rows` (indices into
        the shard), only the inner chunks holding them are decoded; other rows are left undefined."""
        a, b = s * K, min((s + 1) * K, self.n)
        if not self.fast or K != self._K:
            return self._zarr_read(s, slice(a, b))
        buf = self._get(self._path(s))
        if buf is None:
            raise ChunkDamage(s, "shard file missing")
        raw = buf.as_numpy_array().view(np.uint8)
        if self._digest is not None:
            self._check_digest(s, raw)
        m = self._m
        n_inner = K // m
        out = np.empty((K,) + tuple(self.array.shape[1:]), self.array.dtype)   # whole inner chunks
        isz = 16 * n_inner + 4
        if raw.size < isz:
            raise ChunkDamage(s, "shard file truncated")
        end = raw.size - isz
        index = raw[end:raw.size - 4]
        if self._crc(index.tobytes()) != int(raw[raw.size - 4:].view("<u4")[0]):
            raise ChunkDamage(s, "shard index crc32c mismatch")
        oa = index.view("<u8").reshape(n_inner, 2)
        flat = out.reshape(n_inner, -1).view(np.uint8)
        last = -(-(b - a) // m)     # inner chunks holding samples of the array
        chunks = range(last) if rows is None else np.unique(np.asarray(rows) // m)
        for j in chunks:
            off, nb_ = int(oa[j, 0]), int(oa[j, 1])
            if off == EMPTY:        # zarr skips an inner chunk of fill values; the index crc vouches for it
                flat[j] = 0
                continue
            if off + nb_ > end:
                raise ChunkDamage(s, f"inner chunk {j} lies outside the shard file")
            self._inner(s, j, raw[off:off + nb_], flat[j])
        return out[:b - a]


def encode_words_shard(block: np.ndarray, shard_samples: int, inner: int, level: int, crc: bool = False) -> bytes:
    """The bytes of one shard file holding `block` (`[k <= shard_samples, ...]`), as zarr writes them:
    the zstd-compressed inner chunks of `inner` samples (the last one zero-padded; chunks wholly past
    the block marked empty), each followed by its crc32c with `crc` (format 2), then the index of
    `(offset, nbytes)` uint64 pairs and its crc32c."""
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
            index[j] = (EMPTY, EMPTY)
            continue
        chunk = block[a:a + inner]
        if len(chunk) < inner:
            chunk = np.concatenate([chunk, np.zeros((inner - len(chunk),) + block.shape[1:], block.dtype)])
        data = bytes(codec.encode(chunk))
        if crc:
            data += struct.pack("<I", google_crc32c.value(data))
        parts.append(data)
        index[j] = (off, len(data))
        off += len(data)
    ib = index.tobytes()
    return b"".join(parts) + ib + struct.pack("<I", google_crc32c.value(ib))
