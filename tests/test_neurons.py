"""LIF dynamics, surrogate derivatives, STBP gradients through time."""
import math

import pytest
import torch

from snnzoo.zoo.lif import LIF
from snnzoo.zoo.surrogate import SURROGATES, spike, surrogate_grad


def naive_lif(inp, k, v_th, kind, width):
    """Reference: the LIF written with autograd on every op (the STBP code's style)."""
    u = torch.zeros_like(inp[0])
    o = torch.zeros_like(inp[0])
    out = []
    for t in range(inp.shape[0]):
        u = k * u * (1 - o) + inp[t]
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


def test_unknown_surrogate_is_refused():
    with pytest.raises(ValueError, match="surrogate"):
        LIF(surrogate="triangle")
