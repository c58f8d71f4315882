"""Is any class's voting group dead? The input current of the voting layer's neurons, per class.

A voting neuron fires when its membrane reaches V_th; with the rectangular surrogate it gets a
gradient only while the membrane is near V_th. A class whose ten neurons never get a current
near V_th on any sample is never predicted and, in training, barely learns. This prints, per class
group, the largest and the mean input current ``W·x[t] + b`` over all samples and steps:

    python examples/voting_currents.py wu2019_nmnist --data-root ../shared/data/nmnist --every 10
"""
from __future__ import annotations

import json

import click
import numpy as np
import torch

from snnzoo.zoo.training.data import load_frames, open_dataset, to_input
from snnzoo.zoo.training.evaluate import load_runner


@click.command()
@click.argument("model")
@click.option("--data-root", required=True, type=click.Path(file_okay=False), help="N-MNIST folder (Train/).")
@click.option("--every", type=int, default=10, show_default=True, help="Use every N-th recording.")
def main(model: str, data_root: str, every: int) -> None:
    runner = load_runner(model, torch.device("cpu"))
    if not hasattr(runner, "model"):
        raise click.ClickException(f"{model}: needs a torch model (registry name or checkpoint folder), not ONNX")
    net = runner.model
    ds = open_dataset("nmnist", data_root, "train")
    frames = load_frames(ds, net.config["input"], np.arange(0, len(ds), every), progress=False)
    feed = net.layers[-2]  # the synapses feeding the voting LIF layer (the last layer)
    currents = []
    hook = feed.register_forward_hook(lambda mod, inp, out: currents.append(out.detach().float()))
    with torch.no_grad():
        net(to_input(frames.x, net.config["input"], torch.device("cpu")))
    hook.remove()
    per = net.config["model"]["neurons_per_class"]
    cur = currents[0].reshape(-1, len(net.config["classes"]), per)  # [T·B, classes, neurons]
    v_th = net.config["model"]["v_th"]
    for c, name in enumerate(net.config["classes"]):
        click.echo(json.dumps({"class": name, "max_current": round(float(cur[:, c].max()), 4),
                               "mean_current": round(float(cur[:, c].mean()), 4), "v_th": v_th,
                               "samples": len(frames)}))


if __name__ == "__main__":
    main()
