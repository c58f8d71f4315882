"""The `snnzoo predict` / `snnzoo bench` contract: exit codes 0/1/2, output formats, one-line
errors on stderr with the other files still predicted, folders and globs, the offline default."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from snnzoo.cli import cli
from snnzoo.runtime import models

from conftest import REPO, SAMPLES

NO_NETWORK = ("import socket\n"
              "def _refuse(*a, **k):\n"
              "    raise OSError('network disabled by the test')\n"
              "socket.socket.connect = socket.socket.connect_ex = _refuse\n"
              "socket.create_connection = socket.getaddrinfo = _refuse\n")


def invoke(*args: str):
    return CliRunner().invoke(cli, ["predict", *map(str, args)])


def test_json_lines_schema(runtime_env):
    r = invoke("-m", runtime_env.checkpoint, "--format", "json", "--top-k", "3", *SAMPLES)
    assert r.exit_code == 0, r.stderr
    assert r.stderr == ""
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["file"] for row in rows] == [str(s) for s in SAMPLES]
    for row in rows:
        assert isinstance(row["label"], int) and row["class"] == str(row["label"])
        assert 0 <= row["score"] <= 1 and len(row["topk"]) == 3
        assert row["topk"][0] == {"label": row["label"], "class": row["class"], "score": row["score"]}
        assert all(set(t) == {"label", "class", "score"} for t in row["topk"])


def test_table_and_csv(runtime_env):
    r = invoke("-m", runtime_env.onnx, *SAMPLES[:2])
    assert r.exit_code == 0 and r.stdout.splitlines()[0].split()[:3] == ["file", "class", "score"]
    assert len(r.stdout.splitlines()) == 3 and str(SAMPLES[1]) in r.stdout
    r = invoke("-m", runtime_env.onnx, "--format", "csv", "--top-k", "2", *SAMPLES[:2])
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert r.exit_code == 0 and len(rows) == 2
    assert rows[0]["file"] == str(SAMPLES[0]) and rows[0]["top1_class"] == rows[0]["class"]
    assert {"label", "score", "events", "top2_score"} <= set(rows[0])


def test_mixed_good_and_bad_files(runtime_env, bad_files):
    inputs = [SAMPLES[0], bad_files["truncated"], SAMPLES[1], bad_files["not_events"],
              bad_files["wrong_sensor"], SAMPLES[2]]
    r = invoke("-m", runtime_env.checkpoint, "--format", "json", "--batch-size", "2", *inputs)
    assert r.exit_code == 1
    assert [json.loads(line)["file"] for line in r.stdout.splitlines()] == [str(s) for s in SAMPLES[:3]]
    errors = r.stderr.splitlines()
    assert len(errors) == 3
    for line, bad in zip(errors, ("truncated", "not_events", "wrong_sensor")):
        assert line.startswith(f"snnzoo: error: {bad_files[bad]}: ")
    assert "does not match the model's 34x34x2" in errors[2]
    assert "Traceback" not in r.output


def test_folders_and_globs(runtime_env, tmp_path):
    r = invoke("-m", runtime_env.onnx, "--format", "json", SAMPLES[0].parent)
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == len(SAMPLES)
    r = invoke("-m", runtime_env.onnx, "--format", "json", str(SAMPLES[0].parent / "*_label[01].npy"))
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 2
    r = invoke("-m", runtime_env.onnx, str(tmp_path / "*.npy"), SAMPLES[0])
    assert r.exit_code == 1 and r.stderr == f"snnzoo: error: {tmp_path / '*.npy'}: no file matches this pattern\n"
    assert str(SAMPLES[0]) in r.stdout
    r = invoke("-m", runtime_env.onnx, tmp_path)
    assert r.exit_code == 1 and "no event files" in r.stderr


@pytest.mark.parametrize("args", [[], ["--batch-size", "0", "x.npy"], ["--format", "xml", "x.npy"],
                                  ["--backend", "tensorflow", "x.npy"], ["--top-k", "0", "x.npy"]])
def test_usage_errors_exit_2(args):
    """The documented contract: one line, ``snnzoo: error: ...``, on stderr; nothing on stdout."""
    r = invoke(*args)
    assert r.exit_code == 2
    assert r.stdout == "" and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith("snnzoo: error: ") and r.stderr.rstrip().endswith("predict --help')")
    assert ("Missing argument" if not args else args[0]) in r.stderr


def test_unknown_command_and_option_are_one_line_usage_errors():
    for args in (["frobnicate"], ["predict", "--no-such-option", "x.npy"]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 2 and len(r.stderr.splitlines()) == 1, r.stderr
        assert r.stderr.startswith("snnzoo: error: No such ")


def test_a_backend_failure_mid_batch_is_exit_1_with_one_line_per_file(runtime_env, monkeypatch):
    from snnzoo.runtime.predictor import OrtBackend

    run, calls = OrtBackend.scores, []

    def flaky(self, frames):
        calls.append(len(frames))
        if len(calls) == 2:
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : bad_alloc\n  at line 2")
        return run(self, frames)

    monkeypatch.setattr(OrtBackend, "scores", flaky)
    r = invoke("-m", runtime_env.onnx, "--format", "json", "--batch-size", "2", *SAMPLES)
    assert r.exit_code == 1 and calls == [2, 2, 1]
    assert [json.loads(line)["file"] for line in r.stdout.splitlines()] == [str(s) for s in (SAMPLES[0], SAMPLES[1], SAMPLES[4])]
    assert r.stderr.splitlines() == [f"snnzoo: error: {s}: inference failed (RuntimeError: [ONNXRuntimeError] : 6 : "
                                     "RUNTIME_EXCEPTION : bad_alloc)" for s in SAMPLES[2:4]]


def test_model_and_device_errors_are_one_line(runtime_env, tmp_path):
    r = invoke("-m", tmp_path / "missing.onnx", SAMPLES[0])
    assert r.exit_code == 1 and r.stderr == f"snnzoo: error: {tmp_path / 'missing.onnx'}: no such ONNX file\n"
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        r = invoke("-m", runtime_env.onnx, "--device", "cuda", SAMPLES[0])
        assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1
        assert r.stderr.startswith("snnzoo: error: device cuda requested")


def test_no_model_means_the_bundled_default(runtime_env, monkeypatch):
    """The default resolution, pointed at the test checkpoint (see the next test for the real one)."""
    monkeypatch.setattr(models, "bundled_dir", lambda name: runtime_env.checkpoint)
    r = invoke("--format", "json", SAMPLES[0])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["file"] == str(SAMPLES[0])


def test_bundled_default_offline_then_without_torch(tmp_path):
    """Fresh cache, HF_HUB_OFFLINE=1 and sockets refused: the first run exports the bundled
    model, the second loads the cached ONNX and imports neither torch nor snnzoo.zoo. (No skip when
    the bundled weights are missing: that is a packaging bug this test must catch.)"""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(NO_NETWORK)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SNNZOO_CACHE": str(tmp_path / "cache"),
           "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(tmp_path / "site")}
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('MODULES', sorted(m for m in sys.modules if m.split('.')[0] == 'torch'"
            " or m.startswith('snnzoo.zoo'))[:3], file=sys.stderr))\n"
            "from snnzoo.cli import main\n"
            f"sys.argv = ['snnzoo', 'predict', '--format', 'json', *{[str(s) for s in SAMPLES]!r}]\n"
            "main()\n")
    for run in ("first", "second"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                             cwd=tmp_path, timeout=300)
        assert out.returncode == 0, (run, out.stderr)
        assert len(out.stdout.splitlines()) == len(SAMPLES)
    assert "MODULES []" in out.stderr
    labels = [json.loads(line)["class"] for line in out.stdout.splitlines()]
    truth = [s.stem.split("label")[1] for s in SAMPLES]
    assert sum(a == b for a, b in zip(labels, truth)) >= 4, labels  # a trained model, not noise


def test_bench_prints_samples_and_events_per_second(runtime_env):
    r = CliRunner().invoke(cli, ["bench", "-m", str(runtime_env.onnx), "--seconds", "0.2",
                                 "--batch-size", "4"])
    assert r.exit_code == 0, r.output
    assert "5 real N-MNIST recordings" in r.stdout
    lines = {line.split()[0]: line.split() for line in r.stdout.splitlines() if line.split()}
    for stage in ("inference", "end-to-end"):
        assert float(lines[stage][1]) > 0 and float(lines[stage][2]) > 0
