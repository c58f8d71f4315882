"""``snnzoo eval``: accuracy with a Wilson 95 % interval, per-class accuracy, confusion matrix and
per-layer firing rates of a model (registry name, checkpoint folder or ``.onnx`` file) on a split."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ...runtime.specs import SpecError, input_from_metadata
from .data import load_frames, open_dataset, subset_indices, to_input
from .metrics import confusion_matrix, per_class, wilson_interval

ONNX_NO_RATES = "not available for ONNX models (the graph exposes only class scores)"


class TorchRunner:
    """A zoo model; also records each LIF layer's mean firing rate and the spikes per step over the
    samples seen, and the voting layer's scores after each step (:meth:`step_scores`)."""

    def __init__(self, model: torch.nn.Module, device: torch.device, source: str) -> None:
        self.model, self.device, self.source = model.to(device).eval(), device, source
        self.config = model.config
        self.lifs = model.lif_layers()
        self.rate_sums = {name: 0.0 for name, _ in self.lifs}
        self.spike_sums: torch.Tensor | None = None  # [T]: spikes per step, all layers, summed over samples
        self.seen = 0
        self.votes: torch.Tensor | None = None
        model.voting.register_forward_hook(self._keep_votes)

    def _keep_votes(self, module: torch.nn.Module, args: tuple, out: torch.Tensor) -> None:
        self.votes = args[0].detach()

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> np.ndarray:
        for _, m in self.lifs:
            m.record_rate = True
        try:
            scores = self.model(to_input(x, self.config["input"], self.device))
            for name, m in self.lifs:
                self.rate_sums[name] += float(m.rate) * len(x)
                per_step = getattr(m, "spikes_per_step", None)
                if per_step is not None:
                    add = per_step.cpu().double() * len(x)
                    self.spike_sums = add if self.spike_sums is None else self.spike_sums + add
        finally:
            for _, m in self.lifs:
                m.record_rate, m.rate = False, None
                if hasattr(m, "spikes_per_step"):
                    m.spikes_per_step = None
        self.seen += len(x)
        return scores.float().cpu().numpy()

    def step_scores(self, steps: list[int]) -> dict[int, np.ndarray]:
        """Class scores of the last batch as if the network had run only its first ``t`` steps, for
        each ``t`` in ``steps``. Exact for encoding-layer (image) models: the recursion is causal and
        the input is the same at every step, so the first t steps of a T-step run are the t-step run."""
        votes = self.votes.float()
        group = (votes.shape[1], self.model.voting.num_classes, self.model.voting.neurons_per_class)
        return {t: votes[:t].mean(0).reshape(group).mean(2).cpu().numpy() for t in steps}

    def firing_rates(self) -> dict[str, float]:
        return {name: s / max(self.seen, 1) for name, s in self.rate_sums.items()}

    def spikes_per_sample(self, steps: int | None = None) -> float | None:
        """Mean spikes a sample causes over the first ``steps`` steps (all of them by default), all
        spiking layers summed (None for an ANN twin)."""
        if getattr(self.model, "neuron", "lif") != "lif" or self.spike_sums is None:
            return None
        return float(self.spike_sums[:steps].sum()) / max(self.seen, 1)


class OnnxRunner:
    """An exported ``.onnx`` file run with onnxruntime; its input spec (binning or image
    normalisation) and classes come from the file's metadata (``snnzoo.export.metadata``)."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        from ...runtime.onnx_metadata import read_metadata

        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ValueError(f"{path}: not a loadable ONNX model ({type(e).__name__}: {e})") from None
        self.config = onnx_config(read_metadata(self.session), path)
        self.input_name = self.session.get_inputs()[0].name
        self.source = f"ONNX file {path}"

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        inp = to_input(x, self.config["input"], torch.device("cpu")).numpy()
        return self.session.run(None, {self.input_name: inp})[0]

    def firing_rates(self) -> None:
        return None

    def spikes_per_sample(self, steps: int | None = None) -> None:
        return None


def onnx_config(meta: dict[str, Any], path: Path) -> dict[str, Any]:
    """``{name, input, classes}`` in the zoo's config shape from decoded ONNX metadata."""
    if meta.get("streaming"):
        raise ValueError(f"{path}: a streaming (one-step) graph; evaluate the unrolled export instead")
    if "classes" not in meta:
        raise ValueError(f"{path}: ONNX metadata lacks 'classes' (export the model with `snnzoo export`)")
    try:
        inp = input_from_metadata(meta).to_dict()
    except SpecError as e:
        raise ValueError(f"{path}: {e} (export the model with `snnzoo export`)") from None
    return {"name": meta.get("model_id", path.stem), "input": inp, "classes": list(meta["classes"])}


