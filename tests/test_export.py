"""ONNX export: every registry model at small T, metadata, verification, the CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

import snnzoo
from snnzoo.cli import cli
from snnzoo.export import export_onnx, verify_onnx
from snnzoo.export.onnx import example_input, prepare
from snnzoo.export.verify import event_inputs
from snnzoo.runtime.onnx_metadata import decode_metadata, initializers_sha256, read_metadata
from snnzoo.runtime.readers import read_nmnist_bin

from conftest import randomize

SMALL_T = 2


def nmnist_files(root: Path, n: int) -> list[Path]:
    """``n`` recordings spread over the ten digits."""
    per = -(-n // 10)
    files = [f for d in range(10) for f in sorted((root / "Train" / str(d)).glob("*.bin"))[:per]]
    return files[:n]


def small_inputs(net, batch: int = 6) -> np.ndarray:
    return example_input(net, batch=batch).numpy()


@pytest.mark.parametrize("name", snnzoo.list_models())
def test_registry_model_exports_and_verifies(name, tmp_path):
    # the comparison means something only on varied outputs: the first seed whose random network
    # gives at least 3 distinct top-1 classes on the 12 inputs (seed 0 for all but the deep
    # cifar10_qcfs_vgg13, whose random inits mostly vote one class: seed 1 there)
    for seed in range(8):
        torch.manual_seed(seed)
        net = randomize(snnzoo.create_model(name, time_steps=SMALL_T), seed=seed)
        x = small_inputs(net, batch=12)
        with torch.no_grad():
            top1 = net.eval()(torch.from_numpy(x)).argmax(1)
        net.train()
        if len(set(top1.tolist())) >= 3:
            break
    assert len(set(top1.tolist())) >= 3, top1
    path = export_onnx(net, tmp_path / f"{name}.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.onnx"]  # one self-contained file
    model = onnx.load(str(path))
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)

    sess = ort.InferenceSession(str(path))
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    classes = len(net.config["classes"])
    if net.encoding:
        assert inp.name == "image" and inp.shape[1:] == list(net.in_shape)
    else:
        assert inp.name == "frames" and inp.shape[1:] == [SMALL_T, *net.in_shape]
    assert isinstance(inp.shape[0], str), "batch axis must be dynamic"
    assert out.name == "scores" and out.shape[1] == classes and isinstance(out.shape[0], str)

    report = verify_onnx(path, net, x)
    assert report["checker"] == "ok" and report["passed"], report
    # and on untied outputs: measured 7-9 of 12 samples with a unique top-1 over the registry
    assert report["top1_unique"] >= 6, report
    assert net.training, "export must not switch the caller's model to eval"


def test_export_at_another_T_describes_that_T(tmp_path):
    """``export_onnx(net, path, time_steps=3)`` of a T=8 model: the graph, the metadata's time steps
    and its binning all say 3 (the runtime bins with that spec), and the caller's model keeps T=8."""
    torch.manual_seed(0)
    net = snnzoo.create_model("nmnist_compact")
    path = export_onnx(net, tmp_path / "t3.onnx", time_steps=3)
    meta = read_metadata(path)
    assert meta["time_steps"] == 3 and meta["binning"]["n_time_bins"] == 3, meta
    assert ort.InferenceSession(str(path)).get_inputs()[0].shape[1] == 3
    assert net.time_steps == 8 and net.config["input"]["binning"]["n_time_bins"] == 8


@pytest.fixture(scope="module")
def nmnist_export(tmp_path_factory):
    torch.manual_seed(0)
    net = snnzoo.create_model("nmnist_compact", time_steps=3)
    path = export_onnx(net, tmp_path_factory.mktemp("nmnist") / "m.onnx", weights={"source": "random-init"})
    return net, path


def test_metadata_is_complete_and_readable_without_torch(nmnist_export):
    _, path = nmnist_export
    meta = read_metadata(path)
    proto = onnx.load(str(path))
    assert meta == decode_metadata({p.key: p.value for p in proto.metadata_props})
    assert meta == read_metadata(ort.InferenceSession(str(path)))
    assert meta["model_id"] == "nmnist_compact" and meta["snnzoo_version"] == snnzoo.__version__
    assert meta["classes"] == [str(i) for i in range(10)] and meta["num_classes"] == 10
    assert meta["time_steps"] == 3 and meta["input_name"] == "frames" and meta["input_shape"] == [3, 2, 34, 34]
    assert meta["sensor_size"] == [34, 34, 2]
    assert meta["binning"] == {"method": "n_time_bins", "n_time_bins": 3, "mode": "binary",
                               "downsample": 1, "polarity_channels": 2}
    assert meta["normalization"] is None and meta["streaming"] is False
    assert meta["neuron"]["k"] == 0.2 and meta["neuron"]["v_th"] == 0.5 and meta["neuron"]["neunorm_k2"] == 0.9
    assert meta["output"]["neurons_per_class"] == 10
    assert meta["weights"] == {"source": "random-init"}
    assert meta["license"] == "MIT" and "wu2019direct" in meta["citation"]
    assert proto.producer_name == "snnzoo"


