"""Store integrity, the writing side: the build lock, atomic small files, the resume plan, refusals
that leave nothing behind, and absolute paths for Dask tasks. Real processes killed with real
signals, a real full filesystem (tmpfs), real `dask scheduler` / `dask worker` processes."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from odg.pipelines.cli import main as odg_main
from odg.pipelines.store import StoreError, open_store
from odg.pipelines.store.writer import SplitWriter

from .cluster import dask_processes, wait_for
from .trees import WNID0, slow_jpeg_tree, store_bytes, vector_tree

ODG = [sys.executable, "-m", "odg"]
COLUMNS = ("label", "number", "name", "status", "reason", "shape", "count", "words")


def odg(*args):
    return odg_main([str(a) for a in args])


def files(path) -> dict:
    """Every file under `path` -> its bytes (nothing left out)."""
    out = {}
    for d, _, fs in os.walk(path):
        for fn in fs:
            with open(os.path.join(d, fn), "rb") as f:
                out[os.path.relpath(os.path.join(d, fn), path)] = f.read()
    return out


def assert_same_arrays(a_url, b_url, split="train"):
    a, b = open_store(a_url)[split], open_store(b_url)[split]
    for col in COLUMNS:
        np.testing.assert_array_equal(a.array(col)[:], b.array(col)[:])


def markers(url, split="train"):
    d = os.path.join(url, split, "_odg", "shards")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return vector_tree(str(tmp_path_factory.mktemp("tree") / "ilsvrc"))


@pytest.fixture(scope="module")
def built(tree, tmp_path_factory):
    """The reference: --max-pixels 500000, 2 images a shard, one worker."""
    url = str(tmp_path_factory.mktemp("ref") / "ref.zarr")
    assert odg("build", "imagenet", tree, url, "--split", "train", "--dask-workers", 1, "--shard-size", 2,
               "--max-pixels", 500000, "-q") == 0
    return url


# -- 4: a build killed outright, resumed at once --------------------------------------------------

@pytest.fixture(scope="module")
def slow_tree(tmp_path_factory):
    """16 large real JPEGs (about 100 ms each to convert), so that a build can be killed mid-way."""
    root = slow_jpeg_tree(str(tmp_path_factory.mktemp("slow")), ("astronaut", "coffee", "page", "cell"))
    url = os.path.join(root, "clean.zarr")
    assert odg("build", "imagenet", root, url, "--split", "train", "--dask-workers", 1, "--shard-size", 2, "-q") == 0
    return root, url


def test_sigkilled_build_resumed_within_100ms_takes_the_lock_and_finishes(slow_tree, tmp_path):
    root, clean = slow_tree
    url = str(tmp_path / "killed.zarr")
    cmd = ODG + ["build", "imagenet", root, url, "--split", "train", "--dask-workers", "2", "--shard-size", "2", "-q"]
    p = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(markers(url)) >= 1, 120, "a first shard")
    finally:
        os.killpg(p.pid, signal.SIGKILL)      # the client and its whole local cluster, mid-build
    t_kill = time.monotonic()
    # the killed client is neither waited for nor reaped: the resume starts while it may still be a zombie
    r = subprocess.Popen(cmd + ["--resume"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic() - t_kill
    out, err = r.communicate(timeout=300)
    p.wait()
    assert started < 0.1
    assert r.returncode == 0, err
    built_now, skipped = map(int, re.search(r"(\d+) shards built, (\d+) already done", out).groups())
    assert 1 <= skipped < 8 and built_now + skipped == 8, out     # it did resume
    assert_same_arrays(url, clean)
    assert store_bytes(url) == store_bytes(clean)
    assert odg("verify", url) == 0


# -- 4: the lock is exclusive, a stale one is taken over by exactly one --------------------------

CONTENDER = textwrap.dedent("""
    import json, sys, time
    from odg.pipelines.store import StoreError
    from odg.pipelines.store.writer import SplitWriter
    url, t0, trials, slot = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    won, held = [], []
    for k in range(trials):
        while time.time() < t0 + k * slot:
            pass
        w = SplitWriter(url, f"s{k}")
        try:
            w.lock()
        except StoreError:
            won.append(False)
            continue
        won.append(True)
        held.append(w)                       # every lock won is held until the end
    print(json.dumps(won))
    time.sleep(max(0.0, t0 + trials * slot + 0.5 - time.time()))
