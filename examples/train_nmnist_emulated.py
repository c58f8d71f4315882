"""Train ``nmnist_compact`` on emulated N-MNIST (MNIST train images 1000–59999) with the
`snnzoo train` loop, then evaluate it on the real recordings of MNIST train images 0–999.

    python examples/train_nmnist_emulated.py train --mnist-root ../shared/data/mnist \\
        --out runs/nmnist_compact_emulated --epochs 2 --compile
    python examples/train_nmnist_emulated.py eval runs/nmnist_compact_emulated \\
        --data-root ../shared/data --emulated-test 2000
    python examples/train_nmnist_emulated.py val runs/A runs/B --mnist-root ../shared/data/mnist

K-fold fine-tuning on the real recordings (``nmnist_compact_real``; zoo/training/kfold.py):

    for f in 0 1 2 3 4; do python examples/train_nmnist_emulated.py kfold-train --fold $f \
        --mnist-root ../shared/data/mnist --real-root ../shared/data/nmnist \
        --init zoo/weights/nmnist_compact --out runs/kfold/fold$f --compile; done
    python examples/train_nmnist_emulated.py kfold-summary runs/kfold/fold{0,1,2,3,4}
    python examples/train_nmnist_emulated.py kfold-baseline nmnist_compact --real-root ../shared/data/nmnist

``kfold-train`` adds the real recordings outside fold ``f`` to the emulated training set and scores
only fold ``f``; ``--fold -1`` trains on all of them (the shipped weights, which have no real
recording left to test on: their real-data number is the k-fold estimate of the recipe).

For ``train``, the training data is only emulated streams of MNIST train images 1000–59999; a seeded,
stratified 10 % of them is held out for validation; the weights are those of the last epoch.
The real recordings (MNIST train 0–999) and the MNIST test images play no part in training.
``--contrast-sd`` / ``--timing-sd-ms`` emulate the training streams with domain randomisation
(:class:`snnzoo.zoo.emulator.Randomization`); the validation streams stay unrandomised.
``--emulator-params fit.json`` emulates training and validation streams with those constants.
``--compile`` runs ``torch.compile`` on CPU too (``snnzoo train`` allows it on CUDA only);
measured here it makes a CPU training step 2–3× faster after a ~3 min compilation.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from snnzoo.runtime.binning import bin_from_spec
from snnzoo.runtime.readers import read_nmnist_bin
from snnzoo.zoo.datasets.emulated import EmulatedNMNIST
from snnzoo.zoo.datasets.nmnist import mnist_index
from snnzoo.zoo.emulator import EmulatorParams, Randomization, load_params
from snnzoo.zoo.training.config import load_config
from snnzoo.zoo.training.data import Frames, holdout_split, indices_digest, load_frames, open_dataset, subset_indices
from snnzoo.zoo.training.evaluate import load_runner
from snnzoo.zoo.training.kfold import fold_files, fold_split, stratified_folds, summarize
from snnzoo.zoo.training.metrics import wilson_interval
from snnzoo.zoo.training.trainer import Trainer

CALIBRATION = range(0, 200)  # MNIST train indices whose real recordings calibrated the emulator


class EmulatedTrainer(Trainer):
    """`Trainer` whose training pool is the emulated dataset (frames cached under ``cache``)."""

    def __init__(self, cfg: dict[str, Any], mnist_root: Path, out: Path, cache: Path, seed: int,
                 compile_cpu: bool, init: Path | None = None, train_limit: int = 0,
                 randomization: Randomization | None = None, params: EmulatorParams = EmulatorParams(),
                 **kw: Any) -> None:
        super().__init__(cfg, mnist_root, out, **kw)
        self.cache, self.emu_seed, self.train_limit, self.params = cache, seed, train_limit, params
        self.randomization = randomization if randomization is not None and randomization.active else None
        self.cfg["train"]["compile"] = compile_cpu  # after the CUDA-only check, deliberately
        if init is not None:  # continue from an earlier run's exported weights (train.init)
            self.cfg["train"]["init"] = str(init)

    def _load_data(self, input_spec: dict[str, Any]) -> tuple[Frames, Frames | None, dict[str, Any]]:
        d, b = self.cfg["data"], input_spec["binning"]
        pool = EmulatedNMNIST(self.root, "train").indices
        pool = pool[subset_indices(len(pool), d["limit"], d["split_seed"])]
        ds = EmulatedNMNIST(self.root, "train", indices=pool, seed=self.emu_seed, params=self.params,
                            cache_dir=self.cache)
        train_ds = ds if self.randomization is None else EmulatedNMNIST(  # validation stays unrandomised
            self.root, "train", indices=pool, seed=self.emu_seed, params=self.params, cache_dir=self.cache,
            randomization=self.randomization)
        x, y = ds.frames(b["n_time_bins"], b["mode"], progress=self.progress)
        tr, va = holdout_split(y, d["val_fraction"], d["split_seed"])
        if self.train_limit:  # a seeded subset of the training part; the validation part is unchanged
            tr = np.sort(np.random.default_rng(d["split_seed"]).permutation(tr)[:self.train_limit])
        x_train = x if train_ds is ds else train_ds.frames(b["n_time_bins"], b["mode"], progress=self.progress)[0]
        x, x_train, y = torch.from_numpy(x), torch.from_numpy(x_train), torch.from_numpy(y)
        info = {"dataset": "emulated_nmnist", "root": str(self.root), "train_split": "train",
                "mnist_indices": f"train {int(ds.indices[0])}-{int(ds.indices[-1])} ({len(ds)} images)",
                "emulator_seed": self.emu_seed, "emulator_params": asdict(ds.params),
                "randomization": None if self.randomization is None else asdict(self.randomization),
                "pool": len(ds), "pool_digest": indices_digest(ds.indices), "n_train": len(tr), "n_val": len(va),
                "val_split": f"held out {d['val_fraction']} of the emulated pool (stratified, seed {d['split_seed']})",
                "val_digest": indices_digest(ds.indices[va]), "train_digest": indices_digest(ds.indices[tr]),
                "init": self.cfg["train"]["init"] or None}
        return (Frames(x_train[tr], y[tr], ds.classes, "events"), Frames(x[va], y[va], ds.classes, "events"), info)


class RealFoldTrainer(EmulatedTrainer):
    """`EmulatedTrainer` whose training set also holds the real recordings outside fold ``fold``
    (each repeated ``real_repeat`` times per epoch); validation stays the emulated held-out part."""

    def __init__(self, cfg: dict[str, Any], mnist_root: Path, real_root: Path, fold: int, k: int, fold_seed: int,
                 real_repeat: int, out: Path, cache: Path, **kw: Any) -> None:
        super().__init__(cfg, mnist_root, out, cache, **kw)
        self.real_root, self.fold, self.k, self.fold_seed, self.real_repeat = real_root, fold, k, fold_seed, real_repeat

    def _load_data(self, input_spec: dict[str, Any]) -> tuple[Frames, Frames | None, dict[str, Any]]:
        emu, val, info = super()._load_data(input_spec)
        ds = open_dataset("nmnist", self.real_root, "train")
        real = load_frames(ds, input_spec, desc="reading real nmnist/train", progress=self.progress)
        tr, held = fold_split(stratified_folds(real.y.numpy(), self.k, self.fold_seed), self.fold)
        reps = torch.from_numpy(np.tile(tr, self.real_repeat))
        x, y = torch.cat([emu.x, real.x[reps]]), torch.cat([emu.y, real.y[reps]])
        info.update(real_root=str(self.real_root), real_fold=self.fold, real_k=self.k, real_fold_seed=self.fold_seed,
                    real_repeat=self.real_repeat, n_emulated_train=len(emu), n_real_train=len(tr),
                    real_train_files=fold_files(ds.files, tr, self.real_root),
                    real_heldout_files=fold_files(ds.files, held, self.real_root),
                    n_train=len(y))
        return Frames(x, y, emu.classes, "events"), val, info


@click.group()
def cli() -> None:
    """Emulated N-MNIST: train nmnist_compact, evaluate on real and emulated streams."""


@cli.command("train")
@click.option("--mnist-root", required=True, type=click.Path(file_okay=False), help="MNIST idx .gz folder.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option("--cache", type=click.Path(file_okay=False), default="runs/emulated_nmnist_cache", show_default=True)
@click.option("--config", "config", default="nmnist_compact", show_default=True)
@click.option("--epochs", type=int, default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Emulation seed.")
@click.option("--compile", "compile_cpu", is_flag=True, help="torch.compile the model (CPU too).")
@click.option("--resume", is_flag=True)
@click.option("--init", type=click.Path(file_okay=False), help="Start from this checkpoint folder's weights.")
@click.option("--train-limit", type=int, default=0, help="Train on a seeded subset of N (validation unchanged).")
@click.option("--contrast-sd", type=float, default=0.0, show_default=True,
              help="Domain randomisation of the training streams: per-sample sensitivity spread.")
@click.option("--timing-sd-ms", type=float, default=0.0, show_default=True,
              help="Domain randomisation of the training streams: saccade timing spread.")
@click.option("--emulator-params", type=click.Path(exists=True, dir_okay=False),
              help="JSON of EmulatorParams overrides for all emulated streams (tools/fit_emulator.py footprint).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Config overrides (snnzoo train --set).")
def train(mnist_root: str, out: str, cache: str, config: str, epochs: int, seed: int, compile_cpu: bool,
          resume: bool, init: str | None, train_limit: int, contrast_sd: float, timing_sd_ms: float,
          emulator_params: str | None, sets: tuple[str, ...]) -> None:
    try:
        params = load_params(emulator_params)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    cfg = load_config(config, [*sets, f"train.epochs={epochs}", 'train.device="cpu"'])
    cfg["name"] = Path(out).name
    final = EmulatedTrainer(cfg, Path(mnist_root), Path(out), Path(cache), seed, compile_cpu,
                            None if init is None else Path(init), train_limit,
                            Randomization(contrast_sd, timing_sd_ms * 1000), params, resume=resume).run()
    click.echo(json.dumps({"final": final}))


@cli.command("widen")
@click.argument("source", type=click.Path(file_okay=False, exists=True))
@click.option("--model", "target", default="nmnist_compact_wide", show_default=True,
              help="Registered architecture to widen into (convs an integer factor wider, FC sizes equal).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Checkpoint folder to write.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--noise", type=float, default=0.01, show_default=True,
              help="Perturbation of the copies' incoming weights, in units of the layer's weight sd.")
def widen_command(source: str, target: str, out: str, seed: int, noise: float) -> None:
    """Write SOURCE's network widened into MODEL (function-preserving up to NOISE; snnzoo.zoo.widen),
    a checkpoint folder to start `train --set model=... --init OUT` from."""
    from snnzoo.zoo.pretrained import load_folder
    from snnzoo.zoo.registry import create_model
    from snnzoo.zoo.training.checkpoint import export_folder
    from snnzoo.zoo.widen import widen

    src = load_folder(source).float().eval()
    dst = widen(src, create_model(target, surrogate=src.config["model"]["surrogate"]).eval(), seed, noise)
    export_folder(dst, out, {"widened_from": {"folder": str(source), "sha256": src.config["weights"]["sha256"],
                                              "seed": seed, "noise": noise}})
    click.echo(f"wrote {out}: {src.config['arch']} → {dst.config['arch']}")


@cli.command("kfold-train")
@click.option("--mnist-root", required=True, type=click.Path(file_okay=False), help="MNIST idx .gz folder.")
@click.option("--real-root", required=True, type=click.Path(file_okay=False), help="Folder holding Train/<label>/*.bin.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder of this fold.")
@click.option("--fold", type=int, required=True, help="Held-out fold (−1: train on all real recordings).")
@click.option("--k", type=int, default=5, show_default=True)
@click.option("--fold-seed", type=int, default=0, show_default=True)
@click.option("--real-repeat", type=int, default=4, show_default=True, help="Copies of each real recording per epoch.")
@click.option("--init", required=True, type=click.Path(file_okay=False), help="Start from this checkpoint folder.")
@click.option("--train-limit", type=int, default=4000, show_default=True, help="Emulated samples per epoch.")
@click.option("--cache", type=click.Path(file_okay=False), default="runs/emulated_nmnist_cache", show_default=True)
@click.option("--config", "config", default="nmnist_compact", show_default=True)
@click.option("--epochs", type=int, default=3, show_default=True)
@click.option("--compile", "compile_cpu", is_flag=True, help="torch.compile the model (CPU too).")
@click.option("--resume", is_flag=True)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Config overrides (snnzoo train --set).")
def kfold_train(mnist_root: str, real_root: str, out: str, fold: int, k: int, fold_seed: int, real_repeat: int,
                init: str, train_limit: int, cache: str, config: str, epochs: int, compile_cpu: bool, resume: bool,
                sets: tuple[str, ...]) -> None:
    """Fine-tune INIT on emulated streams plus the real recordings outside FOLD, then score the
    held-out fold (written to OUT/heldout.json; `kfold-summary` pools the folds)."""
    cfg = load_config(config, [*sets, f"train.epochs={epochs}", 'train.device="cpu"'])
    cfg["name"] = Path(out).name
    trainer = RealFoldTrainer(cfg, Path(mnist_root), Path(real_root), fold, k, fold_seed, real_repeat, Path(out),
                              Path(cache), seed=0, compile_cpu=compile_cpu, init=Path(init), train_limit=train_limit,
                              resume=resume)
    final = trainer.run()
    click.echo(json.dumps({"final": final}))
    if fold != -1:
        _score_fold(Path(out), Path(real_root), fold, k, fold_seed)


@cli.command("kfold-score")
@click.argument("run", type=click.Path(file_okay=False, exists=True))
@click.option("--real-root", required=True, type=click.Path(file_okay=False), help="Folder holding Train/<label>/*.bin.")
@click.option("--fold", type=int, required=True)
@click.option("--k", type=int, default=5, show_default=True)
@click.option("--fold-seed", type=int, default=0, show_default=True)
def kfold_score(run: str, real_root: str, fold: int, k: int, fold_seed: int) -> None:
    """(Re)write RUN/heldout.json: RUN's weights scored on held-out fold FOLD (what kfold-train does
    at its end)."""
    _score_fold(Path(run), Path(real_root), fold, k, fold_seed)


def _score_fold(run: Path, real_root: Path, fold: int, k: int, fold_seed: int) -> None:
    """Score ``run``'s weights on the real recordings of fold ``fold`` only; per-sample labels and
    predictions go to ``run/heldout.json`` with the counts."""
    runner = load_runner(str(run), torch.device("cpu"))
    ds = open_dataset("nmnist", real_root, "train")
    real = load_frames(ds, runner.config["input"], progress=False)
    _, held = fold_split(stratified_folds(real.y.numpy(), k, fold_seed), fold)
    rec = {"model": str(run), **_fold_record(runner, real, held, fold, k), "fold_seed": fold_seed,
           "files": fold_files(ds.files, held, real_root)}
    (run / "heldout.json").write_text(json.dumps(rec, indent=1) + "\n")
    click.echo(json.dumps({key: rec[key] for key in ("fold", "k", "n", "correct", "accuracy")}))


def _fold_record(runner: Any, real: Frames, held: np.ndarray, fold: int, k: int) -> dict[str, Any]:
    """The counts, labels and predictions of ``runner`` on the held-out samples ``held`` of ``real``."""
    y = real.y[held].numpy()
    pred = _predict(runner, real.x[held].numpy())
    return {"fold": fold, "k": k, **_accuracy(y, pred), "labels": y.tolist(), "predicted": [int(v) for v in pred]}


@cli.command("kfold-summary")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--plot", type=click.Path(dir_okay=False), help="Write the pooled confusion matrix PNG here.")
def kfold_summary(runs: tuple[str, ...], plot: str | None) -> None:
    """Pool the held-out scores (RUN/heldout.json) of one run per fold into the k-fold estimate,
    with the pooled confusion matrix and per-class accuracy (each recording scored by the one
    model that did not see it)."""
    recs = []
    for run in runs:
        p = Path(run) / "heldout.json"
        if not p.is_file():
            raise click.ClickException(f"{p}: missing; run kfold-train for that fold first")
        recs.append(json.loads(p.read_text()))
    try:
        out = summarize(recs, classes=EmulatedNMNIST.classes)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    if plot and "confusion" in out:
        from snnzoo.zoo.training.plots import plot_confusion

        plot_confusion(np.array(out["confusion"]), out["classes"], plot,
                       title=f"{out['k']}-fold held-out, {out['correct']}/{out['n']}")
    click.echo(json.dumps({"runs": list(runs), **out}, indent=1))


@cli.command("kfold-baseline")
@click.argument("model")
@click.option("--real-root", required=True, type=click.Path(file_okay=False), help="Folder holding Train/<label>/*.bin.")
@click.option("--k", type=int, default=5, show_default=True)
@click.option("--fold-seed", type=int, default=0, show_default=True)
def kfold_baseline(model: str, real_root: str, k: int, fold_seed: int) -> None:
    """Score MODEL, trained on none of the real recordings, on each fold of `kfold-train`: the
    fine-tuned folds' paired baseline (same held-out recordings)."""
    runner = load_runner(model, torch.device("cpu"))
    real = load_frames(open_dataset("nmnist", Path(real_root), "train"), runner.config["input"], progress=False)
    fold = stratified_folds(real.y.numpy(), k, fold_seed)
    recs = [_fold_record(runner, real, fold_split(fold, f)[1], f, k) for f in range(k)]
    click.echo(json.dumps({"model": model, **summarize(recs, classes=EmulatedNMNIST.classes)}, indent=1))


