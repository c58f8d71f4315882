"""examples/retrain_head.py end to end, tiny: a run's trunk spikes are cached bit-packed exactly as the
trunk computes them, and the head retrained on them changes only the head."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

EXAMPLES = Path(__file__).parents[1] / "examples"
INIT = Path(__file__).parents[1] / "zoo" / "weights" / "nmnist_compact"
CUT = 5  # nmnist_compact: the LIF layer after the second convolution


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, shared_data) -> tuple[Path, Path, Path]:
    """A 40-stream emulated run of nmnist_compact at T = 4 (a stratified 10 % held out)."""
    tmp = tmp_path_factory.mktemp("head")
    run, cache = tmp / "run", tmp / "emu"
    r = _run("train_nmnist_emulated.py", "train", "--mnist-root", str(shared_data / "mnist"), "--out", str(run),
             "--init", str(INIT), "--epochs", "1", "--cache", str(cache), "--set", "data.limit=40",
             "--set", "model_args.time_steps=4", "--set", "train.threads=1")
    assert r.returncode == 0, r.stderr[-3000:]
    return run, cache, shared_data / "mnist"


def test_cached_spikes_are_the_trunks_and_the_head_alone_trains(tiny_run, tmp_path):
    from safetensors.torch import load_file

    from snnzoo.zoo.pretrained import load_folder

    run, cache, mnist = tiny_run
    spikes = tmp_path / "spikes"
    common = ["--run", str(run), "--mnist-root", str(mnist), "--cache", str(cache), "--out", str(spikes)]
    for shard in ("1/2", "0/2"):  # shard 1 waits for shard 0 to create the file: run it in the background
        if shard == "1/2":
            bg = subprocess.Popen([sys.executable, str(EXAMPLES / "retrain_head.py"), "cache", str(run), *common,
                                   "--cut", str(CUT), "--shard", shard, "--batch-size", "8"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        else:
            r = _run("retrain_head.py", "cache", str(run), *common, "--cut", str(CUT), "--shard", shard,
                     "--batch-size", "8")
            assert r.returncode == 0, r.stderr[-3000:]
    assert bg.wait(timeout=600) == 0, bg.stderr.read()[-3000:]
    meta = json.loads((spikes / "meta.json").read_text())
    recorded = json.loads((run / "config.json").read_text())["data"]
    assert (meta["n_train"], meta["n_val"], meta["cut"]) == (recorded["n_train"], recorded["n_val"], CUT)
    assert meta["n_train"] + meta["n_val"] == len(meta["labels"]) == 40 and meta["n_val"] > 0

    # the rows hold the trunk's own spikes: recompute them eagerly from the run's streams
    sys.path.insert(0, str(EXAMPLES))
    try:
        from retrain_head import SpikeRows, run_split
    finally:
        sys.path.remove(str(EXAMPLES))
    x, y, order, _ = run_split(run, str(mnist), str(cache))
    net = load_folder(run).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        want = torch.nn.Sequential(*net.layers[:CUT + 1])(torch.from_numpy(x[order]).float().transpose(0, 1))
    rows = SpikeRows(spikes)
    got = rows.batch(np.arange(40))
    assert got.shape == want.shape and want.sum() > 0
    assert float((got != want).float().mean()) < 1e-3  # compiled vs eager bf16 rounding may flip a rare spike
    assert rows.y.tolist() == y[order].tolist()

    out = tmp_path / "head"
    r = _run("retrain_head.py", "train", str(run), "--spikes", str(spikes), "--out", str(out), "--epochs", "1",
             "--batch-size", "12", "--lr", "0.01")
    assert r.returncode == 0, r.stderr[-3000:]
    hist = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [0, 1] and hist[1]["val"]["n"] == meta["n_val"]
    cfg = json.loads((out / "config.json").read_text())["head_retrain"]
    assert cfg["cut"] == CUT and cfg["data"]["val_digest"] == meta["val_digest"]
    before, after = load_file(str(run / "model.safetensors")), load_file(str(out / "model.safetensors"))
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    head = {k for k in before if int(k.split(".")[1]) > CUT}
    assert changed and changed <= head
    load_folder(out)  # the exported folder loads (its recorded sha256 checked)


def test_kfold_fine_tunes_on_the_other_folds_and_scores_the_held_out_one(tiny_run, tmp_path, nmnist_root):
    run, cache, mnist = tiny_run
    spikes = tmp_path / "spikes"
    r = _run("retrain_head.py", "cache", str(run), "--run", str(run), "--mnist-root", str(mnist), "--cache",
             str(cache), "--out", str(spikes), "--cut", str(CUT))
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "fold2"
    args = ["--spikes", str(spikes), "--real-root", str(nmnist_root), "--fold", "2", "--real-repeat", "1",
            "--emulated", "10", "--epochs", "1", "--out", str(out)]
    r = _run("retrain_head.py", "kfold", str(run), *args)
    assert r.returncode == 0, r.stderr[-3000:]
    held = json.loads((out / "heldout.json").read_text())
    data = json.loads((out / "config.json").read_text())["head_retrain"]["data"]
    assert (held["fold"], held["k"], held["n"]) == (2, 5, 200) and len(held["predicted"]) == 200
    assert sum(a == b for a, b in zip(held["labels"], held["predicted"])) == held["correct"]
    assert held["labels"] == [int(Path(f).parent.name) for f in held["files"]] == \
        [int(Path(f).parent.name) for f in data["real_heldout_files"]]
    assert len(data["real_train_files"]) == 800 and not set(data["real_train_files"]) & set(held["files"])
    assert data["emulated"]["n"] == 10
    r = _run("retrain_head.py", "kfold", str(INIT), *args[:-1], str(tmp_path / "other"))
    assert r.returncode == 1
    assert r.stderr.strip() == f"Error: {INIT}: its trunk differs from the one cached in {spikes}"


def test_a_split_that_differs_from_the_recorded_one_is_refused(tiny_run, tmp_path):
    run, cache, mnist = tiny_run
    bad = tmp_path / "run"
    bad.mkdir()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["data"]["val_digest"] = "0" * 16
    (bad / "metrics.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    r = _run("retrain_head.py", "cache", str(run), "--run", str(bad), "--mnist-root", str(mnist), "--cache",
             str(cache), "--out", str(tmp_path / "s"), "--cut", str(CUT))
    assert r.returncode == 1 and r.stderr.strip() == f"Error: {bad}: rebuilt val split differs from the recorded one"
    r = _run("retrain_head.py", "cache", str(run), "--run", str(run), "--mnist-root", str(mnist), "--cache",
             str(cache), "--out", str(tmp_path / "s"), "--cut", "4")
    assert r.returncode == 1 and r.stderr.strip() == f"Error: {run}: layer 4 is TimeDistributed, not a LIF layer"


def test_training_on_an_unfinished_cache_is_refused(tmp_path):
    spikes = tmp_path / "spikes"
    spikes.mkdir()
    (spikes / "meta.json").write_text(json.dumps({"cut": CUT, "labels": [0], "shape": [1], "n_train": 1}))
    (spikes / "done_0_of_2").write_text("{}")
    r = _run("retrain_head.py", "train", str(INIT), "--spikes", str(spikes), "--out", str(tmp_path / "o"))
    assert r.returncode == 1
    assert r.stderr.strip() == f"Error: {spikes}: cache shards ['0', '1'] not all finished; run `cache` first"
