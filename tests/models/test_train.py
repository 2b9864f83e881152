"""`odg.models.train` and `odg.models.pretrain` (odg train, odg pretrain ann/transfer) on a tiny real store.

The store is built from real photographs (the ODG test-vector images and the bundled ILSVRC2012
sample JPEGs, with mirror images for training and centre crops for validation; 4 classes), so
every path runs on genuine ES-ImageNet samples; frames are average-pooled to 32 x 32 and the
networks are the tiny ResNets of `odg.models.small`. Where a LIF network must learn, the tests use the
opt-in surrogate window 0.75 (with the published 0.5 a LIF-ResNet's blocks pass no gradient).
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from odg.models.pretrain import ramp, sharpen, sharpened_relu
from odg.models.pretrain.transfer import TransferError, transfer_checkpoint
from odg.models.train import ModelConfig, TrainError, TrainOptions, get_preset, load_checkpoint, read_metrics, state_hash, train
from odg.pipelines.cli import main as odg

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "tests" / "data" / "odg" / "images"
SAMPLE = ROOT / "pipelines" / "data" / "sample" / "train"
WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361"]        # classes 0..3
SIZE = 32
WIDE = {"surrogate_halfwidth": 0.75}                                 # opt-in: LIF blocks pass gradients


def _photos() -> list[Path]:
    photos = [IMAGES / f"{n}.png" for n in ("astronaut", "cell", "page", "coffee")]
    photos = [p for p in photos if p.exists()] + sorted(SAMPLE.glob("*/*.JPEG"))
    assert len(photos) >= 8, f"test photographs missing from {IMAGES} and {SAMPLE}"
    return photos


def photo_tree(tree: Path) -> Path:
    """ILSVRC2012-layout tree: train (photos + mirror images) and val (centre crops), 4 classes."""
    for i, p in enumerate(_photos()):
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        wnid = WNIDS[i % len(WNIDS)]
        for split in ("train", "val"):
            (tree / split / wnid).mkdir(parents=True, exist_ok=True)
        h, w = img.shape[:2]
        assert cv2.imwrite(str(tree / "train" / wnid / f"p{i}.JPEG"), img)
        assert cv2.imwrite(str(tree / "train" / wnid / f"p{i}_m.JPEG"), np.ascontiguousarray(img[:, ::-1]))
        assert cv2.imwrite(str(tree / "val" / wnid / f"p{i}_c.JPEG"), img[h // 8:h - h // 8, w // 8:w - w // 8])
    return tree


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """ES-ImageNet store with train (photos + mirror images) and val (centre crops) splits."""
    tmp = tmp_path_factory.mktemp("train_store")
    tree = photo_tree(tmp / "tree")
    url = str(tmp / "store.zarr")
    for split, shard in (("train", 8), ("val", 4)):
        assert odg(["build", "imagenet", str(tree), url, "--split", split, "--dask-workers", "1",
                    "--shard-size", str(shard), "--quiet"]) == 0
    return url


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the machine's two cores are shared, and spinning threads slow tiny nets."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(name="lif_tiny", input="events", ann=False, steps=None, neuron=None, in_channels=None):
    from odg.models import LIFParams
    params = dataclasses.asdict(LIFParams(learn_decay=not ann, **WIDE)) if neuron is None else neuron
    channels = {"events": 2, "mean": 2, "ei": 1, "rgb": 3}[input] if in_channels is None else in_channels
    return ModelConfig(name, num_classes=4, in_channels=channels, input=input, steps=steps, neuron=params, ann=ann)


def run(store, out, model=None, preset="es-imagenet-resnet18", epochs=2, limit=None, val="val", **kw):
    recipe = get_preset(preset).override(epochs=epochs, batch_size=kw.pop("batch_size", 4), lr=kw.pop("lr", None))
    return train(TrainOptions(store=store, out=str(out), recipe=recipe, model=model, input_size=SIZE,
                              limit_steps=limit, val_split=val, progress=False, log=lambda m: None, **kw))


# -- presets, sharpened ReLU --------------------------------------------------------------------

def test_presets_are_the_published_recipes():
    r = get_preset("es-imagenet-resnet18")
    assert (r.optimizer, r.lr, r.schedule, r.step_size, r.gamma, r.epochs, r.batch_size) == \
        ("adam", 0.03, "step", 15, 0.3, 25, 22)
    s = get_preset("pipes-finetune")
    assert (s.optimizer, s.schedule, s.milestones, s.gamma) == ("sgd", "multistep", (2, 4, 6, 8), 0.3)
    d = get_preset("piped")
    assert (d.optimizer, d.lr, d.milestones, d.stem_warmup) == ("sgd", 0.1, (10, 20), 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.lr = 1.0
    o = r.override(lr=0.1, epochs=None, milestones=[3])
    assert (o.lr, o.epochs, o.schedule, o.milestones, o.optimizer) == (0.1, 25, "multistep", (3,), "adam")
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("nope")


def test_sharpened_relu_ramp_and_surrogate_backward():
    assert ramp(0) == (0.0, 1.0) and ramp(50) == (0.25, 0.75) and ramp(500) == (0.49, 0.51)
    x = torch.tensor([-0.5, 0.0, 0.2, 0.5, 0.7, 1.0, 1.5], requires_grad=True)
    y = sharpened_relu(x, epoch=0)
    assert torch.equal(y, x.detach().clamp(0, 1))
    y.sum().backward()                                           # the SNN's rectangular surrogate
    assert x.grad.tolist() == [0, 0, 1, 1, 1, 0, 0]
    assert sharpened_relu(x.detach(), epoch=50).tolist() == pytest.approx([0, 0, 0, 0.5, 0.9, 1, 1])
    ann = sharpen(tiny(ann=True, input="mean").build())
    snn = tiny(input="mean", steps=6).build()
    assert {k: v.shape for k, v in ann.state_dict().items()} == {k: v.shape for k, v in snn.state_dict().items()}


def test_edge_integral_batch_equals_odg(store):
    from odg import edge_integral
    from odg.models.data import ESDataset
    from odg.models.train.inputs import edge_integral_batch
    from odg.pipelines.store import open_store
    st = open_store(store)
    frames, _ = next(iter(ESDataset(store, "val").loader(3, shuffle=False)))
    ei = edge_integral_batch(frames, st.params)
    for b in range(frames.shape[1]):
        assert np.array_equal(ei[b].numpy(), edge_integral(frames[:, b].numpy(), st.params))


# -- training ---------------------------------------------------------------------------------

def test_loss_decreases_and_metrics_plot_are_well_formed(store, tmp_path):
    res = run(store, tmp_path / "run", model=tiny("liaf_tiny"), epochs=5, lr=0.01)
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5] and rows == res["rows"]
    for r in rows:
        assert set(r) >= {"epoch", "wall_time", "train_loss", "val_top1", "val_top5", "samples_per_s", "lr"}
        assert 0 <= r["val_top1"] <= r["val_top5"] <= 100 and r["samples_per_s"] > 0 and r["lr"] > 0
    assert [r["wall_time"] for r in rows] == sorted(r["wall_time"] for r in rows)
    assert rows[-1]["train_loss"] < 0.8 * rows[0]["train_loss"], [r["train_loss"] for r in rows]
    assert rows[-1]["step"] == 5 * 5                                 # 20 kept samples, batch 4
    png = tmp_path / "run" / "accuracy_vs_time.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image
    assert matplotlib.image.imread(str(png)).shape[2] in (3, 4)
    ck = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ck["epoch"] == 5 and ck["step"] == 25 and set(ck["rng"]) >= {"torch", "numpy", "python"}
    assert ck["sampler_epoch"] == 5 and "optimizer" in ck and "scheduler" in ck


def test_accuracy_plot_has_room_above_100_and_a_train_loss_panel(tmp_path):
    from odg.models.train import plot_accuracy_vs_time
    rows = [{"epoch": e, "wall_time": 12.0 * e, "train_loss": 2.4 / e, "val_top1": min(100.0, 55.0 + 15 * e),
             "val_top5": 100.0} for e in range(1, 5)]
    acc, loss = plot_accuracy_vs_time({"run": rows}, tmp_path / "accuracy_vs_time.png", title="t")
    lo, hi = acc.get_ylim()
    assert lo == 0 and hi > 100 and max(acc.get_yticks()) == 100        # a curve at 100 % is not on the frame
    assert loss is not None and loss.get_ylabel().startswith("training loss") and acc.get_shared_x_axes().joined(acc, loss)
    (line,) = loss.get_lines()
    assert list(line.get_ydata()) == [r["train_loss"] for r in rows] and list(line.get_xdata()) == [12.0, 24.0, 36.0, 48.0]
    assert (tmp_path / "accuracy_vs_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "training loss" in (tmp_path / "accuracy_vs_time.svg").read_text()
    # drawn into a caller's axes: accuracy only, unless a loss axes is given too
    from matplotlib.figure import Figure
    ax = Figure().add_subplot()
    assert plot_accuracy_vs_time({"run": rows}, None, ax=ax) == (ax, None) and ax.get_ylim()[1] > 100


def test_resume_continues_exactly(store, tmp_path):
    kw = dict(model=tiny(), limit=2, val=None, seed=3)
    full = run(store, tmp_path / "full", epochs=3, **kw)
    first = run(store, tmp_path / "part", epochs=1, **kw)
    assert first["hash"] != full["hash"]
    resumed = run(store, tmp_path / "part", epochs=3, resume=True, **kw)
    assert resumed["hash"] == full["hash"] and resumed["steps"] == full["steps"] == 6
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "part" / "last.pt")
    assert state_hash(a["model"]) == state_hash(b["model"])
    assert [r["train_loss"] for r in read_metrics(tmp_path / "part" / "metrics.jsonl")] == \
        [r["train_loss"] for r in read_metrics(tmp_path / "full" / "metrics.jsonl")]
    with pytest.raises(TrainError, match="different recipe"):
        run(store, tmp_path / "part", epochs=4, resume=True, lr=0.5, **kw)


def test_two_process_ddp_on_cpu_agrees(store, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "odg", "train", store, "--model", "lif_tiny", "--surrogate-halfwidth", "0.75",
           "--input-size", str(SIZE), "--batch-size", "4", "--num-classes", "4", "--epochs", "1",
           "--out", str(out), "--quiet", "--device", "cpu"]
    p = subprocess.run(cmd, env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    ranks = json.loads((out / "ranks.json").read_text())
    assert ranks["world_size"] == 2 and len(set(ranks["weights_sha256"])) == 1
    ck = load_checkpoint(out / "last.pt")
    assert ck["world_size"] == 2 and state_hash(ck["model"]) == ranks["weights_sha256"][0]
    rows = read_metrics(out / "metrics.jsonl")
    assert len(rows) == 1 and rows[0]["step"] == 3                  # 20 samples: 10 per rank, batch 4
    assert rows[0]["val_top1"] is not None


# -- pipeS: ANN -> SNN ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ann_ckpt(store, tmp_path_factory):
    """A sharpened-ReLU ANN trained briefly on the split's source JPEGs (3 channels)."""
    out = tmp_path_factory.mktemp("ann")
    res = run(store, out, model=tiny(ann=True, input="rgb"), preset="pipes-ann", epochs=2, limit=2)
    assert res["rows"][-1]["val_top1"] is not None
    return out / "last.pt"