def _predict(runner: Any, x: np.ndarray, batch: int = 200) -> np.ndarray:
    return np.concatenate([runner(torch.from_numpy(x[i:i + batch])).argmax(1) for i in range(0, len(x), batch)])


def _accuracy(y: np.ndarray, preds: np.ndarray) -> dict[str, Any]:
    k, n = int((preds == y).sum()), len(y)
    return {"n": n, "correct": k, "accuracy": k / n, "ci95": list(wilson_interval(k, n))}


def _seeds(text: str, option: str) -> list[int]:
    """``"0,1,2"`` → ``[0, 1, 2]`` (``--twins``, ``--seeds``)."""
    try:
        return [int(v) for v in text.split(",")] if text else []
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected comma-separated integers", param_hint=option) from None


@cli.command("eval")
@click.argument("model")
@click.option("--data-root", required=True, type=click.Path(file_okay=False),
              help="Folder holding nmnist/Train/<label>/<idx>.bin and mnist/*.gz.")
@click.option("--emulated-test", type=int, default=2000, show_default=True,
              help="Evaluate on the emulated first N MNIST test images (0 = skip).")
@click.option("--seed", type=int, default=0, show_default=True, help="Emulation seed of the test streams.")
@click.option("--twins", default="", metavar="SEED,SEED,…", callback=lambda _c, p, v: _seeds(v, p.opts[0]),
              help="Also score emulated streams of the recordings' own digits with these emulation seeds.")
