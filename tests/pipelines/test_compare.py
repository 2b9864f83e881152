"""`odg compare`, the dataset card and the report of a store holding train and val, on real stores:
a store built from an ILSVRC2012-like tree of real photographs, the same store exported to the
published layout and imported back (they must compare identical), and a deliberately altered
copy of that export (a file dropped, events flipped) imported the same way."""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from odg import ODGParams
from odg.pipelines.store import KEPT, open_store

from .render import check_files, check_render, refs
from .trees import VEC, tar_from_tree, vector_tree

REPO = Path(__file__).resolve().parents[2]
VAL = {"ILSVRC2012_val_00000001.JPEG": "clock_motion",     # discarded (under the floor)
       "ILSVRC2012_val_00000002.JPEG": "astronaut",        # kept, 254 x 254
       "ILSVRC2012_val_00000005.JPEG": "coffee"}           # kept, 169 x 254
DROPPED = "class0/class0_2.npz"                            # cell, dropped from the altered copy
FLIPPED = "ILSVRC2012_val_00000005.npz"                    # coffee: 3 ON events removed, 2 OFF events added


def build(url, root, split, client, params=None):
    from odg.pipelines.build import run_build
    from odg.pipelines.imagenet import build_spec
    report = run_build(build_spec(str(url), str(root), split, shard_size=2, params=params), progress=False, client=client)
    assert not report.failed
    return str(url)


def import_published(src, url, client):
    from functools import partial

    from odg.pipelines.build import run_build
    from odg.pipelines.imagenet import es_imagenet_spec
    from odg.pipelines.importer import convert_npz, published_items
    params = ODGParams()
    for split in ("train", "val"):
        items, source = published_items(str(src), split)
        spec = es_imagenet_spec(str(url), split, items, source, partial(convert_npz, params=params), 2, params)
        assert not run_build(spec, progress=False, client=client).failed
    return str(url)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("ilsvrc")
    vector_tree(str(root))
    (root / "val").mkdir()
    for name, img in VAL.items():
        shutil.copy(os.path.join(VEC, "images", f"{img}.png"), root / "val" / name)
    return root


