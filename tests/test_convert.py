"""QCFS twin → IF network (zoo/convert.py): same weights, the first layer exact, the rest
converging to the twin as T grows; `snnzoo convert` and `snnzoo eval --time-steps`."""
from __future__ import annotations

import json

import numpy as np

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import snnzoo
from snnzoo.cli import cli
from snnzoo.zoo.convert import convert_qcfs
from snnzoo.zoo.lif import LIF
from snnzoo.zoo.qcfs import QCFS
from snnzoo.zoo.training.checkpoint import export_folder


def calibrated_twin(levels: int = 8, seed: int = 0) -> torch.nn.Module:
    """A twin whose BN statistics come from data (smooth images), with affines that put the
    pre-activations across the QCFS range [0, 1] as training does."""
    torch.manual_seed(seed)
    twin = snnzoo.create_model("cifar10_qcfs", neuron="qcfs", qcfs_levels=levels, time_steps=1)
    for m in twin.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.momentum = None  # cumulative average over the calibration batches
            m.weight.data.fill_(0.3)
            m.bias.data.fill_(0.25)
    twin.train()
    with torch.no_grad():
        for _ in range(3):
            twin(images(64, seed + 1))
    return twin.eval()


def images(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(n, 3, 8, 8, generator=g)
    return torch.nn.functional.interpolate(low, size=32, mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def twin_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("twin")
    twin = calibrated_twin()
    export_folder(twin, folder, {"metrics": {"val_acc": 0.5}})
    return folder


def test_convert_cli_keeps_the_weights(twin_folder, tmp_path):
    out = tmp_path / "snn"
    r = CliRunner().invoke(cli, ["convert", str(twin_folder), "-o", str(out), "-T", "4"])
    assert r.exit_code == 0, r.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["neuron"] == "lif" and cfg["model"]["time_steps"] == 4 == cfg["input"]["time_steps"]
    assert (cfg["model"]["k"], cfg["model"]["reset"], cfg["model"]["u0"]) == (1.0, "subtract", 0.5)
    assert cfg["converted_from"]["qcfs_levels"] == 8 and cfg["converted_from"]["twin_metrics"] == {"val_acc": 0.5}
    a, b = load_file(str(twin_folder / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    net = snnzoo.zoo.pretrained.load_folder(out)
    assert all(isinstance(m, LIF) and m.reset == "subtract" for _, m in net.lif_layers())


def test_convert_refuses_a_spiking_folder(tmp_path):
    folder = tmp_path / "lif"
    export_folder(snnzoo.create_model("cifar10_qcfs"), folder, {})
    r = CliRunner().invoke(cli, ["convert", str(folder), "-o", str(tmp_path / "x")])
    assert r.exit_code == 1 and "not a QCFS twin" in r.output and len(r.output.strip().splitlines()) == 1


@pytest.mark.parametrize("T", [4, 8])
def test_first_layer_spike_counts_are_the_qcfs_activation(twin_folder, T):
    """Constant input current: the encoding layer's IF counts are T · q_T(I) exactly."""
    snn = convert_qcfs(twin_folder, T).eval()
    x = images(16, 7)
    with torch.no_grad():
        current = snn.layers[0](x)
        counts = snn.layers[1](current.unsqueeze(0).expand(T, *current.shape)).sum(0)
        q = QCFS(levels=T)(current.unsqueeze(0)).squeeze(0) * T
    z = current.double() * T + 0.5
    away = (z - z.round()).abs() > 1e-4  # float rounding decides exact half-steps
    assert torch.equal(counts[away], q[away]) and 0 < counts.mean() < T


def test_spiking_network_converges_to_the_twin(twin_folder):
    """The deeper layers see spike trains, so the match is in expectation: the score error
    shrinks with T (measured: 0.064, 0.029, 0.016 at T = 2, 8, 32 on 32 images) and at T = 16 the
    top-1 agrees with the twin on most images (31/32 at T = 2, 8 and 32)."""
    twin = snnzoo.zoo.pretrained.load_folder(twin_folder).eval()
    x = images(16, 11)
    with torch.no_grad():
        ref = twin(x)
        err = {}
        for T in (1, 4, 16):
            out = convert_qcfs(twin_folder, T).eval()(x)
            err[T] = float((out - ref).abs().mean())
            agree = float((out.argmax(1) == ref.argmax(1)).float().mean())
    assert err[16] < err[4] < err[1], err
    assert err[16] < 0.03 and agree >= 0.8, (err, agree)


def test_qcfs_gradients():
    """Straight-through floor inside the clip; ``ste_clip`` also passes the gradient outside it
    (the voting layer), while the forward value is the same clipped step."""
    x = torch.tensor([-0.5, 0.05, 0.4, 0.99, 1.7], requires_grad=True)
    hard, soft = QCFS(4), QCFS(4, ste_clip=True)
    y = hard(x)
    assert y.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    x.grad = None
    y2 = soft(x)
    assert torch.equal(y2, y)
    y2.sum().backward()
    assert x.grad.tolist() == [1.0] * 5
    twin = snnzoo.create_model("cifar10_qcfs", neuron="qcfs", time_steps=1)
    assert [m.ste_clip for _, m in twin.lif_layers()] == [False] * 7 + [True]


def test_eval_at_other_time_steps_reports_spikes(twin_folder, tmp_path, shared_data):
    """`snnzoo eval FOLDER -T 2` runs the converted network at T = 2 on real test images and
    reports its spikes per sample; an ONNX file refuses -T (its T is built into the graph)."""
    snn = tmp_path / "snn"
    assert CliRunner().invoke(cli, ["convert", str(twin_folder), "-o", str(snn), "-T", "8"]).exit_code == 0
    args = ["eval", str(snn), "--dataset", "cifar10", "--data-root", str(shared_data / "cifar10"),
            "--split", "test", "--exact-only", "--limit", "8", "--format", "json", "--no-progress"]
    r = CliRunner().invoke(cli, [*args, "-T", "2"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["time_steps"] == 2 and out["n"] == 8
    net = snnzoo.zoo.pretrained.load_folder(snn, time_steps=2)
    shapes = []
    for _, m in net.lif_layers():
        m.register_forward_hook(lambda mod, i, o: shapes.append(o.shape[2:].numel()))
    with torch.no_grad():
        net(images(1, 3))
    neurons = sum(shapes)  # spikes per sample is at most neurons × T
    assert 0 < out["spikes_per_sample"] <= neurons * 2
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"")
    r = CliRunner().invoke(cli, ["eval", str(onnx), *args[2:], "-T", "2"])
    assert r.exit_code != 0 and "time steps built in" in r.output


def test_step_sweep_is_the_model_at_smaller_T(twin_folder):
    """The first t steps of a T = 8 run are the run at T = t (image models): scores and spikes."""
    from snnzoo.zoo.training.evaluate import TorchRunner

    x = torch.randint(0, 256, (6, 3, 32, 32), generator=torch.Generator().manual_seed(5), dtype=torch.uint8)
    full = TorchRunner(convert_qcfs(twin_folder, 8), torch.device("cpu"), "T=8")
    full(x)
    sweep = full.step_scores([1, 2, 4, 8])
    for t in (1, 2, 4, 8):
        alone = TorchRunner(convert_qcfs(twin_folder, t), torch.device("cpu"), f"T={t}")
        scores = alone(x)
        np.testing.assert_array_equal(sweep[t], scores)
        assert full.spikes_per_sample(t) == pytest.approx(alone.spikes_per_sample(), rel=1e-12)
    assert full.spikes_per_sample(1) < full.spikes_per_sample(8)
