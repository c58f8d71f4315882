"""The one model resolver (runtime/models.py): every reference kind to one typed, frozen ModelRef,
without torch; and every command taking the kinds that make sense for it (hf-hub: through the
local Hub test double, tests/hub_server.py)."""
from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SAMPLES, tiny_cfg, tiny_net
from hub_server import HubTestServer, point_client_at

from snnzoo.cli import cli
from snnzoo.publish import hub
from snnzoo.runtime import Predictor
from snnzoo.runtime.models import ModelError, ModelRef, bundled_dir, resolve

TOKEN = "hf_test_token_resolver_4321"


def test_every_reference_kind_resolves_to_one_typed_description(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    (ckpt / "model.safetensors").write_bytes(b"weights are read by the loaders, not the resolver")
    assert resolve(ckpt) == ModelRef("ckpt", "checkpoint", checkpoint=ckpt)
    hub_folder = tmp_path / "hub_folder"
    hub_folder.mkdir()
    for f in ckpt.iterdir():
        (hub_folder / f.name).write_bytes(f.read_bytes())
    (hub_folder / "model.onnx").write_bytes(b"onnx")
    assert resolve(hub_folder) == ModelRef("hub_folder", "checkpoint", checkpoint=hub_folder,
                                           onnx=hub_folder / "model.onnx")
    only_onnx = tmp_path / "only_onnx"
    only_onnx.mkdir()
    (only_onnx / "model.onnx").write_bytes(b"onnx")
    assert resolve(only_onnx) == ModelRef("only_onnx", "onnx", onnx=only_onnx / "model.onnx")
    assert resolve(hub_folder / "model.onnx") == ModelRef("model", "onnx", onnx=hub_folder / "model.onnx")
    assert resolve("hf-hub:org/name@v1") == ModelRef("hf-hub:org/name@v1", "hub", registry_id="hf-hub:org/name@v1",
                                                     repo_id="org/name", revision="v1")
    assert resolve("hf-hub:org/name").revision is None
    assert resolve("wu2019_nmnist") == ModelRef("wu2019_nmnist", "registry", registry_id="wu2019_nmnist")
    bundled = ModelRef("nmnist_compact", "registry", checkpoint=bundled_dir("nmnist_compact"),
                       registry_id="nmnist_compact")
    assert resolve("nmnist_compact") == bundled == resolve(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        bundled.kind = "onnx"

    (tmp_path / "empty").mkdir()
    (tmp_path / "no_weights").mkdir()
    (tmp_path / "no_weights" / "config.json").write_text("{}")
    (tmp_path / "bad_config").mkdir()
    (tmp_path / "bad_config" / "config.json").write_text("{not json")
    for ref, message in [(tmp_path / "empty", f"{tmp_path / 'empty' / 'config.json'}: missing"),
                         (tmp_path / "no_weights", f"{tmp_path / 'no_weights' / 'model.safetensors'}: missing"),
                         (tmp_path / "bad_config", f"{tmp_path / 'bad_config' / 'config.json'}: unreadable config"),
                         ("hf-hub:no-slash", "no-slash: expected a Hub repository ORG/NAME[@REVISION]"),
                         (tmp_path / "gone.onnx", "no such ONNX file"),
                         (tmp_path / "gone" / "ckpt", "no such file or folder")]:
        with pytest.raises(ModelError, match=re.escape(message)):
            resolve(ref)


def test_the_resolver_imports_neither_torch_nor_the_zoo():
    code = ("import sys\nfrom snnzoo.runtime.models import resolve\n"
            "for ref in (None, 'nmnist_compact', 'hf-hub:org/name@v1', 'wu2019_nmnist'):\n    resolve(ref)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith('snnzoo.zoo')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.fixture
def published(tmp_path, monkeypatch):
    """The tiny model pushed to the Hub double as org/tiny (model.onnx included); yields the built folder."""
    with HubTestServer(token=TOKEN) as server:
        point_client_at(monkeypatch, server.url, tmp_path / "hf", TOKEN)
        folder = tmp_path / "built"
        hub.push(tiny_net(tiny_cfg()), "org/tiny", folder=folder)
        yield folder


def test_eval_takes_a_hub_reference_as_export_does(published, nmnist_root, tmp_path):
    run = CliRunner().invoke
    common = ["--dataset", "nmnist", "--data-root", str(nmnist_root), "--split", "train", "--limit", "24",
              "--format", "json", "--no-progress"]
    from_hub = run(cli, ["eval", "hf-hub:org/tiny", *common])
    assert from_hub.exit_code == 0, from_hub.output
    from_folder = run(cli, ["eval", str(published), *common])
    assert from_folder.exit_code == 0, from_folder.output
    a, b = json.loads(from_hub.stdout), json.loads(from_folder.stdout)
    assert a["source"] == "Hub folder hf-hub:org/tiny" and a["n"] == 24
    assert {k: v for k, v in a.items() if k not in ("model", "source")} == \
           {k: v for k, v in b.items() if k not in ("model", "source")}
    exported = run(cli, ["export", "hf-hub:org/tiny", "-o", str(tmp_path / "tiny.onnx")])
    assert exported.exit_code == 0, exported.output


def test_push_takes_a_hub_reference_and_refuses_an_onnx_file(published, tmp_path):
    run = CliRunner().invoke
    copy = tmp_path / "copy"
    r = run(cli, ["push", "hf-hub:org/tiny", "--repo", "org/copy", "--folder", str(copy), "--dry-run", "--no-onnx"])
    assert r.exit_code == 0, r.output
    assert (copy / "model.safetensors").read_bytes() == (published / "model.safetensors").read_bytes()
    for verb in (["push", str(published / "model.onnx"), "--repo", "org/x"],
                 ["export", str(published / "model.onnx"), "-o", str(tmp_path / "x.onnx")]):
        r = run(cli, verb)
        assert r.exit_code == 1 and r.stderr.startswith(f"snnzoo: error: {published / 'model.onnx'}: ")
        assert "ONNX" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr


def test_a_hub_folder_runs_on_both_backends(published, monkeypatch, tmp_path):
    """A folder with model.onnx beside its checkpoint: ONNX Runtime runs the file as is, torch the weights."""
    monkeypatch.setenv("SNNZOO_CACHE", str(tmp_path / "cache"))
    ort = [r.topk for r in Predictor(published, device="cpu").predict_files(SAMPLES)]
    torch_rows = [r.topk for r in Predictor(published, backend="torch", device="cpu").predict_files(SAMPLES)]
    assert not (tmp_path / "cache").exists()  # nothing exported: the folder's own model.onnx ran
    assert [t[0][0] for t in ort] == [t[0][0] for t in torch_rows]
    assert np.allclose([s for t in ort for _, _, s in t], [s for t in torch_rows for _, _, s in t], atol=0.051)