@pytest.fixture(scope="module")
def built(tree, client, tmp_path_factory):
    """train by the `odg` command (its card records that command line), val through the API."""
    url = str(tmp_path_factory.mktemp("built") / "built.zarr")
    cmd = [sys.executable, "-m", "odg", "build", "imagenet", str(tree), url, "--split", "train", "--dask-workers", "1",
           "--shard-size", "2", "--quiet"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    build(url, tree, "val", client)
    return url, cmd


@pytest.fixture(scope="module")
def published(built, tmp_path_factory):
    from odg.pipelines.export import export_es_imagenet
    out = str(tmp_path_factory.mktemp("published") / "ES-imagenet")
    export_es_imagenet(built[0], out, progress=False)
    return out


@pytest.fixture(scope="module")
def imported(published, client, tmp_path_factory):
    return import_published(published, tmp_path_factory.mktemp("imported") / "imported.zarr", client)


@pytest.fixture(scope="module")
def altered(published, client, tmp_path_factory):
    """The export with DROPPED removed (file and label line) and FLIPPED's events changed, imported."""
    base = tmp_path_factory.mktemp("altered")
    src = base / "ES-imagenet"
    shutil.copytree(published, src)
    (src / "train" / DROPPED).unlink()
    lines = (src / "trainlabel.txt").read_text().splitlines(keepends=True)
    (src / "trainlabel.txt").write_text("".join(x for x in lines if not x.startswith(DROPPED + " ")))
    with np.load(src / "val" / FLIPPED) as z:
        pos, neg = z["pos"], z["neg"]
    taken = {tuple(e) for e in np.concatenate([pos, neg]).tolist()}
    free = [(r, c, 1) for r in range(17, 240) for c in range(17, 240) if (r, c, 1) not in taken][:2]
    neg = np.concatenate([np.array(free, np.uint8), neg])
    neg = neg[np.lexsort((neg[:, 1], neg[:, 0], neg[:, 2]))]
    np.savez_compressed(src / "val" / FLIPPED, pos=pos[3:], neg=neg)
    return import_published(src, base / "altered.zarr", client)


# -- odg compare --------------------------------------------------------------------------

def odg(*args) -> int:
    from odg.pipelines.cli import main
    return main([str(a) for a in args])


def test_tree_store_equals_its_published_layout_imported(built, imported, client, capsys):
    """Export then import: every kept sample matched (train by class and number, val by the stem of the
    name, JPEG here and npz there) and identical; `odg compare` exits 0."""
    url = built[0]
    a, b = open_store(url), open_store(imported)
    assert sorted(str(n) for n in a["val"].names()) == sorted(VAL)
    assert sorted(str(n) for n in b["val"].names()) == ["ILSVRC2012_val_00000002.npz", "ILSVRC2012_val_00000005.npz"]
    assert odg("compare", url, imported, "--scheduler", client.scheduler.address, "--json", "--quiet") == 0
    c = json.loads(capsys.readouterr().out)
    assert c["equal"] is True and c["params_equal"] is True and c["splits_only_in_a"] == c["splits_only_in_b"] == []
    for split in ("train", "val"):
        v = c["splits"][split]
        kept = int((a[split].statuses == KEPT).sum())
        assert kept == int((b[split].statuses == KEPT).sum()) > 0
        assert (v["matched"], v["identical"], v["different"], v["only_in_a"], v["only_in_b"]) == (kept, kept, 0, 0, 0)
        assert v["events_only_in_a"] == v["events_only_in_b"] == 0 and v["differences"] == []


def _events(sr, i) -> set:
    ev = sr.events(i)
    return set(zip(ev["x"].tolist(), ev["y"].tolist(), ev["t"].tolist(), ev["p"].tolist()))


def test_altered_copy_differs_sample_by_sample(built, altered, client, capsys, tmp_path):
    url = built[0]
    assert odg("compare", url, altered, "--scheduler", client.scheduler.address, "--quiet", "--out", tmp_path) == 1
    text = capsys.readouterr().out
    assert "stores DIFFER" in text and f"only in A: {DROPPED}" in text and f"different: {FLIPPED}" in text
    c = json.loads((tmp_path / "compare.json").read_text())
    assert c["equal"] is False
    t, v = c["splits"]["train"], c["splits"]["val"]
    a, b = open_store(url), open_store(altered)
    assert (t["only_in_a"], t["only_in_b"], t["different"]) == (1, 0, 0)
    assert t["identical"] == int((a["train"].statuses == KEPT).sum()) - 1
    (only,) = t["only_in_a_listed"]
    assert only["key"] == DROPPED and only["name"] == "n01440764/cell.JPEG" and only["status_in_b"] == "absent"
    assert (v["different"], v["only_in_a"], v["only_in_b"]) == (1, 0, 0)
    (d,) = v["differences"]
    assert d["key"] == FLIPPED and d["differs"] == ["events"] and d["name_a"] == "ILSVRC2012_val_00000005.JPEG"
    # the event difference, straight from the two stores' decoded events
    ea, eb = _events(a["val"], d["index_a"]), _events(b["val"], d["index_b"])
    assert (d["events_only_in_a"], d["events_only_in_b"]) == (len(ea - eb), len(eb - ea)) == (3, 2)
    assert (v["events_only_in_a"], v["events_only_in_b"]) == (3, 2)
    assert (d["events_a"], d["events_b"]) == (len(ea), len(eb))
    p = refs(tmp_path / "compare.html")                                  # a page of text and tables
    assert [r for r in p.refs if not r.startswith("#")] == ["compare.json"]
    html = (tmp_path / "compare.html").read_text()
    assert DROPPED in html and FLIPPED in html and "The stores differ" in html


def test_different_grid_compares_decoded_events(built, tree, client, tmp_path):
    """A store built with the centred window keeps other canvas positions: pairs are compared on their
    decoded events (the square image agrees; the landscape one gains the rows the uncentred window cuts)."""
    from odg.pipelines.compare import compare_stores
    url = build(tmp_path / "centred.zarr", tree, "val", client, ODGParams(centred_window=True))
    c = compare_stores(built[0], url, ["val"], client=client, progress=False)
    v = c["splits"]["val"]
    assert c["params_equal"] is False
    a, b = open_store(built[0])["val"], open_store(url)["val"]
    want = {}
    for i in np.flatnonzero(a.statuses == KEPT):
        j = int(np.flatnonzero(b.names() == a.names()[i])[0])
        ea, eb = _events(a, int(i)), _events(b, j)
        want[str(a.names()[i])] = (len(ea - eb), len(eb - ea))
    got = {d["name_a"]: (d["events_only_in_a"], d["events_only_in_b"]) for d in v["differences"]}
    assert got == {k: w for k, w in want.items() if w != (0, 0)}
    assert want["ILSVRC2012_val_00000002.JPEG"] == (0, 0) and v["identical"] == 1
    assert (v["events_only_in_a"], v["events_only_in_b"]) == (sum(w[0] for w in want.values()),
                                                               sum(w[1] for w in want.values()))
    assert want["ILSVRC2012_val_00000005.JPEG"][1] > 0            # the centred window reaches its top rows


def test_ucf_clips_matched_by_name(tmp_path, client):
    """ES-UCF101 stores: clips matched by name across different orders; one flipped bit is one event."""
    import dataclasses

    from odg.pipelines.compare import compare_stores
    from odg.pipelines.store import SplitWriter
    from odg.pipelines.store.schema import KIND_UCF101
    from odg.video import UCFParams, pack_clip
    clip = np.load(REPO / "tests" / "data" / "ucf" / "expected" / "v_Panning_g02_c01.npz")["arr_0"]
    words = [pack_clip(clip), pack_clip(clip[::-1, ::-1].copy())]
    names = ["v_Panning_g02_c01", "v_ApplyEyeMakeup_g01_c01"]

    def store(url, order, flip=False):
        w = np.stack([words[k] for k in order])
        if flip:
            w[0, 5, 7] ^= np.uint64(1 << 4)
        SplitWriter(url, "").create_store(KIND_UCF101, dataclasses.asdict(UCFParams()),
                                          [[0, "ApplyEyeMakeup"], [1, "Panning"]], "t")
        SplitWriter(url, "all").create(2, 2, w.shape[1:], np.uint64, {"t": 1}, {"layout": "published"})
        SplitWriter(url, "all").write_shard(0, {"label": np.array([1 - k for k in order], np.int16),
                                           "number": np.array([1, 1], np.int32), "name": np.array([names[k] for k in order]),
                                           "status": np.zeros(2, np.int8), "reason": np.array(["", ""]),
                                           "shape": np.array([w.shape[1:]] * 2, np.int16),
                                           "count": np.array([[1, 1], [1, 1]], np.int32), "words": w}, {})
        SplitWriter(url, "all").finish()
        return url
    a = store(str(tmp_path / "a.zarr"), [0, 1])
    b = store(str(tmp_path / "b.zarr"), [1, 0], flip=True)
    v = compare_stores(a, b, client=client, progress=False)["splits"]["all"]
    assert (v["matched"], v["identical"], v["different"]) == (2, 1, 1)
    (d,) = v["differences"]
    bit_was_set = bool(int(words[1][5, 7]) >> 4 & 1)
    assert d["key"] == names[1] and (d["events_only_in_a"], d["events_only_in_b"]) == ((1, 0) if bit_was_set else (0, 1))


def test_compare_refuses_what_it_cannot_compare(built, tmp_path, capsys):
    assert odg("compare", built[0], tmp_path / "missing.zarr", "--quiet") == 2
    assert "no store" in capsys.readouterr().err
    assert odg("compare", built[0], built[0], "--split", "nope", "--quiet") == 2
    assert "no split 'nope'" in capsys.readouterr().err


# -- the dataset card ---------------------------------------------------------------------

def _tree_digest(path) -> str:
    lines = sorted((os.path.relpath(os.path.join(d, f), path).replace(os.sep, "/"), os.path.getsize(os.path.join(d, f)))
                   for d, _, fs in os.walk(path) for f in fs)
    return hashlib.sha256("".join(f"{r}\t{s}\n" for r, s in lines).encode()).hexdigest()


def _card(url, split):
    return json.loads((Path(url) / split / "_odg" / "card.json").read_text())


def _commit() -> str:
    import odg as pkg
    root = Path(pkg.__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return "release"
    return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def test_build_and_import_write_cards(built, tree, imported, published, capsys):
    url, cmd = built
    terms = json.loads((REPO / "pipelines" / "data" / "dataset_terms.json").read_text())["kinds"]["es-imagenet"]
    card = _card(url, "train")
    assert card["command"] == shlex.join(["odg"] + cmd[3:])
    assert card["odg"]["version"] == "0.1.0" and card["odg"]["commit"] == _commit()
    assert card["counts"] == {"samples": 5, "kept": 4, "discarded": 1, "rejected": 0}
    assert card["source"]["layout"] == "folder" and card["source"]["path"] == str(tree / "train")
    (dg,) = card["source"]["digest"]
    assert dg["kind"] == "tree" and dg["sha256"] == _tree_digest(tree / "train") and dg["files"] == 5
    assert card["method"]["published_params"] is True and card["terms"] == terms and not card["resumed"]
    assert card["date"].endswith("Z") and card["date"][:2] == "20"
    icard = _card(imported, "val")
    assert icard["source"]["layout"] == "published" and icard["counts"]["kept"] == 2
    assert icard["source"]["digest"][0]["sha256"] == _tree_digest(published)
    # odg info --card: the same facts as Markdown
    assert odg("info", url, "--card") == 0
    md = capsys.readouterr().out
    assert md.startswith(f"# Dataset card: `{url}`") and "## Split `train`" in md and "## Split `val`" in md
    for want in (f"`{card['command']}`", dg["sha256"], card["odg"]["commit"], terms["citations"][0]["text"],
                 "non-commercial research", "min_events = 1000", "5: 4 kept, 1 discarded, 0 rejected"):
        assert want in md, want


def test_archive_card_records_the_archive_checksums(tree, client, tmp_path):
    arch = tar_from_tree(str(tree), str(tmp_path / "arch"))
    url = build(tmp_path / "arch.zarr", arch, "train", client)
    (dg,) = _card(url, "train")["source"]["digest"]
    data = Path(arch, "ILSVRC2012_img_train.tar").read_bytes()
    assert dg["kind"] == "file" and dg["bytes"] == len(data)
    assert dg["sha256"] == hashlib.sha256(data).hexdigest() and dg["md5"] == hashlib.md5(data).hexdigest()
    # checked against the md5 published for the real ILSVRC2012 train archive (which this small tar is not)
    assert dg["published_md5"] == "1d675b47d978889d74fa0da5fadfb00e" and dg["matches_published"] is False
    cached = json.loads((Path(url) / "train" / "_odg" / "source_digest.json").read_text())
    assert cached == [dg]


# -- the report of a store with train and val, with a comparison section ---------------------

def test_report_overlays_splits_and_shows_the_comparison(imported, altered, client, tmp_path):
    from odg.pipelines.stats import write_report
    path = write_report(imported, str(tmp_path / "report"), client=client, progress=False, compare=altered)
    stats = json.loads((tmp_path / "report" / "stats.json").read_text())
    assert list(stats["splits"]) == ["train", "val"] and stats["comparison"]["equal"] is False
    assert stats["comparison"]["splits"]["train"]["only_in_b"] == 0
    assert all(stats["cards"][s]["source"]["layout"] == "published" for s in ("train", "val"))
    html = Path(path).read_text()
    assert 'src="distributions.png"' in html
    check_files(path)
    check_render(path, tmp_path, ["method", "card", "datasets", "compare", "split-train", "split-val"])
