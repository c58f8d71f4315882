"""NeuNorm on a tiny hand example and its step form."""
import torch

from snnzoo.zoo.neunorm import NeuNorm


def test_neunorm_hand_example():
    nn_ = NeuNorm(channels=2, height=1, width=2, k2=0.5, v=1.0)
    with torch.no_grad():
        nn_.scale.copy_(torch.tensor([[[1.0, 2.0]], [[0.5, 0.0]]]))
    # T=2, B=1, F=2, H=1, W=2
    o = torch.tensor([[[[[1.0, 0.0]], [[1.0, 1.0]]]],
                      [[[[0.0, 0.0]], [[1.0, 0.0]]]]])
    # a[0] = (1/2)·Σ_f o_f[0] = [1.0, 0.5];  a[1] = 0.5·a[0] + (1/2)·[1, 0] = [1.0, 0.25]
    a = nn_.auxiliary(o)
    torch.testing.assert_close(a[:, 0, 0, 0], torch.tensor([[1.0, 0.5], [1.0, 0.25]]))
    s = nn_(o)
    expect = torch.tensor([
        [[[1 - 1.0 * 1.0, 0 - 2.0 * 0.5]], [[1 - 0.5 * 1.0, 1 - 0.0]]],
        [[[0 - 1.0 * 1.0, 0 - 2.0 * 0.25]], [[1 - 0.5 * 1.0, 0 - 0.0]]],
    ])
    torch.testing.assert_close(s[:, 0], expect)


def test_neunorm_step_equals_sequence_and_starts_as_identity():
    torch.manual_seed(0)
    nn_ = NeuNorm(4, 3, 3)
    o = (torch.rand(6, 2, 4, 3, 3) < 0.3).float()
    assert torch.equal(nn_(o), o)  # scale starts at 0
    with torch.no_grad():
        nn_.scale.normal_()
    seq = nn_(o)
    a = torch.zeros(2, 1, 3, 3)
    for t in range(6):
        s_t, a = nn_.step(o[t], a)
        torch.testing.assert_close(s_t, seq[t])


def test_neunorm_scale_gets_gradient():
    nn_ = NeuNorm(2, 2, 2)
    o = (torch.rand(3, 1, 2, 2, 2) < 0.5).float()
    nn_(o).sum().backward()
    assert nn_.scale.grad is not None and nn_.scale.grad.abs().sum() > 0
