"""The TA-SNNs as shipped (BICLab/TA-SNN): defaults from the shipped configs, the published
state_dict (`published-models/tasnn_gesture.txt`, with DataParallel's `module.`) loads completely,
and the loaded network's train-mode rates, eval-mode rates and every gradient equal the published
code re-implemented in `published_tasnn` (float64)."""
import pytest
import torch
import torch.nn.functional as F

from odg import models
from odg.models.published import to_published_keys

from .published_tasnn import PublishedTASNN
from .test_neurons import cosine
from .test_published import random_state_dict, read_listing

# zoo name: (shipped pools after each conv, fc layers, surrogate a, T, classes, frame size)
SHIPPED = {"tasnn_gesture": ((1, 2, 2), 2, 0.5, 30, 11, 32),
           "tasnn_cifar10dvs": ((2, 2, 2, 2, 4), 2, 1.0, 10, 10, 128)}


def test_defaults_are_the_shipped_configs():
    gesture = models.build("tasnn_gesture")
    assert gesture.config.steps == 30 and gesture.config.reduction == 16
    att = gesture.layers[0].attention
    assert (att.fc1.in_features, att.fc1.out_features) == (30, 1)          # hidden width 30 // 16
    p = gesture.layers[0].neuron.params
    assert (p.v_th, p.alpha, p.beta, p.surrogate_width, p.height) == (0.3, 0.3, 0.0, 0.5, 2.0)
    assert isinstance(gesture.layers[0].bn, torch.nn.BatchNorm2d) and gesture.layers[0].bn.track_running_stats
    c10 = models.build("tasnn_cifar10dvs")
    assert sum(p.numel() for p in c10.parameters()) == 2_098_282      # counted from the shipped layers
    assert c10.config.steps == 10 and c10.layers[0].attention.fc1.out_features == 2
    assert c10.layers[4].pool.kernel_size == 4 and c10.layers[5].fc.in_features == 512 * 2 * 2
    assert c10.layers[0].neuron.params.height == 1.0
    assert models.summary("tasnn_gesture").neuron.startswith("TA-SNN LIF")


def _gesture_listing():
    """The listing's {key: shape} without DataParallel's `module.` (every key has it) and its count."""
    shapes, count = read_listing("tasnn_gesture")
    assert all(k.startswith("module.") for k in shapes)
    return {k[len("module."):]: v for k, v in shapes.items()}, count


def test_published_gesture_state_dict_loads_completely():
    shapes, count = _gesture_listing()
    model = models.build("tasnn_gesture")
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == count
    sd = {f"module.{k}": v for k, v in random_state_dict(shapes, dtype=torch.float32).items()}
    models.load_published(model, sd)                     # as the shipped code saves it
    back = models.published_state_dict(model)
    assert {k: list(v.shape) for k, v in back.items()} == shapes
    assert all(torch.equal(back[k], sd[f"module.{k}"].to(back[k].dtype)) for k in shapes)
    with pytest.raises(ValueError, match=r"missing keys: FC1\.linear\.bias"):
        models.load_published(model, {k: v for k, v in sd.items() if k != "module.FC1.linear.bias"})


def _published_sd(name):
    """Seeded published-format weights: the gesture listing, or (CIFAR10-DVS, no listing) the
    shapes under the published names that `published_state_dict` gives."""
    if name == "tasnn_gesture":
        shapes = _gesture_listing()[0]
    else:
        shapes = {k: list(v.shape) for k, v in models.published_state_dict(models.build(name)).items()}
    sd = random_state_dict(shapes, seed=3)
    for k in sd:            # attention hidden units alive (ReLU(w z + b), z the small frame means)
        if k.endswith("temporal_excitation.0.bias"):
            sd[k] = sd[k].abs() + 0.5
    return sd


def _frames(name, batch=1):              # batch 1: BN still sees T * H * W (or T) values
    _, _, _, steps, _, size = SHIPPED[name]
    g = torch.Generator().manual_seed(4)
    return (torch.rand(batch, steps, 2, size, size, generator=g) < 0.3).double()      # [B, T, C, H, W]


def _bias_before_bn(key):
    return key.endswith(("conv2d.bias", "linear.bias"))


@pytest.mark.parametrize("name", list(SHIPPED))
def test_loaded_network_equals_the_published_code(name):
    pools, n_fc, a, steps, classes, _ = SHIPPED[name]
    sd = _published_sd(name)
    ref = PublishedTASNN(sd, pools, n_fc, a)
    x = _frames(name)
    target = F.one_hot(torch.tensor([classes - 1]), classes).double()
    rates = ref(x)
    F.mse_loss(rates, target).backward()
    want = rates.detach()                  # the published loss: MSE to one-hot
    assert ref.used | {k for k in sd if k.endswith("num_batches_tracked")} == set(sd)

    model = models.build(name).double().train()
    models.load_published(model, {f"module.{k}": v for k, v in sd.items()})
    rates = model(models.bt_to_tb(x))
    F.mse_loss(rates, target).backward()
    got = rates.detach()
    assert 0 < float(want.sum()) and float(want.std()) > 0         # the output layer does fire
    assert torch.equal(got, want)                        # rates: spike counts / T, identical
    grads = to_published_keys(model, {n: p.grad for n, p in model.named_parameters()})
    assert grads.keys() == ref.parameters().keys()
    for key, want_g in ((k, p.grad) for k, p in ref.parameters().items()):
        got_g = grads[key]
        scale = float(want_g.abs().max())
        if _bias_before_bn(key):                         # removed by the batch-statistics BN
            weight_scale = float(ref.parameters()[key[:-4] + "weight"].grad.abs().max())
            assert scale <= 1e-9 * weight_scale and float(got_g.abs().max()) <= 1e-9 * weight_scale, key
        else:
            assert scale > 0, key
            assert cosine(got_g, want_g) >= 0.9999, key
            assert float((got_g - want_g).abs().max()) <= 1e-3 * scale, key
    buffers = to_published_keys(model, dict(model.named_buffers()))
    for key, want_b in ref.buffers().items():
        if key.endswith(("running_mean", "running_var")):
            torch.testing.assert_close(buffers[key], want_b, rtol=1e-9, atol=1e-12, msg=key)

    # eval mode: the running statistics the step left
    model.eval()
    ref.training = False
    with torch.no_grad():
        assert torch.equal(model(models.bt_to_tb(x)), ref(x))
