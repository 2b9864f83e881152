"""The reader's fast whole-shard path gives exactly zarr's own arrays."""
import numpy as np
import pytest

from odg.pipelines.cli import main
from odg.pipelines.store import open_store
from odg.pipelines.store.shard_read import ShardWordsReader

from .trees import bad_tree


@pytest.fixture(scope="module", params=[3, 8, 5])
def split(request, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"k{request.param}")
    root = bad_tree(str(base / "in"))
    url = str(base / "s.zarr")
    assert main(["build", "imagenet", root, url, "--split", "train", "--dask-workers", "1", "--quiet",
                 "--shard-size", str(request.param)]) == 0
    return open_store(url)["train"]


def test_words_block_equals_zarr(split):
    fast = ShardWordsReader(split.array("words"))
    slow = ShardWordsReader(split.array("words"))
    slow.fast = False
    assert fast.fast
    K = split.shard_size
    for s in range(split.n_shards):
        want = split.array("words")[s * K:(s + 1) * K]
        a, b = fast.read(s, K), slow.read(s, K)
        assert a.dtype == b.dtype and np.array_equal(a, want) and np.array_equal(b, want)
        np.testing.assert_array_equal(split.words_block(s), want)
        rows = np.array([len(a) - 1])                                 # only the rows asked for
        np.testing.assert_array_equal(split.words_block(s, rows)[rows], want[rows])
    with pytest.raises(IndexError):
        split.words_block(split.n_shards)


def test_iter_shards_uses_the_same_words(split):
    for shard in split.iter_shards():
        np.testing.assert_array_equal(shard.words, split.array("words")[shard.start:shard.stop])


@pytest.mark.parametrize("crc", [False, True])
@pytest.mark.parametrize("n, shard, inner", [(16, 8, 4), (13, 8, 4), (9, 8, 4), (5, 8, 8), (7, 3, 3)])
def test_direct_shard_bytes_equal_zarrs_own(tmp_path, n, shard, inner, crc):
    """The writer's direct shard encoding is byte for byte what zarr writes (full, partial and
    past-the-end inner chunks, all-zero chunks; format 1 zstd only, format 2 zstd + crc32c), so
    zarr reads it unchanged, and the fast reader reads what zarr wrote."""
    import zarr
    from zarr.codecs import Crc32cCodec, ZstdCodec

    from odg.pipelines.store.shard_read import encode_words_shard, odg_sharding_layout
    rng = np.random.default_rng(n)
    data = rng.integers(0, 4, (n, 5, 7)).astype(np.uint16)
    data[:inner] = 0
    g = zarr.open_group(str(tmp_path / "z.zarr"), mode="w")
    codecs = [ZstdCodec(level=1)] + ([Crc32cCodec()] if crc else [])
    a = g.create_array("w", shape=data.shape, dtype="uint16", shards=(shard, 5, 7), chunks=(inner, 5, 7),
                       compressors=codecs, fill_value=0, config={"write_empty_chunks": True})
    assert odg_sharding_layout(a) == (inner, 1, crc)
    a[:] = data
    fast = ShardWordsReader(a)
    assert fast.fast
    for s in range(-(-n // shard)):
        with open(tmp_path / "z.zarr" / "w" / "c" / str(s) / "0" / "0", "rb") as f:
            assert encode_words_shard(data[s * shard:(s + 1) * shard], shard, inner, 1, crc) == f.read()
        np.testing.assert_array_equal(fast.read(s, shard), data[s * shard:(s + 1) * shard])
    for i in range(n):
        np.testing.assert_array_equal(fast.read_one(i), data[i])


def test_single_sample_reads_equal_zarr(split):
    words = split.array("words")
    for i in list(range(len(split))) + [-1]:
        np.testing.assert_array_equal(split.words(i), words[i % len(split)])
    slow = ShardWordsReader(words)
    slow.fast = False
    np.testing.assert_array_equal(slow.read_one(0), words[0])
