"""snnzoo.runtime.Predictor: model resolution, the ONNX export cache, providers, the file
pipeline (order, cross-file batches, per-file errors), sensor checks, ORT vs torch, no torch."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from snnzoo.runtime import Predictor, models, onnx_cache
from snnzoo.runtime.ort_session import CPU, CUDA, TRT, DeviceError, OrtSession, choose_providers

from conftest import REPO, SAMPLES

SAMPLE_SOURCES = {s.name: (int(s.stem.split("_")[1]), s.stem.split("label")[1]) for s in SAMPLES}


# ---- samples ------------------------------------------------------------------------------
def test_samples_are_the_n_mnist_recordings(nmnist_root):
    from snnzoo.runtime.readers import read_nmnist_bin

    assert len(SAMPLES) == 5
    for s in SAMPLES:
        index, label = SAMPLE_SOURCES[s.name]
        ev, sensor = read_nmnist_bin(nmnist_root / "Train" / label / f"{index:05d}.bin")
        np.testing.assert_array_equal(np.load(s, allow_pickle=False), ev)
        assert sensor == (34, 34, 2)
    text = (REPO / "runtime" / "samples" / "ATTRIBUTION.md").read_text()
    assert "CC BY-SA 4.0" in text and all(s.name in text for s in SAMPLES)


# ---- model resolution and the export cache ------------------------------------------------
def test_default_model_points_at_the_bundled_folder(tmp_path, monkeypatch):
    folder = models.bundled_dir(models.DEFAULT_MODEL)
    assert folder == REPO / "zoo" / "weights" / "nmnist_compact"
    assert models.is_checkpoint(folder), f"{folder}: the bundled default is not shipped"  # no skip: a packaging bug
    assert models.resolve(None).checkpoint == folder
    monkeypatch.setattr(models, "bundled_root", lambda: tmp_path)
    with pytest.raises(models.ModelError, match="bundled default model is missing"):
        models.resolve(None)


def test_resolve_kinds(runtime_env, tmp_path):
    assert models.resolve(runtime_env.checkpoint).checkpoint == runtime_env.checkpoint
    assert models.resolve(runtime_env.onnx).onnx == runtime_env.onnx
    assert models.resolve("hf-hub:org/name@v1").registry_id == "hf-hub:org/name@v1"
    assert models.resolve("wu2019_nmnist").registry_id == "wu2019_nmnist"
    with pytest.raises(models.ModelError, match="no such ONNX file"):
        models.resolve(tmp_path / "missing.onnx")
    with pytest.raises(models.ModelError, match="not a checkpoint folder"):
        models.resolve(tmp_path)


def test_export_cache_is_keyed_by_weights_and_version(runtime_env, tmp_path):
    ref = models.resolve(runtime_env.checkpoint)
    path = onnx_cache.cached_onnx_path(ref)
    assert path == runtime_env.onnx and path.parent == runtime_env.cache / "onnx"
    assert path.name.endswith(f"-{onnx_cache.__version__}.onnx")
    other = tmp_path / "ckpt"
    other.mkdir()
    (other / "config.json").write_bytes((runtime_env.checkpoint / "config.json").read_bytes())
    weights = bytearray((runtime_env.checkpoint / "model.safetensors").read_bytes())
    weights[-1] ^= 1
    (other / "model.safetensors").write_bytes(bytes(weights))
    assert onnx_cache.cached_onnx_path(models.resolve(other)).name.split("-")[1] != path.name.split("-")[1]


# ---- providers ----------------------------------------------------------------------------
def test_choose_providers():
    assert choose_providers("cpu", [TRT, CUDA, CPU]) == [CPU]
    assert choose_providers("auto", [CPU]) == [CPU]
    assert choose_providers("auto", [CUDA, CPU]) == [CUDA, CPU]
    trt = choose_providers("cuda", [TRT, CUDA, CPU], Path("/tmp/trt"))
    assert trt[0][0] == TRT and trt[0][1]["trt_engine_cache_path"] == "/tmp/trt" and trt[1:] == [CUDA, CPU]
    with pytest.raises(DeviceError, match="no CUDA execution provider"):
        choose_providers("cuda", ["AzureExecutionProvider", CPU])


def test_cuda_request_fails_loudly_on_a_cpu_onnxruntime(runtime_env):
    import onnxruntime as ort

    if CUDA in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(DeviceError, match="cuda"):
        OrtSession(runtime_env.onnx, device="cuda")


# ---- the pipeline -------------------------------------------------------------------------
def test_files_in_order_with_errors_and_cross_file_batches(runtime_env, bad_files):
    pred = Predictor(runtime_env.checkpoint, batch_size=2, workers=3, top_k=4)
    assert pred.device == "cpu" and pred.info.sensor_size == (34, 34, 2) and pred.info.time_steps == 8
    paths = [SAMPLES[0], bad_files["truncated"], SAMPLES[1], SAMPLES[2], bad_files["not_events"],
             SAMPLES[3], bad_files["wrong_sensor"], SAMPLES[4], REPO / "no_such_file.npy"]
    calls = []
    run = pred.backend.scores
    pred.backend.scores = lambda frames: calls.append(len(frames)) or run(frames)
    results = list(pred.predict_files(paths))
    assert [r.file for r in results] == [str(p) for p in paths]
    assert calls == [2, 2, 1]  # batches span files, errors do not take a slot
    errors = {r.file: r.error for r in results if not r.ok}
    assert "5-byte events" in errors[str(bad_files["truncated"])]
    assert "not a valid .npy" in errors[str(bad_files["not_events"])]
    assert "sensor 128x128x2" in errors[str(bad_files["wrong_sensor"])]
    assert "34x34x2" in errors[str(bad_files["wrong_sensor"])]
    assert "no such file" in errors[str(REPO / "no_such_file.npy")]
    good = [r for r in results if r.ok]
    frames = np.stack([pred.bin(np.load(s)) for s in SAMPLES])
    scores = pred.predict_frames(frames)
    for r, s, n in zip(good, scores, SAMPLES):
        assert r.score == pytest.approx(float(s.max()), abs=1e-6) and r.label == int(np.argmax(s))
        assert len(r.topk) == 4 and [t[2] for t in r.topk] == sorted((t[2] for t in r.topk), reverse=True)
        assert r.cls == pred.info.classes[r.label] and r.events == len(np.load(n))
        d = r.to_dict()
        assert set(d) >= {"file", "label", "class", "score", "topk"}


def test_a_backend_failure_mid_run_is_each_file_error_not_a_traceback(runtime_env):
    """The second batch's inference raises: its two files get the error, the others are predicted."""
    pred = Predictor(runtime_env.onnx, batch_size=2, workers=1)
    run, calls = pred.backend.scores, []

    def flaky(frames):
        calls.append(len(frames))
        if len(calls) == 2:
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : out of memory\nmore detail")
        return run(frames)

    pred.backend.scores = flaky
    results = list(pred.predict_files(SAMPLES))
    assert calls == [2, 2, 1] and [r.file for r in results] == [str(s) for s in SAMPLES]
    assert [r.ok for r in results] == [True, True, False, False, True]
    for r in results[2:4]:
        assert r.error == "inference failed (RuntimeError: [ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : out of memory)"
        assert r.label is None and r.topk == []


