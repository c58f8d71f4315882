"""Frame strips of the hardest samples (`snnzoo eval --hardest N --hardest-dir DIR`): the selection
rule, the PNGs and index.json, errors, and the eval command end to end on a tiny model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import snnzoo
from snnzoo.cli import cli
from snnzoo.zoo.training.checkpoint import export_folder
from snnzoo.zoo.training.strips import hardest, polarity_rgb, write_hardest

PNG = b"\x89PNG\r\n\x1a\n"


def test_hardest_puts_the_most_confidently_wrong_first():
    scores = np.array([[0.9, 0.1, 0.0],   # true 0, right by 0.8
                       [0.2, 0.7, 0.1],   # true 0, wrong by 0.5
                       [0.0, 0.5, 0.5],   # true 2, tie with 1: margin 0
                       [0.1, 0.0, 0.9],   # true 1, wrong by 0.9
                       [0.4, 0.6, 0.0]])  # true 1, right by 0.2
    labels = np.array([0, 0, 2, 1, 1])
    assert hardest(scores, labels, 5).tolist() == [3, 1, 2, 4, 0]
    assert hardest(scores, labels, 2).tolist() == [3, 1]
    assert hardest(scores, labels, 99).tolist() == [3, 1, 2, 4, 0]
    with pytest.raises(ValueError, match="--hardest must be >= 1"):
        hardest(scores, labels, 0)


def test_polarity_colours():
    f = np.zeros((2, 2, 3, 3), np.float32)
    f[0, 1, 0, 0] = 2  # ON
    f[0, 0, 1, 1] = 1  # OFF
    f[1, :, 2, 2] = 2  # both
    rgb = polarity_rgb(f)
    assert rgb.shape == (2, 3, 3, 3) and rgb.max() == 1.0
    assert rgb[0, 0, 0].tolist() == [1, 0, 0] and rgb[0, 1, 1].tolist() == [0, 0, 0.5]
    assert rgb[1, 2, 2].tolist() == [1, 0, 1] and rgb[0, 2, 2].tolist() == [0, 0, 0]


@pytest.fixture
def sample():
    rng = np.random.default_rng(0)
    x = (rng.random((6, 8, 2, 34, 34)) < 0.1).astype(np.uint8)
    scores = rng.random((6, 10)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 4, 5])
    return x, labels, scores, np.array([10, 11, 12, 13, 14, 15])


def test_write_hardest_writes_n_small_strips_and_an_index(sample, tmp_path):
    x, labels, scores, idx = sample
    files = {i: f"/data/nmnist/Train/{i % 10}/{i:05d}.bin" for i in range(20)}
    out = tmp_path / "a" / "hardest"
    rows = write_hardest(out, x, labels, scores, idx, [str(c) for c in range(10)], 4, files, {"model": "m"})
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == [r["png"] for r in rows] and len(rows) == 4
    for p in pngs:
        assert p.read_bytes()[:8] == PNG and 2_000 < p.stat().st_size < 60_000
    index = json.loads((out / "index.json").read_text())
    assert index["model"] == "m" and "lowest margin" in index["rule"] and index["samples"] == rows
    order = hardest(scores, labels, 4)
    assert [r["index"] for r in rows] == idx[order].tolist() and [r["rank"] for r in rows] == [1, 2, 3, 4]
    for r, pos in zip(rows, order):
        assert r["label"] == str(labels[pos]) and r["predicted"] == str(int(scores[pos].argmax()))
        assert r["file"] == f"Train/{r['index'] % 10}/{r['index']:05d}.bin"
        assert r["scores"][r["label"]] == pytest.approx(float(scores[pos, labels[pos]]), abs=1e-6)
        assert r["png"] == f"hardest_{r['rank']:02d}_{r['index']}.png"
    # a second run replaces the strips of the first
    write_hardest(out, x, labels, scores, idx, [str(c) for c in range(10)], 2)
    assert len(list(out.glob("*.png"))) == 2
    assert [r["file"] for r in json.loads((out / "index.json").read_text())["samples"]] == [None, None]


def test_write_hardest_refuses_a_file_and_non_event_frames(sample, tmp_path):
    x, labels, scores, idx = sample
    classes = [str(c) for c in range(10)]
    (tmp_path / "f").write_text("")
    for bad in (tmp_path / "f", tmp_path / "f" / "sub"):
        with pytest.raises(NotADirectoryError, match="not a folder"):
            write_hardest(bad, x, labels, scores, idx, classes, 2)
    with pytest.raises(ValueError, match=r"event frames \[N, T, P, H, W\]"):
        write_hardest(tmp_path / "img", x[:, 0], labels, scores, idx, classes, 2)
    assert not (tmp_path / "img").exists()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("ckpt")
    export_folder(snnzoo.create_model("nmnist_compact", time_steps=2), out, {"training": {"note": "random init"}})
    return out


def test_eval_hardest_end_to_end(folder, nmnist_root, tmp_path):
    run = CliRunner().invoke
    base = ["eval", str(folder), "--dataset", "nmnist", "--data-root", str(nmnist_root), "--split", "train",
            "--limit", "12", "--format", "json", "--no-progress"]
    plain = run(cli, base)
    assert plain.exit_code == 0, plain.output
    r = run(cli, [*base, "--hardest", "3", "--hardest-dir", str(tmp_path / "hard")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == json.loads(plain.stdout)  # the result is the same
    index = json.loads((tmp_path / "hard" / "index.json").read_text())
    assert index["n"] == 12 and len(index["samples"]) == 3 == len(list((tmp_path / "hard").glob("*.png")))
    wrong = 12 - json.loads(r.stdout)["correct"]
    assert [s["label"] != s["predicted"] for s in index["samples"]] == [i < wrong for i in range(3)]
    assert all(s["file"].startswith("Train/") and s["file"].endswith(".bin") for s in index["samples"])

    (tmp_path / "file").write_text("")
    for args, message in ((["--hardest", "3", "--hardest-dir", str(tmp_path / "file")], "not a folder"),
                          (["--hardest-dir", str(tmp_path / "x")], "--hardest-dir needs --hardest N"),
                          (["--hardest", "3"], "--hardest needs --hardest-dir")):
        bad = run(cli, [*base, *args])
        assert bad.exit_code == 2 and bad.output.startswith("snnzoo: error: ") and message in bad.output, bad.output
