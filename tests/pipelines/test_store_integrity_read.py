"""Readers serve only what was built and checked: unbuilt shards, deleted chunks and flipped bytes
are errors naming split, shard and array (in ESDataset, export, stats, info, train, verify), never data.

Real stores on disk (built by `odg build`), damaged with real file operations; the commands run
through `odg.pipelines.cli.main`, stats on a real Dask scheduler, ESDataset through a DataLoader
with a worker process.
"""
import hashlib
import json
import os
import shutil

import numpy as np
import pytest
import zarr

from odg.pipelines.cli import main
from odg.pipelines.store import DamagedShard, IncompleteSplit, NotBuilt, open_store
from odg.pipelines.store.schema import NOT_BUILT, marker_key, per_sample_arrays

from .trees import WNID0, WNID1, bad_tree, real_jpeg

ARRAYS = list(per_sample_arrays((), np.uint8))
COLUMNS = {"label": lambda sr: sr.labels, "number": lambda sr: sr.numbers, "name": lambda sr: sr.names(),
           "status": lambda sr: sr.statuses, "reason": lambda sr: sr.reasons(), "shape": lambda sr: sr.shapes,
           "count": lambda sr: sr.counts}
K = 4


def odg(*args) -> int:
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A complete format 2 store: 12 inputs (5 kept, 1 discarded, 6 rejected) in 3 shards of 4."""
    base = tmp_path_factory.mktemp("integrity")
    root = bad_tree(str(base / "in"))
    url = str(base / "s.zarr")
    assert odg("build", "imagenet", root, url, "--split", "train", "--dask-workers", 1, "--quiet",
               "--shard-size", K) == 0
    return url


@pytest.fixture
def store(built, tmp_path):
    """A private copy of the built store."""
    url = str(tmp_path / "s.zarr")
    shutil.copytree(built, url)
    return url


def marker(url, s):
    with open(os.path.join(url, "train", marker_key(s))) as f:
        return json.load(f)


def chunk_path(url, array, s):
    a = zarr.open_array(os.path.join(url, "train", array), mode="r")
    return os.path.join(url, "train", array, a.metadata.chunk_key_encoding.encode_chunk_key((s,) + (0,) * (a.ndim - 1)))


def written_shard(url, array):
    """A shard whose chunk of `array` was written (zarr skips chunks equal to the fill value)."""
    return next(s for s in range(3) if marker(url, s)["sha256"][array] != "absent")


def flip(path, pos, mask=0x5A):
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(1)[0]
        f.seek(pos)
        f.write(bytes([b ^ mask]))


def damage_named(e, s, array):
    msg = str(e)
    return (f"split 'train' shard {s} array '{array}'" in msg and "odg verify" in msg
            and isinstance(e, DamagedShard) and (e.shard, e.array) == (s, array))


def positions(size, n=96):
    """Byte offsets to flip: spread over the file, plus every byte of its last 40 (index and crc32c)."""
    return sorted(set(np.linspace(0, size - 1, n).astype(int).tolist()) | set(range(max(0, size - 40), size)))


def to_format1(src, dst):
    """The store as odg wrote it before per-chunk crc32c (format 1): zstd only, fill value 0, the
    same data written by zarr itself, markers recording the sha256 of the files."""
    a, b = zarr.open_group(src, mode="r"), zarr.open_group(dst, mode="w")
    meta = dict(a.attrs["odg"], format_version=1)
    b.attrs["odg"] = meta
    g, h = a["train"], b.create_group("train")
    h.attrs.update(dict(g.attrs))
    for name in ARRAYS:
        x = g[name]
        kw = {"shards": x.shards, "chunks": x.chunks} if name == "words" else {"chunks": x.chunks}
        y = h.create_array(name, shape=x.shape, dtype=x.dtype, compressors=zarr.codecs.ZstdCodec(level=1),
                           config={"write_empty_chunks": True},
                           **kw, **({} if x.dtype.kind in "OTU" else {"fill_value": 0}))
        y[:] = x[:]
    shutil.copytree(os.path.join(src, "train", "_odg"), os.path.join(dst, "train", "_odg"), dirs_exist_ok=True)
    for s in range(-(-g.attrs["n"] // g.attrs["shard_size"])):
        m = marker(dst, s)
        for name in ARRAYS:
            p = chunk_path(dst, name, s)
            m["sha256"][name] = hashlib.sha256(open(p, "rb").read()).hexdigest() if os.path.exists(p) else "absent"
        with open(os.path.join(dst, "train", marker_key(s)), "w") as f:
            json.dump(m, f)
    return dst


@pytest.fixture
def store1(built, tmp_path):
    return to_format1(built, str(tmp_path / "f1.zarr"))


# -- flipped bytes --------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", [2, 1])
def test_no_flipped_byte_of_a_words_shard_comes_back_as_data(fmt, store, store1):
    """Every flip is caught by a whole-shard read (format 2: the inner chunks' and the index's
    crc32c cover every byte of the file; format 1: the marker's sha256). A single-sample read
    either names the shard or returns exactly the original words (the flip lies in another inner
    chunk, which that read does not use)."""
    url = store if fmt == 2 else store1
    s = 0
    want = open_store(url)["train"].words_block(s).copy()
    path = chunk_path(url, "words", s)
    caught_one = 0
    for pos in positions(os.path.getsize(path)):
        flip(path, pos)
        sr = open_store(url)["train"]
        with pytest.raises(DamagedShard) as e:
            sr.words_block(s)
        assert damage_named(e.value, s, "words"), (pos, str(e.value))
        for i in range(K):
            try:
                got = open_store(url)["train"].words(i)
            except DamagedShard as e1:
                assert damage_named(e1, s, "words")
                caught_one += 1
            else:
                assert fmt == 2 and np.array_equal(got, want[i]), pos
        flip(path, pos)
    np.testing.assert_array_equal(open_store(url)["train"].words_block(s), want)
    assert caught_one


@pytest.mark.parametrize("fmt", [2, 1])
def test_no_flipped_byte_of_a_column_chunk_comes_back_as_data(fmt, store, store1):
    url = store if fmt == 2 else store1
    for name, read in COLUMNS.items():
        s = written_shard(url, name)
        path = chunk_path(url, name, s)
        want = read(open_store(url)["train"])
        for pos in range(os.path.getsize(path)):
            flip(path, pos)
            with pytest.raises(DamagedShard) as e:
                read(open_store(url)["train"])
            assert damage_named(e.value, s, name), (name, pos, str(e.value))
            flip(path, pos)
        np.testing.assert_array_equal(read(open_store(url)["train"]), want)


def test_format1_store_reads_the_same_data(built, store1):
    a, b = open_store(built)["train"], open_store(store1)["train"]
    assert a.array("status").fill_value == NOT_BUILT and b.array("status").fill_value == 0
    for name, read in COLUMNS.items():
        np.testing.assert_array_equal(read(a), read(b))
    for s in range(3):
        np.testing.assert_array_equal(a.words_block(s), b.words_block(s))
    for i in range(12):
        np.testing.assert_array_equal(a.words(i), b.words(i))


def test_damage_found_in_a_dataloader_worker_names_the_shard(store):
    from odg.models.data import ESDataset
    ds = ESDataset(store, "train", packed=True)
    s = int(ds.shard_ids[0])
    flip(chunk_path(store, "words", s), 30)
    with pytest.raises(DamagedShard) as e:
        for _ in ds.loader(batch_size=2, shuffle=False, num_workers=1):
            pass
    assert damage_named(e.value, s, "words") and "\n" not in str(e.value)


# -- deleted chunks -------------------------------------------------------------------------

@pytest.mark.parametrize("array", ARRAYS)
def test_a_deleted_chunk_is_named_by_every_reader(array, store, client, tmp_path, capsys):
    from odg.models.data import ESDataset
    s = written_shard(store, array)
    os.remove(chunk_path(store, array, s))
    with pytest.raises(DamagedShard) as e:
        open_store(store)["train"]
    assert damage_named(e.value, s, array)
    with pytest.raises(DamagedShard) as e:
        ESDataset(store, "train")
    assert damage_named(e.value, s, array)
    out = tmp_path / "out"
    for args in (["info", store], ["export", "es-imagenet", store, out, "-q"],
                 ["stats", store, "--out", tmp_path / "st", "-q", "--scheduler", client.scheduler.address]):
        capsys.readouterr()
        assert odg(*args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"split 'train' shard {s} array '{array}' is damaged (chunk missing)" in err[0], err
    assert not out.exists() or not os.listdir(out)
    assert odg("verify", store) == 1
    text = capsys.readouterr().out
    assert f"damaged: shard {s}, array {array}" in text and "missing" in text
    if array in ("label", "words"):
        assert odg("train", store, "--model", "lif_tiny", "--epochs", 1, "--out", tmp_path / "run", "--quiet",
                   "--device", "cpu") == 2
        assert f"shard {s} array '{array}'" in capsys.readouterr().err


# -- a build killed part-way ----------------------------------------------------------------

def killed(url):
    """What a build killed after shard 0 leaves: no markers for shards 1 and 2, the split not marked
    complete, shard 2's chunks partly absent, shard 1's words file half-written (garbage)."""
    g = zarr.open_group(url, mode="r+")["train"]
    g.attrs["complete"] = False
    for s in (1, 2):
        os.remove(os.path.join(url, "train", marker_key(s)))
    for name in ("label", "count", "words"):
        p = chunk_path(url, name, 2)
        if os.path.exists(p):
            os.remove(p)
    p = chunk_path(url, "words", 1)
    with open(p, "r+b") as f:
        f.truncate(os.path.getsize(p) // 2)
    with open(os.path.join(url, "train", marker_key(1)), "w") as f:
        f.write('{"shard": 1, "start"')           # a marker cut short by the kill: not built
    return url


def test_a_killed_build_is_refused_unless_allowed_then_served_partially(store, client, tmp_path, capsys):
    from odg.models.data import ESDataset
    full = open_store(store)["train"]
    kept0 = [int(i) for i in full.kept_indices() if i < K]
    killed(store)
    for make in (lambda: open_store(store)["train"], lambda: ESDataset(store, "train")):
        with pytest.raises(IncompleteSplit, match=r"1 of 3 shards are built.*--allow-incomplete"):
            make()
    sr = open_store(store).split("train", allow_incomplete=True)
    assert sr.built_shards == [0] and sr.n_built == K and not sr.complete
    assert sr.kept_indices().tolist() == kept0 and sr.indices().tolist() == list(range(K))
    assert (sr.statuses[K:] == NOT_BUILT).all() and (sr.labels[K:] == -1).all()
    with pytest.raises(NotBuilt, match="shard 1 is not built"):
        sr.words_block(1)
    with pytest.raises(NotBuilt):
        sr.words(K + 1)
    assert [sh.index for sh in sr.iter_shards()] == [0]
    ds = ESDataset(store, "train", allow_incomplete=True, packed=True)
    assert ds.indices.tolist() == kept0 and (ds.labels >= 0).all()
    assert sum(len(b[1]) for b in ds.loader(batch_size=2, shuffle=False)) == len(kept0)
    ds_all = ESDataset(store, "train", allow_incomplete=True, kept_only=False, packed=True)
    assert ds_all.indices.tolist() == list(range(K))

    capsys.readouterr()
    out = tmp_path / "out"
    st = ["--out", tmp_path / "st", "-q", "--scheduler", client.scheduler.address]
    for args in (["export", "es-imagenet", store, out, "-q"], ["stats", store, *st],
                 ["train", store, "--model", "lif_tiny", "--epochs", 1, "--out", tmp_path / "run", "--quiet",
                  "--device", "cpu"]):
        assert odg(*args) == 2, args
        err = capsys.readouterr().err
        assert "1 of 3 shards are built" in err and "--allow-incomplete" in err, (args, err)
    assert odg("export", "es-imagenet", store, out, "-q", "--allow-incomplete") == 0
    lines = (out / "trainlabel.txt").read_text().splitlines()
    assert len(lines) == len(kept0) and len(os.listdir(out / "train" / "class0")) == len(kept0)
    assert odg("stats", store, *st, "--allow-incomplete") == 0
    stats = json.loads((tmp_path / "st" / "stats.json").read_text())["splits"]["train"]
    assert stats["samples"]["kept"] == len(kept0)
    capsys.readouterr()
    assert odg("info", store, "--json") == 0
    info = json.loads(capsys.readouterr().out)["splits"]["train"]
    assert (info["kept"], info["built_shards"], info["unbuilt_shards"], info["built_samples"]) == (len(kept0), 1, [1, 2], K)
    assert info["kept"] + info["discarded"] + info["rejected"] == K
    assert odg("info", store) == 0
    assert "INCOMPLETE: 1 of 3 shards built, 8 samples not built" in capsys.readouterr().out
    assert odg("verify", store) == 1
    text = capsys.readouterr().out
    assert "missing (never completed): shards 2" in text and "unreadable marker: shard 1" in text


# -- export ---------------------------------------------------------------------------------

def test_val_export_makes_colliding_stems_unique(tmp_path, capsys):
    """`img.JPEG` in two class folders and `x.JPEG` beside `x.png`: four files, four names."""
    val = tmp_path / "in" / "val"
    for wnid, names in ((WNID0, ["img.JPEG", "x.JPEG", "x.png", "solo.JPEG"]), (WNID1, ["img.JPEG"])):
        (val / wnid).mkdir(parents=True)
        for n in names:
            (val / wnid / n).write_bytes(real_jpeg("astronaut" if wnid == WNID0 else "coffee"))
    url = str(tmp_path / "v.zarr")
    assert odg("build", "imagenet", tmp_path / "in", url, "--split", "val", "--dask-workers", 1, "-q") == 0
    out = tmp_path / "out"
    assert odg("export", "es-imagenet", url, out, "-q") == 0
    assert "val: 5 files" in capsys.readouterr().out
    lines = (out / "vallabel.txt").read_text().splitlines()
    names = [ln.split()[0] for ln in lines]
    assert len(set(names)) == 5 and sorted(os.listdir(out / "val")) == sorted(names)
    assert "solo.npz" in names and f"{WNID0}__img.JPEG.npz" in names and f"{WNID1}__img.JPEG.npz" in names
    assert {f"{WNID0}__x.JPEG.npz", f"{WNID0}__x.png.npz"} <= set(names)
    labels = {ln.split()[0]: int(ln.split()[1]) for ln in lines}
    assert labels[f"{WNID1}__img.JPEG.npz"] == 1 and labels[f"{WNID0}__img.JPEG.npz"] == 0


def test_unique_relpaths_refuses_what_still_collides():
    from odg.pipelines.export import unique_relpaths
    # a/b.JPEG and c/b.JPEG collide, and a/b.JPEG's unique name is the stem of a__b.JPEG.png
    with pytest.raises(ValueError, match=r"1 output names .* a__b\.JPEG\.npz by a/b\.JPEG, a__b\.JPEG\.png.*nothing"):
        unique_relpaths("val", [(0, 1, "a/b.JPEG"), (0, 2, "a__b.JPEG.png"), (0, 3, "c/b.JPEG")])
    with pytest.raises(ValueError, match="class0/class0_1.npz"):
        unique_relpaths("train", [(0, 1, "x/a.JPEG"), (0, 1, "x/b.JPEG")])


def test_a_failed_export_leaves_no_finished_looking_folder(store, tmp_path, capsys):
    """The label file goes first and is written last; what the failed run wrote is removed again."""
    old, new = tmp_path / "old", tmp_path / "new"
    assert odg("export", "es-imagenet", store, old, "-q") == 0
    assert (old / "trainlabel.txt").exists()
    s = max(int(i) // K for i in open_store(store)["train"].kept_indices())   # the last shard with kept samples
    assert s > 0
    flip(chunk_path(store, "words", s), 10)
    for out in (old, new):
        capsys.readouterr()
        assert odg("export", "es-imagenet", store, out, "-q") == 2
        assert f"shard {s} array 'words' is damaged" in capsys.readouterr().err
        assert not (out / "trainlabel.txt").exists()
    left = [os.path.join(d, f) for d, _, fs in os.walk(new) for f in fs]
    assert left == [], left


# -- the fast path's own checks -------------------------------------------------------------

def test_fast_path_falls_back_loudly(tmp_path):
    from zarr.codecs import ZstdCodec

    from odg.pipelines.store.shard_read import ShardWordsReader, zarr_version_checked
    assert zarr_version_checked() and zarr_version_checked("3.1.0")
    assert not zarr_version_checked("3.2.0") and not zarr_version_checked("3.0.10")
    g = zarr.open_group(str(tmp_path / "z.zarr"), mode="w")
    a = g.create_array("w", shape=(8, 3, 3), dtype="uint16", shards=(4, 3, 3), chunks=(2, 3, 3),
                       compressors=ZstdCodec(level=1, checksum=True), fill_value=0)
    a[:] = np.arange(72, dtype=np.uint16).reshape(8, 3, 3)
    with pytest.warns(RuntimeWarning, match="fast shard reader is off .*inner codecs"):
        r = ShardWordsReader(a)
    assert not r.fast
    np.testing.assert_array_equal(r.read(1, 4), a[4:8])
    np.testing.assert_array_equal(r.read_one(5), a[5])


@pytest.mark.parametrize("crc", [False, True])
def test_inner_chunks_zarr_skipped_read_as_fill(tmp_path, crc):
    """zarr does not write an inner chunk of fill values (write_empty_chunks off, as when an array
    is reopened): its index entry is 'empty', vouched for by the index crc32c, and reads as zeros."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    from odg.pipelines.store.shard_read import ShardWordsReader
    g = zarr.open_group(str(tmp_path / "z.zarr"), mode="w")
    a = g.create_array("w", shape=(8, 3, 3), dtype="uint16", shards=(8, 3, 3), chunks=(2, 3, 3), fill_value=0,
                       compressors=[ZstdCodec(level=1)] + ([Crc32cCodec()] if crc else []))
    data = np.arange(72, dtype=np.uint16).reshape(8, 3, 3)
    data[2:4] = 0
    a[:] = data
    r = ShardWordsReader(a)
    assert r.fast and int(r._shard_index(0, r._path(0))[1, 0]) == 2 ** 64 - 1
    np.testing.assert_array_equal(r.read(0, 8), data)
    for i in range(8):
        np.testing.assert_array_equal(r.read_one(i), data[i])


def test_a_store_of_a_newer_format_is_refused(store):
    from odg.pipelines.store import StoreError
    root = zarr.open_group(store, mode="r+")
    root.attrs["odg"] = dict(root.attrs["odg"], format_version=3)
    with pytest.raises(StoreError, match="format 3, which this odg cannot read .*upgrade odg"):
        open_store(store)


def test_a_real_odg_process_names_the_damage_in_one_line(store, tmp_path):
    import subprocess
    import sys
    s = written_shard(store, "words")
    flip(chunk_path(store, "words", s), 25)
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    p = subprocess.run([sys.executable, "-m", "odg", "export", "es-imagenet", store, str(tmp_path / "out"), "-q"],
                       capture_output=True, text=True, timeout=120, env=env)
    err = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(err) == 1, p.stderr
    assert err[0].startswith("odg: error: ") and f"split 'train' shard {s} array 'words' is damaged" in err[0]
    assert not (tmp_path / "out" / "trainlabel.txt").exists()
