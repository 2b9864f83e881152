"""The fused Triton LIF/LIAF kernels against the PyTorch path and the plain reference loop.

Without a GPU the very same kernels run on CPU tensors through Triton's interpreter; where CUDA is
present they also run compiled on it. Separately, the kernels are compiled for sm_80 and sm_90 by
Triton's own compiler (no GPU needed) and the generated PTX is inspected.
"""
import re

import pytest
import torch

from odg import models
from odg.models import LIFParams

from .test_neurons import READINGS, _cell, cosine

triton = pytest.importorskip("triton", reason="Triton has wheels for Linux x86_64 only")
from odg.models import triton_lif  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _case(shape, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g) * 0.6 + 0.3).to(device, dtype)
    w = torch.randn(shape, generator=g).to(device)
    return x, w


def _grads(fn, x, leak, w, leak_grad=True):
    x = x.detach().clone().requires_grad_(True)
    leak = leak.detach().clone().requires_grad_(leak_grad)
    out = fn(x, leak)
    (out.float() * w).sum().backward()
    return out.detach(), x.grad, leak.grad


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reading", list(READINGS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("shape", [(8, 4, 3, 50), (1, 7), (5, 1), (32, 2, 1100)],
                         ids=["T8", "T1", "N1", "T32-two-blocks"])
def test_fused_equals_torch_and_reference(device, reading, dtype, shape):
    x, w = _case(shape, dtype, device)
    leak = torch.sigmoid(torch.tensor([0.5], device=device))
    fn, ref = _cell(reading)
    out_f, gx_f, gk_f = _grads(lambda a, k: fn(a, k, backend="triton"), x, leak, w)
    out_t, gx_t, gk_t = _grads(lambda a, k: fn(a, k, backend="torch"), x, leak, w)
    out_r, gx_r, gk_r = _grads(ref, x, leak, w)
    assert out_f.dtype == dtype and gx_f.dtype == dtype and gk_f.dtype == leak.dtype
    assert torch.equal(out_f, out_t) and torch.equal(out_f, out_r)     # spikes / LIAF outputs identical
    if reading == "lif" and x.numel() > 100:
        assert 0.05 < out_f.float().mean() < 0.95
    for gx, gk in ((gx_t, gk_t), (gx_r, gk_r)):
        assert cosine(gx_f, gx) >= 0.9999
        if shape[0] > 1:
            assert cosine(gk_f, gk) >= 0.9999
    assert gx_f.abs().sum() > 0


@pytest.mark.parametrize("device", DEVICES)
def test_fused_other_parameters_and_layouts(device):
    params = LIFParams(threshold=0.3, surrogate_halfwidth=0.75, leak_slope=0.1)
    x, w = _case((6, 3, 4, 5), torch.float32, device, seed=3)
    x = (x - 0.3).transpose(1, 3)                              # non-contiguous input, negative too
    w = w.transpose(1, 3)
    leak = torch.tensor(0.8, device=device)                    # 0-d leak
    for reading in READINGS:
        fn, _ = _cell(reading, params)
        f = _grads(lambda a, k: fn(a, k, backend="triton"), x, leak, w)
        t = _grads(lambda a, k: fn(a, k, backend="torch"), x, leak, w)
        assert torch.equal(f[0], t[0])
        assert cosine(f[1], t[1]) >= 0.9999 and cosine(f[2], t[2]) >= 0.9999
        assert f[2].shape == ()