def test_transfer_ann_to_snn_maps_everything_and_matches_first_step(ann_ckpt, tmp_path):
    src = load_checkpoint(ann_ckpt)
    out, report = transfer_checkpoint(src, to_model="lif_tiny")
    ann = ModelConfig.from_dict(src["model_config"]).build()
    ann.load_state_dict(src["model"])
    param_names = [n for n, _ in ann.named_parameters()]
    assert set(param_names) <= set(report.by_action("copied"))
    assert report.by_action("new") == [] and report.by_action("dropped") == []
    assert sorted(report.by_action("adapted")) == ["conv1.decay", "layer1.0.decay", "layer2.0.decay"]
    cfg = ModelConfig.from_dict(out["model_config"])
    assert (cfg.name, cfg.ann, cfg.steps, cfg.input, cfg.in_channels) == ("lif_tiny", False, 6, "rgb", 3)
    assert cfg.neuron["threshold"] == 0.5 and cfg.neuron["learn_decay"] is False
    snn = cfg.build()
    snn.load_state_dict(out["model"])
    assert torch.sigmoid(snn.conv1.decay).item() == pytest.approx(0.25)
    for k, v in src["model"].items():
        if not k.endswith("decay"):
            assert torch.equal(snn.state_dict()[k], v), k

    seen = {}
    ann.conv1.bn.register_forward_hook(lambda m, i, o: seen.__setitem__("ann", o.detach()))
    snn.conv1.bn.register_forward_hook(lambda m, i, o: seen.__setitem__("snn", o.detach()))
    ann.eval(), snn.eval()
    img = torch.randn(3, 3, SIZE, SIZE)
    with torch.no_grad():
        ann(img.unsqueeze(0))
        snn(img.unsqueeze(0).expand(6, -1, -1, -1, -1).contiguous())
    first = seen["snn"][:3]                                          # [T*B, ...]: step 0 is rows 0..B-1
    assert seen["ann"].shape == first.shape
    torch.testing.assert_close(first, seen["ann"], rtol=1e-5, atol=1e-5)


