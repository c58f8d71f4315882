"""``pip install snnzoo`` without extras: the commands of the runtime work with the packages of the
``train`` extra absent (here blocked from import in a subprocess), on the bundled default's shipped
ONNX file; the others say, on one line, what to install. ``.ci/run`` checks the same in a fresh
virtual environment with ``pip install .``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from snnzoo.cli import cli

from conftest import REPO, SAMPLES

TRAIN_ONLY = ("torch", "onnx", "onnxscript", "safetensors", "huggingface_hub", "threadpoolctl")
BLOCK = f"""import sys
class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {TRAIN_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, NotInstalled())
"""


def bare(code: str, cache: Path) -> subprocess.CompletedProcess:
    """``code`` run in a fresh interpreter where the ``train`` extra's packages cannot be imported."""
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env={**os.environ, "SNNZOO_CACHE": str(cache)})


def snnzoo(args: list[str], cache: Path) -> subprocess.CompletedProcess:
    return bare(f"sys.argv = ['snnzoo', *{args!r}]\nfrom snnzoo.cli import main\nmain()\n", cache)


def test_the_blocker_blocks(tmp_path):
    out = bare("import onnxruntime\ntry:\n    import torch\nexcept ImportError as e:\n    print(e.name)\n", tmp_path)
    assert out.stdout.strip() == "torch", out.stderr[-2000:]


def test_predict_runs_the_bundled_default_without_torch(tmp_path):
    files = [str(f) for f in SAMPLES]
    out = snnzoo(["predict", "--format", "json", *files], tmp_path / "cache")
    assert out.returncode == 0, out.stderr[-2000:]
    full = CliRunner().invoke(cli, ["predict", "--format", "json", *files])
    assert full.exit_code == 0, full.stderr
    assert [json.loads(line) for line in out.stdout.splitlines()] == \
        [json.loads(line) for line in full.stdout.splitlines()]
    assert not (tmp_path / "cache").exists()  # the shipped ONNX file, nothing exported
    out = bare("import snnzoo.runtime.predict, snnzoo.runtime.info, snnzoo.runtime.bench\n"
               "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx') or "
               "m.startswith(('snnzoo.zoo.', 'snnzoo.export'))))\n", tmp_path)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr[-2000:]


@pytest.mark.parametrize("args, needs", [(["export", "nmnist_compact", "-o", "x.onnx"], "export needs "),
                                         (["train", "nmnist_compact"], "train needs "),
                                         (["predict", "--backend", "torch", str(SAMPLES[0])],
                                          "--backend torch needs PyTorch")])
def test_what_needs_torch_says_what_to_install(tmp_path, args, needs):
    out = snnzoo(args, tmp_path)
    assert out.returncode == 1 and out.stdout == "", out.stdout + out.stderr[-2000:]
    assert out.stderr.startswith(f"snnzoo: error: {needs}") and len(out.stderr.splitlines()) == 1, out.stderr
    assert out.stderr.rstrip().endswith("which this installation lacks: pip install 'snnzoo[train]'")


def test_help_lists_every_command(tmp_path):
    out = snnzoo(["--help"], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    listed = dict(line.split(None, 1) for line in out.stdout.split("Commands:")[1].strip().splitlines())
    assert set(listed) >= {"predict", "info", "bench", "export", "train"}
    assert listed["export"].strip() == "(needs pip install 'snnzoo[train]')"
    assert "needs" not in listed["predict"] + listed["info"] + listed["bench"]
