"""The `odg convert`, `odg reconstruct` and `odg demo` commands on real files."""
import os
import shutil

import cv2
import numpy as np

from odg import edge_integral_events, edge_integral_image, odg_events
from odg.pipelines.cli import main as odg_main

from .trees import BAD_FILES, VEC


def odg(*args):
    return odg_main([str(a) for a in args])


def test_convert_folder_writes_published_files_and_tsv(tmp_path, capsys):
    src = tmp_path / "in"
    shutil.copytree(os.path.join(VEC, "images"), src)
    for name, (data, _) in BAD_FILES.items():
        (src / name.replace(".JPEG", ".jpg")).write_bytes(data)
    out = tmp_path / "out"
    assert odg("convert", src, "--out", out, "--quiet", "--threads", 2) == 0
    for stem in ("astronaut", "page", "cell", "coffee"):
        z, got = np.load(os.path.join(VEC, "expected", stem + ".npz")), np.load(out / f"{stem}.npz")
        np.testing.assert_array_equal(got["pos"], z["pos"])
        np.testing.assert_array_equal(got["neg"], z["neg"])
    assert not (out / "clock_motion.npz").exists()
    rows = [line.split("\t") for line in (out / "convert.tsv").read_text().splitlines()]
    assert rows[0][:3] == ["input", "status", "events"]
    by = {os.path.basename(r[0]): r for r in rows[1:]}
    assert len(by) == 5 + len(BAD_FILES)
    assert by["astronaut.png"][1:5] == ["kept", "39940", "19909", "20031"] and by["astronaut.png"][5:7] == ["254", "254"]
    assert by["clock_motion.png"][1:3] == ["discarded", "710"]
    for name, (_, why) in BAD_FILES.items():
        r = by[name.replace(".JPEG", ".jpg")]
        assert r[1] == "unreadable" and why in r[-1]
    assert "4 kept, 1 discarded" in capsys.readouterr().out


def test_convert_exit_status(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    assert odg("convert", bad, "--out", tmp_path / "o", "--quiet") == 1          # nothing could be read
    assert "empty file" in (tmp_path / "o" / "convert.tsv").read_text()
    assert odg("convert", tmp_path / "empty_dir_missing", "--out", tmp_path / "o2", "--quiet") == 1
    good = os.path.join(VEC, "images", "clock_motion.png")                    # read, but discarded: success
    assert odg("convert", good, bad, "--out", tmp_path / "o3", "--quiet") == 0


def test_reconstruct_image_and_npz(tmp_path):
    img = os.path.join(VEC, "images", "coffee.png")
    assert odg("reconstruct", img, "--out", tmp_path / "a.png") == 0
    r = odg_events(cv2.imread(img))
    want = edge_integral_image(edge_integral_events(r.events, r.shape))
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_GRAYSCALE), want)
    npz = os.path.join(VEC, "expected", "coffee.npz")
    assert odg("reconstruct", npz, "--shape", 169, 254, "--out", tmp_path / "b.png") == 0
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "b.png"), cv2.IMREAD_GRAYSCALE), want)
    assert odg("reconstruct", tmp_path / "a.png", "--out", tmp_path / "c.png") == 0   # any image
    (tmp_path / "x.npz").write_bytes(b"junk")
    assert odg("reconstruct", tmp_path / "x.npz", "--out", tmp_path / "d.png") == 2


def test_demo_runs_end_to_end(tmp_path, capsys):
    assert odg("demo", "--out", tmp_path / "demo", "--quiet") == 0
    out = capsys.readouterr().out
    assert "sample.zarr" in out and "kept" in out
    assert len(os.listdir(tmp_path / "demo" / "reconstructions")) == 7
    assert (tmp_path / "demo" / "converted" / "convert.tsv").exists()
    from odg.pipelines.store import open_store
    sr = open_store(str(tmp_path / "demo" / "sample.zarr"))["train"]
    assert len(sr) == 7 and sr.complete