@pytest.mark.parametrize("device", DEVICES)
def test_fused_gradient_subsets(device):
    x, w = _case((5, 3, 40), torch.float32, device, seed=1)
    leak = torch.tensor([0.7], device=device)
    _, gx, gk = _grads(lambda a, k: models.lif(a, k, backend="triton"), x, leak, w, leak_grad=False)
    _, gx_t, _ = _grads(lambda a, k: models.lif(a, k, backend="torch"), x, leak, w, leak_grad=False)
    assert gk is None and cosine(gx, gx_t) >= 0.9999
    # only the leak needs a gradient
    k = leak.clone().requires_grad_(True)
    (models.liaf(x, k, backend="triton") * w).sum().backward()
    k_t = leak.clone().requires_grad_(True)
    (models.liaf(x, k_t, backend="torch") * w).sum().backward()
    torch.testing.assert_close(k.grad, k_t.grad, rtol=1e-4, atol=1e-4)
    # no gradient at all: plain forward
    with torch.no_grad():
        assert torch.equal(models.lif(x, leak, backend="triton"), models.lif(x, leak, backend="torch"))


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_saves_only_the_smaller_of_input_and_membrane(backend, dtype):
    x, w = _case((8, 2, 300), dtype, "cpu")
    saved = []

    def pack(t):
        saved.append((tuple(t.shape), t.dtype))
        return t

    leak = torch.tensor([0.6], requires_grad=True)
    grads = []
    for keep in (True, False):
        xg = x.clone().requires_grad_(True)
        hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
        with hooks if keep else torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
            out = models.lif(xg, leak, backend=backend)
        (out.float() * w).sum().backward()
        grads.append(xg.grad)
    # fp32: the fp32 membrane; bf16: the bf16 input (half the bytes), m recomputed in backward
    assert sorted(saved, key=str) == sorted([((8, 2, 300), torch.float32 if dtype == torch.float32 else dtype),
                                             ((1,), torch.float32)], key=str)
    _, gx_r, _ = _grads(_cell("lif")[1], x, leak, w)
    assert cosine(grads[0], gx_r) >= 0.9999


def test_backend_choice_and_refusals():
    x, _ = _case((4, 2, 3), torch.float32, "cpu")
    k = torch.tensor([0.6], requires_grad=True)
    xg = x.clone().requires_grad_(True)
    # "auto" on CPU is the PyTorch Function; "triton" is the registered operator
    assert type(models.lif(xg, k).grad_fn).__name__ == "_LeakyIntegrateFireBackward"
    assert "odg_lif_sequence" in type(models.lif(xg, k, backend="triton").grad_fn).__name__
    with pytest.raises(ValueError, match="float64"):
        models.lif(x.double(), 0.5, backend="triton")
    with pytest.raises(ValueError, match="one scalar per cell"):
        models.liaf(x, torch.full((2, 1), 0.5), backend="triton")
    with pytest.raises(NotImplementedError):
        models.tasnn_lif(x, backend="triton")
    # "auto" keeps working where the kernels do not apply
    assert torch.equal(models.lif(x.double(), 0.5), models.lif(x.double(), 0.5, backend="torch"))


@pytest.mark.parametrize("device", DEVICES)
def test_fused_in_models_and_compile(device):
    from odg.models.small import build_small
    x = (torch.rand(4, 2, 2, 16, 16, generator=torch.Generator().manual_seed(0)) < 0.3).float().to(device)
    for name, params in (("liaf_tiny", LIFParams()), ("lif_tiny", LIFParams(surrogate_halfwidth=0.75))):
        torch.manual_seed(0)
        net_t = build_small(name, num_classes=4, params=params, backend="torch").to(device)
        net_f = build_small(name, num_classes=4, params=params, backend="triton").to(device)
        net_f.load_state_dict(net_t.state_dict())
        out_t, out_f = net_t(x), net_f(x)
        torch.testing.assert_close(out_f, out_t, rtol=1e-5, atol=1e-5)
        out_t.sum().backward()
        out_f.sum().backward()
        g_t = torch.cat([p.grad.flatten() for p in net_t.parameters()])
        g_f = torch.cat([p.grad.flatten() for p in net_f.parameters()])
        assert cosine(g_f, g_t) >= 0.9999, name
        # parameter by parameter too (a conv bias before BN has a ~0 gradient: compare on one scale)
        torch.testing.assert_close(g_f, g_t, rtol=0, atol=1e-4 * float(g_t.abs().max()))
        assert all(p.grad.abs().sum() > 0 for n, p in net_t.named_parameters() if n.endswith("decay"))

    # torch.compile keeps the fused operator inside one graph
    def f(x, k):
        return models.liaf(x * 2.0, k, backend="triton").sum(0)

    torch._dynamo.reset()
    compiled = torch.compile(f, fullgraph=True)
    x = torch.randn(6, 3, 40, device=device)
    k1 = torch.tensor([0.6], device=device, requires_grad=True)
    k2 = torch.tensor([0.6], device=device, requires_grad=True)
    a, b = compiled(x, k1), f(x, k2)
    torch.testing.assert_close(a, b)
    a.sum().backward()
    b.sum().backward()
    torch.testing.assert_close(k1.grad, k2.grad, rtol=1e-5, atol=1e-3)


