"""The same `snnzoo train` under `torchrun --nproc_per_node=2` (DDP, gloo on CPU)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import torch


def test_two_process_gloo_run(tmp_path, nmnist_root):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "snnzoo",
           "train", "nmnist_compact", "--data-root", str(nmnist_root), "--out", str(out), "--epochs", "2",
           "--batch-size", "8", "--threads", "1", "--no-progress", "--device", "cpu",
           "--set", "model_args.time_steps=4", "--set", "data.limit=100", "--set", "data.val_fraction=0.2",
           "--set", "train.log_every=1"]
    r = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    config = [x for x in records if x["kind"] == "config"]
    assert len(config) == 1 and config[0]["data"]["world_size"] == 2  # rank 0 alone logs
    n_train = config[0]["data"]["n_train"]
    assert (n_train, config[0]["data"]["n_val"]) == (80, 20)
    # 80 samples over 2 ranks = 40 each = 5 steps of 8 per epoch; each step is 16 samples in total
    assert config[0]["steps_per_epoch"] == 5
    train = [x for x in records if x["kind"] == "train"]
    assert [x["step"] for x in train] == list(range(1, 11))
    epochs = [x for x in records if x["kind"] == "epoch"]
    assert [(e["epoch"], e["step"], e["val_n"]) for e in epochs] == [(1, 5, 20), (2, 10, 20)]
    # validation is sharded over the ranks and summed: accuracies are multiples of 1/20
    assert all(abs(e["val_acc"] * 20 - round(e["val_acc"] * 20)) < 1e-9 for e in epochs)
    ckpt = torch.load(out / "last.ckpt", weights_only=True)
    assert (ckpt["epoch"], ckpt["step"]) == (2, 10)
    assert (out / "model.safetensors").is_file() and (out / "curves.png").is_file()
    assert not list(out.glob(".*tmp*"))  # no temp files left behind