def test_pretrain_cli_and_finetune_from_init(ann_ckpt, store, tmp_path, capsys):
    ck = tmp_path / "snn.pt"
    assert odg(["pretrain", "transfer", "--from", str(ann_ckpt), "--to-model", "lif_tiny",
                "--surrogate-halfwidth", "0.75", "--out", str(ck)]) == 0
    text = capsys.readouterr().out
    assert "copied" in text and "adapted  conv1.decay" in text and "newly initialised 0" in text
    rep = json.loads((tmp_path / "snn.pt.transfer.json").read_text())
    assert rep["counts"]["new"] == 0 and rep["counts"]["copied"] > 40
    assert odg(["train", store, "--init", str(ck), "--preset", "pipes-finetune", "--epochs", "1",
                "--batch-size", "4", "--input-size", str(SIZE), "--limit-steps", "2", "--out", str(tmp_path / "ft"),
                "--quiet"]) == 0
    rows = read_metrics(tmp_path / "ft" / "metrics.jsonl")
    assert len(rows) == 1 and rows[0]["lr"] == pytest.approx(0.01)
    assert load_checkpoint(tmp_path / "ft" / "last.pt")["model_config"]["steps"] == 6


# -- pipeD: stem swap ------------------------------------------------------------------------------

def test_stem_swap_reports_and_refuses_mismatches(ann_ckpt, tmp_path):
    src = load_checkpoint(ann_ckpt)
    out, report = transfer_checkpoint(src, stem=2)
    new = report.by_action("new")
    assert new and all(k.startswith(("conv1.conv.", "conv1.bn.")) for k in new)
    assert "conv1.conv.weight" in new and out["model"]["conv1.conv.weight"].shape[1] == 2
    assert sorted(report.by_action("adapted")) == ["conv1.decay", "layer1.0.decay", "layer2.0.decay"]
    cfg = ModelConfig.from_dict(out["model_config"])
    assert (cfg.input, cfg.in_channels, cfg.steps) == ("events", 2, None)
    for k in report.by_action("copied"):
        assert torch.equal(out["model"][k], src["model"][k]), k
    assert "new 2-channel stem" in report.format()

    with pytest.raises(TransferError, match=r"fc\.weight: checkpoint \[4, 32\], target \[10, 32\].*--reinit fc"):
        transfer_checkpoint(src, stem=2, num_classes=10)
    out10, rep10 = transfer_checkpoint(src, stem=2, num_classes=10, reinit=["fc"])
    assert set(rep10.by_action("new")) == set(new) | {"fc.weight", "fc.bias"}
    # a checkpoint whose stem does not fit, without --stem: refused, naming the parameter and both shapes
    bad = dict(src, model=dict(src["model"], **{"conv1.conv.weight": torch.zeros(16, 2, 7, 7)}))
    with pytest.raises(TransferError, match=r"conv1\.conv\.weight: checkpoint \[16, 2, 7, 7\], target "
                                            r"\[16, 3, 7, 7\].*--stem"):
        transfer_checkpoint(bad)
    with pytest.raises(TransferError, match="has no such parameter|not in the checkpoint"):
        transfer_checkpoint(src, to_model="liaf_resnet18")
    assert odg(["pretrain", "transfer", "--from", str(ann_ckpt), "--stem", "2", "--num-classes", "10",
                "--out", str(tmp_path / "x.pt")]) == 2
    # ES-ImageNet SNN -> another task: every layer but the input one and the classifier
    snn_src = {"model_config": tiny().to_dict(), "model": tiny().build().state_dict()}
    _, rep = transfer_checkpoint(snn_src, reinit=["conv1", "fc"], num_classes=101)
    assert {k.split(".")[0] for k in rep.by_action("new")} == {"conv1", "fc"}
    assert {k.split(".")[0] for k in rep.by_action("copied")} == {"layer1", "layer2"}


