"""`snnzoo eval --exact-only`: only the samples the dataset flags exact (CIFAR-10: the lossless
sprite images) are evaluated, and the JSON says so. A fake CIFAR-10 in the JPEG + sprite layout is
labelled so that the model is right on every exact image and wrong on every JPEG-only one."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import snnzoo
from snnzoo.cli import cli
from snnzoo.zoo.datasets.cifar10 import CLASSES, CIFAR10
from snnzoo.zoo.training import evaluate as evaluate_mod
from snnzoo.zoo.training.checkpoint import export_folder, load_checkpoint_folder
from snnzoo.zoo.training.data import to_input

from conftest import data_missing

N_EXACT, N_JPEG = 12, 8


def _jpeg(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=75)
    return buf.getvalue()


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint folder, data root): test images 0..N_EXACT-1 are exact (sprite rows), labelled
    with the model's own prediction; the N_JPEG others exist only as JPEG, labelled prediction + 1."""
    torch.manual_seed(0)
    model = snnzoo.create_model("cifar10_compact", time_steps=2).eval()
    folder = tmp_path_factory.mktemp("ckpt")
    export_folder(model, folder, {"training": {"note": "random init"}})
    model = load_checkpoint_folder(folder)  # the fp16-rounded weights eval will use

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (N_EXACT + N_JPEG, 32, 32, 3), dtype=np.uint8)
    jpegs = [_jpeg(im) for im in images]
    pixels = np.concatenate([images[:N_EXACT], np.stack([_decode(j) for j in jpegs[N_EXACT:]])])
    with torch.no_grad():  # one image at a time, as `--batch-size 1` evaluates them
        preds = [int(model(to_input(torch.from_numpy(p.transpose(2, 0, 1)[None].copy()), model.config["input"],
                                    torch.device("cpu"))).argmax(1)) for p in pixels]
    labels = [p if i < N_EXACT else (p + 1) % 10 for i, p in enumerate(preds)]

    root = tmp_path_factory.mktemp("cifar10")
    (root / "cifar10_labels.js").write_text("var labels=[" + ", ".join(map(str, [0] * 50_000 + labels[:N_EXACT]))
                                            + "];\n")
    sprite = np.zeros((1000, 1024, 3), np.uint8)
    sprite[:N_EXACT] = images[:N_EXACT].reshape(N_EXACT, 1024, 3)
    Image.fromarray(sprite).save(root / "cifar10_batch_50.png")
    taken = dict.fromkeys(range(10), 0)
    with tarfile.open(root / "cifar10_jpeg_q75.tar.gz", "w:gz") as tf:
        for i in [*range(N_EXACT), *sorted(range(N_EXACT, N_EXACT + N_JPEG), key=lambda i: labels[i])]:
            c = labels[i]  # known images first, then the rest class by class: the loader's order
            info = tarfile.TarInfo(f"test/{CLASSES[c]}/{taken[c]:04d}.jpg")
            info.size = len(jpegs[i])
            tf.addfile(info, io.BytesIO(jpegs[i]))
            taken[c] += 1
    return folder, root


def _eval(folder: Path, root: Path, *args: str):
    return CliRunner().invoke(cli, ["eval", str(folder), "--dataset", "cifar10", "--data-root", str(root),
                                    "--batch-size", "1", "--no-progress", *args])


def test_fake_dataset_flags_exactly_the_sprite_images(fake):
    ds = CIFAR10(fake[1], train=False)
    assert len(ds) == N_EXACT + N_JPEG and ds.exact.tolist() == [True] * N_EXACT + [False] * N_JPEG


def test_exact_only_json_counts_only_exact_images(fake):
    r = _eval(*fake, "--exact-only", "--format", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["exact_only"] is True and out["n"] == N_EXACT and out["correct"] == N_EXACT
    assert out["accuracy"] == 1.0 and sum(out["per_class_n"].values()) == N_EXACT


def test_without_the_flag_all_images_count(fake):
    r = _eval(*fake, "--format", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["exact_only"] is False and out["n"] == N_EXACT + N_JPEG and out["correct"] == N_EXACT


def test_limit_draws_from_the_exact_images_and_text_says_so(fake):
    r = _eval(*fake, "--exact-only", "--limit", "5", "--format", "json")
    out = json.loads(r.stdout)
    assert (out["n"], out["correct"], out["exact_only"]) == (5, 5, True)
    text = _eval(*fake, "--exact-only", "--limit", "5").stdout
    assert "(n = 5, exact pixels only)" in text and "accuracy: 100.00 %" in text


@pytest.mark.parametrize("flags,message", [(None, "lacks"), ([False] * (N_EXACT + N_JPEG), "no sample is marked exact")])
def test_datasets_without_exact_samples_are_a_one_line_error(fake, monkeypatch, flags, message):
    ds = CIFAR10(fake[1], train=False)
    if flags is None:
        ds = type("NoFlags", (), {"__len__": lambda s: len(ds), "__getitem__": lambda s, i: ds[i],
                                  "classes": CLASSES})()
    else:
        ds.exact = np.array(flags)
    monkeypatch.setattr(evaluate_mod, "open_dataset", lambda *a: ds)
    r = _eval(*fake, "--exact-only")
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.startswith("snnzoo: error: cifar10") and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_real_cifar10_test_split_has_1000_exact_images_in_cifar_order(shared_data):
    root = shared_data / "cifar10"
    if not (root / "cifar10_jpeg_q75.tar.gz").is_file():
        data_missing(f"CIFAR-10 not found at {root}")
    ds = CIFAR10(root, train=False)
    idx = evaluate_mod.exact_indices(ds, "cifar10", "test")
    assert len(idx) == 1000 and sorted(ds.original_index[idx].tolist()) == list(range(1000))
