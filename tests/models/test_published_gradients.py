"""Gradient fidelity: one training step of the zoo's LIAF/LIF-ResNets, loaded with seeded
published-format weights, against the published code re-implemented in `published_liaf`: the
train-mode logits (batch statistics), every parameter's gradient (the decay scalars included) and
the running statistics it leaves, with the recomputation on and off. Float64, so that no spike
flips between the two implementations' rounding."""
import functools

import pytest
import torch

from odg import models
from odg.models import LIFParams
from odg.models.published import to_published_keys

from .published_liaf import PublishedResNet
from .test_neurons import cosine
from .test_published import BLOCKS, random_state_dict, read_listing

WIDE = LIFParams(surrogate_halfwidth=0.75)            # the opt-in LIF window that trains
# (zoo name, its LIF parameters, time steps)
CASES = {
    "liaf_resnet18": ("liaf_resnet18", LIFParams(), 3),
    "liaf_resnet34": ("liaf_resnet34", LIFParams(), 2),
    "lif_resnet18": ("lif_resnet18", LIFParams(), 2),
    "lif_resnet18-wide": ("lif_resnet18", WIDE, 2),
    "lif_resnet34": ("lif_resnet34", LIFParams(), 2),
    "lif_resnet34-wide": ("lif_resnet34", WIDE, 2),
}
SIZE = 32                                              # 32 x 32 frames, batch 2


def _inputs(steps):
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(2, 2, steps, SIZE, SIZE, generator=g) < 0.25).double()     # [B, C, T, H, W]
    weights = torch.randn(2, 1000, generator=g, dtype=torch.float64)           # a loss that reaches every logit
    return x, weights


@functools.cache
def _weights(listing):
    return random_state_dict(read_listing(listing)[0], seed=1)


@functools.cache
def _published_step(case):
    """(weights, logits, {published key: gradient}, {published key: buffer after the step}) of the
    published code."""
    name, params, steps = CASES[case]
    neuron, depth = name.split("_resnet")
    sd = _weights(name.replace("lif_", "liaf_"))
    ref = PublishedResNet(sd, BLOCKS[depth], neuron, inplace=name == "liaf_resnet18",
                          halfwidth=params.surrogate_halfwidth)
    x, weights = _inputs(steps)
    logits = ref(x)
    (logits * weights).sum().backward()
    return sd, logits.detach(), {k: p.grad for k, p in ref.parameters().items()}, ref.buffers()


def _conv_bias(key, grads):
    """A conv bias: it feeds a batch-statistics BN, which removes it, so its exact gradient is 0."""
    return key.endswith(".bias") and grads[key[:-5] + ".weight"].dim() == 4


# every network with the recomputation on and off; the published LIF window (no gradient before the
# classifier, whatever the recomputation) with it on only
RUNS = [(case, recompute) for case in CASES for recompute in (True, False)
        if recompute or case not in ("lif_resnet18", "lif_resnet34")]


@pytest.mark.parametrize("case, recompute", RUNS,
                         ids=[f"{c}-{'recompute' if r else 'stored'}" for c, r in RUNS])
def test_training_step_equals_the_published_code(case, recompute):
    name, params, steps = CASES[case]
    sd, want, want_grads, want_buffers = _published_step(case)
    model = models.build(name, params=params, recompute=recompute, steps=steps).double().train()
    models.load_published(model, sd)
    x, weights = _inputs(steps)
    out = model(models.bcthw_to_tbchw(x))
    (out * weights).sum().backward()
    logits = out.detach()

    assert cosine(logits, want) >= 0.9999
    assert (logits - want).abs().max() <= 1e-3 * want.abs().max()
    grads = to_published_keys(model, {n: p.grad for n, p in model.named_parameters()})
    assert grads.keys() == want_grads.keys()
    zero_before_fc = name.startswith("lif") and params.surrogate_halfwidth == 0.5
    for key, want_g in want_grads.items():
        got = grads[key]
        if zero_before_fc and not key.startswith("fc."):
            # the published LIF window: a block's output neuron sees membranes of exactly 0 or 1,
            # on the window's open edges, so nothing reaches the layers before the classifier
            assert not want_g.any() and not got.any(), key
        elif _conv_bias(key, want_grads):
            scale = float(want_grads[key[:-5] + ".weight"].abs().max())
            assert want_g.abs().max() <= 1e-9 * scale and got.abs().max() <= 1e-9 * scale, key
        else:
            assert want_g.abs().max() > 0, key
            assert cosine(got, want_g) >= 0.9999, key
            assert (got - want_g).abs().max() <= 1e-3 * want_g.abs().max(), key
    buffers = to_published_keys(model, dict(model.named_buffers()))
    for key, want_b in want_buffers.items():              # running statistics, one update
        if key.endswith(("running_mean", "running_var")):
            torch.testing.assert_close(buffers[key], want_b, rtol=1e-9, atol=1e-12, msg=key)