def load_runner(spec: str, device: torch.device, time_steps: int | None = None) -> TorchRunner | OnnxRunner:
    """MODEL of ``snnzoo eval`` (:func:`snnzoo.runtime.models.resolve`): an ``.onnx`` file, a checkpoint
    folder, a registry name (pretrained) or ``hf-hub:ORG/NAME[@REV]``; ``time_steps`` runs a torch
    model at another T (an ONNX graph has its T built in)."""
    from ...runtime.models import resolve

    ref = resolve(spec)
    overrides = {} if time_steps is None else {"time_steps": time_steps}
    if ref.kind == "onnx":
        if overrides:
            raise ValueError(f"{spec}: an ONNX graph has its time steps built in; --time-steps needs a "
                             "checkpoint folder or a registry name")
        return OnnxRunner(ref.onnx)
    if ref.kind == "checkpoint":
        from ..pretrained import load_folder

        return TorchRunner(load_folder(ref.checkpoint, **overrides).eval(), device,
                           f"checkpoint folder {ref.checkpoint}")
    from ..registry import create_model, list_models

    if ref.kind == "registry" and spec not in list_models():
        raise ValueError(f"{spec}: not an .onnx file, a checkpoint folder or a model "
                         f"({', '.join(list_models())})")
    source = f"Hub folder {ref.registry_id}" if ref.kind == "hub" else f"pretrained {spec}"
    return TorchRunner(create_model(ref.registry_id, pretrained=True, **overrides), device, source)


def exact_indices(ds: Any, dataset: str, split: str) -> np.ndarray:
    """Indices of the samples whose pixels are lossless (the dataset's per-sample ``exact`` flag)."""
    flags = getattr(ds, "exact", None)
    if flags is None:
        raise ValueError(f"{dataset}: --exact-only needs a per-sample 'exact' flag, which this dataset lacks")
    idx = np.flatnonzero(np.asarray(flags, bool))
    if len(idx) == 0:
        raise ValueError(f"{dataset}/{split}: no sample is marked exact")
    return idx


def evaluate(model: str, dataset: str, data_root: str | Path, split: str = "test", batch_size: int = 64,
             limit: int = 0, device: str = "auto", progress: bool = True, exact_only: bool = False,
             time_steps: int | None = None, prefix_steps: list[int] | None = None, hardest: int = 0,
             hardest_dir: str | Path | None = None) -> dict[str, Any]:
    """Evaluate ``model`` on ``dataset``/``split``; ``exact_only`` keeps only the samples the dataset
    flags ``exact`` (CIFAR-10: lossless pixels); ``limit`` > 0 then takes a seeded (seed 0) random
    subset of that many; ``time_steps`` runs the model at that T. Returns the result dict printed by
    ``snnzoo eval``; ``spikes_per_sample`` is the mean number of spikes one sample causes over the T
    steps in all spiking layers together (mean firing rate × neurons × T). ``prefix_steps`` (image
    models) adds ``by_time_steps``: accuracy and spikes after only the first t steps of the same run,
    which for an encoding-layer model is exactly the model run at T = t (:meth:`TorchRunner.step_scores`).
    ``hardest`` > 0 (event models) writes frame strips of that many hardest samples into ``hardest_dir``
    (:func:`snnzoo.zoo.training.strips.write_hardest`); the result is the same."""
    if hardest:
        from .strips import check_dir

        if hardest_dir is None:
            raise ValueError("--hardest needs --hardest-dir (the folder for the frame strips)")
        check_dir(hardest_dir)  # before the long run
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    runner = load_runner(model, dev, time_steps)
    prefix = sorted(set(prefix_steps or []))
    if prefix:
        if not isinstance(runner, TorchRunner) or runner.config["input"]["kind"] != "image":
            raise ValueError(f"{model}: accuracy by time steps needs a torch image model (an event model's "
                             "frames depend on T, an ONNX graph exposes only its final scores)")
        steps = runner.config["model"]["time_steps"]
        if prefix[0] < 1 or prefix[-1] > steps:
            raise ValueError(f"{model}: time steps for the sweep must lie in 1..{steps} (the run's T)")
    ds = open_dataset(dataset, data_root, split)
    pool = exact_indices(ds, dataset, split) if exact_only else np.arange(len(ds))
    idx = pool[subset_indices(len(pool), limit, 0)]
    frames = load_frames(ds, runner.config["input"], idx, desc=f"reading {dataset}/{split}", progress=progress)
    classes = list(runner.config["classes"])
    if len(frames.classes) != len(classes):
        raise ValueError(f"{dataset} has {len(frames.classes)} classes but the model predicts {len(classes)}")
    if hardest and frames.kind != "events":
        raise ValueError(f"{model}: frame strips (--hardest) need an event model")
    preds = np.empty(len(frames), np.int64)
    all_scores = np.empty((len(frames), len(classes)), np.float32) if hardest else None
    prefix_preds = {t: np.empty(len(frames), np.int64) for t in prefix}
    with tqdm(total=len(frames), desc="evaluating", unit="sample", disable=not progress, leave=False) as bar:
        for start in range(0, len(frames), batch_size):
            scores = runner(frames.x[start:start + batch_size])
            preds[start:start + len(scores)] = scores.argmax(1)
            if all_scores is not None:
                all_scores[start:start + len(scores)] = scores
            for t, s in (runner.step_scores(prefix).items() if prefix else ()):
                prefix_preds[t][start:start + len(s)] = s.argmax(1)
            bar.update(len(scores))
    y = frames.y.numpy()
    if all_scores is not None:
        from .strips import write_hardest

        write_hardest(hardest_dir, frames.x.numpy(), y, all_scores, idx, classes, hardest,
                      getattr(ds, "files", None), {"model": model, "source": runner.source, "dataset": dataset,
                                                   "split": split, "n": len(frames)})
    cm = confusion_matrix(y, preds, len(classes))
    k, n = int(np.trace(cm)), int(cm.sum())
    rates = runner.firing_rates()
    result = {"model": model, "source": runner.source, "dataset": dataset, "split": split,
              "exact_only": exact_only, "n": n, "correct": k, "accuracy": k / n,
              "ci95": list(wilson_interval(k, n)), "classes": classes,
              **per_class(cm, classes),
              "confusion": cm.tolist(), "firing_rates": rates, "spikes_per_sample": runner.spikes_per_sample(),
              "time_steps": runner.config["model"]["time_steps"] if "model" in runner.config else None}
    if prefix:
        result["by_time_steps"] = [
            {"time_steps": t, "correct": int((p == y).sum()), "accuracy": float((p == y).mean()),
             "ci95": list(wilson_interval(int((p == y).sum()), n)), "spikes_per_sample": runner.spikes_per_sample(t)}
            for t, p in prefix_preds.items()]
    if rates is None:
        result["firing_rates_note"] = ONNX_NO_RATES
    else:  # one LIF per weight layer, in the order of the arch notation (pooling has none)
        tokens = [t for t in runner.config["arch"].split("-") if not t.startswith("AP")]
        if len(tokens) == len(rates):
            result["firing_rate_layers"] = dict(zip(rates, tokens))
    return result


