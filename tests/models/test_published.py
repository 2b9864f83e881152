"""load_published: the published key listings load completely, and the loaded LIAF/LIF-ResNet
computes the published function (checked against the plain re-implementation of the published code
in `published_liaf`, in the published [B, C, T, H, W] layout)."""
from pathlib import Path

import pytest
import torch

from odg import models

from .published_liaf import PublishedResNet

LISTINGS = Path(__file__).resolve().parents[1] / "data" / "published-models"
BLOCKS = {"18": [2, 2, 2, 2], "34": [3, 4, 6, 3]}


def read_listing(name):
    """{key: shape} and the listed trainable-parameter count of a published-models/*.txt file."""
    shapes, count = {}, None
    for line in (LISTINGS / f"{name}.txt").read_text().splitlines():
        if line.startswith("# trainable parameters:"):
            count = int(line.split(":")[1])
        if not line.strip() or line.startswith("#"):
            continue
        key, shape = line.split("\t")
        shapes[key] = [int(s) for s in shape.strip("[]").split(",") if s.strip()]
    return shapes, count


def random_state_dict(shapes, seed=0, dtype=torch.float64):
    """Seeded values in sensible ranges (positive variances, O(1) activations)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in shapes.items():
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            sd[key] = torch.randint(0, 1000, shape, generator=g)
        elif leaf == "running_var":
            sd[key] = torch.rand(shape, generator=g, dtype=dtype) + 0.5
        elif leaf == "running_mean":
            sd[key] = torch.randn(shape, generator=g, dtype=dtype) * 0.1
        elif leaf == "decay":
            sd[key] = torch.randn(shape, generator=g, dtype=dtype) * 0.5 + 0.5
        elif leaf == "weight" and len(shape) == 1:                  # norm scale
            sd[key] = torch.rand(shape, generator=g, dtype=dtype) + 0.5
        elif leaf == "bias":
            sd[key] = torch.randn(shape, generator=g, dtype=dtype) * 0.1
        else:                                                       # conv / linear weight
            fan_in = 1
            for s in shape[1:]:
                fan_in *= s
            sd[key] = torch.randn(shape, generator=g, dtype=dtype) * (2.0 / fan_in) ** 0.5
    return sd


# ---- keys and shapes --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["liaf_resnet18", "liaf_resnet34", "resnet2d18", "resnet2d34",
                                  "resnet3d18", "resnet3d34"])
def test_every_published_key_is_used(name):
    shapes, count = read_listing(name)
    models_to_check = [name] + ([name.replace("liaf", "lif")] if name.startswith("liaf") else [])
    for model_name in models_to_check:
        model = models.build(model_name, num_classes=1000)
        assert sum(p.numel() for p in model.parameters() if p.requires_grad) == count
        sd = random_state_dict(shapes, dtype=torch.float32)
        prefixed = {f"module.{k}": v for k, v in sd.items()}         # DDP checkpoints
        models.load_published(model, prefixed)
        back = models.published_state_dict(model)
        assert set(back) == set(sd)
        for key, value in sd.items():
            assert list(back[key].shape) == shapes[key], key
            assert torch.equal(back[key], value.to(back[key].dtype)), key


def test_unknown_missing_and_misshapen_keys_are_named():
    shapes, _ = read_listing("liaf_resnet18")
    model = models.build("liaf_resnet18")
    sd = random_state_dict(shapes, dtype=torch.float32)
    extra = dict(sd, **{"layer9.0.cv1.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"unknown keys: layer9\.0\.cv1\.weight"):
        models.load_published(model, extra)
    missing = {k: v for k, v in sd.items() if k not in ("layer2.0.shortcut.bias", "conv1.decay")}
    with pytest.raises(ValueError, match=r"missing keys: conv1\.decay, layer2\.0\.shortcut\.bias"):
        models.load_published(model, missing)
    bad = dict(sd, **{"fc.weight": torch.zeros(10, 512)})
    with pytest.raises(ValueError, match=r"fc\.weight \[10, 512\]"):
        models.load_published(model, bad)
    before = models.published_state_dict(model)["fc.weight"].clone()
    assert torch.equal(models.published_state_dict(model)["fc.weight"], before)  # nothing half-loaded
    with pytest.raises(TypeError):
        models.load_published(torch.nn.Linear(2, 2), {})


# ---- the function: the published code, re-implemented in the tests ---------------------------------

def test_loaded_model_computes_the_published_function():
    """Eval mode, running statistics: the loaded LIAF-ResNet-18 gives the published network's
    logits, in the in-place reading of its config (the plain reading is another function). Train
    mode and the other networks: test_published_gradients."""
    name, neuron, blocks = "liaf_resnet18", "liaf", BLOCKS["18"]
    sd = random_state_dict(read_listing(name)[0], seed=1)
    model = models.build(name, steps=3).double().eval()
    models.load_published(model, sd)
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(2, 2, 3, 32, 32, generator=g) < 0.25).double()        # [B, C, T, H, W] events
    with torch.no_grad():
        want = PublishedResNet(sd, blocks, neuron, inplace=True, training=False)(x)
        got = model(models.bcthw_to_tbchw(x))
    assert want.shape == got.shape == (2, 1000)
    assert want.std() > 1e-3                                # a non-degenerate function
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)
    with torch.no_grad():                                   # the other reading is another function
        other = PublishedResNet(sd, blocks, neuron, inplace=False, training=False)(x)
        assert (other - want).abs().max() > 0.1 * want.std()
        # and a different decay changes it: the decays were really loaded
        model.layer3[1].decay.data += 1.0
        assert not torch.allclose(model(models.bcthw_to_tbchw(x)), want, rtol=1e-6, atol=1e-6)
