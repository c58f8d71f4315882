"""The shipped default model (``zoo/weights/nmnist_compact``): its weights are the file the registry,
its ``config.json`` and its card describe (sha256); every path that loads it refuses a copy with one
flipped bit, the cached and the shipped ONNX export included; the shipped ``model.onnx`` is what
``snnzoo export`` makes of those weights today, and is used only for them; and its card's accuracy,
re-measured on a seeded half of the same real recordings by the torch-free predictor, lies within
the card's 95 % CI."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

import snnzoo
from snnzoo.cli import cli
from snnzoo.runtime import Predictor, models, onnx_cache
from snnzoo.runtime.onnx_metadata import read_metadata
from snnzoo.zoo import pretrained
from snnzoo.zoo.registry import get_pretrained_cfg

from conftest import SAMPLES

MODEL = models.DEFAULT_MODEL
CARD = Path(__file__).resolve().parents[1] / "model_cards" / MODEL


def test_shipped_weights_are_the_recorded_file():
    folder = models.bundled_dir(MODEL)
    recorded = get_pretrained_cfg(MODEL)["weights"]
    assert recorded["file"] == f"{MODEL}/{models.WEIGHTS_FILE}"
    assert models.sha256_file(folder / models.WEIGHTS_FILE) == recorded["sha256"]
    cfg = json.loads((folder / models.CONFIG_FILE).read_text())
    assert cfg["weights"]["sha256"] == recorded["sha256"]
    assert models.recorded_sha256(folder, cfg) == recorded["sha256"]  # the bundled folder is checked
    assert recorded["sha256"] in (CARD / "README.md").read_text()


def test_a_flipped_bit_is_refused_by_every_loader(tmp_path, monkeypatch, snnzoo_cache, default_onnx):
    root = tmp_path / "weights"
    copy = root / MODEL
    # without the shipped model.onnx, so the ONNX path exports and caches (the shipped file:
    # test_the_shipped_onnx_is_used_only_for_the_weights_it_was_exported_from)
    shutil.copytree(models.bundled_dir(MODEL), copy, ignore=shutil.ignore_patterns(models.ONNX_FILE))
    monkeypatch.setattr(models, "bundled_root", lambda: root)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", root)
    runner = CliRunner()
    r = runner.invoke(cli, ["predict", "--format", "json", str(SAMPLES[0])])
    assert r.exit_code == 0, r.stderr  # the intact copy works, and its export is cached
    assert onnx_cache.cached_onnx_path(models.resolve(None)).is_file()

    data = bytearray((copy / models.WEIGHTS_FILE).read_bytes())
    data[len(data) // 2] ^= 0x04  # one bit of one weight
    (copy / models.WEIGHTS_FILE).write_bytes(bytes(data))
    refused = f"{copy / models.WEIGHTS_FILE}: sha256 "
    for backend in ("onnxruntime", "torch"):
        r = runner.invoke(cli, ["predict", "--backend", backend, "--format", "json", str(SAMPLES[0])])
        assert r.exit_code == 1 and r.stdout == "", (backend, r.stdout)
        assert r.stderr.startswith(f"snnzoo: error: {refused}") and len(r.stderr.splitlines()) == 1, r.stderr
        assert "does not match" in r.stderr and "refused" in r.stderr
    with pytest.raises(models.IntegrityError, match="refused"):
        Predictor(copy)  # the folder named explicitly
    # the ONNX path refuses it itself, before importing torch to export (the cache key is the
    # corrupted file's hash, so no cached export could stand in for the check)
    code = ("import sys\nfrom pathlib import Path\nfrom snnzoo.runtime import models, onnx_cache\n"
            f"models.bundled_root = lambda: Path({str(root)!r})\n"
            "try:\n    onnx_cache.onnx_path(models.resolve(None))\n"
            "except models.IntegrityError as e:\n    print('refused; torch imported:', 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "SNNZOO_CACHE": str(snnzoo_cache)})
    assert out.stdout.strip() == "refused; torch imported: False", out.stdout + out.stderr[-2000:]
    with pytest.raises(pretrained.IntegrityError, match="refused"):
        snnzoo.create_model(MODEL, pretrained=True)
    with pytest.raises(pretrained.IntegrityError, match="refused"):
        pretrained.load_folder(copy)


def test_the_shipped_onnx_is_used_only_for_the_weights_it_was_exported_from(tmp_path, monkeypatch):
    root, cache = tmp_path / "weights", tmp_path / "cache"
    copy, bundled = root / MODEL, models.bundled_dir(MODEL)
    shutil.copytree(bundled, copy)
    monkeypatch.setattr(models, "bundled_root", lambda: root)
    monkeypatch.setenv("SNNZOO_CACHE", str(cache))
    shipped, weights = copy / models.ONNX_FILE, copy / models.WEIGHTS_FILE
    assert onnx_cache.onnx_path(models.resolve(None)) == shipped
    assert onnx_cache.onnx_path(models.resolve(MODEL)) == shipped
    r = CliRunner().invoke(cli, ["predict", "--format", "json", str(SAMPLES[0])])
    assert r.exit_code == 0 and json.loads(r.stdout)["label"] == 5, r.stderr
    assert not cache.exists()  # nothing exported, torch never needed

    intact = weights.read_bytes()
    data = bytearray(intact)
    data[len(data) // 2] ^= 0x04  # one bit of one weight: refused, the shipped ONNX beside it or not
    weights.write_bytes(bytes(data))
    with pytest.raises(models.IntegrityError, match="refused"):
        onnx_cache.onnx_path(models.resolve(None))
    r = CliRunner().invoke(cli, ["predict", "--format", "json", str(SAMPLES[0])])
    assert r.exit_code == 1 and r.stdout == "" and r.stderr.startswith(f"snnzoo: error: {weights}: sha256 "), r.stderr

    weights.write_bytes(intact)
    sha = models.verify_checkpoint(copy)
    assert onnx_cache.shipped_onnx(models.resolve(None), sha) == shipped
    assert onnx_cache.shipped_onnx(models.resolve(None), "0" * 64) is None  # other weights on disk
    assert onnx_cache.shipped_onnx(models.ModelRef(MODEL, "checkpoint", checkpoint=copy), sha) is None
    proto = onnx.load(str(shipped))  # an export of other weights beside these: not used
    entry = next(p for p in proto.metadata_props if p.key == "weights")
    entry.value = json.dumps({**json.loads(entry.value), "sha256": "0" * 64})
    onnx.save(proto, str(shipped))
    assert onnx_cache.shipped_onnx(models.resolve(None), sha) is None
    cfg = json.loads((copy / models.CONFIG_FILE).read_text())  # a folder that records no sha256
    del cfg["weights"]
    (copy / models.CONFIG_FILE).write_text(json.dumps(cfg))
    shutil.copy(bundled / models.ONNX_FILE, shipped)
    assert onnx_cache.shipped_onnx(models.resolve(None), sha) is None


def test_a_fresh_export_is_the_shipped_onnx(tmp_path):
    """``snnzoo export nmnist_compact -o zoo/weights/nmnist_compact/model.onnx`` regenerates the
    shipped file: a fresh export has the same metadata (but the versions of snnzoo and the
    exporter that made it) and the same scores on the sample recordings."""
    shipped = models.bundled_dir(MODEL) / models.ONNX_FILE
    fresh = tmp_path / "fresh.onnx"
    r = CliRunner().invoke(cli, ["export", MODEL, "-o", str(fresh)])
    assert r.exit_code == 0, r.output
    versions = {"snnzoo_version", "exporter"}
    meta, fresh_meta = read_metadata(shipped), read_metadata(fresh)
    assert {k: v for k, v in meta.items() if k not in versions} == \
        {k: v for k, v in fresh_meta.items() if k not in versions}
    assert meta["weights"] == {"source": "registry", **get_pretrained_cfg(MODEL)["weights"]}
    ours, theirs = (list(Predictor(f, top_k=10).predict_files(SAMPLES)) for f in (shipped, fresh))
    assert all(p.ok for p in ours + theirs)
    assert [p.label for p in ours] == [p.label for p in theirs] == [int(f.stem[-1]) for f in SAMPLES]
    np.testing.assert_allclose([[s for _, _, s in sorted(p.topk)] for p in ours],
                               [[s for _, _, s in sorted(p.topk)] for p in theirs], rtol=0, atol=1e-6)


def test_card_accuracy_holds_on_real_recordings(nmnist_root, default_onnx):
    """A seeded 500 of the card's 1,000 recordings. Drawn without replacement from the same set, the
    subset's accuracy has sd sqrt(p(1-p)/n · (N-n)/(N-1)) = 0.40 points around the card's 98.40 %,
    so the card's interval (97.4-99.0 %) holds it unless the weights, binning or runtime changed."""
    card = json.loads((CARD / "eval_real_nmnist.json").read_text())
    files = sorted((nmnist_root / "Train").glob("*/*.bin"))
    assert (card["dataset"], card["split"], card["n"], len(files)) == ("nmnist", "train", 1000, 1000)
    subset = [files[i] for i in np.random.default_rng(0).choice(len(files), 500, replace=False)]
    results = list(Predictor(None, batch_size=100).predict_files(subset))
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    acc = np.mean([r.label == int(f.parent.name) for r, f in zip(results, subset)])
    lo, hi = card["ci95"]
    assert lo <= acc <= hi, (acc, card["accuracy"], (lo, hi))