def test_stem_warmup_trains_only_the_stem_then_everything(ann_ckpt, store, tmp_path):
    out, _ = transfer_checkpoint(load_checkpoint(ann_ckpt), stem=2, surrogate_halfwidth=0.75)
    from odg.models.train.checkpoint import save
    init = save(out, tmp_path / "piped_init.pt")
    res = run(store, tmp_path / "piped", preset="piped", epochs=2, limit=2, val=None, init=str(init),
              keep_checkpoints=True, lr=0.05)
    assert [r["phase"] for r in res["rows"]] == ["stem", "all"]
    model = ModelConfig.from_dict(out["model_config"]).build()
    names = {n for n, _ in model.named_parameters()}
    e1 = load_checkpoint(tmp_path / "piped" / "epoch-001.pt")["model"]
    e2 = load_checkpoint(tmp_path / "piped" / "epoch-002.pt")["model"]
    changed1 = {n for n in names if not torch.equal(e1[n], out["model"][n])}
    assert changed1 and all(n.startswith("conv1.") for n in changed1)
    changed2 = {n for n in names if not torch.equal(e2[n], e1[n])}
    assert any(n.startswith("layer") for n in changed2) and "fc.weight" in changed2


def test_user_errors(store, tmp_path, capsys):
    assert odg(["train", store, "--model", "nope", "--out", str(tmp_path / "r")]) == 2
    assert "unknown model" in capsys.readouterr().err
    assert odg(["train", store, "--model", "resnet2d18", "--input", "events",
                "--out", str(tmp_path / "r")]) == 2
    assert "static images" in capsys.readouterr().err
    assert odg(["train", "--list-presets"]) == 0
    assert "pipes-finetune" in capsys.readouterr().out


