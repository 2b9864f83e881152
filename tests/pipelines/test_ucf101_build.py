"""`odg build ucf101`, `odg export es-ucf101`, `odg import es-ucf101` on real clips: real videos
re-encoded from the test vector's .avi with cv2.VideoWriter, real bad files, real Dask clusters."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from odg.pipelines.cli import main as odg_main
from odg.pipelines.store import KEPT, REJECTED, open_store
from odg.pipelines.ucf101 import convert_clip
from odg.pipelines.ucf101_build import split_name, ucf_items
from odg.video import UCFParams, unpack_clip

from .test_ucf101_source import MAX_DIFFERING_FRACTION, MAX_XOR_OVER_UNION
from .trees import store_bytes

DATA = Path(__file__).resolve().parent.parent / "data" / "ucf"
CLIP = "v_Panning_g02_c01"
AVI = DATA / f"{CLIP}.avi"
ODG = [sys.executable, "-m", "odg"]


def odg(*args):
    return odg_main([str(a) for a in args])


def _decode_all(path):
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    cap.release()
    return out


def _write(path, frames, fourcc="XVID"):
    h, w = frames[0].shape[:2]
    wr = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, (w, h))
    assert wr.isOpened()
    for f in frames:
        wr.write(f)
    wr.release()


CLASSIND = "1 HandstandPushups\r\n2 Panning\r\n3 Zooming\r\n"
KEPT_CLIPS = ["v_HandStandPushups_g01_c01", "v_Panning_g01_c01", CLIP, "v_Panning_g03_c01",
              "v_Panning_g04_c01", "v_Zooming_g01_c01"]
BAD_CLIPS = {  # clip -> the reason recorded for it
    "v_Panning_g05_c01": "frame size 120x160 differs from the split's 240x320",
    "v_Panning_g06_c01": "unreadable video",                  # zero bytes
    "v_Panning_g07_c01": "truncated video",                   # the first half of a real .avi
    "v_Panning_g08_c01": "unreadable video",                  # a text file named .avi
    "v_Panning_g09_c01": "fewer than 2 frames (1)",           # a real 1-frame video
    "v_Panning_g10_c01": "missing video file",                # listed, not there
}
TEST1 = ["v_Panning_g01_c01", "v_Zooming_g01_c01"]


@pytest.fixture(scope="module")
def ucf_tree(tmp_path_factory):
    """UCF101's layout with 12 clips: 6 real videos (the vector's .avi, re-encoded reversed, shortened,
    every other frame, zoomed, mirrored; XviD and MJPG) and 6 bad ones. Official split file format:
    CRLF, 1-based labels on the train lines, none on the test lines."""
    root = tmp_path_factory.mktemp("ucf") / "UCF101"
    frames = _decode_all(AVI)
    vids = root / "UCF-101"
    for c in ("HandstandPushups", "Panning", "Zooming"):
        (vids / c).mkdir(parents=True)
    p = vids / "Panning"
    shutil.copy(AVI, p / f"{CLIP}.avi")
    _write(p / "v_Panning_g01_c01.avi", frames[::-1])
    _write(p / "v_Panning_g03_c01.avi", frames[:30], "MJPG")
    _write(p / "v_Panning_g04_c01.avi", frames[::2])
    zoom = [cv2.resize(f[30:210, 40:280], (320, 240), interpolation=cv2.INTER_AREA) for f in frames[10:]]
    _write(vids / "HandstandPushups" / "v_HandStandPushups_g01_c01.avi", zoom)
    _write(vids / "Zooming" / "v_Zooming_g01_c01.avi", [f[:, ::-1].copy() for f in frames[:15]])
    _write(p / "v_Panning_g05_c01.avi", [f[60:180, 80:240].copy() for f in frames[:20]], "MJPG")
    (p / "v_Panning_g06_c01.avi").write_bytes(b"")
    data = AVI.read_bytes()
    (p / "v_Panning_g07_c01.avi").write_bytes(data[:len(data) // 2])
    (p / "v_Panning_g08_c01.avi").write_text("this is a text file, not a video\n" * 20)
    _write(p / "v_Panning_g09_c01.avi", frames[:1], "MJPG")
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_bytes(CLASSIND.encode())
    cls = {"HandStandPushups": ("HandstandPushups", 1), "Panning": ("Panning", 2), "Zooming": ("Zooming", 3)}
    train, test = [], []
    for name in KEPT_CLIPS + list(BAD_CLIPS):
        folder, k = cls[name.split("_")[1]]
        if name in TEST1:
            test.append(f"{folder}/{name}.avi\r\n")
        else:
            train.append(f"{folder}/{name}.avi {k}\r\n")
    (lists / "trainlist01.txt").write_bytes("".join(reversed(train)).encode())
    (lists / "testlist01.txt").write_bytes("".join(test).encode())
    return root


@pytest.fixture(scope="module")
def frames_tree(tmp_path_factory):
    """The public check's layout: one clip, built from the vector's frame folder."""
    root = tmp_path_factory.mktemp("ucfv") / "UCF101"
    (root / "UCF-101" / "Panning").mkdir(parents=True)
    shutil.copy(AVI, root / "UCF-101" / "Panning")
    (root / "ucfTrainTestlist").mkdir()
    (root / "ucfTrainTestlist" / "classInd.txt").write_text("1 Panning\n")
    (root / "ucfTrainTestlist" / "trainlist01.txt").write_text(f"Panning/{CLIP}.avi 1\n")
    (root / "ucfTrainTestlist" / "testlist01.txt").write_text("")
    return root


@pytest.fixture(scope="module")
def expected():
    return np.load(DATA / "expected" / f"{CLIP}.npz")["arr_0"]


@pytest.fixture(scope="module")
def scheduler():
    """One shared 1-worker cluster for the tests that do not test the embedded cluster itself."""
    from distributed import LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def clean_store(ucf_tree, tmp_path_factory):
    """The reference: every clip of split 1, one worker, one clip per shard."""
    url = str(tmp_path_factory.mktemp("stores") / "one.zarr")
    assert odg("build", "ucf101", ucf_tree, url, "--fold", 1, "--subset", "all", "--dask-workers", 1,
               "--shard-size", 1, "--quiet") == 0
    return url


# -- frame folder: exact --------------------------------------------------------------------

def test_frames_build_export_exact_and_round_trip(frames_tree, scheduler, expected, tmp_path):
    url = tmp_path / "f.zarr"
    assert odg("build", "ucf101", frames_tree, url, "--fold", 1, "--subset", "train", "--frames",
               DATA / "frames", "--scheduler", scheduler, "--quiet") == 0
    st = open_store(str(url))
    assert st.kind == "es-ucf101" and st.splits == ["train1"] and st.classes == [[0, "Panning"]]
    sr = st["train1"]
    assert sr.complete and sr.sample(0).status == "kept" and sr.sample(0).name == CLIP and sr.label(0) == 0
    assert sr.sample(0).shape == (240, 320)
    assert sr.sample(0).count == (int(expected[0].sum()), int(expected[1].sum()))
    assert sr.words(0).dtype == np.uint64 and sr.words(0).shape == (240, 320)
    np.testing.assert_array_equal(sr.frames(0), expected)
    src = sr.attrs["source"]
    assert (src["split"], src["subset"], src["input"], src["frame_size"]) == (1, "train", "frames", [240, 320])
    out = tmp_path / "exp"
    assert odg("export", "es-ucf101", url, out, "--quiet") == 0
    z = np.load(out / f"{CLIP}.npz")
    assert z.files == ["arr_0"] and z["arr_0"].dtype == np.uint8
    np.testing.assert_array_equal(z["arr_0"], expected)
    assert (out / "labels.txt").read_text() == f"{CLIP} 0\n"
    assert (out / "classInd.txt").read_text() == "1 Panning\n"
    # import the export (into a second split of the same store), export again: identical arrays
    assert odg("import", "es-ucf101", out, url, "--split", "copy", "--scheduler", scheduler, "--quiet") == 0
    np.testing.assert_array_equal(open_store(str(url))["copy"].words(0), sr.words(0))
    assert odg("export", "es-ucf101", url, tmp_path / "exp2", "--quiet") == 2        # two splits: which?
    assert odg("export", "es-ucf101", url, tmp_path / "exp2", "--split", "copy", "--quiet") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "exp2" / f"{CLIP}.npz")["arr_0"], expected)
    assert (tmp_path / "exp2" / "labels.txt").read_text() == f"{CLIP} 0\n"


def test_size_option_resizes(frames_tree, scheduler, tmp_path, capsys):
    url = tmp_path / "s.zarr"
    assert odg("build", "ucf101", frames_tree, url, "--frames", DATA / "frames", "--size", 120, 160,
               "--scheduler", scheduler, "--quiet") == 0
    st = open_store(str(url))
    assert st.params == UCFParams(output_size=(120, 160)) and st.meta["params"]["output_size"] == [120, 160]
    sr = st["train1"]
    assert sr.words(0).shape == (120, 160) and sr.sample(0).shape == (120, 160)
    clip = ucf_items(frames_tree, 1, "train", DATA / "frames")[0][0].clip()
    want, _ = convert_clip(clip, UCFParams(output_size=(120, 160)), use_frames=True)
    np.testing.assert_array_equal(sr.frames(0), want)
    # a store keeps one set of conversion parameters
    capsys.readouterr()
    assert odg("build", "ucf101", frames_tree, url, "--subset", "all", "--frames", DATA / "frames", "--quiet") == 2
    assert "other conversion parameters" in capsys.readouterr().err


def test_resume_reuses_the_recorded_frames_and_size(frames_tree, scheduler, tmp_path, capsys):
    """--resume without --frames / --size: the recorded ones; given with another value: refused, named."""
    url = tmp_path / "r.zarr"
    assert odg("build", "ucf101", frames_tree, url, "--frames", DATA / "frames", "--size", 120, 160,
               "--scheduler", scheduler, "--quiet") == 0
    ref = store_bytes(str(url))
    os.remove(url / "train1" / "_odg" / "shards" / "000000.json")
    capsys.readouterr()
    assert odg("build", "ucf101", frames_tree, url, "--resume", "--size", 100, 100, "--quiet") == 2
    assert "cannot resume: --size 100 100 differs from the recorded 120 160" in capsys.readouterr().err
    assert odg("build", "ucf101", frames_tree, url, "--resume", "--scheduler", scheduler, "--quiet") == 0
    assert "1 shards built, 0 already done" in capsys.readouterr().out
    assert store_bytes(str(url)) == ref


# -- videos: outcomes, closeness, workers, info/verify, resume ------------------------------

def test_every_clip_outcome(clean_store, ucf_tree, expected):
    sr = open_store(clean_store)["all1"]
    names = list(sr.names())
    want_order = sorted(KEPT_CLIPS + list(BAD_CLIPS), key=lambda n: ({"HandStandPushups": 0, "Panning": 1,
                                                                       "Zooming": 2}[n.split("_")[1]], n))
    assert names == want_order and len(sr) == 12 and sr.complete
    assert list(sr.labels) == [{"HandStandPushups": 0, "Panning": 1, "Zooming": 2}[n.split("_")[1]] for n in names]
    assert [int(v) for v in sr.numbers[:3]] == [1, 1, 2]                      # rank within class
    for i, n in enumerate(names):
        s = sr.sample(i)
        if n in BAD_CLIPS:
            assert s.status == "rejected" and BAD_CLIPS[n] in s.reason, (n, s.reason)
        else:
            assert s.status == "kept" and s.reason == "" and s.shape == (240, 320), (n, s)
            ev = sr.frames(i)
            assert ev.shape == (2, 30, 240, 320) and s.count == (int(ev[0].sum()), int(ev[1].sum()))
    assert (sr.statuses != 1).all()                                          # nothing is ever discarded
    # the .avi build of the vector clip: within the bound of the .avi vs frame-folder comparison
    ev = sr.frames(names.index(CLIP))
    differ = ev != expected
    assert differ.mean() < MAX_DIFFERING_FRACTION
    assert differ.sum() / (ev | expected).sum() < MAX_XOR_OVER_UNION
    # and exactly what the kernel gives for each video
    i = names.index("v_Panning_g01_c01")
    item = ucf_items(ucf_tree, 1, "all")[0][i]
    want, _ = convert_clip(item.clip(), UCFParams())
    np.testing.assert_array_equal(sr.frames(i), want)


def test_two_workers_build_the_same_store(clean_store, ucf_tree, tmp_path):
    url = str(tmp_path / "two.zarr")
    assert odg("build", "ucf101", ucf_tree, url, "--fold", 1, "--subset", "all", "--dask-workers", 2,
               "--shard-size", 1, "--quiet") == 0
    assert store_bytes(url) == store_bytes(clean_store)


def test_info_and_verify(clean_store, tmp_path, capsys):
    capsys.readouterr()
    assert odg("info", clean_store, "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "es-ucf101" and info["params"]["n_frames"] == 31
    s = info["splits"]["all1"]
    assert (s["samples"], s["kept"], s["discarded"], s["rejected"], s["complete"]) == (12, 6, 0, 6, True)
    assert {r["name"]: r["reason"] for r in s["rejects"]}.keys() == BAD_CLIPS.keys()
    assert s["source"]["layout"] == "ucf101" and s["source"]["input"] == "video"
    assert odg("info", clean_store) == 0
    assert "rejected: v_Panning_g07_c01: truncated video" in capsys.readouterr().out
    assert odg("verify", clean_store) == 0
    url = str(tmp_path / "damaged.zarr")
    shutil.copytree(clean_store, url)
    os.remove(os.path.join(url, "all1", "_odg", "shards", "000003.json"))
    with open(os.path.join(url, "all1", "words", "c", "1", "0", "0"), "r+b") as f:
        f.seek(50)
        f.write(b"\x00\x01\x02\x03")
    capsys.readouterr()
    assert odg("verify", url) == 1
    out = capsys.readouterr().out
    assert "missing (never completed): shards 3" in out and "shard 1, array words" in out


def _markers(url, split):
    d = os.path.join(url, split, "_odg", "shards")
    return len(os.listdir(d)) if os.path.isdir(d) else 0


def test_killed_build_resumes_to_identical_store(clean_store, ucf_tree, tmp_path):
    url = str(tmp_path / "resumed.zarr")
    cmd = ODG + ["build", "ucf101", str(ucf_tree), url, "--fold", "1", "--subset", "all", "--dask-workers", "1",
                 "--shard-size", "1", "--quiet"]
    p = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = os.path.join(url, "all1", "_odg", "shards", "000000.json")
    try:
        t0 = time.time()
        while not os.path.exists(first):
            assert p.poll() is None, "the build ended before its first shard"
            assert time.time() - t0 < 120, "timed out waiting for the first shard"
            time.sleep(0.01)
    finally:
        os.killpg(p.pid, signal.SIGKILL)          # the client and its local cluster, mid-build
        p.wait()
    assert 1 <= _markers(url, "all1") < 12, "the build was not interrupted mid-way"
    assert not open_store(url).split("all1", allow_incomplete=True).complete
    assert odg("verify", url) == 1
    assert odg("build", "ucf101", ucf_tree, url, "--fold", 1, "--subset", "all", "--dask-workers", 1,
               "--shard-size", 1, "--quiet", "--resume") == 0
    assert store_bytes(url) == store_bytes(clean_store)


# -- split files and user errors ------------------------------------------------------------

def test_official_split_files(ucf_tree):
    train, classes = ucf_items(ucf_tree, 1, "train")
    test, _ = ucf_items(ucf_tree, 1, "test")
    everything, _ = ucf_items(ucf_tree, 1, "all")
    assert classes == ["HandstandPushups", "Panning", "Zooming"]
    assert [it.name for it in test] == TEST1 and [it.label for it in test] == [1, 2]
    assert len(train) == 10 and {it.name for it in train} | set(TEST1) == {it.name for it in everything}
    hs = train[0]
    assert (hs.name, hs.label, hs.number) == ("v_HandStandPushups_g01_c01", 0, 1)
    assert hs.video == str(ucf_tree / "UCF-101" / "HandstandPushups" / "v_HandStandPushups_g01_c01.avi")
    assert [split_name(s, sub) for s, sub in ((1, "train"), (2, "test"), (3, "all"))] == ["train1", "test2", "all3"]


def test_user_errors(ucf_tree, tmp_path, capsys):
    root = tmp_path / "u"
    shutil.copytree(ucf_tree / "ucfTrainTestlist", root / "ucfTrainTestlist")
    with open(root / "ucfTrainTestlist" / "trainlist01.txt", "a") as f:
        f.write("Basketbal/v_Basketbal_g01_c01.avi 4\r\n")
    capsys.readouterr()
    assert odg("build", "ucf101", root, tmp_path / "x.zarr", "--quiet") == 2
    err = capsys.readouterr().err
    assert "class names not in" in err and "Basketbal (trainlist01.txt:" in err
    assert not (tmp_path / "x.zarr").exists()
    assert odg("build", "ucf101", tmp_path / "nowhere", tmp_path / "x.zarr", "--quiet") == 2
    assert "classInd.txt" in capsys.readouterr().err
    assert odg("build", "ucf101", ucf_tree, tmp_path / "x.zarr", "--mode", 2, "--quiet") == 2
    assert "seed" in capsys.readouterr().err
    # no clip of the split can be read: no frame size, nothing built
    bad = tmp_path / "bad"
    shutil.copytree(ucf_tree / "ucfTrainTestlist", bad / "ucfTrainTestlist")
    (bad / "ucfTrainTestlist" / "testlist01.txt").write_text("Panning/v_Panning_g06_c01.avi\n")
    (bad / "UCF-101" / "Panning").mkdir(parents=True)
    (bad / "UCF-101" / "Panning" / "v_Panning_g06_c01.avi").write_bytes(b"")
    assert odg("build", "ucf101", bad, tmp_path / "y.zarr", "--subset", "test", "--quiet") == 2
    assert "none of the 1 clips of test1 can be read" in capsys.readouterr().err


# -- import: malformed files ----------------------------------------------------------------

def test_import_malformed_files(scheduler, expected, tmp_path, capsys):
    d = tmp_path / "pub"
    d.mkdir()
    np.savez_compressed(d / f"{CLIP}.npz", expected)
    np.savez_compressed(d / "v_HandStandPushups_g01_c01.npz", expected[:, :, ::-1])     # case-folded class
    (d / "v_Panning_g02_c02.npz").write_text("not an npz")
    np.savez_compressed(d / "v_Panning_g02_c03.npz", events=expected)                    # no arr_0
    np.savez_compressed(d / "v_Panning_g02_c04.npz", expected.astype(np.float32))
    np.savez_compressed(d / "v_Panning_g02_c05.npz", expected[:, :29])
    two = expected.copy()
    two[0, 0, 0, 0] = 2
    np.savez_compressed(d / "v_Panning_g02_c06.npz", two)
    np.savez_compressed(d / "v_Panning_g02_c07.npz", expected[:, :, :120])
    np.savez_compressed(d / "v_Basketball_g01_c01.npz", expected)
    np.savez_compressed(d / "rocket.npz", expected)
    np.save(d / "v_Panning_g02_c08.npy", expected)
    os.rename(d / "v_Panning_g02_c08.npy", d / "v_Panning_g02_c08.npz")
    (d / "notes.txt").write_text("ignored")
    classes = tmp_path / "classes.txt"
    classes.write_text(CLASSIND)
    url = str(tmp_path / "i.zarr")
    capsys.readouterr()
    assert odg("import", "es-ucf101", d, url, "--quiet") == 2               # no classInd.txt in DIR
    assert "--classes" in capsys.readouterr().err
    assert odg("import", "es-ucf101", d, url, "--classes", classes, "--split", "train1", "--scheduler", scheduler,
               "--shard-size", 4, "--quiet") == 0
    sr = open_store(url)["train1"]
    got = {str(n): (sr.sample(i).status, sr.sample(i).reason) for i, n in enumerate(sr.names())}
    assert list(sr.names())[:2] == ["v_HandStandPushups_g01_c01", CLIP] and list(sr.labels[:2]) == [0, 1]
    assert got[CLIP] == ("kept", "")
    np.testing.assert_array_equal(sr.frames(0), expected[:, :, ::-1])
    np.testing.assert_array_equal(sr.frames(1), expected)
    want = {"v_Panning_g02_c02": "not an npz file", "v_Panning_g02_c03": "no arr_0 (it holds events)",
            "v_Panning_g02_c04": "arr_0 must be uint8, got float32",
            "v_Panning_g02_c05": "arr_0 must be [2, 30, H, W], got [2, 29, 240, 320]",
            "v_Panning_g02_c06": "values other than 0 and 1",
            "v_Panning_g02_c07": "frame size 120x320 differs from the split's 240x320",
            "v_Basketball_g01_c01": "class 'Basketball' (from the clip name) is not in",
            "rocket": "not an ES-UCF101 clip name", "v_Panning_g02_c08": "not an npz file"}
    for n, why in want.items():
        assert got[n][0] == "rejected" and why in got[n][1], (n, got[n])
    assert len(got) == 2 + len(want) and int((sr.statuses == KEPT).sum()) == 2
    assert int((sr.statuses == REJECTED).sum()) == len(want)
    assert sr.sample(0).count == (int(expected[0].sum()), int(expected[1].sum()))
    np.testing.assert_array_equal(unpack_clip(sr.words(1), 30), expected)


def test_resized_store_reads_its_parameters(tmp_path):
    """A store built with --size keeps output_size and reads it back as the same UCFParams."""
    from odg.pipelines.store import SplitWriter, open_store
    from odg.video import UCFParams
    params = UCFParams(output_size=(60, 80))
    url = str(tmp_path / "p.zarr")
    SplitWriter(url, "").create_store("es-ucf101", params.to_dict(), [[0, "Panning"]], "0")
    assert open_store(url).params == params