def evaluate(model: str, data_root: str, emulated_test: int, seed: int, twins: list[int]) -> None:
    """Accuracy of MODEL (checkpoint folder, .onnx or registry name) on the real recordings
    (all, and those not used to calibrate the emulator) and on emulated MNIST test streams.

    ``--twins`` separates the emulated-to-real gap from the network's own errors: the same
    digits as the real recordings, emulated once per seed, scored alike; the last line counts
    the real errors that are also errors on at least one twin."""
    root = Path(data_root)
    runner = load_runner(model, torch.device("cpu"))
    spec = runner.config["input"]["binning"]
    files = sorted((root / "nmnist" / "Train").glob("*/*.bin"))
    if not files:
        raise click.ClickException(f"{root / 'nmnist' / 'Train'}: no <label>/*.bin recordings")
    mnist_idx = np.array([mnist_index(f) for f in files])
    y = np.array([int(f.parent.name) for f in files])
    x = np.stack([np.minimum(bin_from_spec(read_nmnist_bin(f)[0], (34, 34, 2), spec), 255).astype(np.uint8)
                  for f in files])
    held = mnist_idx >= CALIBRATION.stop
    preds = _predict(runner, x)
    rows = {"real_all": _accuracy(y, preds), f"real_mnist_idx_{CALIBRATION.stop}_999": _accuracy(y[held], preds[held])}
    if emulated_test:
        ds = EmulatedNMNIST(root / "mnist", "test", indices=range(emulated_test), seed=seed)
        xe, ye = ds.frames(spec["n_time_bins"], spec["mode"])
        rows[f"emulated_test_first_{emulated_test}"] = _accuracy(ye, _predict(runner, xe))
    if twins:
        real_wrong, twin_wrong = preds != y, np.zeros(len(y), bool)
        for s in twins:
            ds = EmulatedNMNIST(root / "mnist", "train", indices=mnist_idx, seed=s)
            xt, yt = ds.frames(spec["n_time_bins"], spec["mode"])
            pt = _predict(runner, xt)
            twin_wrong |= pt != y
            rows[f"emulated_twins_seed{s}"] = _accuracy(yt, pt)
        rows["real_errors_also_wrong_on_a_twin"] = {"n": int(real_wrong.sum()),
                                                    "shared": int((real_wrong & twin_wrong).sum())}
    for name, r in rows.items():
        click.echo(json.dumps({"model": model, "set": name, **r}))


