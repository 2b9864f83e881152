"""Hostile and odd input, with real processes: decompression bombs beside good images on a real
`dask worker --memory-limit 2GB`, crafted published downloads (zip bombs, out-of-range fields,
paths leaving the folder), exports into folders holding symlinks, a TCP server that is not Dask,
a worker-side failure and a Ctrl-C."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from odg.pipelines.cli import main as odg_main
from odg.pipelines.errors import Reject
from odg.pipelines.store import open_store
from odg.pipelines.ucf101 import Clip, convert_clip, read_video

from .bombs import BOMBS, jpeg_claiming, npz_bomb
from .cluster import dask_processes, wait_for
from .trees import VEC, WNID0, WNID1, real_jpeg

ODG = [sys.executable, "-m", "odg"]
UCF = Path(__file__).resolve().parent.parent / "data" / "ucf"
CLIP = "v_Panning_g02_c01"
GOOD = ("astronaut", "cell", "coffee", "page")


def odg(*args):
    return odg_main([str(a) for a in args])


def run(*args, timeout=300):
    return subprocess.run(ODG + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cluster():
    """A real `dask scheduler` and one `dask worker --memory-limit 2GB` with one thread."""
    with dask_processes(1, ["--memory-limit", "2GB"]) as addr:
        yield addr


def _worker_pids(addr):
    from distributed import Client
    with Client(addr, timeout="10s") as c:
        return sorted(c.run(os.getpid).values())


@pytest.fixture(scope="module")
def bomb_store(cluster, tmp_path_factory):
    """Every bomb beside the good test images, in shards of 3, built on the 2 GB worker."""
    base = tmp_path_factory.mktemp("bombs")
    d = base / "tree" / "train" / WNID0
    d.mkdir(parents=True)
    for stem in GOOD:
        shutil.copy(os.path.join(VEC, "images", stem + ".png"), d / f"{stem}.JPEG")
    for name, (make, _) in BOMBS.items():
        (d / name).write_bytes(make())
    pids = _worker_pids(cluster)
    url = str(base / "s.zarr")
    r = run("build", "imagenet", base / "tree", url, "--split", "train", "--scheduler", cluster, "--shard-size", 3,
            "-q", "--json")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert _worker_pids(cluster) == pids, "the worker died and was restarted"
    report = json.loads(r.stdout)["splits"]["train"]
    assert (report["kept"], report["rejected"], report["failed"]) == (len(GOOD), len(BOMBS), [])
    return url


def test_bombs_rejected_good_images_kept_on_a_2gb_worker(bomb_store):
    sr = open_store(bomb_store)["train"]
    assert sr.complete
    names = [n.split("/")[-1] for n in sr.names()]
    for i, n in enumerate(names):
        s = sr.sample(i)
        if n in BOMBS:
            assert s.status == "rejected" and f"= {BOMBS[n][1]} pixels" in s.reason, (n, s.reason)
            assert "refused before decoding" in s.reason
        else:
            assert s.status == "kept" and n[:-5] in GOOD
            z = np.load(os.path.join(VEC, "expected", n[:-5] + ".npz"))
            np.testing.assert_array_equal(sr.published(i)[0], z["pos"])


def test_verify_and_info_quiet_and_json(bomb_store, capsys):
    capsys.readouterr()
    assert odg("verify", bomb_store, "-q") == 0 and capsys.readouterr() == ("", "")
    assert odg("verify", bomb_store, "--json") == 0
    v = json.loads(capsys.readouterr().out)
    assert v["ok"] and v["splits"]["train"]["verified"] == v["splits"]["train"]["shards"] == 4
    assert odg("info", bomb_store, "--json") == 0
    assert json.loads(capsys.readouterr().out)["splits"]["train"]["rejected"] == len(BOMBS)


def test_damaged_stores_and_bad_paths_end_in_one_line(bomb_store, cluster, tmp_path, capsys):
    """No traceback: a truncated zarr.json, a damaged zstd frame, a store or export path under a
    file, a corrupt sample for reconstruct; each ends in one `odg: error:` line."""
    trunc, flipped = tmp_path / "trunc.zarr", tmp_path / "flipped.zarr"
    shutil.copytree(bomb_store, trunc)
    (trunc / "zarr.json").write_bytes((trunc / "zarr.json").read_bytes()[:40])
    shutil.copytree(bomb_store, flipped)
    chunk = flipped / "train" / "words" / "c" / "0" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[20:60] = bytes(b ^ 0xFF for b in data[20:60])
    chunk.write_bytes(bytes(data))
    (tmp_path / "afile").write_text("x")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04" + bytes(60))
    cases = [("info", trunc), ("verify", trunc), ("export", "es-imagenet", flipped, tmp_path / "e1", "-q"),
             ("stats", flipped, "--out", tmp_path / "st", "-q", "--scheduler", cluster),
             ("build", "imagenet", Path(bomb_store).parent / "tree", tmp_path / "afile" / "s.zarr", "--split", "train",
              "-q", "--scheduler", cluster),
             ("export", "es-imagenet", bomb_store, tmp_path / "afile" / "e2", "-q"),
             ("reconstruct", tmp_path / "bad.npz", "--out", tmp_path / "r.png")]
    for args in cases:
        capsys.readouterr()
        assert odg(*args) in (1, 2), args
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("odg: error: "), (args, err)


def test_ucf_frame_bombs_rejected_before_decoding(cluster, tmp_path):
    """Three 2 KB frames claiming 30000 x 30000 (26 GiB of events): rejected in the client's
    size probe and on the worker; the real clip beside them is kept, exactly."""
    root, frames = tmp_path / "UCF101", tmp_path / "frames"
    (root / "ucfTrainTestlist").mkdir(parents=True)
    (root / "ucfTrainTestlist" / "classInd.txt").write_text("1 Panning\n")
    (root / "ucfTrainTestlist" / "trainlist01.txt").write_text(
        f"Panning/v_Panning_g01_c01.avi 1\nPanning/{CLIP}.avi 1\n")
    (root / "ucfTrainTestlist" / "testlist01.txt").write_text("")
    shutil.copytree(UCF / "frames" / CLIP, frames / CLIP)
    (frames / "v_Panning_g01_c01").mkdir()
    for k in (1, 2, 3):
        (frames / "v_Panning_g01_c01" / f"frame{k:06d}.jpg").write_bytes(jpeg_claiming(30000, 30000))
    url = str(tmp_path / "u.zarr")
    pids = _worker_pids(cluster)
    r = run("build", "ucf101", root, url, "--fold", 1, "--frames", frames, "--scheduler", cluster, "-q")
    assert r.returncode == 0, r.stderr
    assert _worker_pids(cluster) == pids
    sr = open_store(url)["train1"]
    assert list(sr.names()) == ["v_Panning_g01_c01", CLIP]
    bomb, good = sr.sample(0), sr.sample(1)
    assert bomb.status == "rejected" and "30000 x 30000 = 900000000 pixels > limit 2097152" in bomb.reason
    assert good.status == "kept"
    np.testing.assert_array_equal(sr.frames(1), np.load(UCF / "expected" / f"{CLIP}.npz")["arr_0"])


def test_video_frame_size_checked_before_decoding(tmp_path):
    with pytest.raises(Reject, match=r"video frames too large: 320 x 240 = 76800 pixels > limit 76799 "
                                     r"\(refused before decoding\)"):
        read_video(UCF / f"{CLIP}.avi", max_pixels=76799)
    frames, info = read_video(UCF / f"{CLIP}.avi", max_pixels=76800)
    assert frames.shape == (31, 240, 320)
    d = tmp_path / CLIP
    shutil.copytree(UCF / "frames" / CLIP, d)
    with pytest.raises(Reject, match=r"unreadable frame JPEG: .*frame0000\d\d.jpg: image too large"):
        convert_clip(Clip(CLIP, 0, None, d), use_frames=True, max_pixels=76799)


# -- a published download, crafted --------------------------------------------------------------------

def _sample(path, stem):
    z = np.load(os.path.join(VEC, "expected", stem + ".npz"))
    np.savez_compressed(path, pos=z["pos"], neg=z["neg"])
    return z


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    """A published ES-ImageNet download with every kind of hostile line and file, and 3 good samples."""
    root = tmp_path_factory.mktemp("pub") / "ES-imagenet-0.18"
    c0, c1, val = root / "train" / "class0", root / "train" / "class1", root / "val"
    for d in (c0, c1, val):
        d.mkdir(parents=True)
    z = _sample(c0 / "class0_1.npz", "astronaut")
    _sample(c1 / "class1_1.npz", "coffee")
    _sample(val / "ok.npz", "astronaut")
    npz_bomb(c0 / "class0_2.npz", {"pos": ((636 << 20, 3), "|u1"), "neg": ((0, 3), "|u1")})   # 2 MB -> 2 GB
    np.savez_compressed(c0 / "class0_3.npz", pos=np.zeros((0, 3), np.uint8), neg=np.zeros((0, 3), np.uint8))
    late = z["pos"].copy()
    late[:, 2] = 9                                                            # step 9 of 8
    np.savez_compressed(c0 / "class0_4.npz", pos=late, neg=z["neg"])
    np.savez_compressed(c0 / "class0_5.npz", pos=z["pos"], neg=z["neg"])        # labelled a = 100: rows beyond it
    np.savez_compressed(c0 / "class0_6.npz", pos=np.array([object()] * 3), neg=z["neg"])
    np.savez_compressed(c1 / "class1_2.npz", pos=z["pos"], neg=z["neg"])
    (c0 / "class0_77.npz").write_bytes((c0 / "class0_1.npz").read_bytes())      # no label line names it
    outside = root.parent / "outside.npz"
    _sample(outside, "astronaut")
    os.symlink(outside, val / "link.npz")
    (root / "trainlabel.txt").write_text("\n".join([
        "class0/class0_1.npz 0 254 254", "class0/class0_1.npz 0 254 254",        # listed twice
        "class0/class0_2.npz 0 254 254", "class0/class0_3.npz 0 254 254", "class0/class0_4.npz 0 254 254",
        "class0/class0_5.npz 0 100 254", "class0/class0_6.npz 0 254 254",
        "class0/class0_7.npz 0 99999 254", "class0/class0_8.npz 0 30000 254", "class0/class0_9.npz 0 200 200",
        "class0/class0_2147483648.npz 0 254 254", "class1000/class1000_1.npz 1000 254 254",
        "class1/class1_1.npz 1 169 254",
        "class1/class1_2.npz 1 254 254", "class1/class1_2.npz 1 126 254",       # twice, disagreeing
        "this line is not a label line", ""]))
    (root / "vallabel.txt").write_text("ok.npz 0 254 254\n../train/class0/class0_1.npz 0 254 254\n"
                                       "/etc/passwd 0 254 254\nlink.npz 0 254 254\n")
    return root


def test_crafted_download_every_bad_sample_a_reject(crafted, cluster, tmp_path):
    url = str(tmp_path / "i.zarr")
    pids = _worker_pids(cluster)
    assert odg("import", "es-imagenet", crafted, url, "--scheduler", cluster, "--shard-size", 4, "-q") == 0   # no failed shard
    assert _worker_pids(cluster) == pids                       # the zip bomb did not kill the worker
    st = open_store(url)
    got = {}
    for split in ("train", "val"):
        sr = st[split]
        assert sr.complete
        names = list(sr.names())
        assert len(set(names)) == len(names)
        got.update({f"{split}:{n}": sr.sample(i) for i, n in enumerate(names)})
    kept = sorted(k for k, s in got.items() if s.status == "kept")
    assert kept == ["train:class0/class0_1.npz", "train:class1/class1_1.npz", "val:ok.npz"]
    reasons = {k: s.reason for k, s in got.items() if s.status != "kept"}
    want = {
        "train:trainlabel.txt:2": "names class0/class0_1.npz again (line 1)",
        "train:class0/class0_2.npz": "pos declares 666894336 events, more than T x window",
        "train:class0/class0_3.npz": "0 events, under the 1000-event floor",
        "train:class0/class0_4.npz": "event time steps 1..9 outside 1..8",
        "train:class0/class0_5.npz": "outside the 104 x 258 canvas of a sample of shape (100, 254)",
        "train:class0/class0_6.npz": "holds Python objects (a pickle)",
        "train:trainlabel.txt:8": "shape (99999, 254) is not a published resize",
        "train:trainlabel.txt:9": "shape (30000, 254) is not a published resize",
        "train:trainlabel.txt:10": "shape (200, 200) is not a published resize",
        "train:trainlabel.txt:11": "sample number 2147483648 outside 1..2147483647",
        "train:trainlabel.txt:12": "class 1000 outside 0..999",
        "train:trainlabel.txt:15": "names class1/class1_2.npz again with other fields than line 14: both rejected",
        "train:class1/class1_2.npz": "is named again on line 15 with other fields",
        "train:trainlabel.txt:16": "malformed label line 16",
        "train:class0/class0_77.npz": "not named in trainlabel.txt",
        "val:vallabel.txt:2": "'../train/class0/class0_1.npz' lies outside val/",
        "val:vallabel.txt:3": "'/etc/passwd' lies outside val/",
        "val:link.npz": "resolves outside val/",
    }
    for k, why in want.items():
        assert why in reasons.get(k, ""), (k, reasons.get(k))
    assert set(reasons) == set(want)


def test_npz_member_sizes_checked_before_inflating(tmp_path):
    from odg.pipelines.ucf101_import import load_clip
    npz_bomb(tmp_path / "v.npz", {"arr_0": ((2, 30, 3000, 3000), "|u1")})
    with pytest.raises(ValueError, match=r"frames of 3000 x 3000 = 9000000 pixels > limit 2097152"):
        load_clip(str(tmp_path / "v.npz"), 30)
    npz_bomb(tmp_path / "w.npz", {"arr_0": ((2, 30, 24, 32), "|u1")})
    with pytest.raises(ValueError, match="frame size 24x32 differs from the split's 240x320"):
        load_clip(str(tmp_path / "w.npz"), 30, size=(240, 320))
    with pytest.raises(ValueError, match="Bad CRC"):          # read within its bound: the damage shows
        load_clip(str(tmp_path / "w.npz"), 30, size=(24, 32))


# -- export never follows a symlink it did not create --------------------------------------------------

def test_export_refuses_symlinked_folders_and_replaces_symlinked_files(bomb_store, tmp_path, capsys):
    elsewhere, victim = tmp_path / "elsewhere", tmp_path / "victim.txt"
    elsewhere.mkdir()
    victim.write_text("precious\n")
    out = tmp_path / "exp"
    out.mkdir()
    os.symlink(elsewhere, out / "train")
    capsys.readouterr()
    assert odg("export", "es-imagenet", bomb_store, out, "-q") == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("odg: error: ") and "is a symlink" in err[0]
    assert os.listdir(elsewhere) == []
    out2 = tmp_path / "exp2"
    (out2 / "train" / "class0").mkdir(parents=True)
    os.symlink(victim, out2 / "trainlabel.txt")
    os.symlink(victim, out2 / "train" / "class0" / "class0_1.npz")
    assert odg("export", "es-imagenet", bomb_store, out2, "--json") == 0
    assert json.loads(capsys.readouterr().out)["splits"]["train"]["files"] == len(GOOD)
    assert victim.read_text() == "precious\n"
    for p in (out2 / "trainlabel.txt", out2 / "train" / "class0" / "class0_1.npz"):
        assert p.is_file() and not p.is_symlink()
    assert "class0/class0_1.npz 0 254 254" in (out2 / "trainlabel.txt").read_text()
    assert not [f for f in os.listdir(out2 / "train" / "class0") if f.endswith(".tmp")]


# -- --scheduler ---------------------------------------------------------------------------------------

def test_scheduler_that_says_nothing_or_is_not_a_scheduler(cluster, tmp_path, capsys):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: [accepted.append(srv.accept()) for _ in range(8)], daemon=True).start()
    root = tmp_path / "tree"
    (root / "train" / WNID0).mkdir(parents=True)
    shutil.copy(os.path.join(VEC, "images", "coffee.png"), root / "train" / WNID0 / "c.JPEG")
    url = tmp_path / "s.zarr"
    try:
        t0 = time.monotonic()
        r = run("build", "imagenet", root, url, "--split", "train", "--scheduler",
                f"tcp://127.0.0.1:{port}", "--connect-timeout", 2, timeout=120)
        assert time.monotonic() - t0 < 60 and accepted
    finally:
        srv.close()
    assert r.returncode == 2 and r.stderr.splitlines() == [
        f"odg: error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port} within 2 s: no answer"]
    assert not url.exists()                 # connected (and failed) before any store or lock was made
    from distributed import Client
    with Client(cluster, timeout="10s") as c:
        worker = next(iter(c.scheduler_info(n_workers=-1)["workers"]))
    assert odg("build", "imagenet", root, url, "--split", "train", "--scheduler", worker, "-q") == 2
    for bad in ("tcp://127.0.0.1:99999", "http://host:8786", "no port", "tcp://bad host:1"):
        capsys.readouterr()
        assert odg("build", "imagenet", root, url, "--split", "train", "--scheduler", bad) == 2
        assert capsys.readouterr().err.splitlines()[-1].startswith("odg: error: build imagenet: argument --scheduler")


# -- a worker-side failure and a Ctrl-C, on an embedded cluster ------------------------------------------

def test_ctrl_c_one_line_then_resume_reports_a_worker_error_once(tmp_path):
    root = tmp_path / "tree"
    for k, wnid in enumerate((WNID0, WNID1)):
        d = root / "train" / wnid
        d.mkdir(parents=True)
        for i, name in enumerate(("astronaut", "coffee", "page", "cell")):
            (d / f"{wnid}_{i}.JPEG").write_bytes(real_jpeg(name, scale=4.0 + 0.5 * i + k))
    os.symlink("/proc/self/mem", root / "train" / WNID1 / "zz_eio.JPEG")      # read() fails with EIO, every retry
    url = str(tmp_path / "s.zarr")
    cmd = ODG + ["build", "imagenet", str(root), url, "--split", "train", "--dask-workers", "2", "--shard-size", "2"]
    p = subprocess.Popen(cmd + ["-q"], start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: os.path.isdir(os.path.join(url, "train", "_odg", "shards"))
                  and os.listdir(os.path.join(url, "train", "_odg", "shards")), 120, "a first shard")
        os.killpg(p.pid, signal.SIGINT)             # what a terminal's Ctrl-C does: the whole process group
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130
    assert err.splitlines() == ["odg: interrupted; run the same command again with --resume to continue"]
    assert not os.path.exists(os.path.join(url, "train", "_odg", "lock.json"))
    r = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)   # no terminal: plain lines
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert "\r" not in r.stderr and "Traceback" not in r.stderr
    assert lines[-1] == ("odg: error: 1 of 5 shards failed: OSError: [Errno 5] Input/output error; "
                         "fix the cause, then run the same command with --resume")
    assert sum(line.startswith("odg: error:") for line in lines) == 1
    assert all(line.startswith(("dask: ", "build train: ", "odg: error: ")) for line in lines), lines
    assert any(line.startswith("build train: 9/9 samples (100%)") for line in lines)
    assert r.stdout.count("Input/output error") == 1 and "FAILED shards" in r.stdout
