"""LIF dynamics, surrogate derivatives, STBP gradients through time."""
import math

import pytest
import torch

from snnzoo.zoo.lif import LIF
from snnzoo.zoo.surrogate import SURROGATES, spike, surrogate_grad


def naive_lif(inp, k, v_th, kind, width, reset="zero", u0=0.0):
    """Reference: the LIF written with autograd on every op (the STBP code's style)."""
    u = torch.full_like(inp[0], u0)
    o = torch.zeros_like(inp[0])
    out = []
    for t in range(inp.shape[0]):
        u = k * u * (1 - o) + inp[t] if reset == "zero" else k * (u - v_th * o) + inp[t]
        o = spike(u - v_th, kind, width)
        out.append(o)
    return torch.stack(out)


def test_lif_sequence_by_hand():
    # k = 0.5, V_th = 1: u = 0.6 → 0.3+0.6 = 0.9 → 0.45+0.6 = 1.05 (spike) → reset: 0 + 0.6
    lif = LIF(k=0.5, v_th=1.0).eval()
    inp = torch.full((5, 1, 1), 0.6)
    out = lif(inp).flatten().tolist()
    assert out == [0.0, 0.0, 1.0, 0.0, 0.0]
    # after the spike at t=2, u[3] = 0.5·1.05·(1−1) + 0.6 = 0.6, u[4] = 0.9: no spike yet
    u, o = torch.zeros(1), torch.zeros(1)
    us = []
    for x in inp.flatten():
        u, o = lif.step(x.reshape(1), u, o)
        us.append(round(float(u), 6))
    assert us == [0.6, 0.9, 1.05, 0.6, 0.9]


def test_threshold_is_inclusive_and_exact_in_eval():
    lif = LIF(k=0.0, v_th=0.5).eval()
    inp = torch.tensor([0.5, 0.4999999, 0.5000001]).reshape(3, 1)
    assert lif(inp).flatten().tolist() == [1.0, 0.0, 1.0]


def test_train_and_eval_forward_agree():
    torch.manual_seed(0)
    inp = torch.randn(6, 4, 8) * 0.7
    lif = LIF()
    out_train = lif.train()(inp.clone().requires_grad_())
    out_eval = lif.eval()(inp)
    assert torch.equal(out_train.detach(), out_eval)


@pytest.mark.parametrize("kind", SURROGATES)
@pytest.mark.parametrize("width", [None, 0.5, 2.0])
def test_surrogate_backward_equals_formula(kind, width):
    x = torch.linspace(-3, 3, 601, dtype=torch.float64, requires_grad=True)
    spike(x, kind, width).sum().backward()
    a = {"rect": 1.0, "polynomial": 1.0, "sigmoid": 0.25, "gaussian": 0.25}[kind] if width is None else width
    xs = x.detach()
    if kind == "rect":
        expect = (xs.abs() < a / 2).double() / a
    elif kind == "polynomial":
        expect = torch.clamp(math.sqrt(a) / 2 - a / 4 * xs.abs(), min=0)
    elif kind == "sigmoid":
        e = torch.exp(-xs / a)
        expect = e / (1 + e) ** 2 / a
    else:
        expect = torch.exp(-xs ** 2 / (2 * a)) / math.sqrt(2 * math.pi * a)
    torch.testing.assert_close(x.grad, expect)
    # each curve is a density: it integrates to ~1
    fine = torch.linspace(-40, 40, 800001, dtype=torch.float64)
    assert float(torch.trapezoid(surrogate_grad(fine, kind, width), fine)) == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("kind", SURROGATES)
def test_fused_lif_gradient_equals_autograd_reference(kind):
    torch.manual_seed(1)
    inp = (torch.randn(7, 3, 5, dtype=torch.float64) * 0.6 + 0.3).requires_grad_()
    g = torch.randn(7, 3, 5, dtype=torch.float64)
    ref = naive_lif(inp, 0.3, 0.5, kind, None)
    (ref * g).sum().backward()
    g_ref = inp.grad.clone()
    inp.grad = None
    lif = LIF(k=0.3, v_th=0.5, surrogate=kind).train()
    out = lif(inp)
    (out * g).sum().backward()
    assert torch.equal(out.detach(), ref.detach())
    torch.testing.assert_close(inp.grad, g_ref)


