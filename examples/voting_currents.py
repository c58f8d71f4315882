"""Is any class's voting group dead? The input current of the voting layer's neurons, per class.

A voting neuron fires when its membrane reaches V_th; with the rectangular surrogate it gets a
gradient only while the membrane is near V_th. A class whose ten neurons never get a current
near V_th on any sample is never predicted and, in training, never learns again. This prints, per
class group, the largest and the mean input current ``W·x[t] + b`` over all samples and steps,
on the real recordings (``--data-root``) or on a training run's own emulated validation streams
(``--emulated-val RUN``: the held-out part of its emulated pool, so no test recording is used):

    python examples/voting_currents.py wu2019_nmnist --data-root ../shared/data/nmnist --every 10
    python examples/voting_currents.py SNAPSHOT --emulated-val RUN --mnist-root ../shared/data/mnist \\
        --cache ~/.cache/snnzoo/emulated_nmnist_cache --revive REVIVED

``--revive FOLDER`` writes a copy of the model whose dead groups (largest current below V_th) are
re-initialised from the live ones: row j of a dead class's voting synapses (weights and bias) becomes
the mean of row j over the live classes, ``W[d, j] = mean_{c live} W[c, j]``, and its biases rise by
``V_th − max I_avg`` (an average of rows peaks lower than any one class). The group then responds like
an average class whose strongest samples sit at threshold, the centre of the surrogate's window, so
it gets a gradient again when training goes on from FOLDER (``--init``).
"""
from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import torch

from snnzoo.zoo.datasets.emulated import EmulatedNMNIST
from snnzoo.zoo.training.checkpoint import export_folder
from snnzoo.zoo.training.data import (Frames, holdout_split, indices_digest, load_frames, open_dataset,
                                      subset_indices, to_input)
from snnzoo.zoo.training.evaluate import load_runner

REVIVE_RULE = ("W[d, j] = mean over live classes c of W[c, j] (weights and bias), then b[d] += V_th - the averaged "
               "group's largest current")


def emulated_val_frames(run: Path, mnist_root: str, cache: str) -> Frames:
    """The emulated validation streams of training run ``run``, rebuilt from its metrics.jsonl config
    record as examples/train_nmnist_emulated.py split them, and checked against the recorded digest."""
    rec = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    d, data = rec["config"]["data"], rec["data"]
    b = rec["model_config"]["input"]["binning"]
    pool = EmulatedNMNIST(mnist_root, "train").indices
    pool = pool[subset_indices(len(pool), d["limit"], d["split_seed"])]
    ds = EmulatedNMNIST(mnist_root, "train", indices=pool, seed=data["emulator_seed"], cache_dir=cache)
    x, y = ds.frames(b["n_time_bins"], b["mode"], progress=False)
    _, va = holdout_split(y, d["val_fraction"], d["split_seed"])
    if indices_digest(ds.indices[va]) != data["val_digest"]:
        raise click.ClickException(f"{run}: rebuilt validation split differs from the recorded one")
    return Frames(torch.from_numpy(x[va]), torch.from_numpy(y[va]), ds.classes, "events")


@click.command()
@click.argument("model")
@click.option("--data-root", type=click.Path(file_okay=False), help="N-MNIST folder (Train/): real recordings.")
@click.option("--emulated-val", type=click.Path(file_okay=False),
              help="Training run whose emulated validation streams to use.")
@click.option("--mnist-root", type=click.Path(file_okay=False), help="MNIST idx folder (with --emulated-val).")
@click.option("--cache", type=click.Path(file_okay=False), help="Emulation cache (with --emulated-val).")
@click.option("--every", type=int, default=10, show_default=True, help="Use every N-th sample.")
@click.option("--revive", type=click.Path(file_okay=False),
              help="Write the model with its dead groups re-initialised here.")
def main(model: str, data_root: str | None, emulated_val: str | None, mnist_root: str | None, cache: str | None,
         every: int, revive: str | None) -> None:
    runner = load_runner(model, torch.device("cpu"))
    if not hasattr(runner, "model"):
        raise click.ClickException(f"{model}: needs a torch model (registry name or checkpoint folder), not ONNX")
    net = runner.model
    if (data_root is None) == (emulated_val is None):
        raise click.UsageError("give one of --data-root (real recordings) or --emulated-val RUN")
    if emulated_val is not None:
        if not (mnist_root and cache):
            raise click.UsageError("--emulated-val needs --mnist-root and --cache")
        x = emulated_val_frames(Path(emulated_val), mnist_root, cache).x[::every]
    else:
        ds = open_dataset("nmnist", data_root, "train")
        x = load_frames(ds, net.config["input"], np.arange(0, len(ds), every), progress=False).x
    feed = net.layers[-2]  # the synapses feeding the voting LIF layer (the last layer)
    currents = []
    hook = feed.register_forward_hook(lambda mod, inp, out: currents.append(out.detach().float()))
    with torch.no_grad():
        net(to_input(x, net.config["input"], torch.device("cpu")))
    hook.remove()
    classes, per = net.config["classes"], net.config["model"]["neurons_per_class"]
    cur = currents[0].reshape(-1, len(classes), per)  # [T·B, classes, neurons]
    v_th = net.config["model"]["v_th"]
    dead = [c for c in range(len(classes)) if float(cur[:, c].max()) < v_th]
    for c, name in enumerate(classes):
        click.echo(json.dumps({"class": name, "max_current": round(float(cur[:, c].max()), 4),
                               "mean_current": round(float(cur[:, c].mean()), 4), "v_th": v_th,
                               "samples": len(x), "dead": c in dead}))
    if revive:
        fc = feed.module if hasattr(feed, "module") else feed
        live = [c for c in range(len(classes)) if c not in dead]
        # currents are linear in the synapses: the averaged rows carry the live groups' mean current
        shift = v_th - float(cur[:, live].mean(dim=1).max())
        with torch.no_grad():
            for p in (fc.weight, fc.bias):
                rows = p.view(len(classes), per, *p.shape[1:])
                rows[dead] = rows[live].mean(dim=0)
            fc.bias.view(len(classes), per)[dead] += shift
        export_folder(net, revive, {"revived": {"from": model, "classes": [classes[c] for c in dead],
                                                "bias_shift": shift, "rule": REVIVE_RULE}})
        click.echo(json.dumps({"revive": revive, "classes": [classes[c] for c in dead]}))


if __name__ == "__main__":
    main()