def test_events_outside_the_sensor_are_an_error_not_cropped(runtime_env, tmp_path):
    ev = np.load(SAMPLES[0])
    ev["x"][7] = 40
    np.save(tmp_path / "wide.npy", ev)
    pred = Predictor(runtime_env.checkpoint)
    (r,) = pred.predict_files([tmp_path / "wide.npy"])
    assert not r.ok and "x=40" in r.error and "34" in r.error
    with pytest.raises(ValueError, match="x=40"):
        pred.predict_events(ev)


def test_predict_frames_and_events(runtime_env):
    pred = Predictor(runtime_env.onnx, batch_size=3)
    ev = np.load(SAMPLES[2])
    one = pred.predict_frames(pred.bin(ev))
    assert one.shape == (10,) and ((0 <= one) & (one <= 1)).all()
    r = pred.predict_events(ev, name="x")
    assert r.label == int(np.argmax(one)) and r.events == len(ev)
    with pytest.raises(ValueError, match=r"\[B, 8, 2, 34, 34\]"):
        pred.predict_frames(np.zeros((2, 10, 2, 34, 34), np.float32))


# ---- backends -----------------------------------------------------------------------------
def test_onnxruntime_and_torch_agree_on_the_samples(runtime_env):
    ort_pred = Predictor(runtime_env.checkpoint, backend="onnxruntime", device="cpu")
    torch_pred = Predictor(runtime_env.checkpoint, backend="torch", device="cpu")
    a = [r for r in ort_pred.predict_files(SAMPLES)]
    b = [r for r in torch_pred.predict_files(SAMPLES)]
    spike = 1 / (8 * 10)  # one voting spike: T=8 steps, 10 neurons per class
    for ra, rb in zip(a, b):
        sa, sb = (np.array([s for _, _, s in sorted(r.topk)]) for r in (ra, rb))
        assert np.abs(sa - sb).max() <= 2 * spike + 1e-6, (ra.file, ra.topk, rb.topk)
        if rb.topk[0][2] > rb.topk[1][2]:  # torch's top-1 unique
            assert ra.label == rb.label


