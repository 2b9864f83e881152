"""The zoo: names, exact published parameter counts, forward/backward smoke tests, summary, CLI."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from odg import models

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED_COUNTS = {
    "liaf_resnet18": 11_693_233, "lif_resnet18": 11_693_233,
    "liaf_resnet34": 21_808_825, "lif_resnet34": 21_808_825,
    "resnet2d18": 11_683_240, "resnet2d34": 21_791_400,
    "resnet3d18": 28_563_432, "resnet3d34": 48_226_024,
}


def test_list_models():
    assert models.list_models() == sorted(list(PUBLISHED_COUNTS) + ["tasnn_cifar10dvs", "tasnn_gesture"])


@pytest.mark.parametrize("name", sorted(PUBLISHED_COUNTS))
def test_published_parameter_counts(name):
    model = models.build(name, num_classes=1000)
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_COUNTS[name]
    assert all(p.requires_grad for p in model.parameters())


def test_build_options_and_errors():
    assert models.build("liaf_resnet18", num_classes=10).fc.out_features == 10
    assert sum(p.numel() for p in models.build("liaf_resnet18", in_channels=1).parameters()) == 11_690_097
    assert sum(p.numel() for p in models.build("lif_resnet34", in_channels=1).parameters()) == 21_805_689
    fixed = models.build("lif_resnet18", params=models.LIFParams(learn_decay=False))
    assert sum(p.numel() for p in fixed.parameters()) == PUBLISHED_COUNTS["lif_resnet18"] - 9
    assert models.build("tasnn_gesture", steps=16).layers[-1].fc.out_features == 11
    with pytest.raises(ValueError, match="known: .*liaf_resnet18"):
        models.build("resnet50")
    with pytest.raises(NotImplementedError):
        models.build("liaf_resnet18", backend="cuda")


def test_snn_resnet_structure_matches_the_published_description():
    m = models.build("liaf_resnet18")
    assert (m.conv1.conv.kernel_size, m.conv1.conv.stride, m.conv1.conv.padding) == ((7, 7), (2, 2), (3, 3))
    assert m.conv1.conv.bias is not None and m.conv1.decay.shape == (1,)
    assert (m.conv1.pool.kernel_size, m.conv1.pool.stride, m.conv1.pool.padding) == (3, 2, 0)
    assert m.layer1[0].shortcut is None and m.layer2[0].shortcut.stride == (2, 2)
    decays = [n for n, _ in m.named_parameters() if n.endswith("decay")]
    assert decays == ["conv1.decay"] + [f"layer{i}.{j}.decay" for i in range(1, 5) for j in range(2)]


def _stem_conv(model):
    return next(m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)))


def test_entries_state_each_family_and_its_input():
    """Family, input kind and stem channels are fields of the entry (the code that treats networks
    differently asks them, never the name); they agree with what each builder builds."""
    from odg.models.small import SMALL_SPECS
    from odg.models.train import model_spec
    from odg.models.zoo import FAMILIES, INPUT_KINDS, MODELS

    families = {}
    for spec in [*MODELS.values(), *SMALL_SPECS.values()]:
        assert spec.family in FAMILIES and spec.input_kind in INPUT_KINDS
        assert model_spec(spec.name) is spec
        assert spec.time_first == spec.input_layout.startswith("[T")
        assert spec.example_input[2 if spec.time_first else 1] == spec.stem_channels
        with torch.device("meta"):
            model = spec.builder(num_classes=3)
        assert _stem_conv(model).in_channels == spec.stem_channels, spec.name
        families.setdefault(spec.family, set()).add(spec.name)
    assert families == {"spiking_resnet": {"liaf_resnet18", "liaf_resnet34", "lif_resnet18", "lif_resnet34",
                                           "lif_tiny", "liaf_tiny"},
                        "resnet2d": {"resnet2d18", "resnet2d34"}, "resnet3d": {"resnet3d18", "resnet3d34"},
                        "tasnn": {"tasnn_gesture", "tasnn_cifar10dvs"}}
    assert {s.name for s in MODELS.values() if s.input_kind == "image"} == families["resnet2d"]
    with pytest.raises(ValueError, match="unknown model 'resnet50'; known: .*lif_tiny"):
        model_spec("resnet50")
    with pytest.raises(ValueError, match="family must be one of"):
        models.ModelSpec("x", models.build, "", "[B, 1, H, W]", (1, 1, 8, 8), 2, "cnn", "image")


def _train_step(name, **options):
    torch.manual_seed(0)
    model = models.build(name, num_classes=7, steps=2, **options).train()
    x = (torch.rand(2, 2, 2, 64, 64) < 0.3).float()                    # [T, B, C, H, W]
    logits = model(x)
    assert logits.shape == (2, 7)
    torch.nn.functional.cross_entropy(logits, torch.tensor([1, 5])).backward()
    return {n: float(p.grad.abs().sum()) if p.grad is not None else None
            for n, p in model.named_parameters()}


def test_liaf_resnet_trains():
    grads = _train_step("liaf_resnet18")
    assert [n for n, g in grads.items() if not g] == []                # every parameter, decays too


def test_lif_resnet_gradient_and_the_surrogate_window():
    """As MODELS.md specifies it, a LIF block ends in neuron(spike(main + shortcut)): that neuron's
    input is 0/1, so its membrane is exactly 0 or 1, on the edges of the open window
    |m - 0.5| < 0.5, and no gradient passes a block. A wider window lets it through."""
    grads = _train_step("lif_resnet18")
    assert grads["fc.weight"] > 0
    assert [n for n, g in grads.items() if g and not n.startswith("fc.")] == []
    wide = _train_step("lif_resnet18", params=models.LIFParams(surrogate_halfwidth=0.75))
    assert [n for n, g in wide.items() if not g] == []


def test_ann_baselines_run():
    torch.manual_seed(0)
    m2 = models.build("resnet2d18", num_classes=5)
    out = m2(torch.randn(2, 1, 64, 64))
    out.sum().backward()
    assert out.shape == (2, 5) and m2.conv1.weight.grad is not None
    m3 = models.build("resnet3d18", num_classes=5, steps=4).eval()
    with torch.no_grad():
        assert m3(torch.randn(4, 1, 2, 64, 64)).shape == (1, 5)        # [T, B, C, H, W]
    assert m3.conv1.padding == (3, 1, 1) and m3.conv1.stride == (1, 2, 2)


def resnet_macs(stem_in, stem_out, sizes, blocks, classes, steps=1):
    """Conv + fc multiply-adds of a basic-block ResNet, from the layer shapes alone."""
    total = stem_out ** 2 * 64 * stem_in * 49
    channels = 64
    for width, n, size in zip((64, 128, 256, 512), blocks, sizes):
        for _ in range(n):
            total += size ** 2 * width * channels * 9 + size ** 2 * width * width * 9
            if channels != width:
                total += size ** 2 * width * channels
            channels = width
    return steps * total + 512 * classes


def test_summary_counts_multiply_adds():
    s = models.summary("resnet2d18")
    assert s.parameters == 11_683_240 and s.input_layout == "[B, 1, H, W]"
    assert s.input_shape == (1, 1, 224, 224) and s.output_shape == (1, 1000)
    assert s.macs == resnet_macs(1, 112, (56, 28, 14, 7), (2, 2, 2, 2), 1000)
    s = models.summary("liaf_resnet34")
    assert s.input_shape == (8, 1, 2, 224, 224) and s.parameters == 21_808_825
    assert s.macs == resnet_macs(2, 112, (55, 28, 14, 7), (3, 4, 6, 3), 1000, steps=8)
    small = models.summary("lif_resnet18", input_shape=(2, 1, 2, 64, 64))
    assert small.macs == resnet_macs(2, 32, (15, 8, 4, 2), (2, 2, 2, 2), 1000, steps=2)
    assert models.summary("tasnn_gesture").input_shape[0] == 30


def test_liaf_readings_per_network_and_in_the_summary():
    """liaf_resnet18 carries LeakyReLU(m) as its config's in-place activation does; liaf_resnet34
    and the LIF networks the plain membrane; an explicit option selects either for any LIAF net."""
    r18, r34 = models.build("liaf_resnet18"), models.build("liaf_resnet34")
    assert all(m.params.inplace_activation for m in r18.modules() if hasattr(m, "decay"))
    assert not any(m.params.inplace_activation for m in r34.modules() if hasattr(m, "decay"))
    plain18 = models.build("liaf_resnet18", params=models.LIFParams(inplace_activation=False))
    assert not plain18.conv1.params.inplace_activation
    fixed = models.build("liaf_resnet18", params=models.LIFParams(learn_decay=False))   # other options keep it
    assert fixed.layer4[1].params.inplace_activation
    assert models.build("liaf_resnet34", params=models.LIFParams(inplace_activation=True)).layer1[0].params.inplace_activation
    with pytest.raises(ValueError, match="LIAF"):
        models.build("lif_resnet18", params=models.LIFParams(inplace_activation=True))
    assert "in-place LeakyReLU" in models.summary("liaf_resnet18").neuron
    assert models.summary("liaf_resnet34").neuron.startswith("LIAF, plain")
    assert models.summary("lif_resnet34").neuron.startswith("LIF, plain")
    assert models.summary("resnet2d18").neuron is None


def test_inputs_in_another_layout_are_refused_and_uint8_converted():
    """The zoo's time-first models take [T, B, C, H, W] with their T (the published 8 unless built
    with `steps=`): a batch-first [B, T, ...] batch, the published [B, C, T, H, W] or another T is
    refused with the layout and the steps seen; 0/1 uint8 frames (ESDataset's) are converted."""
    torch.manual_seed(0)
    model = models.build("lif_resnet18", num_classes=5).eval()
    frames = torch.rand(8, 2, 2, 32, 32) < 0.3                       # [T, B, 2, H, W], 0/1, T = 8
    with torch.no_grad():
        assert torch.equal(model(frames.to(torch.uint8)), model(frames.float()))
        with pytest.raises(ValueError, match=r"LIF-ResNet takes \[T, B, 2, H, W\] \(time first, T = 8\); "
                                             r".*T = 2 steps of batch 8 with 2 channels.*bt_to_tb"):
            model(models.tb_to_bt(frames).float())                   # batch first: T and B swapped
        with pytest.raises(ValueError, match=r"T = 2 steps of batch 2 with 8 channels.*bcthw_to_tbchw"):
            model(models.tbchw_to_bcthw(frames).float())             # the published [B, C, T, H, W]
        with pytest.raises(ValueError, match=r"T = 3 steps.*steps=3"):
            model(frames[:3].float())
        assert models.build("lif_resnet18", num_classes=5, steps=None).eval()(frames[:3]).shape == (2, 5)
        with pytest.raises(ValueError, match=r"4-d tensor"):
            model(frames[0].float())
        with pytest.raises(TypeError, match="complex"):
            model(frames.to(torch.complex64))
        m3 = models.build("resnet3d18", num_classes=5).eval()
        assert m3(frames.to(torch.uint8)).shape == (2, 5)
        with pytest.raises(ValueError, match=r"3D-CNN ResNet takes .*T = 2 steps of batch 8"):
            m3(models.tb_to_bt(frames))
        m2 = models.build("resnet2d18", num_classes=5).eval()
        assert torch.equal(m2(frames[0, :, :1].to(torch.uint8)), m2(frames[0, :, :1].float()))
        with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
            m2(frames[0].float())


def test_auto_backend_uses_only_recorded_gpus():
    """`backend="auto"` takes the fused kernels only on the kinds of GPU recorded in
    `FUSED_CHECKED`; the README says which that is today."""
    from odg.models import _backend
    assert _backend.fused_checked((9, 0), record=((9, 0),)) and not _backend.fused_checked((8, 0), record=((9, 0),))
    readme = (ROOT / "README.md").read_text()
    if _backend.FUSED_CHECKED:
        assert "today on no GPU" not in readme
    else:
        assert not _backend.fused_checked((9, 0)) and "today on no GPU" in readme


def test_cli_list_and_summary(capsys):
    from odg.pipelines.cli import main

    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "liaf_resnet18" in out and "11,693,233" in out and "tasnn_cifar10dvs" in out
    assert main(["models", "summary", "resnet3d34"]) == 0
    out = capsys.readouterr().out
    assert "48,226,024" in out and "[T, B, 2, H, W]" in out and "neurons" not in out
    assert main(["models", "summary", "liaf_resnet18"]) == 0
    assert "neurons      LIAF, in-place LeakyReLU(0.2) carried" in capsys.readouterr().out
    assert main(["models", "summary", "nope"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_cli_module_does_not_import_torch():
    code = ("import sys, argparse; from odg.pipelines.cli import CLI; import pipelines.commands.models as m; "
            "m.register(CLI(argparse.ArgumentParser())); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": ""}, check=True).stdout
    assert out.strip() == "False"
