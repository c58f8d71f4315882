"""The same `snnzoo train` under `torchrun --nproc_per_node=2` (DDP, gloo on CPU): the logs, and the
parameters: equal on both ranks and equal to a one-process run at the same global batch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

import snnzoo

RANKS = str(Path(__file__).with_name("ddp_ranks.py"))  # `snnzoo train` that saves each rank's parameters


def _train(nmnist_root: Path, out: Path, batch_size: int, procs: int) -> None:
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"] if procs > 1 else []
    cmd = [sys.executable, *launcher, RANKS, "train", "nmnist_compact", "--data-root", str(nmnist_root),
           "--out", str(out), "--epochs", "2", "--batch-size", str(batch_size), "--threads", "1", "--no-progress",
           "--device", "cpu", "--set", "model_args.time_steps=4", "--set", "data.limit=100",
           "--set", "data.val_fraction=0.2", "--set", "train.log_every=1", "--set", "data.augment=false"]
    r = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]


def test_two_process_gloo_run(tmp_path, nmnist_root):
    out = tmp_path / "ddp"
    _train(nmnist_root, out, batch_size=8, procs=2)

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

    # gradients are all-reduced: both ranks end with the same parameters, bit for bit ...
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert set(ranks[0]) == set(ranks[1]) == set(ckpt["model"])
    for k, v in ranks[0].items():
        assert torch.equal(v, ranks[1][k]), k
        assert torch.equal(v, ckpt["model"][k]), k
    # ... and those of one process stepping on the same 16 samples per step (the sampler splits each
    # global batch of 16 between the ranks; the mean of the two rank means is the mean over 16).
    # Measured: differences <= 3e-6 (summation order); one Adam step moves a weight by up to lr = 1e-3.
    _train(nmnist_root, tmp_path / "one", batch_size=16, procs=1)
    one = torch.load(tmp_path / "one" / "rank0.pt", weights_only=True)
    apart = max(float((v - one[k]).abs().max()) for k, v in ranks[0].items())
    assert apart <= 1e-4, apart
    torch.manual_seed(0)  # the trainer's initialisation (train.seed = 0): training moved far more than that
    init = snnzoo.create_model("nmnist_compact", time_steps=4).state_dict()
    assert max(float((v - init[k]).abs().max()) for k, v in one.items()) > 10 * 1e-4