def test_metadata_reader_imports_neither_torch_nor_onnx(nmnist_export):
    _, path = nmnist_export
    code = ("import sys; from snnzoo.runtime.onnx_metadata import read_metadata; "
            f"m = read_metadata({str(path)!r}); assert m['model_id'] == 'nmnist_compact'; "
            "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('torch', 'onnx', 'snnzoo.zoo')); "
            "assert not bad, bad")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def test_metadata_reader_rejects_other_files(nmnist_export, tmp_path):
    bogus, cut = tmp_path / "not.onnx", tmp_path / "cut.onnx"
    bogus.write_text("[project]\nname = 'not an onnx file'\n")
    cut.write_bytes(nmnist_export[1].read_bytes()[:100_000])
    with pytest.raises(ValueError, match="not.onnx: not an ONNX model"):
        read_metadata(bogus)
    with pytest.raises(ValueError, match="cut.onnx: truncated ONNX file"):
        read_metadata(cut)


def test_weights_sha256_tracks_the_weights(nmnist_export):
    _, path = nmnist_export
    proto = onnx.load(str(path))
    digest = read_metadata(path)["weights_sha256"]
    assert digest == initializers_sha256(proto) and len(digest) == 64
    tensor = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
    arr = numpy_helper.to_array(tensor).copy()
    arr.flat[0] += 1.0
    tensor.CopyFrom(numpy_helper.from_array(arr, tensor.name))
    assert initializers_sha256(proto) != digest


def test_image_metadata_and_opset(tmp_path):
    net = snnzoo.create_model("cifar10_compact", time_steps=SMALL_T)
    path = export_onnx(net, tmp_path / "c.onnx", opset=18)
    meta = read_metadata(path)
    assert {o.domain: o.version for o in onnx.load(str(path)).opset_import}[""] == 18
    assert meta["input_name"] == "image" and meta["input_kind"] == "image"
    assert meta["sensor_size"] is None and meta["binning"] is None
    assert meta["normalization"]["std"] == net.config["input"]["std"]
    assert meta["classes"][0] == "airplane" and meta["neuron"]["bn"] is True


def test_verify_detects_a_different_model(nmnist_export):
    net, path = nmnist_export
    torch.manual_seed(1)
    other = snnzoo.create_model("nmnist_compact", time_steps=3)
    report = verify_onnx(path, other, example_input(prepare(net), batch=16).numpy())
    assert not report["passed"] and report["flip_rate"] > 10 * report["tolerance"]["max_flip_rate"], report


def test_teacher_forcing_finds_a_one_percent_error_in_its_layer(nmnist_export, tmp_path):
    """A 1 % error in the first FC layer's weights: the forced check finds the flips in that layer
    (its inputs are PyTorch's spikes, so the layers before it stay clean) and fails the file."""
    net, path = nmnist_export
    x = example_input(prepare(net), batch=16).numpy()
    clean = verify_onnx(path, net, x)
    layers = clean["teacher_forced"]["layers"]
    assert clean["passed"] and len(layers) == len(net.lif_layers()), clean
    assert all(layer["neuron_steps"] > 0 for layer in layers)

    state = net.state_dict()
    fc = next(k for k, v in state.items() if k.endswith("weight") and v.dim() == 2)
    model = onnx.load(str(path))
    init = next(i for i in model.graph.initializer if i.name == fc)
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(1.01), fc))
    onnx.save(model, str(tmp_path / "off.onnx"))
    report = verify_onnx(tmp_path / "off.onnx", net, x)
    flips = [layer["flips"] for layer in report["teacher_forced"]["layers"]]
    hit = [n for n, _ in net.lif_layers()].index(f"layers.{int(fc.split('.')[1]) + 1}")
    assert not report["passed"] and not report["teacher_forced"]["layers"][hit]["ok"], report
    assert all(layer["ok"] for layer in report["teacher_forced"]["layers"][:hit]), report  # upstream: untouched
    assert flips[hit] > 10 * sum(flips[:hit]), report  # measured: 30 flips there, none upstream