def test_requests_are_resolved_once_against_the_store_init_and_resume(store, tmp_path, monkeypatch):
    """What `odg train` passes on (a ModelRequest, a RecipeRequest) is settled by `resolve`: the
    store's classes, the defaults, the --init checkpoint's network, the resumed run's recipe."""
    from odg.models.train import ModelRequest, RecipeRequest, resolve
    from odg.pipelines.store import open_store
    monkeypatch.chdir(tmp_path)
    classes = len(open_store(store).classes)
    quiet = dict(progress=False, log=lambda m: None)

    def options(model, recipe=RecipeRequest(), **kw):
        return TrainOptions(store=store, out=kw.pop("out", None), recipe=recipe, model=model, **quiet, **kw)

    r = resolve(options(ModelRequest(name="lif_tiny", input="mean")), log=quiet["log"])
    assert r.out == Path("runs/lif_tiny") and r.recipe == get_preset("es-imagenet-resnet18")
    assert (r.cfg.num_classes, r.cfg.in_channels, r.cfg.steps, r.cfg.lif_params.learn_decay) == (classes, 2, 6, True)
    r = resolve(options(ModelRequest(name="resnet2d18", input="ei", num_classes=7),
                        RecipeRequest("piped", changes={"lr": 0.5, "epochs": None})), log=quiet["log"])
    assert (r.cfg.in_channels, r.cfg.steps, r.cfg.num_classes, r.cfg.neuron) == (1, None, 7, None)
    assert r.recipe == get_preset("piped").override(lr=0.5) and r.odg_params is not None
    r = resolve(options(ModelRequest(name="lif_tiny", ann=True, decay=0.5), RecipeRequest(default="pipes-ann")),
                log=quiet["log"])
    assert r.out == Path("runs/lif_tiny-ann") and r.recipe.name == "pipes-ann"
    assert (r.cfg.input, r.cfg.in_channels, r.cfg.steps, r.cfg.lif_params.learn_decay) == ("rgb", 3, None, False)
    with pytest.raises(TrainError, match="resnet3d18 has no LIF neurons"):
        resolve(options(ModelRequest(name="resnet3d18", surrogate_halfwidth=0.75)))

    recipe = RecipeRequest(changes={"epochs": 1, "batch_size": 4})
    first = train(options(ModelRequest(name="lif_tiny"), recipe, limit_steps=1, input_size=SIZE))
    assert first["run_dir"] == str(Path("runs/lif_tiny"))
    ckpt = str(Path(first["run_dir"]) / "last.pt")
    r = resolve(options(ModelRequest(name="lif_tiny"), RecipeRequest(changes={"epochs": 3}), out=first["run_dir"],
                        resume=True, limit_steps=1, input_size=SIZE), log=quiet["log"])
    assert r.recipe == get_preset("es-imagenet-resnet18").override(epochs=3, batch_size=4) and r.state["epoch"] == 1
    with pytest.raises(TrainError, match="trains lif_tiny, not liaf_tiny"):
        resolve(options(ModelRequest(name="liaf_tiny"), out=first["run_dir"], resume=True))
    r = resolve(options(ModelRequest(input="mean", decay=0.3), init=ckpt), log=quiet["log"])
    assert r.cfg.name == "lif_tiny" and r.cfg.input == "mean" and r.init is not None
    assert not r.cfg.lif_params.learn_decay and r.cfg.lif_params.surrogate_halfwidth == 0.5
    with pytest.raises(TrainError, match="holds lif_tiny, not liaf_tiny"):
        resolve(options(ModelRequest(name="liaf_tiny"), init=ckpt))
    with pytest.raises(TrainError, match="leak factor must be in"):
        resolve(options(ModelRequest(decay=2.0), init=ckpt))
