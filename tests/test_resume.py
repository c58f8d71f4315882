"""Kill a training run mid-epoch after a step checkpoint, resume it, and get bit-identical
weights, optimizer state and logged metrics to an uninterrupted run with the same seed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from click.testing import CliRunner

from snnzoo.cli import cli

# 128 training samples, batch 16: 8 steps per epoch, 2 epochs; a checkpoint every 3 steps and
# every epoch; augmentation on, so the resumed run must also replay the random shifts.
RUN = ["nmnist_compact", "--epochs", "2", "--batch-size", "16", "--seed", "7", "--threads", "1",
       "--no-progress", "--set", "model_args.time_steps=4", "--set", "data.limit=160",
       "--set", "data.val_fraction=0.2", "--set", "data.augment=true", "--set", "train.ckpt_every=3",
       "--set", "train.log_every=2"]


def _cmd(root: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "snnzoo", "train", *RUN, "--data-root", str(root), "--out", str(out), *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _records(out: Path, kinds=("train", "epoch")) -> list[dict]:
    keep = []
    for line in (out / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["kind"] in kinds:
            rec.pop("samples_per_s", None)
            rec.pop("time_s", None)
            keep.append(rec)
    return keep


def test_kill_mid_epoch_and_resume_is_bit_exact(tmp_path, nmnist_root):
    ref, run = tmp_path / "ref", tmp_path / "run"
    done = subprocess.run(_cmd(nmnist_root, ref), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    proc = subprocess.Popen(_cmd(nmnist_root, run), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (run / "last.ckpt").exists():  # written atomically: present means complete
        assert proc.poll() is None, f"run ended before its first checkpoint: {proc.stderr.read()[-3000:]}"
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.01)
    proc.kill()
    proc.wait(timeout=60)
    proc.stderr.close()
    assert proc.returncode != 0  # killed, not finished
    assert not (run / "model.safetensors").exists()
    killed_at = torch.load(run / "last.ckpt", weights_only=True)
    assert killed_at["epoch"] == 0 and 0 < killed_at["batch"] < 8, (killed_at["epoch"], killed_at["batch"])

    resumed = subprocess.run(_cmd(nmnist_root, run, "--resume"), env=_env(), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    a = torch.load(ref / "last.ckpt", weights_only=True)
    b = torch.load(run / "last.ckpt", weights_only=True)
    assert (a["epoch"], a["batch"], a["step"]) == (b["epoch"], b["batch"], b["step"]) == (2, 0, 16)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for p, q in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        for k in p:
            assert torch.equal(torch.as_tensor(p[k]), torch.as_tensor(q[k])), k
    assert a["scheduler"] == b["scheduler"]
    assert (ref / "model.safetensors").read_bytes() == (run / "model.safetensors").read_bytes()
    assert _records(ref) == _records(run)  # same losses, accuracies, lr at every logged step
    resumes = _records(run, kinds=("resume",))
    assert resumes == [{"kind": "resume", "step": killed_at["step"], "epoch": 0, "batch": killed_at["batch"],
                        "threads": 1}]  # each segment's threads (--threads 1): CPU-hours follow from the log

    # --resume continues that run; changing what it computes is refused with one line.
    r = CliRunner().invoke(cli, ["train", *RUN, "--data-root", str(nmnist_root), "--out", str(run), "--resume",
                                 "--set", "optim.lr=0.01", "--set", "loss.name=ce"])
    assert r.exit_code == 2
    assert r.output.strip().splitlines()[-1] == (
        f"snnzoo: error: {run / 'last.ckpt'}: --resume continues the stored run; these settings differ "
        "from it: loss.name, optim.lr")