def test_real_nmnist_recordings(nmnist_root, tmp_path):
    """nmnist_compact at its own T on 40 real recordings: top-1 identical, flips within tolerance."""
    torch.manual_seed(0)
    net = randomize(snnzoo.create_model("nmnist_compact"))
    path = export_onnx(net, tmp_path / "n.onnx")
    x = event_inputs([read_nmnist_bin(f) for f in nmnist_files(nmnist_root, 40)], net.config)
    assert x.shape == (40, 8, 2, 34, 34) and x.any()
    report = verify_onnx(path, net, x)
    print(json.dumps(report))
    assert report["passed"], report
    assert report["top1_unique"] > 20  # the check is not vacuous


# ---- CLI -------------------------------------------------------------------------------------

def run_cli(*args):
    return CliRunner().invoke(cli, ["export", *map(str, args)])


def test_cli_export_with_check(tmp_path):
    out = tmp_path / "m.onnx"
    res = run_cli("nmnist_compact", "--no-pretrained", "-T", SMALL_T, "-o", out, "--check")
    assert res.exit_code == 0, res.output
    assert "check (16 random inputs)" in res.output and "-> passed" in res.output
    assert "teacher-forced spike flips 0 of " in res.output
    meta = read_metadata(out)
    assert meta["time_steps"] == SMALL_T and meta["weights"] == {"source": "random-init"}


def test_cli_streaming_checked_on_shipped_recordings(tmp_path):
    samples = Path(snnzoo.__file__).parent / "runtime" / "samples"
    out = tmp_path / "s.onnx"
    res = run_cli("nmnist_compact", "--no-pretrained", "--streaming", "-o", out, "--check-data", samples)
    assert res.exit_code == 0, res.output
    n = len(list(samples.glob("*.npy")))
    assert f"check ({n} recordings)" in res.output and "-> passed" in res.output
    assert read_metadata(out)["streaming"] is True


def test_cli_checkpoint_folder(tmp_path):
    torch.manual_seed(0)
    net = randomize(snnzoo.create_model("nmnist_compact", time_steps=SMALL_T))
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(net.config))
    save_file({k: v.half().contiguous() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))
    out = tmp_path / "ckpt.onnx"
    res = run_cli(folder, "-o", out)
    assert res.exit_code == 0, res.output
    meta = read_metadata(out)
    assert meta["weights"]["source"] == "checkpoint" and len(meta["weights"]["sha256"]) == 64
    half = snnzoo.create_model("nmnist_compact", time_steps=SMALL_T)
    half.load_state_dict({k: v.half().float() for k, v in net.state_dict().items()})
    assert verify_onnx(out, half, small_inputs(half))["max_vote_diff"] == 0


def test_cli_errors(tmp_path):
    res = run_cli("no_such_model", "-o", tmp_path / "x.onnx")
    assert res.exit_code == 1 and res.stderr.startswith("snnzoo: error: no_such_model: ")
    unpublished = [n for n in snnzoo.list_models() if n not in snnzoo.list_models(pretrained=True)]
    if unpublished:
        res = run_cli(unpublished[0], "-o", tmp_path / "x.onnx")
        assert res.exit_code == 1 and "--no-pretrained" in res.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    res = run_cli(broken, "-o", tmp_path / "x.onnx")
    assert res.exit_code == 1 and res.stderr.startswith(f"snnzoo: error: {broken / 'config.json'}: ")
    assert len(res.stderr.strip().splitlines()) == 1
    res = run_cli("nmnist_compact", "--no-pretrained", "-o", tmp_path / "x.onnx", "--check-data", tmp_path / "*.bin")
    assert res.exit_code == 1 and res.stderr == f"snnzoo: error: {tmp_path / '*.bin'}: no file matches this pattern\n"
    res = run_cli("nmnist_compact", "--no-pretrained", "--format", "nir", "--streaming", "-o", tmp_path / "x.nir")
    assert res.exit_code == 1 and "onnx only" in res.stderr
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["wu2019_nmnist", "wu2019_dvscifar10", "wu2019_cifar10"])
def test_paper_topology_at_its_T(name, tmp_path, request):
    torch.manual_seed(0)
    net = randomize(snnzoo.create_model(name))
    path = export_onnx(net, tmp_path / f"{name}.onnx")
    assert read_metadata(path)["time_steps"] == net.time_steps
    if name == "wu2019_nmnist":
        root = request.getfixturevalue("nmnist_root")
        x = event_inputs([read_nmnist_bin(f) for f in nmnist_files(root, 20)], net.config)
    else:
        x = small_inputs(net, batch=8)
    report = verify_onnx(path, net, x)
    print(json.dumps(report))
    forced = report["teacher_forced"]  # every spiking layer at every one of its T steps
    assert len(forced["layers"]) == len(net.lif_layers()), report
    assert forced["neuron_steps"] == sum(layer["neuron_steps"] for layer in forced["layers"]) > 0
    assert report["passed"] and report["top1_unique"] > 0, report
