"""Benchmark the neuron sequence functions and small networks of `models` (CUDA if present, else CPU).

(a) LIF / LIAF forward+backward on [T, 64, N] (N = 65536 on CUDA; small on CPU, see --neurons),
    T in {8, 32}, fp32 and bf16: this package's fused Triton kernels (CUDA) and its PyTorch
    autograd Function vs the plain per-step PyTorch loop, torch.compile of that loop (--no-compile
    skips it), and SpikingJelly's LIFNode / LIAFNode when importable (different dynamics: for
    speed only). Prints the fused kernels' time over SpikingJelly's (targets: <= 0.6 in fp32,
    <= 0.1 in bf16).
(b) LIF/LIAF-ResNet-18 training step, T=8, batch 32, 2x224x224, bf16 autocast, with the fused
    and the PyTorch neuron backends and with BN -> neuron recomputation (`recompute`) off, vs
    SpikingJelly's spiking_resnet18 (2-channel stem) when importable (targets: >= 2x its
    samples/s at <= 0.5x its peak memory). On a CPU: batch --cpu-batch, PyTorch backend only.
(c) A small CPU case: T=8, batch 4, 2x64x64, three conv-BN-LIF blocks, forward+backward, vs the
    same network with the plain loop and with SpikingJelly's LIFNode when importable.

Times are medians over --repeats runs after warm-up. Memory: on CUDA the peak allocated during the
step; everywhere the bytes autograd saved for backward (what a neuron implementation controls).

    PYTHONPATH=. python benchmarks/bench_models.py [--neurons N] [--repeats R] [--no-compile]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from odg import models  # noqa: E402
from odg.models import _backend as models_backend  # noqa: E402

# ---- the plain PyTorch loop (autograd through ordinary ops) -----------------------------------------

class _Rect(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, g):
        (v,) = ctx.saved_tensors
        return g * (v.abs() < 0.5).to(g.dtype)


def plain_loop(x, leak, analog):
    """Published LIF/LIAF as a per-step loop; state in the promoted dtype, output in x.dtype."""
    out, m, s = [], None, None
    for t in range(x.shape[0]):
        xt = x[t].to(torch.promote_types(x.dtype, leak.dtype))
        m = xt if t == 0 else m * leak * (1 - s.detach()) + xt
        s = _Rect.apply(m - 0.5)
        out.append(F.leaky_relu(m, 0.2) if analog else s)
    return torch.stack(out).to(x.dtype)


# ---- measurement --------------------------------------------------------------------------------

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _in_backward() -> bool:
    """True while autograd runs a backward pass (a segment recomputed there saves tensors too)."""
    return torch._C._current_graph_task_id() != -1


class SavedBytes:
    """Bytes of tensors autograd saves for backward during the forward passes inside the `with`
    block (each storage once; parameters themselves not counted: they are held anyway; the
    short-lived tensors of segments recomputed inside backward not counted either)."""

    def __enter__(self):
        self.bytes, seen = 0, set()

        def pack(t):
            if isinstance(t, nn.Parameter) or _in_backward():
                return t
            key = (t.untyped_storage().data_ptr(), t.dtype)
            if key not in seen:
                seen.add(key)
                self.bytes += t.untyped_storage().nbytes()
            return t

        self._ctx = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


def measure(step, device, repeats, warmup=2):
    """Median seconds of `step()`, its saved-for-backward MiB, and CUDA peak MiB (or None)."""
    for _ in range(warmup):
        step()
    sync(device)
    with SavedBytes() as saved:
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if device.type == "cuda" else None
    return statistics.median(times), saved.bytes / 2**20, peak


def fmt(name, result, baseline=None):
    t, saved, peak = result
    ratio = f"{baseline[0] / t:6.2f}x" if baseline else "   base"
    mem = f"saved {saved:8.1f} MiB" + (f"  peak {peak:8.1f} MiB" if peak is not None else "")
    return f"    {name:<36} {t * 1e3:9.2f} ms  {ratio}  {mem}"


def spikingjelly():
    try:
        from spikingjelly.activation_based import functional, layer, neuron
        return functional, layer, neuron
    except Exception as e:  # noqa: BLE001 - any import problem means "not available"
        print(f"  SpikingJelly not importable ({type(e).__name__}: {e}); its rows are skipped")
        return None


# ---- (a) neurons ---------------------------------------------------------------------------------

def bench_neurons(args, device, sj):
    print(f"\n(a) neuron forward+backward on [T, 64, {args.neurons}]  ({device.type})")
    triton_ok = models_backend.triton_installed()
    if device.type == "cuda" and not triton_ok:
        print("  triton not installed: no fused-kernel rows")
    for analog, name in ((False, "LIF"), (True, "LIAF")):
        for dtype in (torch.float32, torch.bfloat16):
            for steps in (8, 32):
                g = torch.Generator(device="cpu").manual_seed(0)
                x0 = (torch.randn(steps, 64, args.neurons, generator=g) * 0.6 + 0.3).to(device, dtype)
                leak = torch.sigmoid(torch.tensor([0.5], device=device)).requires_grad_(True)
                fn = models.liaf if analog else models.lif

                def make(f):
                    def step():
                        x = x0.detach().requires_grad_(True)
                        f(x, leak).float().sum().backward()
                    return step

                print(f"  {name} {str(dtype).split('.')[-1]} T={steps}")
                base = measure(make(lambda x, k: plain_loop(x, k, analog)), device, args.repeats)
                print(fmt("plain loop", base))
                torch_row = measure(make(lambda x, k: fn(x, k, backend="torch")), device, args.repeats)
                print(fmt("models torch Function", torch_row, base))
                fused = None
                if device.type == "cuda" and triton_ok:
                    fused = measure(make(lambda x, k: fn(x, k, backend="triton")), device, args.repeats)
                    print(fmt("models fused Triton", fused, base))
                if args.compile:
                    compiled = torch.compile(lambda x, k: plain_loop(x, k, analog))
                    t0 = time.perf_counter()
                    make(compiled)()
                    print(f"    (torch.compile of the loop: first call {time.perf_counter() - t0:.1f} s)")
                    print(fmt("compiled plain loop", measure(make(compiled), device, args.repeats), base))
                if sj:
                    functional, _, neuron = sj
                    node = (neuron.LIAFNode(act=nn.LeakyReLU(0.2), threshold_related=False, step_mode="m",
                                            detach_reset=True) if analog
                            else neuron.LIFNode(step_mode="m", detach_reset=True)).to(device)

                    def sj_fn(x, k, node=node):
                        functional.reset_net(node)
                        return node(x)
                    sj_row = measure(make(sj_fn), device, args.repeats)
                    print(fmt("SpikingJelly node", sj_row, base))
                    ours = fused or torch_row
                    target = 0.6 if dtype == torch.float32 else 0.1
                    print(f"    time ours / SpikingJelly: {ours[0] / sj_row[0]:.3f} (target <= {target})"
                          f"{'' if fused else '  [torch backend: no fused kernels here]'}")
    if not args.compile:
        print("  torch.compile rows skipped (--no-compile)")


# ---- (b) ResNet-18 training step (CUDA) -------------------------------------------------------------

def _spiking_resnet_module():
    """SpikingJelly's `spiking_resnet` module. It imports torchvision only for a pretrained-weight
    URL loader that this benchmark never calls; where torchvision is absent (it does not install
    beside torch 2.13) that one name is provided by an empty stand-in module."""
    import importlib.util
    import types
    if importlib.util.find_spec("torchvision") is None:
        stand_in = types.ModuleType("torchvision._internally_replaced_utils")
        stand_in.load_state_dict_from_url = None
        package = types.ModuleType("torchvision")
        package._internally_replaced_utils = stand_in
        sys.modules.setdefault("torchvision", package)
        sys.modules.setdefault("torchvision._internally_replaced_utils", stand_in)
    from spikingjelly.activation_based.model import spiking_resnet
    return spiking_resnet


def bench_resnet(args, device, sj):
    cuda = device.type == "cuda"
    batch = 32 if cuda else args.cpu_batch
    repeats = args.repeats if cuda else 1
    print(f"\n(b) LIF/LIAF-ResNet-18 training step, T=8, batch {batch}, 2x224x224, bf16 autocast ({device.type})")
    if not cuda:
        print(f"  CPU: batch {batch} instead of 32 (see --cpu-batch); the saved-for-backward bytes do not depend"
              " on the device, the times and samples/s do")
    x = (torch.rand(8, batch, 2, 224, 224, device=device) < 0.1).float()
    y = torch.randint(0, 1000, (batch,), device=device)

    def make(net, reset=None):
        opt = torch.optim.SGD(net.parameters(), lr=0.01)

        def step():
            if reset:
                reset(net)
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step

    def per_second(result):
        return f"  {batch / result[0]:7.1f} samples/s"

    # on CUDA the fused kernels (explicitly: "auto" takes them only on GPUs recorded as checked), recompute on first
    fused = "triton" if models_backend.triton_installed() else "torch"
    configs = [("fused", fused, True), ("fused, no recompute", fused, False), ("torch", "torch", True)]
    if not cuda:
        configs = [("torch", "torch", True), ("torch, no recompute", "torch", False)]
    results = {}
    for name in ("lif_resnet18", "liaf_resnet18"):
        base = None
        for label, backend, recompute in configs:
            key = f"{name} ({label})"
            torch.manual_seed(0)
            net = models.build(name, backend=backend, recompute=recompute).to(device)
            results[key] = measure(make(net), device, repeats, warmup=2 if cuda else 1)
            print(fmt(key, results[key], base) + per_second(results[key]))
            base = base or results[key]
    if not sj:
        return
    functional, layer, neuron = sj
    try:
        spiking_resnet = _spiking_resnet_module()
    except Exception as e:  # noqa: BLE001
        print(f"  SpikingJelly spiking_resnet18 not importable ({type(e).__name__}: {e})")
        return
    net = spiking_resnet.spiking_resnet18(spiking_neuron=neuron.LIFNode, detach_reset=True)
    net.conv1 = layer.Conv2d(2, 64, 7, stride=2, padding=3, bias=False)
    functional.set_step_mode(net, "m")
    net = net.to(device)

    class MeanOverT(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x).mean(0)

    sj_result = measure(make(MeanOverT(net), reset=lambda m: functional.reset_net(m)), device, repeats,
                        warmup=2 if cuda else 1)
    print(fmt("SJ spiking_resnet18", sj_result) + per_second(sj_result))
    for key, ours in results.items():
        if not key.endswith(f"({configs[0][0]})"):
            continue
        line = f"    {key} / SJ: samples/s {sj_result[0] / ours[0]:.2f}x (target >= 2)"
        line += f", saved for backward {ours[1] / sj_result[1]:.2f}x"
        if cuda:
            line += f", peak memory {ours[2] / sj_result[2]:.2f}x (target <= 0.5)"
        print(line)


# ---- (c) small CPU network ------------------------------------------------------------------------

class ConvLIFNet(nn.Module):
    """Three conv3x3-BN-neuron blocks on [T, B, 2, 64, 64], then mean and a linear readout."""

    def __init__(self, neuron):
        super().__init__()
        widths = (2, 16, 32, 64)
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(widths, widths[1:]))
        self.bns = nn.ModuleList(nn.BatchNorm2d(b) for b in widths[1:])
        self.neuron = neuron
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        for conv, bn in zip(self.convs, self.bns):
            x = self.neuron(models.split_time(bn(conv(models.merge_time(x))), x.shape[0]))
        return self.fc(x.mean(dim=(0, 3, 4)))


def bench_small(args, sj):
    device = torch.device("cpu")
    print("\n(c) small CPU network: T=8, batch 4, 2x64x64, three conv-BN-LIF blocks, forward+backward")
    torch.manual_seed(0)
    x = (torch.rand(8, 4, 2, 64, 64) < 0.2).float()
    leak = torch.sigmoid(torch.tensor([0.5]))

    def make(net, reset=None):
        def step():
            if reset:
                reset(net)
            net(x).sum().backward()
        return step

    base = measure(make(ConvLIFNet(lambda v: plain_loop(v, leak, False))), device, args.repeats)
    print(fmt("plain loop", base))
    print(fmt("models.lif", measure(make(ConvLIFNet(lambda v: models.lif(v, leak))), device, args.repeats), base))
    if sj:
        functional, _, neuron = sj
        node = neuron.LIFNode(step_mode="m", detach_reset=True)
        result = measure(make(ConvLIFNet(node), reset=lambda m: functional.reset_net(m)), device, args.repeats)
        print(fmt("SpikingJelly LIFNode", result, base))


def main(argv=None):
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--neurons", type=int, default=65536 if cuda else 4096,
                   help="features per sample in (a) (default 65536 on CUDA, 4096 on CPU)")
    p.add_argument("--repeats", type=int, default=10 if cuda else 5)
    p.add_argument("--no-compile", dest="compile", action="store_false",
                   help="skip torch.compile of the plain loop (inductor takes ~1 min per case on a 2-core CPU)")
    p.add_argument("--cpu-batch", type=int, default=2, help="batch of (b) on a CPU (default 2)")
    p.add_argument("--skip", nargs="*", default=[], choices=["a", "b", "c"], help="parts to skip")
    args = p.parse_args(argv)
    device = torch.device("cuda" if cuda else "cpu")
    name = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"bench_models: torch {torch.__version__}, {name}")
    sj = spikingjelly()
    if "a" not in args.skip:
        bench_neurons(args, device, sj)
    if "b" not in args.skip:
        bench_resnet(args, device, sj)
    if "c" not in args.skip:
        bench_small(args, sj)


if __name__ == "__main__":
    main()
