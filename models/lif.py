"""The published LIF and LIAF cells (ES-ImageNet baselines, LIAF-Net), stateless over a sequence.

Per neuron, over time steps t of a `[T, B, ...]` input x (the synaptic input, already through
conv/linear and normalisation):

    m_0 = x_0
    m_t = c_(t-1) * k * (1 - s_(t-1)) + x_t        k = sigmoid(d), s detached in this reset term
    s_t = [m_t > threshold]                          rectangular surrogate: ds/dm = 1 where
                                                     |m - threshold| < surrogate_halfwidth
    LIF emits s_t; LIAF emits LeakyReLU(leak_slope)(m_t) (the analog membrane before reset).

The carried membrane c_t is m_t (the plain recurrence), or, for LIAF with
`LIFParams.inplace_activation`, LeakyReLU(leak_slope)(m_t): the published ResNet-18 config builds
its activation as `LeakyReLU(0.2, inplace=True)`, which the published cell applies to the very
tensor it carries to the next step (the spike s_t is still taken from m_t, before the activation;
gradients flow through that LeakyReLU too).

The whole loop is one autograd node: forward keeps only the membrane sequence m, backward walks
the sequence once in reverse. The membrane is accumulated in float32 (float64 for float64 input)
whatever the input dtype. No state survives a call, so there is nothing to reset between batches.
`backend` picks the implementation (see `odg.models._backend`): the PyTorch loop below, or the fused
Triton kernels (`odg.models.triton_lif`), which give bit-identical spikes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._backend import check_backend, fused_checked, triton_installed
from .keep import neuron_keeps, neuron_restored, neuron_saved, records_grad


@dataclass(frozen=True)
class LIFParams:
    """Hyperparameters of the published LIF/LIAF cell; the defaults are the published values.

    threshold: a spike fires when the membrane m > threshold (units of the synaptic input).
    surrogate_halfwidth: backward uses ds/dm = 1 where |m - threshold| < surrogate_halfwidth.
    decay_init: initial decay logit d (one scalar per cell); the leak factor is sigmoid(d).
    learn_decay: d is a trained `nn.Parameter` when True, a fixed buffer when False.
    leak_slope: negative slope of the LIAF analog output LeakyReLU.
    inplace_activation: the LIAF reading of the published ResNet-18 config: the membrane carried
        to the next step is the analog output LeakyReLU(m_t) (its `LeakyReLU(inplace=True)`),
        not m_t. False: the plain recurrence (the published ResNet-34 config). None (default):
        as the network was published: True in `liaf_resnet18`, False everywhere else (a bare cell,
        `liaf_resnet34`, the tiny models). LIF cells emit spikes and have no such reading: True
        is refused there.
    """

    threshold: float = 0.5
    surrogate_halfwidth: float = 0.5
    decay_init: float = 0.5
    learn_decay: bool = True
    leak_slope: float = 0.2
    inplace_activation: bool | None = None

    def with_reading(self, inplace: bool) -> "LIFParams":
        """These parameters with `inplace_activation` set to `inplace` where it is None (the
        network's published reading), else unchanged."""
        if self.inplace_activation is not None:
            return self
        return dataclasses.replace(self, inplace_activation=bool(inplace))


def recurrence(params: LIFParams, analog: bool) -> str:
    """The membrane recurrence `params` select for a LIAF (`analog`) or LIF cell, in words."""
    if analog and params.inplace_activation:
        return (f"LIAF, in-place LeakyReLU({params.leak_slope}) carried: "
                "m_t = LeakyReLU(m_(t-1)) k (1 - s_(t-1)) + x_t (the published ResNet-18 config)")
    return f"{'LIAF' if analog else 'LIF'}, plain: m_t = m_(t-1) k (1 - s_(t-1)) + x_t"


def check_reading(params: LIFParams, analog: bool) -> None:
    """Refuse `inplace_activation=True` for a LIF cell (spike output: no analog activation)."""
    if params.inplace_activation and not analog:
        raise ValueError("inplace_activation is a reading of the LIAF cell (its LeakyReLU output "
                         "carried as membrane); a LIF cell emits spikes: leave it None or False")


def _reduce_to(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum a broadcast gradient back to the shape of the operand it was broadcast from."""
    if len(shape) == 0:
        return grad.sum()
    return grad.sum_to_size(shape)


def _membrane(x: torch.Tensor, leak: torch.Tensor, threshold: float, carry_slope: float | None = None
              ) -> torch.Tensor:
    """The membrane sequence m [T, ...] in the compute dtype (see `_compute_dtype`); with
    `carry_slope` the carried membrane is LeakyReLU(carry_slope)(m) (the in-place reading)."""
    compute = _compute_dtype(x, leak)
    xs = x.to(compute)
    k = leak.to(compute)
    m = torch.empty_like(xs)
    m[0] = xs[0]
    leaked, kept = torch.empty_like(m[0]), torch.empty_like(m[0])
    for t in range(1, xs.shape[0]):
        prev = m[t - 1]
        # m_t = x_t + c_(t-1) k (1 - s_(t-1)), written into m[t] without temporaries. Masks are
        # 0/1 in the compute dtype, written by the comparison itself: bool masks, their
        # conversions and `where` cost 4-20x more on a CPU.
        torch.le(prev, threshold, out=kept)
        if carry_slope is None:
            torch.mul(prev, k, out=leaked)
        else:
            torch.ops.aten.leaky_relu.out(prev, carry_slope, out=leaked)
            leaked.mul_(k)
        torch.addcmul(xs[t], leaked, kept, out=m[t])
    return m


def _emit(m: torch.Tensor, x: torch.Tensor, threshold: float, analog: bool, slope: float) -> torch.Tensor:
    """The cell's output from its membrane m, in `x.dtype`: LIAF LeakyReLU(m), LIF spikes
    `m > threshold` (0/1 written by the comparison, see `_membrane`)."""
    if analog:
        return F.leaky_relu(m, slope).to(x.dtype)
    return torch.gt(m, threshold, out=torch.empty(m.shape, dtype=x.dtype, device=x.device))


class _LeakyIntegrateFire(torch.autograd.Function):
    """Sequence loop of the published cell. Saves for backward what `odg.models.keep.neuron_keeps`
    chooses: the membrane m [T, ...] (compute dtype) for fp32/fp64 input; a bf16/fp16 input, half
    the size, or a 0/1 input (`spikes_in`) as bits, from which backward recomputes m bit for bit."""

    @staticmethod
    def forward(ctx, x, leak, threshold: float, halfwidth: float, analog: bool, slope: float,
                inplace: bool, spikes_in: bool = False):
        ctx.carry_slope = slope if inplace else None
        m = _membrane(x, leak, threshold, ctx.carry_slope)
        ctx.kept, ctx.x_shape = neuron_keeps(x, spikes_in, m.dtype), x.shape
        ctx.save_for_backward(neuron_saved(ctx.kept, x, m), leak)
        ctx.threshold, ctx.halfwidth, ctx.analog, ctx.slope = threshold, halfwidth, analog, slope
        ctx.x_dtype = x.dtype
        return _emit(m, x, threshold, analog, slope)

    @staticmethod
    def backward(ctx, grad_out):
        saved, leak = ctx.saved_tensors
        saved = neuron_restored(ctx.kept, saved, ctx.x_shape, ctx.x_dtype)
        m = _membrane(saved, leak, ctx.threshold, ctx.carry_slope) if ctx.kept != "membrane" else saved
        k = leak.to(m.dtype)
        need_x, need_leak = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        scalar_leak = leak.numel() == 1
        # dL/dm_t is built in place in grad_x when it has the compute dtype, else in a scratch slice
        in_place = need_x and ctx.x_dtype == m.dtype
        grad_x = torch.empty(m.shape, dtype=ctx.x_dtype, device=m.device) if need_x else None
        grad_out = grad_out.to(m.dtype)                     # one conversion, not one per step
        mask = torch.empty_like(m[0])                       # 0/1 masks as in `_membrane`
        leak_acc = None
        grad_next = None                                    # dL/dm_(t+1)
        # one reverse walk, step by step, every temporary one step in size (stays in cache)
        for t in range(m.shape[0] - 1, -1, -1):
            mt = m[t]
            grad = grad_x[t] if in_place else torch.empty_like(mt)
            if ctx.analog:                                  # d output_t / d m_t
                torch.ops.aten.leaky_relu_backward.grad_input(grad_out[t], mt, ctx.slope, False, grad_input=grad)
            else:
                torch.lt((mt - ctx.threshold).abs_(), ctx.halfwidth, out=mask)
                torch.mul(grad_out[t], mask, out=grad)
            if grad_next is not None:
                torch.le(mt, ctx.threshold, out=mask)
                carried = grad_next * mask                  # dL/dm_(t+1) (1 - s_t)
                if need_leak:                               # dL/dk += that * c_t
                    # the carried membrane c_t: m_t, or LeakyReLU(m_t) in the in-place reading
                    ct = mt if ctx.carry_slope is None else F.leaky_relu(mt, ctx.carry_slope)
                    if scalar_leak:
                        term = torch.dot(carried.reshape(-1), ct.reshape(-1))
                    else:
                        term = carried * ct
                    leak_acc = term if leak_acc is None else leak_acc + term
                if ctx.carry_slope is not None:             # times dc_t/dm_t
                    carried = torch.ops.aten.leaky_relu_backward(carried, mt, ctx.carry_slope, False)
                grad.addcmul_(carried, k)
            if need_x and not in_place:
                grad_x[t] = grad
            grad_next = grad
        grad_leak = None
        if need_leak:
            if leak_acc is None:
                grad_leak = torch.zeros_like(leak)
            elif scalar_leak:
                grad_leak = leak_acc.reshape(leak.shape).to(leak.dtype)
            else:
                grad_leak = _reduce_to(leak_acc, leak.shape).to(leak.dtype)
        return grad_x, grad_leak, None, None, None, None, None, None


def _compute_dtype(x: torch.Tensor, leak: torch.Tensor) -> torch.dtype:
    return torch.promote_types(torch.promote_types(x.dtype, leak.dtype), torch.float32)


def _as_leak(leak, x: torch.Tensor) -> torch.Tensor:
    if isinstance(leak, torch.Tensor):
        return leak
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    return torch.tensor(float(leak), dtype=dtype, device=x.device)


def _check_sequence(x: torch.Tensor) -> None:
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"expected a [T, B, ...] sequence with T >= 1, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a floating-point input, got {x.dtype}")


def _use_fused(backend: str, x: torch.Tensor, leak: torch.Tensor) -> bool:
    check_backend(backend)
    if backend == "torch":
        return False
    if backend == "auto":
        if not (x.is_cuda and triton_installed() and fused_checked(torch.cuda.get_device_capability(x.device))):
            return False
        from .triton_lif import check_supported
        return check_supported(x, leak) is None
    if not triton_installed():
        raise RuntimeError("neuron backend 'triton' needs the triton package (pip install triton)")
    from .triton_lif import check_supported
    problem = check_supported(x, leak)
    if problem:
        raise ValueError(f"neuron backend 'triton' cannot run {problem}; use backend='torch'")
    return True


def _sequence(x, leak, params: LIFParams, backend: str, analog: bool, spikes_in: bool) -> torch.Tensor:
    _check_sequence(x)
    check_reading(params, analog)
    leak = _as_leak(leak, x)
    inplace = bool(params.inplace_activation)
    consts = (float(params.threshold), float(params.surrogate_halfwidth), analog, float(params.leak_slope), inplace)
    if _use_fused(backend, x, leak):
        from . import lif_ops
        return lif_ops.lif_sequence(x, leak, *consts, bool(spikes_in))[0]
    if not records_grad(x, leak):
        # nothing to differentiate: skip the Function, which would keep x or m for backward
        m = _membrane(x, leak, consts[0], consts[3] if inplace else None)
        return _emit(m, x, consts[0], analog, consts[3])
    return _LeakyIntegrateFire.apply(x, leak, *consts, bool(spikes_in))


def lif(x: torch.Tensor, leak, params: LIFParams = LIFParams(), backend: str = "auto", *,
        spikes_in: bool = False) -> torch.Tensor:
    """Published LIF cell over a whole sequence.

    x: synaptic input `[T, B, ...]`, floating point (fp32, bf16, fp16, fp64).
    leak: the leak factor k = sigmoid(d) in (0, 1): a float or a tensor broadcastable to
        `x.shape[1:]` (a cell's single scalar has shape `[1]` or `[]`); gradients flow into it.
    backend: "auto" (fused Triton kernels on CUDA where they are recorded as checked on that kind of
        GPU, `odg.models._backend.FUSED_CHECKED`: today on none), "torch" or "triton".
    spikes_in: promise that x holds only 0 and 1 (not checked): backward then keeps x as bits
        (1/16 of bf16) and recomputes the membrane from it.
    Returns spikes `[T, B, ...]`, 0/1 in `x.dtype`. The membrane is computed in float32 (or the
    promoted dtype of x and leak when wider).
    """
    return _sequence(x, leak, params, backend, False, spikes_in)


def liaf(x: torch.Tensor, leak, params: LIFParams = LIFParams(), backend: str = "auto", *,
         spikes_in: bool = False) -> torch.Tensor:
    """Published LIAF cell over a whole sequence: same membrane as `lif`, analog output.

    x: synaptic input `[T, B, ...]`, floating point. leak, backend, spikes_in: as in `lif`.
    Returns `LeakyReLU(params.leak_slope)(m_t)` `[T, B, ...]` in `x.dtype` (membrane before reset).
    `params.inplace_activation` (None counts as False here) carries that output as the membrane.
    """
    return _sequence(x, leak, params, backend, True, spikes_in)


def register_decay(module: nn.Module, params: LIFParams) -> None:
    """Give `module` its decay logit `decay` (shape `[1]`, initial `params.decay_init`): an
    `nn.Parameter` if `params.learn_decay`, else a buffer (still in the state_dict)."""
    d = torch.full((1,), float(params.decay_init))
    if params.learn_decay:
        module.decay = nn.Parameter(d)
    else:
        module.register_buffer("decay", d)


class _Cell(nn.Module):
    _fn = None
    _analog = False

    def __init__(self, params: LIFParams = LIFParams(), backend: str = "auto"):
        super().__init__()
        check_backend(backend)
        check_reading(params, self._analog)
        self.params, self.backend = params, backend
        register_decay(self, params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return type(self)._fn(x, torch.sigmoid(self.decay), self.params, self.backend)

    def extra_repr(self) -> str:
        p = self.params
        return (f"threshold={p.threshold}, learn_decay={p.learn_decay}"
                + (", inplace_activation=True" if p.inplace_activation else ""))


class LIF(_Cell):
    """Published LIF cell as a module: `[T, B, ...]` synaptic input -> spikes, same shape and dtype.

    Holds only the decay logit `decay` (shape `[1]`, leak factor sigmoid(decay)); no hidden state.
    """

    _fn = staticmethod(lif)


class LIAF(_Cell):
    """Published LIAF cell as a module: `[T, B, ...]` input -> LeakyReLU(0.2) membrane, same shape.

    Holds only the decay logit `decay` (shape `[1]`, leak factor sigmoid(decay)); no hidden state.
    """

    _fn = staticmethod(liaf)
    _analog = True