@cli.command("val")
@click.argument("models", nargs=-1, required=True)
@click.option("--mnist-root", required=True, type=click.Path(file_okay=False))
@click.option("--seeds", default="1,2", show_default=True, callback=lambda _c, p, v: _seeds(v, p.opts[0]),
              help="Emulation seeds of the (unrandomised) validation streams.")
def validate(models: tuple[str, ...], mnist_root: str, seeds: list[int]) -> None:
    """Correct counts of MODELS (checkpoint folders, .onnx or registry names) on the held-out
    validation images (the stratified 10 %, split seed 0, of MNIST train 1000–59999: 5,901) as plain
    emulated streams, per emulation seed and pooled: what chose stages 6 and 7 of ``nmnist_compact``."""
    pool = EmulatedNMNIST(Path(mnist_root), "train")
    va = pool.indices[holdout_split(pool.labels, 0.1, 0)[1]]
    frames = {s: EmulatedNMNIST(Path(mnist_root), "train", indices=va, seed=s).frames(8, "binary") for s in seeds}
    for model in models:
        runner = load_runner(model, torch.device("cpu"))
        counts = {s: int((_predict(runner, x) == y).sum()) for s, (x, y) in frames.items()}
        click.echo(json.dumps({"model": model, "n": len(va) * len(seeds), "correct": sum(counts.values()),
                               "per_seed": {str(s): {"n": len(va), "correct": c} for s, c in counts.items()}}))


if __name__ == "__main__":
    cli()
