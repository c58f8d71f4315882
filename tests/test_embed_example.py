"""examples/embed_onnx.py: numpy + onnxruntime only, and the same answers as snnzoo."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

import snnzoo
from snnzoo.export import export_onnx
from snnzoo.runtime.binning import bin_from_spec
from snnzoo.runtime.onnx_metadata import read_metadata
from snnzoo.runtime.readers import read_dvsgesture_bs2, read_events, read_nmnist_bin

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "embed_onnx.py"
SAMPLES = sorted((REPO / "runtime" / "samples").glob("*.npy"))


def load_example():
    spec = importlib.util.spec_from_file_location("embed_onnx", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = snnzoo.create_model("nmnist_compact")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, snnzoo.zoo.NeuNorm):
                m.scale.copy_(torch.rand(m.scale.shape, generator=g))
    return export_onnx(net, tmp_path_factory.mktemp("embed") / "nmnist.onnx")


@pytest.fixture(scope="module")
def files(shared_data_or_none) -> list[str]:
    found = [str(p) for p in SAMPLES]
    if shared_data_or_none is not None:
        found += [str(p) for p in sorted((shared_data_or_none / "nmnist" / "Train" / "3").glob("*.bin"))[:4]]
    assert found, "no sample event files in runtime/samples"
    return found


@pytest.fixture(scope="module")
def shared_data_or_none(request) -> Path | None:
    """``../shared/data`` when it holds the N-MNIST recordings; the .npy samples serve otherwise."""
    try:
        root = request.getfixturevalue("nmnist_root")
    except pytest.skip.Exception:
        return None
    return root.parent


def snnzoo_scores(path: Path, files: list[str]) -> np.ndarray:
    meta = read_metadata(path)
    sensor = tuple(meta["sensor_size"])
    frames = np.stack([bin_from_spec(read_events(f, sensor_size=sensor)[0], sensor, meta["binning"]) for f in files])
    return ort.InferenceSession(str(path)).run(["scores"], {meta["input_name"]: frames})[0]


def run_example(*args: str) -> subprocess.CompletedProcess:
    """Run the example in a fresh interpreter and fail if torch or snnzoo got imported."""
    code = ("import runpy, sys\n"
            f"sys.argv = {['embed_onnx.py', *args]!r}\n"
            "try:\n"
            f"    runpy.run_path({str(EXAMPLE)!r}, run_name='__main__')\n"
            "except SystemExit as e:\n"
            "    code = e.code\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'snnzoo'))\n"
            "assert not bad, bad\n"
            "sys.exit(code)\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_example_matches_snnzoo_binning_and_ort(exported, files):
    res = run_example(str(exported), *files, "--json", "--top-k", "10")
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["file"] for r in rows] == files
    ref = snnzoo_scores(exported, files)
    classes = read_metadata(exported)["classes"]
    for r, s in zip(rows, ref):
        got = np.zeros(len(classes), np.float32)
        for k in r["topk"]:
            assert classes[k["label"]] == k["class"]
            got[k["label"]] = k["score"]
        np.testing.assert_array_equal(got, s)
        assert r["label"] == int(np.argmax(s)) and r["class"] == classes[r["label"]]
    assert ref.max() > 0


def test_reference_binning_equals_runtime_binning(files, shared_data_or_none):
    ex = load_example()
    specs = [{"method": "n_time_bins", "n_time_bins": 8, "mode": "binary", "downsample": 1},
             {"method": "n_time_bins", "n_time_bins": 5, "mode": "count", "downsample": 2},
             {"method": "time_window", "time_window": 20_000, "n_time_bins": 6, "mode": "count", "downsample": 1}]
    for f in files:
        ev = ex.read_events(f)
        ours, sensor = (read_nmnist_bin(f) if f.endswith(".bin") else read_events(f, sensor_size=(34, 34, 2))[:2])
        for field in "xytp":
            np.testing.assert_array_equal(ev[field], ours[field])
        for spec in specs:
            np.testing.assert_array_equal(ex.bin_events(ev, list(sensor), spec, spec["n_time_bins"]),
                                          bin_from_spec(ours, sensor, spec))
    if shared_data_or_none is not None:  # a 128×128 DVS clip, downsampled by 3 (the DVS-CIFAR10 spec)
        clip = shared_data_or_none / "dvsgesture" / "1.bs2"
        events, sensor = read_dvsgesture_bs2(clip)
        spec = {"method": "n_time_bins", "n_time_bins": 10, "mode": "count", "downsample": 3}
        np.testing.assert_array_equal(ex.bin_events(events, list(sensor), spec, 10), bin_from_spec(events, sensor, spec))


def test_example_rejects_a_streaming_graph(tmp_path):
    net = snnzoo.create_model("nmnist_compact", time_steps=2)
    step = export_onnx(net, tmp_path / "step.onnx", streaming=True)
    res = run_example(str(step), str(SAMPLES[0]))
    assert res.returncode == 2 and "not an unrolled event-stream or image snnzoo model" in res.stderr


def test_example_equals_snnzoo_predict(exported, files):
    ex = run_example(str(exported), *files, "--json", "--top-k", "3")
    pred = subprocess.run([sys.executable, "-m", "snnzoo", "predict", "--model", str(exported), "--format", "json",
                           "--top-k", "3", *files], capture_output=True, text=True, timeout=300)
    assert ex.returncode == 0 and pred.returncode == 0, ex.stderr + pred.stderr
    ours = {r["file"]: r for r in map(json.loads, ex.stdout.splitlines())}
    theirs = {r["file"]: r for r in map(json.loads, pred.stdout.splitlines())}
    assert set(ours) == set(theirs) == set(files)
    for f in files:
        a, b = ours[f], theirs[f]
        assert (a["label"], a["class"]) == (b["label"], b["class"]), f
        assert a["score"] == pytest.approx(b["score"], abs=1e-6)
        assert [(k["label"], k["class"]) for k in a["topk"]] == [(k["label"], k["class"]) for k in b["topk"]]
        assert [k["score"] for k in a["topk"]] == pytest.approx([k["score"] for k in b["topk"]], abs=1e-6)


@pytest.fixture(scope="module")
def image_files(cifar10_test_images, tmp_path_factory) -> list[str]:
    """Real CIFAR-10 test images as PNG and JPEG, and in the modes the runtime converts: grey,
    RGBA with graded alpha, a palette with a transparent entry, 16-bit grey."""
    from PIL import Image

    d = tmp_path_factory.mktemp("embed_images")
    imgs = cifar10_test_images[:8]
    for i in range(4):
        Image.fromarray(imgs[i]).save(d / f"png_{i}.png")
    Image.fromarray(imgs[4]).save(d / "jpeg.jpg", quality=85)
    Image.fromarray(imgs[5]).convert("L").save(d / "grey.png")
    alpha = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (32, 1))
    Image.fromarray(np.dstack([imgs[6], alpha])).save(d / "rgba.png")
    pal = Image.fromarray(imgs[7]).quantize(16)
    pal.save(d / "palette.png", transparency=int(np.asarray(pal)[0, 0]))
    Image.fromarray(imgs[0].astype(np.uint16)[..., 1] * 250).save(d / "grey16.png")
    return sorted(str(f) for f in d.iterdir())


@pytest.mark.parametrize("resize", [False, True])
def test_example_equals_snnzoo_predict_on_images(image_model, image_files, tmp_path, resize):
    from PIL import Image

    files, flags = image_files, []
    if resize:  # other sizes and aspect ratios, scaled and centre-cropped by both
        files = [str(tmp_path / "wide.png"), str(tmp_path / "tall.jpg")]
        Image.open(image_files[0]).resize((90, 40)).save(files[0])
        Image.open(image_files[1]).resize((33, 71)).convert("RGB").save(files[1])
        flags = ["--resize"]
    _, onnx_file = image_model
    ex = run_example(str(onnx_file), *files, "--json", "--top-k", "10", *flags)
    pred = subprocess.run([sys.executable, "-m", "snnzoo", "predict", "--model", str(onnx_file), "--format",
                           "json", "--top-k", "10", *flags, *files], capture_output=True, text=True, timeout=300)
    assert ex.returncode == 0 and pred.returncode == 0, ex.stderr + pred.stderr
    ours, theirs = ([json.loads(line) for line in out.stdout.splitlines()] for out in (ex, pred))
    assert [r["file"] for r in ours] == [r["file"] for r in theirs] == files
    for a, b in zip(ours, theirs):
        assert (a["label"], a["class"]) == (b["label"], b["class"]), a["file"]
        assert [(k["label"], k["class"]) for k in a["topk"]] == [(k["label"], k["class"]) for k in b["topk"]]
        assert [k["score"] for k in a["topk"]] == pytest.approx([k["score"] for k in b["topk"]], abs=1e-6)
    assert len({r["label"] for r in theirs}) > 1 or len(files) < 3  # the answers depend on the image


def test_example_refuses_a_wrong_image_size(image_model, image_files, tmp_path):
    from PIL import Image

    big = tmp_path / "big.png"
    Image.open(image_files[0]).resize((64, 48)).save(big)
    res = run_example(str(image_model[1]), str(big))
    assert res.returncode == 1 and res.stderr == f"{big}: image is 64×48; the model takes 32×32\n"
