"""NIR import (``snnzoo.zoo.from_nir``, ``create_model("nir:PATH")``): our files for every target
come back as the same network (same spikes on real recordings), a hand-written foreign graph runs
as NIR's forward-Euler semantics say, and graphs our neuron cannot express are refused by name."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import snnzoo
from conftest import randomize
from snnzoo.cli import cli

nir = pytest.importorskip("nir")

from snnzoo.export.nir import TARGETS, export_nir, to_nir  # noqa: E402
from snnzoo.export.onnx import example_input  # noqa: E402
from snnzoo.export.verify import event_inputs  # noqa: E402
from snnzoo.zoo import from_nir  # noqa: E402
from snnzoo.zoo.datasets.nmnist import NMNIST  # noqa: E402


@pytest.fixture(scope="module")
def frames(nmnist_root):
    ds = NMNIST(nmnist_root)
    cfg = snnzoo.create_model("nmnist_compact").config
    return torch.from_numpy(event_inputs([(ds[i][0], ds.sensor_size) for i in range(0, len(ds), 50)], cfg)).float()


def published(**kw):
    """``nmnist_compact`` without NeuNorm carrying the published conv/FC weights (fp16 values)."""
    full = snnzoo.create_model("nmnist_compact", pretrained=True)
    net = snnzoo.create_model("nmnist_compact", neunorm=False, **kw)
    for a, b in zip([m for m in full.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))],
                    [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))], strict=True):
        b.load_state_dict(a.state_dict())
    return net.eval()


# every (target, neuron) pair the exporter accepts; the refused ones are tested in test_nir_targets.py
ROUND_TRIPS = [(t, kw) for t in TARGETS for kw in ({}, {"k": 1.0}, {"reset": "subtract"})
               if not (kw.get("reset") == "subtract" and t != "sinabs") and not (kw.get("k") == 1.0 and t == "snntorch")]


@pytest.mark.parametrize("target,kw", ROUND_TRIPS, ids=[f"{t}-{'if' if 'k' in kw else kw.get('reset', 'lif')}"
                                                        for t, kw in ROUND_TRIPS])
def test_round_trip_gives_the_same_spikes(target, kw, frames, tmp_path):
    net = published(**kw)
    path = export_nir(net, tmp_path / "m.nir", target=target)
    back = snnzoo.create_model(f"nir:{path}")
    assert back.arch == net.arch and back.config["input"] == net.config["input"]
    assert back.config["classes"] == net.config["classes"]
    lif = back.lif_layers()[0][1]
    assert (lif.k, lif.v_th, lif.reset) == (net.config["model"]["k"], 0.5, kw.get("reset", "zero"))
    with torch.no_grad():
        ref, got = net(frames), back(frames)
    torch.testing.assert_close(got, ref, rtol=0, atol=0)


def euler_reference(graph, x: torch.Tensor, dt: float) -> torch.Tensor:
    """NIR's own semantics, stepped directly: forward Euler at ``dt``, spike on ``v > θ``, reset to
    ``v_reset``; conv/affine/flatten as their definitions. ``x``: ``[B, T, C, H, W]``."""
    names = [b for a, b in graph.edges]
    state: dict[str, torch.Tensor] = {}
    outs = []
    for t in range(x.shape[1]):
        h = x[:, t]
        for n in names:
            node = graph.nodes[n]
            if isinstance(node, nir.Conv2d):
                h = torch.nn.functional.conv2d(h, torch.from_numpy(node.weight), torch.from_numpy(node.bias),
                                               padding=tuple(node.padding))
            elif isinstance(node, nir.Flatten):
                h = h.flatten(1)
            elif isinstance(node, nir.Affine):
                h = h @ torch.from_numpy(node.weight).T + torch.from_numpy(node.bias)
            elif isinstance(node, nir.LIF):
                tau, r = torch.from_numpy(node.tau).double(), torch.from_numpy(node.r).double()
                v = state.get(n, torch.zeros_like(h, dtype=torch.float64))
                v = v + dt / tau * (-v + r * h.double())
                z = v > torch.from_numpy(node.v_threshold).double()
                state[n] = torch.where(z, torch.zeros_like(v), v)
                h = z.float()
        outs.append(h)
    return torch.stack(outs, 1).sum(1)  # spike counts per output neuron


def test_foreign_graph_follows_nir_semantics(frames, tmp_path):
    """A graph as another tool writes it (R = 1, θ = 1, dt = 1 ms, no readout, no metadata)."""
    g = np.random.default_rng(0)
    dt, tau = 1e-3, 4e-3  # k = 1 − dt/τ = 0.75, input scale R·dt/τ = 0.25
    conv_w = g.normal(0, 1.0, (8, 2, 3, 3)).astype(np.float32)
    fc_w = g.normal(0, 0.3, (10, 8 * 34 * 34)).astype(np.float32)

    def lif(shape):
        return nir.LIF(tau=np.full(shape, tau, np.float32), r=np.ones(shape, np.float32),
                       v_leak=np.zeros(shape, np.float32), v_threshold=np.ones(shape, np.float32))

    nodes = {"input": nir.Input(input_type={"input": np.array([2, 34, 34])}),
             "conv": nir.Conv2d(input_shape=(34, 34), weight=conv_w, stride=1, padding=1, dilation=1, groups=1,
                                bias=np.full(8, 0.5, np.float32)),
             "lif1": lif((8, 34, 34)), "flat": nir.Flatten(input_type={"input": np.array([8, 34, 34])}, start_dim=0),
             "fc": nir.Affine(weight=fc_w, bias=np.zeros(10, np.float32)), "lif2": lif((10,)),
             "output": nir.Output(output_type={"output": np.array([10])})}
    names = list(nodes)
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])))
    nir.write(str(tmp_path / "f.nir"), graph)
    with pytest.raises(ValueError, match="pass time_steps"):
        from_nir(tmp_path / "f.nir", dt=dt)
    net = from_nir(tmp_path / "f.nir", time_steps=8, dt=dt)
    assert net.arch == "8C3-Voting" and net.voting.neurons_per_class == 1
    assert net.lif_layers()[0][1].k == pytest.approx(0.75)
    ref = euler_reference(graph, frames, dt)
    with torch.no_grad():
        got = net(frames) * frames.shape[1]  # rates → counts
    assert ref.sum() > 0
    diff = (got - ref).abs()
    assert diff.sum() <= 1e-3 * ref.sum(), (diff.sum(), ref.sum())


def _graph_with(**changes):
    """Our own nmnist_compact graph with one node altered."""
    graph = to_nir(published(time_steps=2))
    for name, (attr, value) in changes.items():
        setattr(graph.nodes[name], attr, value)
    return graph


@pytest.mark.parametrize("changes,match", [
    ({"lif0": ("v_leak", np.full((32, 34, 34), 0.1, np.float32))}, "node lif0: v_leak != 0"),
    ({"lif1": ("v_reset", np.full((64, 17, 17), 0.2, np.float32))}, "node lif1: v_reset != 0"),
    ({"lif2": ("v_threshold", np.linspace(0.4, 0.6, 256).astype(np.float32))}, "v_threshold differs"),
    ({"conv0": ("stride", (2, 2))}, "stride-1 convolutions"),
    ({"readout": ("weight", np.ones((10, 100), np.float32))}, "voting group-mean matrix"),
])
def test_inexpressible_graphs_are_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        from_nir(_graph_with(**changes))


def test_branches_and_bad_files_are_refused(tmp_path):
    graph = _graph_with()
    graph.edges.append(("conv0", "pool0"))
    with pytest.raises(ValueError, match="branches"):
        from_nir(graph)
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a readable NIR file"):
        snnzoo.create_model(f"nir:{bad}")
    with pytest.raises(FileNotFoundError):
        snnzoo.create_model(f"nir:{tmp_path / 'none.nir'}")


def test_cli_targets_and_dt(tmp_path):
    run = CliRunner().invoke
    ok = run(cli, ["export", "cifar10_compact", "--no-pretrained", "--format", "nir", "--target", "norse",
                   "--dt", "0.002", "-T", "2", "-o", str(tmp_path / "n.nir")])
    assert ok.exit_code == 0, ok.output
    md = nir.read(str(tmp_path / "n.nir")).metadata
    assert md["target"] == "norse" and md["dt"] == 0.002
    bad = run(cli, ["export", "cifar10_compact", "--no-pretrained", "--format", "nir", "--target", "snntorch",
                    "--dt", "0.001", "-o", str(tmp_path / "s.nir")])
    assert bad.exit_code == 1 and "fixes its time step" in bad.stderr
    onnx = run(cli, ["export", "cifar10_compact", "--no-pretrained", "--dt", "0.1", "-o", str(tmp_path / "x.onnx")])
    assert onnx.exit_code == 1 and onnx.stderr.strip() == "snnzoo: error: --dt and --target apply to --format nir only"


def test_image_model_with_batchnorm_round_trip(tmp_path):
    """The encoding layer and folded BatchNorm come back as an ``(enc)`` conv with the folded weights."""
    torch.manual_seed(0)
    net = randomize(snnzoo.create_model("cifar10_compact", time_steps=2)).eval()
    back = from_nir(export_nir(net, tmp_path / "c.nir"))
    assert back.arch == net.arch and back.config["input"] == net.config["input"]
    x = example_input(net, batch=8)
    with torch.no_grad():
        ref, got = net(x), back(x)
    assert ref.sum() > 0
    votes = net.voting.neurons_per_class * 2
    assert (torch.round(got * votes) - torch.round(ref * votes)).abs().sum() <= 2  # BN folding may round a tie
