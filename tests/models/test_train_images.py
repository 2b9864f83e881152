"""`odg train --images`: training straight from ILSVRC2012-layout JPEGs converted on the fly (ODG and
I2E, with and without augmentation), with the store path's presets, checkpoints, metrics and DDP.

The tree holds real photographs (the ODG test-vector images and the bundled ILSVRC2012 sample JPEGs,
with mirror images for training, centre crops for validation; 4 classes) and one unreadable file.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from odg import Augment
from odg.models.train import TrainError, TrainOptions, get_preset, load_checkpoint, read_metrics, train
from odg.pipelines.cli import main as odg

from .test_train import ROOT, SIZE, WNIDS, one_thread, photo_tree, tiny  # noqa: F401 (one_thread: autouse)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = photo_tree(tmp_path_factory.mktemp("images") / "ilsvrc")
    (root / "train" / WNIDS[0] / "broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return str(root)


def run(tree, out, epochs=1, **kw):
    recipe = get_preset("es-imagenet-resnet18").override(epochs=epochs, batch_size=4)
    return train(TrainOptions(store=None, images=tree, out=str(out), recipe=recipe, model=kw.pop("model", tiny()),
                              input_size=SIZE, progress=False, log=lambda m: None, **kw))


def test_an_epoch_from_jpegs_with_augmentation_resumes_exactly(tree, tmp_path, method="i2e"):
    aug = Augment(seed=7)
    full = run(tree, tmp_path / "full", epochs=2, method=method, augment=aug, workers=0, seed=1)
    rows = read_metrics(tmp_path / "full" / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2] and all(np.isfinite(r["train_loss"]) for r in rows)
    assert rows[-1]["val_top1"] is not None and rows[-1]["val_top5"] is not None
    ck = load_checkpoint(tmp_path / "full" / "last.pt")
    assert ck["options"]["images"] == tree and ck["options"]["method"] == method
    assert ck["options"]["augment"]["seed"] == 7 and ck["epoch"] == 2
    cfg = json.loads((tmp_path / "full" / "config.json").read_text())
    assert cfg["options"]["augment"]["scale"] == [0.08, 1.0]
    skipped = [ln.split("\t") for ln in (tmp_path / "full" / "skipped.tsv").read_text().splitlines()]
    assert [s[3] for s in skipped if s[2].endswith("broken.JPEG")] == ["rejected"]      # remembered: once
    others = {s[3] for s in skipped if not s[2].endswith("broken.JPEG")}
    assert not others                                                       # I2E has no event floor
    part = run(tree, tmp_path / "part", epochs=1, method=method, augment=aug, workers=0, seed=1)
    assert part["hash"] != full["hash"]
    resumed = run(tree, tmp_path / "part", epochs=2, method=method, augment=aug, workers=2, seed=1,
                  resume=True)
    assert resumed["hash"] == full["hash"]                      # the same crops whatever the workers
    with pytest.raises(TrainError, match="different augment"):
        run(tree, tmp_path / "part", epochs=3, method=method, augment=Augment(seed=8), seed=1,
            resume=True)


def test_validation_metrics_equal_the_store_path(tree, tmp_path):
    """One network, evaluated on the val split from JPEGs and from a store built from them: the same."""
    from distributed import Client, LocalCluster

    from odg.pipelines.build import run_build
    from odg.pipelines.imagenet import build_spec
    url = str(tmp_path / "s.zarr")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        assert not run_build(build_spec(url, tree, "val"), client=client, progress=False).failed
    from odg.models.data import ESDataset
    from odg.models.imagenet_events import ImageNetEvents
    from odg.models.train.distributed import setup
    from odg.models.train.inputs import eval_loader
    from odg.models.train.loop import evaluate
    cfg = tiny()
    torch.manual_seed(0)
    model = cfg.build()
    env = setup("cpu")
    try:
        got = [evaluate(model, eval_loader(ds, 4, 0, 0, 1, torch.Generator()), cfg, SIZE, env, None, None)
               for ds in (ImageNetEvents(tree, "val", skips="drop"), ESDataset(url, "val"))]
    finally:
        env.cleanup()
    assert got[0][:2] == got[1][:2] and got[0][0] is not None             # top-1, top-5: the same samples
    assert got[0][2] == pytest.approx(got[1][2], rel=1e-5)


def test_cli_user_errors(tree, tmp_path, capsys):
    base = ["train", "--model", "lif_tiny", "--out", str(tmp_path / "x"), "--quiet"]
    for extra, msg in ((["--images", tree, "--store", "s.zarr"], "one of the two"), ([], "one of the two"),
                       (["--images", tree, "--augment", "zoom"], "comma list"),
                       (["--store", "s.zarr", "--method", "i2e"], "apply to --images"),
                       (["--images", tree, "--input", "rgb"], "rgb"),
                       (["--images", tree, "--method", "i2e", "--input", "ei"], "method odg")):
        assert odg(base + extra) == 2, extra
        assert msg in capsys.readouterr().err


def test_two_process_ddp_cli_from_images(tree, tmp_path):
    """`odg train --images ROOT --augment crop,flip` under torchrun: ODG on the fly, 2 ranks agree."""
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "odg", "train", "--images", tree, "--augment", "crop,flip", "--model", "lif_tiny",
           "--surrogate-halfwidth", "0.75", "--input-size", str(SIZE), "--batch-size", "4", "--num-classes", "4",
           "--epochs", "1", "--out", str(out), "--quiet", "--device", "cpu"]
    p = subprocess.run(cmd, env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "1 epochs, 3 steps" in p.stdout                                     # 21 inputs: 11 per rank
    ranks = json.loads((out / "ranks.json").read_text())
    assert ranks["world_size"] == 2 and len(set(ranks["weights_sha256"])) == 1
    rows = read_metrics(out / "metrics.jsonl")
    assert len(rows) == 1 and rows[0]["step"] == 3 and rows[0]["val_top1"] is not None
    ck = load_checkpoint(out / "last.pt")
    assert ck["options"]["method"] == "odg" and ck["world_size"] == 2
    aug = ck["options"]["augment"]
    assert aug["crop"] and aug["flip"] == 0.5 and not aug["directions"]
