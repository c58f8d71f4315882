"""`snnzoo eval` on a checkpoint folder and on an exported .onnx file: JSON schema, numbers
checked against an independent pass over the same real recordings, text report, PNG, errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import snnzoo
from snnzoo.cli import cli
from snnzoo.runtime.binning import bin_from_spec
from snnzoo.runtime.readers import read_nmnist_bin
from snnzoo.zoo.training.checkpoint import export_folder, load_checkpoint_folder
from snnzoo.zoo.training.data import subset_indices

LIMIT = 60


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = snnzoo.create_model("nmnist_compact", time_steps=4)
    out = tmp_path_factory.mktemp("ckpt")
    export_folder(model, out, {"training": {"note": "random init"}})
    return out


def _eval(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snnzoo", "eval", *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)


def _reference(folder: Path, root: Path) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Predictions, labels and firing rates computed here, file by file."""
    model = load_checkpoint_folder(folder)
    files = sorted((root / "Train").glob("*/*.bin"))
    files = [files[i] for i in subset_indices(len(files), LIMIT, 0)]
    spec = model.config["input"]["binning"]
    x = torch.from_numpy(np.stack([bin_from_spec(*read_nmnist_bin(f), spec) for f in files]))
    labels = np.array([int(f.parent.name) for f in files])
    with torch.no_grad():
        preds = model(x).argmax(1).numpy()
    return preds, labels, model.firing_rates(x)


def test_eval_json_on_a_checkpoint_folder(folder, nmnist_root, tmp_path):
    png = tmp_path / "cm.png"
    r = _eval(str(folder), "--dataset", "nmnist", "--data-root", str(nmnist_root), "--split", "train",
              "--limit", str(LIMIT), "--format", "json", "--no-progress", "--plot", str(png))
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)  # one object, nothing else on stdout
    assert {"accuracy", "n", "ci95", "per_class", "confusion", "firing_rates"} <= set(out)
    assert out["n"] == LIMIT and out["classes"] == [str(i) for i in range(10)]
    lo, hi = out["ci95"]
    assert 0 <= lo <= out["accuracy"] <= hi <= 1
    cm = np.array(out["confusion"])
    assert cm.shape == (10, 10) and cm.sum() == LIMIT and np.trace(cm) == out["correct"]

    preds, labels, rates = _reference(folder, nmnist_root)
    assert out["accuracy"] == pytest.approx(float((preds == labels).mean()))
    for i, c in enumerate(out["classes"]):
        mask = labels == i
        assert out["per_class_n"][c] == mask.sum()
        if mask.any():
            assert out["per_class"][c] == pytest.approx(float((preds[mask] == i).mean()))
    assert set(out["firing_rates"]) == set(rates) and len(rates) == 4
    for name, rate in rates.items():
        assert out["firing_rates"][name] == pytest.approx(rate, rel=1e-5)
        assert 0 <= rate <= 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_text_and_onnx(folder, nmnist_root, tmp_path):
    from snnzoo.export.onnx import export_onnx

    onnx_path = export_onnx(load_checkpoint_folder(folder), tmp_path / "m.onnx")
    common = ["--dataset", "nmnist", "--data-root", str(nmnist_root), "--split", "train", "--limit", str(LIMIT)]
    runner = CliRunner()
    text = runner.invoke(cli, ["eval", str(folder), *common, "--no-progress"])
    assert text.exit_code == 0, text.output
    assert "95 % CI" in text.output and "confusion matrix" in text.output and "layers.1     32C3" in text.output
    ort = runner.invoke(cli, ["eval", str(onnx_path), *common, "--format", "json", "--no-progress"])
    assert ort.exit_code == 0, ort.output
    got = json.loads(ort.output)
    ref = json.loads(runner.invoke(cli, ["eval", str(folder), *common, "--format", "json", "--no-progress"]).output)
    assert got["n"] == ref["n"] == LIMIT
    # ONNX Runtime may flip a rare spike at the threshold: each flipped top-1 moves two cells of the
    # confusion matrix (a wrong input order moves dozens)
    assert np.abs(np.array(got["confusion"]) - np.array(ref["confusion"])).sum() <= 4
    assert got["firing_rates"] is None and "not available" in got["firing_rates_note"]
    text = runner.invoke(cli, ["eval", str(onnx_path), *common, "--no-progress"])
    assert "not available for ONNX models" in text.output


def test_onnx_runner_agrees_with_torch_sample_by_sample(folder, nmnist_root, tmp_path):
    """The two runners of `snnzoo eval` on the same real recordings: top-1 equal on all but a rare
    threshold flip, on predictions varied enough (several classes) for agreement to mean something."""
    from snnzoo.export.onnx import export_onnx
    from snnzoo.zoo.training.data import load_frames, open_dataset
    from snnzoo.zoo.training.evaluate import OnnxRunner, TorchRunner

    model = load_checkpoint_folder(folder)
    onnx_runner = OnnxRunner(export_onnx(model, tmp_path / "m.onnx"))
    torch_runner = TorchRunner(model, torch.device("cpu"), "checkpoint")
    ds = open_dataset("nmnist", nmnist_root, "train")
    frames = load_frames(ds, model.config["input"], subset_indices(len(ds), LIMIT, 0), progress=False)
    a, b = onnx_runner(frames.x), torch_runner(frames.x)
    top_a, top_b = a.argmax(1), b.argmax(1)
    assert len(np.unique(top_b)) >= 4, np.bincount(top_b)
    assert (top_a == top_b).sum() >= LIMIT - 2, (top_a, top_b)
    assert np.abs(a - b).max() <= 2 / (4 * 10) + 1e-6  # at most two voting spikes (T=4, 10 per class)


def test_eval_errors_are_one_line(nmnist_root, tmp_path):
    runner = CliRunner()
    common = ["--dataset", "nmnist", "--data-root", str(nmnist_root), "--no-progress"]
    r = runner.invoke(cli, ["eval", "no_such_model", *common])
    assert r.exit_code == 2 and r.output.startswith("snnzoo: error: no_such_model: not an .onnx file")
    (tmp_path / "empty").mkdir()
    r = runner.invoke(cli, ["eval", str(tmp_path / "empty"), *common])
    assert r.exit_code == 2 and f"{tmp_path / 'empty' / 'config.json'}: missing" in r.output
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    r = runner.invoke(cli, ["eval", str(bad), *common])
    assert r.exit_code == 2 and r.output.startswith(f"snnzoo: error: {bad}: ")
    assert len(r.output.strip().splitlines()) == 1
