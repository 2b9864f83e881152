"""I2E as a store and as published files: `odg build imagenet --method i2e`, the reader, `odg info`,
`odg stats`, `odg export` (refused), `odg convert --method i2e`, on real photographs and bad files."""
import json
import os

import numpy as np
import pytest

from odg.i2e import I2EParams, i2e_events, i2e_frames, preprocess
from odg.pipelines.decode import decode_image
from odg.pipelines.imagenet import imagenet_items
from odg.pipelines.store import KEPT, KIND_I2E, REJECTED, open_store

from .test_build import odg
from .trees import bad_tree


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("i2e")
    tree = bad_tree(str(base / "tree"))
    url = str(base / "i2e.zarr")
    assert odg("build", "imagenet", tree, url, "--split", "train", "--method", "i2e", "--dask-workers", 1,
               "--shard-size", 4, "--quiet") == 0
    return tree, url


def test_store_holds_the_published_module_output(built):
    tree, url = built
    st = open_store(url)
    assert st.kind == KIND_I2E and st.method == "i2e" and st.params == I2EParams()
    assert st.meta["params"]["method"] == "i2e"
    sr = st["train"]
    items, _ = imagenet_items(tree, "train")
    assert list(sr.names()) == [it.name for it in items]
    assert sr.array("words").shape[1:] == (224, 224) and sr.array("words").dtype == np.uint16
    assert not (sr.statuses == 1).any()                               # no event floor: nothing discarded
    for i, it in enumerate(items):
        s = sr.sample(i)
        if s.status == "rejected":
            assert s.reason
            continue
        want = i2e_frames(preprocess(decode_image(it.read())))
        np.testing.assert_array_equal(sr.frames(i), want)
        assert s.shape == (224, 224) and s.count == tuple(int(v) for v in want.sum(axis=(0, 2, 3)))
        ev = sr.events(i)
        assert len(ev) == int(want.sum()) and ev["t"].min() >= 1 and ev["t"].max() <= 8
        assert ev["x"].max() < 224 and ev["y"].max() < 224
    # the tiny 1 x 600 image ODG rejects (it resizes to 0 rows) is an I2E sample: a flat image, every bit
    tiny = [i for i, it in enumerate(items) if it.name.endswith("tiny.JPEG")][0]
    assert sr.statuses[tiny] == KEPT and sr.frames(tiny).all()
    from odg.pipelines.store import StoreError
    with pytest.raises(StoreError, match="needs an es-imagenet store"):
        sr.published(0)


def test_info_stats_and_export(built, tmp_path, capsys):
    _, url = built
    assert odg("info", url) == 0
    out = capsys.readouterr().out
    assert "i2e-imagenet" in out and "method=i2e" in out and "ratio=0.12" in out
    from distributed import Client, LocalCluster

    from odg.pipelines.stats import write_report
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        html = write_report(url, str(tmp_path / "report"), client=client, progress=False)
    assert os.path.exists(html)
    stats = json.loads((tmp_path / "report" / "stats.json").read_text())
    sr = open_store(url)["train"]
    kept = np.flatnonzero(sr.statuses == KEPT)
    rate = np.mean([sr.frames(int(i)).mean() for i in kept])           # events / (224 * 224 * 8 * 2)
    assert stats["kind"] == KIND_I2E and stats["steps"] == 8
    assert stats["splits"]["train"]["event_rate"] == pytest.approx(rate, rel=1e-9)
    assert stats["splits"]["train"]["consistency"] == {"count_column_mismatches": 0, "stray_bits": 0}
    assert stats["splits"]["train"]["samples"]["rejected"] == int((sr.statuses == REJECTED).sum())
    assert any("I2E README" in r["published"] for r in stats["published"])
    assert odg("export", "es-imagenet", url, tmp_path / "exp") == 2
    assert "I2E" in capsys.readouterr().err and not (tmp_path / "exp" / "trainlabel.txt").exists()


@pytest.mark.parametrize("split", ["train", "val"])
def test_convert_writes_the_published_i2e_files(built, tmp_path, split, capsys):
    tree, _ = built
    out = tmp_path / "conv"
    assert odg("convert", os.path.join(tree, "train"), "--out", out, "--method", "i2e", "--split", split,
               "--quiet", "--threads", 1) == 0
    rows = [ln.split("\t") for ln in (out / "convert.tsv").read_text().splitlines()[1:]]
    kept = [r for r in rows if r[1] == "kept"]
    assert kept and all(r[1] in ("kept", "unreadable") for r in rows)
    for r in kept:
        z = np.load(out / r[7])
        assert z.files == ["arr_0"] and z["arr_0"].dtype == bool and z["arr_0"].shape == (8, 2, 224, 224)
        img = decode_image(open(r[0], "rb").read())
        want = i2e_events(preprocess(img, I2EParams(), split))
        np.testing.assert_array_equal(z["arr_0"], i2e_frames(preprocess(img, I2EParams(), split)).astype(bool))
        assert int(r[2]) == want.count and (r[5], r[6]) == ("224", "224")
    assert "(i2e)" in capsys.readouterr().out
    assert odg("convert", tree, "--out", tmp_path / "x", "--method", "i2e", "--threshold", "0.2") == 2