""")


def race(url: str, trials: int, slot: float, env=None) -> list:
    """Two contender processes, started together, each trying lock `s<k>` at the same instant
    (slot `k`); each one's list of trials won."""
    t0 = time.time() + 4.0                   # both are up by then
    procs = [subprocess.Popen([sys.executable, "-c", CONTENDER, url, str(t0), str(trials), str(slot)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    return results


def test_two_builds_on_stale_locks_exactly_one_wins_every_time(tmp_path):
    trials = 20
    url = str(tmp_path / "s.zarr")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()                              # a process that has exited: its pid names no one
    for k in range(trials):                  # the lock files a killed build leaves behind
        d = tmp_path / "s.zarr" / f"s{k}" / "_odg"
        d.mkdir(parents=True)
        (d / "lock.json").write_text(json.dumps({"host": os.uname().nodename, "pid": dead.pid, "started": "x"}))
    results = race(url, trials, 0.05)
    assert [a + b for a, b in zip(*results)] == [1] * trials, results


def test_second_build_refused_while_the_first_holds_the_lock(built, tree, capsys):
    holder = SplitWriter(built, "train")
    holder.lock()                            # held by this process (another open file: flock conflicts)
    before = files(built)
    try:
        t0 = time.monotonic()
        assert odg("build", "imagenet", tree, built, "--split", "train", "--dask-workers", 1, "--resume", "-q") == 2
        assert time.monotonic() - t0 < 5
        err = capsys.readouterr().err
        assert "being built by process" in err and f"{os.getpid()}" in err
        assert files(built) == before        # the refused build left the store (and the lock) as it was
    finally:
        holder.unlock()
    assert not os.path.exists(os.path.join(built, "train", "_odg", "lock.json"))


# -- 4: a disk that fills exactly at a marker write ------------------------------------------------

FULL_DISK = textwrap.dedent("""
    import json, os, subprocess, sys
    mnt, tree, budget, odg = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={budget}", "tmpfs", mnt], check=True)
    url = os.path.join(mnt, "s.zarr")
    build = odg + ["build", "imagenet", tree, url, "--split", "train", "--dask-workers", "1", "--shard-size", "8", "-q"]
    first = subprocess.run(build, capture_output=True, text=True)
    state = {"rc": first.returncode, "err": first.stderr, "files": {}}
    for d, _, fs in os.walk(url):
        for fn in fs:
            state["files"][os.path.relpath(os.path.join(d, fn), url)] = os.path.getsize(os.path.join(d, fn))
    st = os.statvfs(mnt)
    state["free"] = st.f_bavail * st.f_frsize
    subprocess.run(["mount", "-o", "remount,size=8m", mnt], check=True)      # free space again
    second = subprocess.run(build + ["--resume"], capture_output=True, text=True)
    verify = subprocess.run(odg + ["verify", url], capture_output=True, text=True)
    state.update(rc2=second.returncode, err2=second.stderr, verify=verify.returncode, verify_out=verify.stdout)
    out = sys.argv[5]
    subprocess.run(["cp", "-a", url, out], check=True)
    print(json.dumps(state))
""")


def _pages(n: int) -> int:
    return -(-n // 4096)


def test_disk_full_at_the_marker_then_resume_on_free_space(tree, tmp_path):
    """A tmpfs sized so that the shard's chunks fit and its marker does not (one shard; pages of
    4 KiB counted from an identical build on ordinary disk); then the same tmpfs remounted larger."""
    ref = str(tmp_path / "ref.zarr")
    assert odg("build", "imagenet", tree, ref, "--split", "train", "--dask-workers", 1, "--shard-size", 8, "-q") == 0
    after_marker = {"train/_odg/shards/000000.json", "train/_odg/card.json", "train/_odg/source_digest.json"}
    sizes = {k: len(v) for k, v in files(ref).items()}
    assert after_marker <= set(sizes)
    budget = (sum(_pages(n) for k, n in sizes.items() if k not in after_marker) + 1) * 4096   # + the lock
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    ns = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--mount"]
    r = subprocess.run(ns + [sys.executable, "-c", FULL_DISK, str(mnt), tree, str(budget), json.dumps(ODG),
                             str(tmp_path / "out.zarr")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    state = json.loads(r.stdout.splitlines()[-1])
    # the first build failed on the full disk, exactly at the marker: every chunk is there, no marker
    assert state["rc"] == 1 and "No space left on device" in state["err"], state["err"]
    assert state["free"] == 4096                 # full but for the page of the lock, released at the end
    chunks = {k: n for k, n in sizes.items() if "/c/" in k}
    assert {k: state["files"].get(k) for k in chunks} == chunks
    assert not any("_odg/shards/" in k for k in state["files"]), state["files"]
    assert not any(k.endswith(".partial") or k.endswith("lock.json") for k in state["files"])
    # resumed on free space: finished, verified, and the same store as the uninterrupted build
    assert state["rc2"] == 0, state["err2"]
    assert state["verify"] == 0, state["verify_out"]
    assert store_bytes(str(tmp_path / "out.zarr")) == store_bytes(ref)


def test_unreadable_marker_means_not_built(built, tree, tmp_path):
    """An empty or truncated marker (what a kill or a full disk left before writes were atomic) is
    "not built": done_shards leaves it out and a resume rebuilds that shard."""
    url = str(tmp_path / "m.zarr")
    shutil.copytree(built, url)
    m1 = os.path.join(url, "train", "_odg", "shards", "000001.json")
    m2 = os.path.join(url, "train", "_odg", "shards", "000002.json")
    open(m1, "wb").close()
    with open(m2, "r+b") as f:
        f.truncate(os.path.getsize(m2) // 2)
    os.remove(os.path.join(url, "train", "words", "c", "1", "0", "0"))     # the shard's data is gone too
    n = open_store(url).split("train", allow_incomplete=True).n_shards
    assert SplitWriter(url, "train").done_shards() == set(range(n)) - {1, 2}
    assert odg("build", "imagenet", tree, url, "--split", "train", "--dask-workers", 1, "--resume", "-q") == 0
    assert store_bytes(url) == store_bytes(built)


# -- 5: everything that changes the output is in the plan; --resume reuses the recorded settings ---

def test_resume_reuses_recorded_settings_and_names_a_conflict(built, tree, tmp_path, capsys):
    url = str(tmp_path / "r.zarr")
    shutil.copytree(built, url)
    os.remove(os.path.join(url, "train", "_odg", "shards", "000001.json"))     # an unfinished shard
    before = files(url)
    assert odg("build", "imagenet", tree, url, "--split", "train", "--resume", "--max-pixels", 1000000, "-q") == 2
    assert "cannot resume: --max-pixels 1000000 differs from the recorded 500000" in capsys.readouterr().err
    assert odg("build", "imagenet", tree, url, "--split", "train", "--resume", "--shard-size", 3, "-q") == 2
    assert "cannot resume: --shard-size 3 differs from the recorded 2" in capsys.readouterr().err
    assert files(url) == before
    # the same settings again, or none at all: the recorded ones
    assert odg("build", "imagenet", tree, url, "--split", "train", "--resume", "--dask-workers", 1, "-q") == 0
    assert store_bytes(url) == store_bytes(built)
    plan = json.loads(open(os.path.join(url, "train", "_odg", "plan.json")).read())
    assert plan["convert"]["keywords"]["max_pixels"] == 500000 and plan["shard_size"] == 2


def test_programmatic_resume_with_another_limit_is_refused_naming_it(built, tree):
    from odg.pipelines.build import run_build
    from odg.pipelines.imagenet import build_spec
    with pytest.raises(StoreError, match=r"convert\.keywords\.max_pixels: recorded 500000, now 1000000"):
        run_build(build_spec(built, tree, "train", shard_size=2, max_pixels=1000000), resume=True, progress=False)
    with pytest.raises(StoreError, match=r"items: recorded 5, now 2; the input list \(names, labels, numbers or "
                                         r"their order\) differs"):
        run_build(build_spec(built, tree, "train", limit=1, shard_size=2, max_pixels=500000), resume=True,
                  progress=False)


# -- 7: refusals leave the folder exactly as it was -------------------------------------------------

def test_refusals_leave_nothing_behind(tree, built, tmp_path, capsys):
    # a non-empty folder that is not a store
    other = tmp_path / "notes"
    (other / "sub").mkdir(parents=True)
    (other / "sub" / "a.txt").write_text("mine")
    before = files(other)
    assert odg("build", "imagenet", tree, other, "--split", "train", "--dask-workers", 1, "-q") == 2
    assert "is not empty and is not an odg store" in capsys.readouterr().err
    assert files(other) == before and sorted(os.listdir(other)) == ["sub"]
    # no inputs: a train/ with an empty class folder
    empty = tmp_path / "empty"
    (empty / "train" / WNID0).mkdir(parents=True)
    url = tmp_path / "e.zarr"
    assert odg("build", "imagenet", empty, url, "--split", "train", "--dask-workers", 1, "-q") == 2
    assert "no input files" in capsys.readouterr().err
    assert not url.exists()
    # ... also into an existing empty folder, which stays empty
    url.mkdir()
    assert odg("build", "imagenet", empty, url, "--split", "train", "--dask-workers", 1, "-q") == 2
    assert os.listdir(url) == []
    # an unreachable scheduler
    new = tmp_path / "n.zarr"
    assert odg("build", "imagenet", tree, new, "--split", "train", "--scheduler", "tcp://127.0.0.1:9",
               "--connect-timeout", 1, "-q") == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err and not new.exists()
    # an existing split without --resume, and a second split of another kind of store
    before = files(built)
    assert odg("build", "imagenet", tree, built, "--split", "train", "--dask-workers", 1, "-q") == 2
    assert "already exists" in capsys.readouterr().err
    assert odg("build", "imagenet", tree, built, "--split", "train", "--method", "i2e", "--dask-workers", 1, "-q") == 2
    assert "cannot add i2e-imagenet data" in capsys.readouterr().err
    assert files(built) == before


# -- 3: relative paths through a real scheduler and a worker in another directory -------------------

def test_relative_paths_on_a_worker_in_another_directory(tree, built, tmp_path, monkeypatch):
    client_dir, worker_dir = tmp_path / "client", tmp_path / "worker"
    client_dir.mkdir()
    worker_dir.mkdir()
    shutil.copytree(tree, client_dir / "ilsvrc")
    monkeypatch.chdir(client_dir)
    with dask_processes(1, cwd=str(worker_dir)) as addr:
        assert odg("build", "imagenet", "ilsvrc", "s.zarr", "--split", "train", "--scheduler", addr,
                   "--shard-size", 2, "--max-pixels", 500000, "-q") == 0
    assert os.listdir(worker_dir) == []                   # nothing written where the worker runs
    n = open_store("s.zarr")["train"].n_shards
    assert markers("s.zarr") == [f"{s:06d}.json" for s in range(n)]
    assert odg("verify", "s.zarr") == 0
    assert_same_arrays("s.zarr", built)


# -- 4: the lock on an object store (S3 served by moto on 127.0.0.1) --------------------------------

@pytest.fixture(scope="module")
def s3_env(tmp_path_factory):
    """The environment of a moto S3 server (a subprocess) with bucket `locks`."""
    from .test_s3 import CREDENTIALS, _env, _free_port, _http_up, _stop, _wait
    endpoint = f"http://127.0.0.1:{_free_port()}"
    env = _env(AWS_ENDPOINT_URL=endpoint, **CREDENTIALS)
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    procs = [subprocess.Popen([sys.executable, "-c", "import sys; from moto.server import main; main(sys.argv[1:])",
                               "-H", "127.0.0.1", "-p", endpoint.rsplit(":", 1)[1]], env=env, stdout=log,
                              stderr=subprocess.STDOUT)]
    try:
        _wait("moto's S3 server", lambda: _http_up(endpoint), procs)
        yield env
    finally:
        _stop([procs])
        log.close()


def test_object_store_lock_exclusive_and_stale_takeover_by_exactly_one(s3_env, monkeypatch, tmp_path):
    import s3fs
    for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(k, s3_env[k])
    s3fs.S3FileSystem.clear_instance_cache()      # an earlier test's filesystem knows another endpoint
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir("locks")
    url = "s3://locks/s.zarr"
    a, b = SplitWriter(url, "train"), SplitWriter(url, "train")
    # the exclusive create is S3's conditional PUT: refused by the server itself for an existing key
    assert a.keys.create("probe", b"first") and not b.keys.create("probe", b"second")
    with pytest.raises(FileExistsError):
        fs.pipe_file("locks/s.zarr/probe", b"third", mode="create")
    assert fs.cat("locks/s.zarr/probe") == b"first"
    a.lock()
    with pytest.raises(StoreError, match=f"being built by process {os.getpid()}"):
        b.lock()                                  # held: its process (this one) is alive
    a.unlock()
    assert not fs.exists("locks/s.zarr/train/_odg/lock.json")
    b.lock()
    b.unlock()
    # stale locks (their process has exited), taken over by two processes at once
    trials = 10
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for k in range(trials):
        fs.pipe(f"locks/s.zarr/s{k}/_odg/lock.json",
                json.dumps({"host": os.uname().nodename, "pid": dead.pid, "started": "x"}).encode())
    results = race(url, trials, 0.2, s3_env)
    assert [x + y for x, y in zip(*results)] == [1] * trials, results
