"""Dask builds into a real Zarr store on disk, with real clusters, real files and real failures."""
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from odg.pipelines.cli import main as odg_main
from odg.pipelines.imagenet import imagenet_items, load_classes
from odg.pipelines.store import REJECTED, open_store

from .cluster import dask_processes, wait_for
from .trees import (
    BAD_FILES,
    VEC,
    VECTOR_LAYOUT,
    WNID0,
    WNID1,
    WNID2,
    bad_tree,
    slow_jpeg_tree,
    store_bytes,
    tar_from_tree,
    vector_tree,
)

ODG = [sys.executable, "-m", "odg"]


def odg(*args):
    return odg_main([str(a) for a in args])


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("trees")
    bad = bad_tree(str(base / "bad"))
    return {"bad": bad, "base": base}


@pytest.fixture(scope="module")
def clean_store(trees):
    """The reference build: one worker."""
    url = str(trees["base"] / "one.zarr")
    assert odg("build", "imagenet", trees["bad"], url, "--split", "train", "--dask-workers", 1, "--shard-size", 3,
               "--quiet") == 0
    return url


def test_outcomes_of_every_input(clean_store):
    sr = open_store(clean_store)["train"]
    names = list(sr.names())
    by = {n.split("/")[-1]: i for i, n in enumerate(names)}
    # order: (class, file name); numbers: rank within class
    assert names == sorted(names, key=lambda n: (n.split("/")[0], n.split("/")[1]))
    assert [sr.numbers[by[f]] for f in ("astronaut.JPEG", "cell.JPEG", "clock_motion.JPEG", "page.JPEG")] == [1, 2, 3, 4]
    for stem in VECTOR_LAYOUT[WNID0] + VECTOR_LAYOUT[WNID1]:
        i = by[stem + ".JPEG"]
        s = sr.sample(i)
        if stem == "clock_motion":
            assert s.status == "discarded" and sum(s.count) == 710 and "1000" in s.reason
            continue
        assert s.status == "kept"
        z = np.load(os.path.join(VEC, "expected", stem + ".npz"))
        pos, neg = sr.published(i)
        np.testing.assert_array_equal(pos, z["pos"])
        np.testing.assert_array_equal(neg, z["neg"])
        assert s.count == (len(pos), len(neg))
    reasons = {names[i].split("/")[-1]: str(r) for i, r in enumerate(sr.reasons()) if sr.statuses[i] == REJECTED}
    for name, (_, why) in BAD_FILES.items():
        assert why in reasons[name], (name, reasons.get(name))
    assert "truncated" in reasons["truncated.JPEG"]
    assert "resizes to" in reasons["tiny.JPEG"]
    assert sr.sample(by["cmyk.JPEG"]).status == "kept"            # CMYK JPEGs are converted, not rejected
    assert set(reasons) == set(BAD_FILES) | {"truncated.JPEG", "tiny.JPEG"}
    assert sr.complete and (sr.labels[[by["coffee.JPEG"], by["cmyk.JPEG"]]] == 1).all()


def test_frames_and_random_access(clean_store):
    sr = open_store(clean_store)["train"]
    i = int(sr.kept_indices()[0])
    f = sr.frames(i)
    assert f.shape == (8, 2, 224, 224) and f.dtype == np.uint8
    from odg import events_to_frames
    np.testing.assert_array_equal(f, events_to_frames(sr.events(i), tuple(sr.shapes[i])))
    assert sr.label(-1) == sr.labels[-1]
    with pytest.raises(IndexError):
        sr.sample(len(sr))
    shards = list(sr.iter_shards())
    assert len(shards) == sr.n_shards and sum(s.stop - s.start for s in shards) == len(sr)
    np.testing.assert_array_equal(shards[0].words[0], sr.words(0))


def test_two_workers_build_the_same_store(trees, clean_store):
    url = str(trees["base"] / "two.zarr")
    assert odg("build", "imagenet", trees["bad"], url, "--split", "train", "--dask-workers", 2, "--shard-size", 3,
               "--quiet") == 0
    assert store_bytes(url) == store_bytes(clean_store)