def test_torch_backend_bins_on_the_device_like_the_host(runtime_env):
    """The CUDA path's device binning (run here on CPU) gives the host path's scores."""
    import torch

    pred = Predictor(runtime_env.checkpoint, backend="torch", device="cpu")
    streams = [np.load(s) for s in SAMPLES]
    host = pred.backend.scores(np.stack([pred.bin(e) for e in streams]))
    device = pred.backend.scores_events(streams)
    np.testing.assert_array_equal(device, host)
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="sees no CUDA device"):
            Predictor(runtime_env.checkpoint, backend="torch", device="cuda")


def test_models_predict_cannot_run_are_refused(runtime_env, tmp_path):
    from snnzoo.runtime.onnx_metadata import read_metadata
    from snnzoo.runtime.predictor import ModelInfo

    meta = read_metadata(runtime_env.onnx)
    assert ModelInfo.from_metadata(meta, "m").sensor_size == (34, 34, 2)
    with pytest.raises(models.ModelError, match="takes audio input"):
        ModelInfo.from_metadata({**meta, "input_kind": "audio"}, "m")
    with pytest.raises(models.ModelError, match="image model without input_shape"):
        ModelInfo.from_metadata({**meta, "input_kind": "image"}, "m")  # no normalization
    with pytest.raises(models.ModelError, match="streaming"):
        ModelInfo.from_metadata({**meta, "streaming": True}, "m")
    with pytest.raises(models.ModelError, match="no snnzoo metadata"):
        ModelInfo.from_metadata({}, "m")
    (tmp_path / "bad.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(models.ModelError, match="onnxruntime cannot load it"):
        Predictor(tmp_path / "bad.onnx")


def test_onnx_path_imports_neither_torch_nor_the_zoo(runtime_env):
    code = (
        "import sys\n"
        "from snnzoo.runtime import Predictor\n"
        f"p = Predictor({str(runtime_env.checkpoint)!r})\n"
        f"rs = list(p.predict_files({[str(s) for s in SAMPLES]!r}))\n"
        "assert all(r.ok for r in rs)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib', 'tonic')"
        " or m.startswith('snnzoo.zoo')))\n"
    )
    env = {**__import__("os").environ, "SNNZOO_CACHE": str(runtime_env.cache)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
