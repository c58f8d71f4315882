"""NIR export: written with nir, read back, executed through nirtorch with the documented LIF
mapping, it reproduces the PyTorch model; NeuNorm is refused with a clear error."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import snnzoo
from snnzoo.cli import cli
from snnzoo.export.onnx import example_input

nir = pytest.importorskip("nir")
nirtorch = pytest.importorskip("nirtorch")

from snnzoo.export.nir import export_nir  # noqa: E402  (needs nir)

T = 4


class EulerLIF(torch.nn.Module):
    """``nir.LIF`` simulated with forward Euler, dt = 1: ``v ← (1 − 1/τ)·v + (R/τ)·I``,
    spike on ``v > v_th``, then ``v ← v_reset``; nirtorch's stateful ``(out, state)`` form."""

    def __init__(self, node) -> None:
        super().__init__()
        self.decay = torch.from_numpy(1 - 1 / node.tau)
        self.gain = torch.from_numpy(node.r / node.tau)
        self.v_th, self.v_reset = torch.from_numpy(node.v_threshold), torch.from_numpy(node.v_reset)

    def forward(self, x, state=None):
        v = self.decay * (torch.zeros_like(x) if state is None else state) + self.gain * x
        z = (v > self.v_th).float()
        return z, torch.where(z > 0, self.v_reset.expand_as(v), v)


def affine(node) -> torch.nn.Linear:
    # nirtorch 2.6's default Affine map assigns the bias to `weight.bias`, leaving it random
    lin = torch.nn.Linear(node.weight.shape[1], node.weight.shape[0])
    lin.weight.data, lin.bias.data = torch.from_numpy(node.weight), torch.from_numpy(node.bias)
    return lin


NODE_MAP = {nir.LIF: EulerLIF, nir.Affine: affine,
            # NIR counts Flatten's dims without the batch axis
            nir.Flatten: lambda n: torch.nn.Flatten(start_dim=n.start_dim + 1, end_dim=n.end_dim)}


@pytest.mark.parametrize("name,kw", [("nmnist_compact", {"neunorm": False}), ("cifar10_compact", {})])
def test_nir_round_trip_reproduces_the_model(name, kw, tmp_path):
    torch.manual_seed(0)
    net = snnzoo.create_model(name, time_steps=T, **kw).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # non-trivial BN statistics, to be folded into the weights
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.1, 0.1, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
    path = export_nir(net, tmp_path / f"{name}.nir")
    graph = nir.read(str(path))
    assert graph.metadata["time_steps"] == T and graph.metadata["dt"] == 1.0
    lifs = [n for n in graph.nodes.values() if isinstance(n, nir.LIF)]
    assert len(lifs) == sum(isinstance(m, snnzoo.zoo.LIF) for m in net.modules())
    k = net.config["model"]["k"]
    for node in lifs:  # the documented mapping: tau = dt/(1-k), r = 1/(1-k), v_leak = v_reset = 0
        np.testing.assert_allclose(node.tau, 1 / (1 - k), rtol=1e-6)
        np.testing.assert_allclose(node.r, 1 / (1 - k), rtol=1e-6)
        assert not node.v_leak.any() and not node.v_reset.any()
        # NIR fires on v > v_th: the float32 just below V_th makes that our u >= V_th
        np.testing.assert_array_equal(node.v_threshold, np.nextafter(np.float32(net.config["model"]["v_th"]),
                                                                     np.float32(0)))
    assert not any(type(n).__name__.startswith("BatchNorm") for n in graph.nodes.values())

    module = nirtorch.nir_to_torch(graph, NODE_MAP)
    x = example_input(net, batch=8)
    with torch.no_grad():
        ref = net(x)
        state, rates = None, []
        for t in range(T):
            out, state = module(x if net.encoding else x[:, t], state)
            rates.append(out)
        got = torch.stack(rates).mean(0)
    assert ref.max() > 0
    votes = net.voting.neurons_per_class * T
    dv = (torch.round(got * votes) - torch.round(ref * votes)).abs()
    if not net.encoding:  # binary frames, no BN: the same float ops, identical spikes
        assert dv.max() == 0
    else:
        # BN folded into the conv weights and decay 1 − 1/τ (0.19999999 in float32, not 0.2)
        # round differently, so a membrane on the threshold may flip: allow rare flips
        assert dv.max() <= 2 and dv.sum() / (dv.numel() * votes) < 5e-3, dv
        first = next(n for n in graph.nodes.values() if isinstance(n, nir.Conv2d))
        folded = torch.nn.functional.conv2d(x, torch.from_numpy(first.weight), torch.from_numpy(first.bias),
                                            padding=tuple(first.padding))
        with torch.no_grad():
            torch.testing.assert_close(folded, net.layers[0](x), rtol=1e-5, atol=1e-5)


def test_neunorm_is_refused(tmp_path):
    net = snnzoo.create_model("nmnist_compact", time_steps=T)
    with pytest.raises(ValueError, match="NIR has no NeuNorm node; export with neunorm=False"):
        export_nir(net, tmp_path / "x.nir")
    res = CliRunner().invoke(cli, ["export", "nmnist_compact", "--no-pretrained", "--format", "nir",
                                   "-o", str(tmp_path / "x.nir")])
    assert res.exit_code == 1
    assert res.stderr.strip() == ("snnzoo: error: nmnist_compact: NIR has no NeuNorm node; "
                                  "export with neunorm=False")
    assert not (tmp_path / "x.nir").exists()


def test_cli_writes_nir(tmp_path):
    out = tmp_path / "c.nir"
    res = CliRunner().invoke(cli, ["export", "cifar10_compact", "--no-pretrained", "--format", "nir",
                                   "-T", "2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    graph = nir.read(str(out))
    assert graph.metadata["model_id"] == "cifar10_compact" and graph.metadata["time_steps"] == 2
    classes = [c.decode() if isinstance(c, bytes) else c for c in graph.metadata["classes"]]  # HDF5 gives bytes
    assert classes[:2] == ["airplane", "automobile"]