@pytest.mark.parametrize("kind", SURROGATES)
@pytest.mark.parametrize("k,u0", [(0.3, 0.0), (1.0, 0.25), (0.8, 0.4)])
def test_fused_subtract_reset_gradient_equals_autograd_reference(kind, k, u0):
    torch.manual_seed(2)
    inp = (torch.randn(9, 3, 5, dtype=torch.float64) * 0.6 + 0.3).requires_grad_()
    g = torch.randn(9, 3, 5, dtype=torch.float64)
    ref = naive_lif(inp, k, 0.5, kind, None, reset="subtract", u0=u0)
    (ref * g).sum().backward()
    g_ref = inp.grad.clone()
    inp.grad = None
    out = LIF(k=k, v_th=0.5, surrogate=kind, reset="subtract", u0=u0).train()(inp)
    (out * g).sum().backward()
    assert torch.equal(out.detach(), ref.detach())
    assert out.detach().sum() > 0
    torch.testing.assert_close(inp.grad, g_ref)


def test_subtract_reset_and_u0_by_hand():
    # IF (k = 1), V_th = 1, u0 = 0.5, constant input 0.4:
    # u = 0.9 → 1.3 (spike) → 1.3 − 1 + 0.4 = 0.7 → 1.1 (spike) → 0.1 + 0.4 = 0.5
    lif = LIF(k=1.0, v_th=1.0, reset="subtract", u0=0.5).eval()
    inp = torch.full((5, 1), 0.4)
    assert lif(inp).flatten().tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
    u, o = lif.initial_u(torch.zeros(1)), torch.zeros(1)
    us = []
    for x in inp.flatten():
        u, o = lif.step(x.reshape(1), u, o)
        us.append(round(float(u), 6))
    assert us == [0.9, 1.3, 0.7, 1.1, 0.5]
    # leaky subtraction: k = 0.5, V_th = 1, u0 = 0: u = 1.2 (spike) → 0.5·(1.2 − 1) + 1.2 = 1.3 (spike)
    # → 0.5·0.3 + 0 = 0.15 → 0.075
    lif = LIF(k=0.5, v_th=1.0, reset="subtract").eval()
    out = lif(torch.tensor([1.2, 1.2, 0.0, 0.0]).reshape(4, 1)).flatten().tolist()
    assert out == [1.0, 1.0, 0.0, 0.0]


def test_if_soft_reset_counts_are_the_qcfs_quantisation():
    """IF, soft reset, u0 = V_th/2, constant current x ∈ [0, 1]: ⌊x·T + ½⌋ spikes in T steps
    (clipped to [0, T]) — the QCFS activation with L = T levels, times T."""
    from snnzoo.zoo.qcfs import QCFS

    T = 8
    x = torch.linspace(-0.3, 1.3, 161, dtype=torch.float64)
    counts = LIF(k=1.0, v_th=1.0, reset="subtract", u0=0.5).eval()(x.expand(T, -1)).sum(0)
    expect = torch.clamp(torch.floor(x * T + 0.5), 0, T)
    # away from the exact half-steps, where float rounding decides
    away = ((x * T + 0.5) - torch.round(x * T + 0.5)).abs() > 1e-9
    assert torch.equal(counts[away], expect[away])
    q = QCFS(levels=T)(x.unsqueeze(0)).squeeze(0)
    assert torch.equal((q * T)[away], expect[away])


def test_lif_state_stays_fp32_under_bf16():
    torch.manual_seed(3)
    inp = torch.rand(6, 4, 16) * 0.3 + 0.05  # sums cross V_th = 0.5 at steps where bf16 rounding matters
    lif = LIF(k=1.0, v_th=0.5, reset="subtract").eval()
    ref = lif(inp)
    out = lif(inp.bfloat16())
    assert out.dtype == torch.float32
    assert torch.equal(out, lif(inp.bfloat16().float()))
    assert ref.sum() > 0


def test_bad_reset_and_decay_are_refused():
    with pytest.raises(ValueError, match="reset"):
        LIF(reset="hard")
    with pytest.raises(ValueError, match="decay"):
        LIF(k=1.5)


def test_unknown_surrogate_is_refused():
    with pytest.raises(ValueError, match="surrogate"):
        LIF(surrogate="triangle")