def test_export_equals_published_vectors(trees, clean_store, tmp_path):
    out = tmp_path / "exp"
    assert odg("export", "es-imagenet", clean_store, out, "--quiet") == 0
    lines = (out / "trainlabel.txt").read_text().splitlines()
    assert "class0/class0_1.npz 0 254 254" in lines and "class0/class0_4.npz 0 126 254" in lines
    assert not (out / "train" / "class0" / "class0_3.npz").exists()        # clock_motion: discarded
    for stem, n in (("astronaut", 1), ("cell", 2), ("page", 4)):
        z, got = np.load(os.path.join(VEC, "expected", stem + ".npz")), np.load(out / "train" / "class0" / f"class0_{n}.npz")
        assert set(got.files) == {"pos", "neg"}
        np.testing.assert_array_equal(got["pos"], z["pos"])
        np.testing.assert_array_equal(got["neg"], z["neg"])
    # import back: the round trip gives the same files and label lines
    assert odg("import", "es-imagenet", out, tmp_path / "r.zarr", "--dask-workers", 1, "--quiet") == 0
    assert odg("export", "es-imagenet", tmp_path / "r.zarr", tmp_path / "exp2", "--quiet") == 0
    assert sorted(lines) == sorted((tmp_path / "exp2" / "trainlabel.txt").read_text().splitlines())
    for rel in lines:
        f = rel.split()[0]
        a, b = np.load(out / "train" / f), np.load(tmp_path / "exp2" / "train" / f)
        np.testing.assert_array_equal(a["pos"], b["pos"]) and np.testing.assert_array_equal(a["neg"], b["neg"])


def test_info_json_and_verify(trees, clean_store, tmp_path, capsys):
    assert odg("info", clean_store, "--json") == 0
    info = json.loads(capsys.readouterr().out)
    t = info["splits"]["train"]
    assert (t["kept"], t["discarded"], t["rejected"]) == (5, 1, 6) and t["complete"]
    assert {r["name"].split("/")[-1] for r in t["rejects"]} >= set(BAD_FILES)
    assert info["params"]["threshold"] == 0.18
    assert odg("verify", clean_store) == 0
    # damage a copy: change one chunk's bytes, delete another chunk and one completion marker
    url = str(tmp_path / "damaged.zarr")
    shutil.copytree(clean_store, url)
    with open(os.path.join(url, "train", "words", "c", "1", "0", "0"), "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02\x03")
    os.remove(os.path.join(url, "train", "label", "c", "2"))
    os.remove(os.path.join(url, "train", "_odg", "shards", "000000.json"))
    capsys.readouterr()
    assert odg("verify", url) == 1
    out = capsys.readouterr().out
    assert "shard 1, array words" in out and "checksum differs" in out
    assert "shard 2, array label" in out and "missing" in out
    assert "missing (never completed): shards 0" in out


def test_refusals(trees, clean_store, tmp_path, capsys):
    # an existing split without --resume
    assert odg("build", "imagenet", trees["bad"], clean_store, "--split", "train", "--dask-workers", 1, "--quiet") == 2
    assert "already exists" in capsys.readouterr().err
    # --resume with other inputs
    assert odg("build", "imagenet", trees["bad"], clean_store, "--split", "train", "--dask-workers", 1, "--quiet",
               "--resume", "--limit", "1") == 2
    assert "differ" in capsys.readouterr().err
    # an unknown class folder
    root = tmp_path / "unknown"
    vector_tree(str(root))
    os.makedirs(root / "train" / "n99999999")
    assert odg("build", "imagenet", root, tmp_path / "u.zarr", "--split", "train", "--quiet") == 2
    assert "n99999999" in capsys.readouterr().err
    # a source that is not there
    assert odg("build", "imagenet", tmp_path / "nothing", tmp_path / "n.zarr", "--split", "val", "--quiet") == 2
    assert "holds neither" in capsys.readouterr().err


def test_val_split_added_to_store_flat_and_archive(trees, tmp_path):
    """A flat val/ is labelled from the shipped ground truth; the val archive gives the same split."""
    root = tmp_path / "ilsvrc"
    vector_tree(str(root))
    (root / "val").mkdir()
    names = ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG", "ILSVRC2012_val_00000003.JPEG",
             "stray_file.JPEG"]
    for n, src in zip(names, ("astronaut", "page", "coffee", "cell")):
        shutil.copy(os.path.join(VEC, "images", src + ".png"), root / "val" / n)
    url = str(tmp_path / "s.zarr")
    assert odg("build", "imagenet", root, url, "--split", "train", "--dask-workers", 1, "--quiet") == 0
    assert odg("build", "imagenet", root, url, "--split", "val", "--dask-workers", 1, "--quiet") == 0
    st = open_store(url)
    assert st.splits == ["train", "val"]
    val = st["val"]
    got = dict(zip(val.names(), val.labels))
    assert got["ILSVRC2012_val_00000001.JPEG"] == 65 and got["ILSVRC2012_val_00000002.JPEG"] == 970
    assert val.sample(list(val.names()).index("stray_file.JPEG")).status == "rejected"
    exp = tmp_path / "exp"
    assert odg("export", "es-imagenet", url, exp, "--quiet") == 0
    assert "ILSVRC2012_val_00000001.npz 65 254 254" in (exp / "vallabel.txt").read_text().splitlines()
    assert (exp / "val" / "ILSVRC2012_val_00000002.npz").exists()
    # the same validation images from ILSVRC2012_img_val.tar
    import tarfile
    arch = tmp_path / "arch"
    arch.mkdir()
    with tarfile.open(arch / "ILSVRC2012_img_val.tar", "w") as t:
        for n in names:
            t.add(root / "val" / n, arcname=n)
    url2 = str(tmp_path / "a.zarr")
    assert odg("build", "imagenet", arch, url2, "--split", "val", "--dask-workers", 1, "--quiet") == 0
    v2 = open_store(url2)["val"]
    for col in ("label", "number", "name", "status", "reason", "shape", "count", "words"):
        np.testing.assert_array_equal(v2.array(col)[:], val.array(col)[:])


