"""`train.time_limit_s`: the run ends at an epoch end, exports that epoch's weights, records why,
and `--resume` continues it to the same weights as an uninterrupted run (fake CIFAR-10, T=1)."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from snnzoo.zoo.training.config import ConfigError, load_config
from snnzoo.zoo.training.trainer import Trainer

SETS = ["model_args.time_steps=1", "schedule.name=constant", "schedule.warmup_epochs=0", "train.batch_size=4",
        "train.threads=1", "data.val_fraction=0.2", "train.log_every=2"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """CIFAR-10 python batches of 4 random images each (20 train, 4 test)."""
    root = tmp_path_factory.mktemp("cifar10")
    batches = root / "cifar-10-batches-py"
    batches.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        d = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
        (batches / name).write_bytes(pickle.dumps(d))
    return root


def _train(root: Path, out: Path, epochs: int, limit: float, resume: bool = False) -> dict:
    cfg = load_config("cifar10_compact", [*SETS, f"train.epochs={epochs}", f"train.time_limit_s={limit}"])
    return Trainer(cfg, root, out, resume=resume, progress=False).run()


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_stop_at_the_limit_then_resume_matches_an_uninterrupted_run(root, tmp_path):
    ref, run = tmp_path / "ref", tmp_path / "run"
    _train(root, ref, epochs=2, limit=1e9)  # a limit far away never stops the run
    assert [r["kind"] for r in _records(ref)].count("stop") == 0
    assert "stopped_early" not in json.loads((ref / "config.json").read_text())

    _train(root, run, epochs=3, limit=0.001)  # one epoch always passes 1 ms: ends after epoch 1
    stops = [r for r in _records(run) if r["kind"] == "stop"]
    assert len(stops) == 1 and stops[0]["epoch"] == 1 and stops[0]["epochs_planned"] == 3
    assert [r["epoch"] for r in _records(run) if r["kind"] == "epoch"] == [1]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["stopped_early"]["epochs_done"] == 1 and cfg["stopped_early"]["reason"] == "train.time_limit_s"
    assert cfg["stopped_early"]["elapsed_s"] + cfg["stopped_early"]["last_epoch_s"] > 0.001
    state = torch.load(run / "last.ckpt", weights_only=True)
    assert (state["epoch"], state["batch"]) == (1, 0)
    weights = load_file(str(run / "model.safetensors"))  # the exported weights are epoch 1's
    for k, v in state["model"].items():
        assert torch.equal(weights[k], v.half() if v.is_floating_point() else v), k

    _train(root, run, epochs=2, limit=0, resume=True)  # a new limit (none) and length: resumable
    kinds = [r["kind"] for r in _records(run)]
    assert kinds.count("stop") == 1 and kinds.count("resume") == 1 and kinds.count("epoch") == 2
    assert "stopped_early" not in json.loads((run / "config.json").read_text())
    assert (run / "model.safetensors").read_bytes() == (ref / "model.safetensors").read_bytes()


def test_negative_limit_is_refused():
    with pytest.raises(ConfigError, match="train.time_limit_s must be >= 0"):
        load_config("cifar10_compact", ["train.time_limit_s=-1"])