# ---- what the GPU compiler makes of the kernels (no GPU needed) ------------------------------------

def _compile(kernel, dtype: str, arch: int, **constexprs):
    """Compile `kernel` with Triton's CUDA backend for sm_<arch>; returns the PTX text."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    jitted = triton.jit(kernel)
    names = jitted.arg_names
    kinds = {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", "g_ptr": f"*{dtype}", "gx_ptr": f"*{dtype}",
             "m_ptr": "*fp32", "leak_ptr": "*fp32", "partial_ptr": "*fp32", "N": "i32", "last": "i32",
             "threshold": "fp32", "halfwidth": "fp32", "slope": "fp32"}
    signature = {n: ("constexpr" if n in constexprs else kinds[n]) for n in names}
    # what the launcher's specialisation gives for 16-aligned tensors and N % 16 == 0
    aligned = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(names) if n.endswith("_ptr") or n in ("N", "last")}
    src = ASTSource(jitted, signature=signature, constexprs=constexprs, attrs=aligned)
    options = {"num_warps": triton_lif.NUM_WARPS, "enable_fp_fusion": False}
    return triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options).asm["ptx"]


@pytest.mark.parametrize("arch", [80, 90], ids=["sm80", "sm90"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("inplace", [False, True], ids=["plain", "inplace"])
def test_kernels_compile_for_gpu(arch, dtype, inplace):
    size = 4 if dtype == "fp32" else 2
    keep_input = size < 4                 # bf16: forward writes no membrane, backward recomputes it
    base = dict(T=8, OUT_BF16=dtype == "bf16", BLOCK=triton_lif.BLOCK, INPLACE=inplace)
    fwd = _compile(triton_lif._lif_forward, dtype, arch, ANALOG=inplace, SAVE_M=not keep_input, **base)
    bwd = _compile(triton_lif._lif_backward, dtype, arch, ANALOG=True, LEAK_GRAD=True, RECOMPUTE=keep_input,
                   **base)
    per_thread = triton_lif.BLOCK // (32 * triton_lif.NUM_WARPS)
    # bytes per element and step of each loop: forward reads x, writes the output (+ the fp32 m);
    # backward (recomputes m: reads x, writes m, then) reads m and dL/dout, writes dL/dx. Every one
    # is a 128-bit access inside a loop that is not unrolled T times: one launch per direction.
    fwd_bytes = 2 * size + (0 if keep_input else 4)
    bwd_bytes = (size + 4 if keep_input else 0) + 4 + 2 * size
    for ptx, nbytes in ((fwd, fwd_bytes), (bwd, bwd_bytes)):
        accesses = re.findall(r"(ld|st)\.global(\.v\d)?\.b(\d+)", ptx)
        vector = [a for a in accesses if a[1] == ".v4" and a[2] == "32"]
        assert len(vector) == per_thread * nbytes // 16, accesses
        assert len(accesses) - len(vector) <= 2, accesses     # the leak load, the partial store
    assert "fma.rn" not in fwd          # no contraction: the membrane rounds like the PyTorch path
    assert "red.global" not in bwd and "atom.global" not in bwd   # leak gradient: one store per program


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("reading", list(READINGS))
def test_spikes_in_keeps_bits_and_changes_nothing(backend, dtype, reading):
    x = (torch.rand(6, 3, 41, generator=torch.Generator().manual_seed(2)) < 0.4).to(dtype)
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    fn, _ = _cell(reading)
    results = []
    for spikes_in in (False, True):
        saved = []
        xg = x.clone().requires_grad_(True)
        k = torch.tensor([0.7], requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            out = fn(xg, k, backend=backend, spikes_in=spikes_in)
        (out.float() * w).sum().backward()
        results.append((out, xg.grad, k.grad, saved))
    (o0, gx0, gk0, _), (o1, gx1, gk1, saved) = results
    assert torch.equal(o0, o1) and torch.equal(gx0, gx1) and torch.equal(gk0, gk1)
    assert sorted((str(t.dtype), t.numel()) for t in saved) == [("torch.float32", 1),
                                                                ("torch.uint8", (x.numel() + 7) // 8)]