def test_train_archive_equals_extracted_tree(trees, clean_store, tmp_path):
    arch = tar_from_tree(trees["bad"], str(tmp_path / "arch"))
    items, source = imagenet_items(arch, "train")
    assert source["layout"] == "archive" and all(it.offset > 0 for it in items)
    url = str(tmp_path / "arch.zarr")
    assert odg("build", "imagenet", arch, url, "--split", "train", "--dask-workers", 1, "--shard-size", 3, "--quiet") == 0
    a, b = open_store(url)["train"], open_store(clean_store)["train"]
    for col in ("label", "number", "name", "status", "reason", "shape", "count", "words"):
        np.testing.assert_array_equal(a.array(col)[:], b.array(col)[:])


def test_limit_keeps_published_numbers(trees, tmp_path):
    items, _ = imagenet_items(trees["bad"], "train", limit=2)
    assert [(it.label, it.number) for it in items] == [(0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2)]
    assert load_classes().index(WNID2) == 2


# -- real schedulers, killed workers and killed builds --------------------------------------------------


def test_external_scheduler_and_workers(trees, clean_store, tmp_path):
    from distributed import Client
    with dask_processes(2) as addr:
        url = str(tmp_path / "sched.zarr")
        assert odg("build", "imagenet", trees["bad"], url, "--split", "train", "--scheduler", addr,
                   "--shard-size", 3, "--quiet") == 0
        assert store_bytes(url) == store_bytes(clean_store)
        with Client(addr) as c:                     # the build ran on those workers
            assert len(c.scheduler_info(n_workers=-1)["workers"]) == 2


@pytest.fixture(scope="module")
def slow_tree(tmp_path_factory):
    """24 large real JPEGs (about 100 ms each to convert) so a build can be interrupted mid-way."""
    root = slow_jpeg_tree(tmp_path_factory.mktemp("slow"))
    url = str(root / "clean.zarr")
    assert odg("build", "imagenet", root, url, "--split", "train", "--dask-workers", 1, "--shard-size", 2, "--quiet") == 0
    return root, url


def test_killed_worker_build_still_completes_identically(slow_tree, tmp_path):
    from distributed import Client, LocalCluster

    from odg.pipelines.build import run_build
    root, clean = slow_tree
    url = str(tmp_path / "killed.zarr")
    spec = _spec(root, url)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        import threading
        killer = threading.Thread(target=lambda: (wait_for(lambda: _markers(url) >= 1, 60, "a first shard"),
                                                  os.kill(pids[0], signal.SIGKILL)))
        killer.start()
        report = run_build(spec, client=client, progress=False)
        killer.join()
    assert not report.failed
    assert store_bytes(url) == store_bytes(clean)


def _spec(root, url):
    from odg.pipelines.imagenet import build_spec
    return build_spec(url, str(root), "train", shard_size=2)


def _markers(url):
    d = os.path.join(url, "train", "_odg", "shards")
    return len(os.listdir(d)) if os.path.isdir(d) else 0


def test_killed_build_resumes_to_identical_store_and_second_build_refused(slow_tree, tmp_path):
    root, clean = slow_tree
    url = str(tmp_path / "resumed.zarr")
    cmd = ODG + ["build", "imagenet", str(root), url, "--split", "train", "--dask-workers", "2", "--shard-size", "2", "--quiet"]
    p = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: os.path.exists(os.path.join(url, "train", "_odg", "lock.json")), 60, "the build's lock")
        # a second build into the store being built is refused
        second = subprocess.run(cmd + ["--resume"], capture_output=True, text=True)
        assert second.returncode == 2 and "being built" in second.stderr
        wait_for(lambda: _markers(url) >= 1, 120, "a first shard")
    finally:
        os.killpg(p.pid, signal.SIGKILL)          # the client and its whole local cluster, mid-build
        p.wait()
    assert 1 <= _markers(url) < 12, "the build was not interrupted mid-way"
    assert not open_store(url).split("train", allow_incomplete=True).complete
    assert odg("verify", url) == 1
    assert odg("build", "imagenet", root, url, "--split", "train", "--dask-workers", "2", "--shard-size", "2",
               "--quiet", "--resume") == 0
    assert store_bytes(url) == store_bytes(clean)
    assert odg("verify", url) == 0