def format_text(r: dict[str, Any]) -> str:
    """The human-readable report."""
    lo, hi = r["ci95"]
    lines = [f"model:    {r['model']} ({r['source']})",
             f"dataset:  {r['dataset']} / {r['split']}  (n = {r['n']}"
             f"{', exact pixels only' if r.get('exact_only') else ''})",
             f"accuracy: {100 * r['accuracy']:.2f} %  ({r['correct']}/{r['n']}; "
             f"95 % CI {100 * lo:.2f}–{100 * hi:.2f} %, Wilson)", "", "per-class accuracy:"]
    width = max(len(c) for c in r["classes"])
    for c in r["classes"]:
        acc = r["per_class"][c]
        shown = "   n/a" if acc is None else f"{100 * acc:6.2f}"
        lines.append(f"  {c:>{width}}  {shown} %  (n = {r['per_class_n'][c]})")
    lines += ["", "confusion matrix (rows: true, columns: predicted):"]
    cm = np.asarray(r["confusion"])
    cw = max(4, len(str(cm.max())) + 1)
    lines.append(" " * (width + 2) + "".join(f"{c[:cw - 1]:>{cw}}" for c in r["classes"]))
    for c, row in zip(r["classes"], cm):
        lines.append(f"  {c:>{width}}" + "".join(f"{v:>{cw}d}" for v in row))
    if r.get("spikes_per_sample") is not None:
        lines += ["", f"spikes per sample: {r['spikes_per_sample']:.0f} over T = {r['time_steps']} steps"]
    if r.get("by_time_steps"):
        lines += ["", "after the first t steps of the same run (= the model at T = t):"]
        lines += [f"  T = {b['time_steps']:3d}: {100 * b['accuracy']:6.2f} %  ({b['correct']}/{r['n']}), "
                  f"{b['spikes_per_sample']:.0f} spikes per sample" for b in r["by_time_steps"]]
    lines += ["", "mean firing rate per LIF layer:"]
    if r["firing_rates"] is None:
        lines.append(f"  {r['firing_rates_note']}")
    else:
        layers = r.get("firing_rate_layers", {})
        lines += [f"  {name:12s} {layers.get(name, ''):12s} {rate:.4f}" for name, rate in r["firing_rates"].items()]
    return "\n".join(lines)
