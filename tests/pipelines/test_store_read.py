"""The reader's fast whole-shard path gives exactly zarr's own arrays."""
import numpy as np
import pytest

from pipelines.cli import main
from pipelines.store import open_store
from pipelines.store.shard_read import ShardWordsReader

from .trees import bad_tree


@pytest.fixture(scope="module", params=[3, 8, 5])
def split(request, tmp_path_factory):
    base = tmp_path_factory.mktemp(f"k{request.param}")
    root = bad_tree(str(base / "in"))
    url = str(base / "s.zarr")
    assert main(["build", "imagenet", root, url, "--split", "train", "--workers", "1", "--quiet",
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
