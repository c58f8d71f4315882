"""The paper's topologies, the registry, gradients through time, determinism."""
import pytest
import torch

import snnzoo
from snnzoo.zoo.layers import parse_arch
from snnzoo.zoo.lif import LIF
from snnzoo.zoo.neunorm import NeuNorm


def conv(cin, cout):
    return cin * cout * 9 + cout


def fc(cin, cout):
    return cin * cout + cout


# Written out from the paper's notation, independently of the builder.
NMNIST_PARAMS = conv(2, 128) + conv(128, 128) + conv(128, 128) + conv(128, 256) + fc(256 * 8 * 8, 1024) + fc(1024, 100)
CIFAR_PARAMS = (conv(3, 128) + conv(128, 256) + conv(256, 512) + conv(512, 1024) + conv(1024, 512)
                + fc(512 * 8 * 8, 1024) + fc(1024, 512) + fc(512, 100))
DVS_PARAMS = conv(2, 128) + conv(128, 128) + conv(128, 128) + conv(128, 256) + fc(256 * 10 * 10, 1024) + fc(1024, 100)


@pytest.mark.parametrize("name,params,neunorm_params,x", [
    ("wu2019_nmnist", NMNIST_PARAMS, 128 * 34 * 34 * 2 + 128 * 17 * 17 + 256 * 17 * 17, (2, 10, 2, 34, 34)),
    ("wu2019_dvscifar10", DVS_PARAMS, 128 * 42 * 42 * 2 + 128 * 21 * 21 + 256 * 21 * 21, (2, 10, 2, 42, 42)),
    ("wu2019_cifar10", CIFAR_PARAMS, 128 * 32 * 32 + 256 * 32 * 32 + 512 * 16 * 16 + 1024 * 8 * 8 + 512 * 8 * 8,
     (2, 3, 32, 32)),
])
def test_paper_topologies(name, params, neunorm_params, x):
    plain = snnzoo.create_model(name, neunorm=False, time_steps=2)
    assert plain.num_params() == params
    with_nn = snnzoo.create_model(name, time_steps=2)
    assert with_nn.num_params() == params + neunorm_params
    assert sum(isinstance(m, NeuNorm) for m in with_nn.modules()) == sum(
        s.kind == "conv" for s in parse_arch(with_nn.arch))
    inp = torch.rand(*x) if len(x) == 4 else (torch.rand(x[0], 2, *x[2:]) < 0.1).float()
    out = with_nn.eval()(inp)
    assert out.shape == (2, 10)
    assert ((out >= 0) & (out <= 1)).all()


def test_paper_param_counts_match_the_brief():
    assert round(NMNIST_PARAMS / 1e6, 1) == 17.5 and round(CIFAR_PARAMS / 1e6) == 45


@pytest.mark.parametrize("name", ["nmnist_compact", "cifar10_compact"])
def test_compact_models_fit_the_budget(name):
    m = snnzoo.create_model(name)
    assert m.num_params() * 2 < 25e6  # fp16 bytes


def test_registry():
    names = snnzoo.list_models()
    assert {"wu2019_nmnist", "wu2019_dvscifar10", "wu2019_cifar10", "nmnist_compact"} <= set(names)
    assert snnzoo.list_models("wu2019_*") == ["wu2019_cifar10", "wu2019_dvscifar10", "wu2019_nmnist"]
    m = snnzoo.create_model("nmnist_compact", time_steps=4, k=0.3, surrogate="sigmoid")
    assert m.config["input"]["time_steps"] == 4 and m.config["input"]["binning"]["n_time_bins"] == 4
    assert all(l.k == 0.3 and l.surrogate == "sigmoid" for _, l in m.lif_layers())
    with pytest.raises(TypeError, match="unknown arguments"):
        snnzoo.create_model("nmnist_compact", channels=3)
    with pytest.raises(KeyError, match="unknown model"):
        snnzoo.create_model("resnet50")


@pytest.mark.parametrize("name,shape", [("nmnist_compact", (3, 6, 2, 34, 34)),
                                        ("cifar10_compact", (3, 3, 32, 32))])
def test_gradient_reaches_first_layer_through_time(name, shape):
    torch.manual_seed(0)
    m = snnzoo.create_model(name, time_steps=6).train()
    x = torch.rand(*shape) if len(shape) == 4 else (torch.rand(*shape) < 0.15).float()
    out = m(x)
    torch.nn.functional.mse_loss(out, torch.eye(10)[:3]).backward()
    first = next(p for n, p in m.named_parameters() if "weight" in n)
    assert first.grad is not None and first.grad.abs().sum() > 0
    if len(shape) == 5:
        # Gradient through time: a loss on the LAST step's output spikes alone must reach x[:, 0].
        # Stateless layers act per step and NeuNorm is off, so only the LIF recursion links the steps.
        m = snnzoo.create_model(name, time_steps=6, neunorm=False).train()
        last = []
        m.voting.register_forward_hook(lambda mod, inp, out: last.append(inp[0][-1]))
        xg = x.clone().requires_grad_()
        m(xg)
        last[0].sum().backward()
        per_step = xg.grad.abs().sum(dim=(0, 2, 3, 4))
        assert (per_step > 0).all(), per_step


def test_seeded_determinism():
    def run():
        torch.manual_seed(123)
        m = snnzoo.create_model("nmnist_compact", time_steps=4)
        x = (torch.rand(2, 4, 2, 34, 34) < 0.1).float()
        return m.state_dict(), m.eval()(x)

    sd1, out1 = run()
    sd2, out2 = run()
    assert all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    assert torch.equal(out1, out2)


def test_multistep_runs_stateless_layers_once():
    m = snnzoo.create_model("nmnist_compact", time_steps=5).eval()
    calls = []
    conv = next(mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d))
    conv.register_forward_hook(lambda mod, i, o: calls.append(i[0].shape[0]))
    m((torch.rand(3, 5, 2, 34, 34) < 0.1).float())
    assert calls == [15]  # one call on the [T·B] batch


def test_lif_layers_are_reported():
    m = snnzoo.create_model("wu2019_nmnist", time_steps=2)
    assert len(m.lif_layers()) == 6 and all(isinstance(l, LIF) for _, l in m.lif_layers())
