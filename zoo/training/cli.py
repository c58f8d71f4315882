"""``snnzoo train`` and ``snnzoo eval``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ...errors import SnnzooError, UsageError

# What a user's bad input raises; anything else is a bug and keeps its traceback.
USER_ERRORS = (SnnzooError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, KeyError)


def _fail(e: BaseException) -> None:
    msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    raise UsageError(msg) from None


@click.command("train")
@click.argument("config_or_model")
@click.option("--data-root", required=True, type=click.Path(file_okay=False),
              help="The dataset's folder (e.g. .../nmnist holding Train/).")
@click.option("--dataset", help="data.dataset: a dataset name, tonic:NAME (tonic's class on --data-root, "
                                "offline) or tonic-cache:NAME (a tonic disk cache folder)")
@click.option("--epochs", type=int, help="train.epochs")
@click.option("--batch-size", type=int, help="train.batch_size (per process under torchrun)")
@click.option("--device", help="train.device: auto, cpu, cuda, cuda:N")
@click.option("--out", type=click.Path(file_okay=False), help="Run folder (default runs/<config name>).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from last.ckpt (starts one if absent).")
@click.option("--seed", type=int, help="train.seed")
@click.option("--amp", type=click.Choice(["none", "bf16"]), help="train.amp: bf16 autocast (CUDA, or CPUs with AVX-512 BF16/AMX)")
@click.option("--compile", "compile_", is_flag=True, default=None,
              help="train.compile: torch.compile the model (CPU too; the first steps compile).")
@click.option("--threads", type=int, help="train.threads: torch CPU threads (0 = default)")
@click.option("--init", type=click.Path(file_okay=False), help="train.init: start from this checkpoint folder's "
              "weights (same architecture), e.g. a network converted by `snnzoo convert`.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any config value, e.g. --set optim.lr=0.01 --set model_args.bn=true.")
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
def train_command(config_or_model: str, data_root: str, dataset: str | None, epochs: int | None,
                  batch_size: int | None, device: str | None, out: str | None, resume: bool, seed: int | None,
                  amp: str | None, compile_: bool | None, threads: int | None, init: str | None, sets: tuple[str, ...],
                  progress: bool) -> None:
    """Train CONFIG_OR_MODEL: a .toml file, a config name from configs/ (nmnist_paper,
    cifar10_compact...; these take precedence), or a registered model with the default recipe.

    Writes OUT/last.ckpt (every epoch and every train.ckpt_every steps), metrics.jsonl,
    curves.png, and at the end model.safetensors (fp16) + config.json with the last epoch's
    weights. --resume continues a killed run exactly; it may change only the epochs, device,
    threads and logging intervals. Runs unchanged under `torchrun --nproc_per_node=N` (DDP;
    gloo on CPU, nccl on CUDA; --batch-size is per process)."""
    from .trainer import Trainer
    from .config import load_config

    cli_sets = [f"train.{k}={json.dumps(v)}" for k, v in
                (("epochs", epochs), ("batch_size", batch_size), ("device", device), ("seed", seed),
                 ("amp", amp), ("compile", compile_), ("threads", threads), ("init", init)) if v is not None]
    if dataset is not None:
        cli_sets.append(f"data.dataset={json.dumps(dataset)}")
    try:
        cfg = load_config(config_or_model, [*sets, *cli_sets])
        if not Path(data_root).is_dir():
            raise NotADirectoryError(f"{data_root}: data root not found")
        Trainer(cfg, data_root, out or Path("runs") / cfg["name"], resume=resume, progress=progress).run()
    except USER_ERRORS as e:
        _fail(e)


@click.command("snapshot")
@click.argument("run", type=click.Path(file_okay=False))
@click.argument("dest", type=click.Path(file_okay=False))
def snapshot_command(run: str, dest: str) -> None:
    """Write the weights of RUN/last.ckpt (the run's latest step, mid-epoch too) to the checkpoint
    folder DEST (model.safetensors fp16 + config.json, whose `snapshot` says step, epoch and
    samples seen). For runs longer than a session; the run can go on with --resume."""
    from .checkpoint import export_snapshot

    try:
        snap = export_snapshot(run, dest)
    except USER_ERRORS as e:
        _fail(e)
    click.echo(json.dumps({"dest": dest, **{k: v for k, v in snap.items() if k != "last_train_record"}}))


@click.command("eval")
@click.argument("model")
@click.option("--dataset", required=True, help="Dataset name (nmnist, cifar10, cifar10dvs, dvsgesture...), "
                                                "tonic:NAME or tonic-cache:NAME.")
@click.option("--data-root", required=True, type=click.Path(file_okay=False), help="The dataset's folder.")
@click.option("--split", default="test", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--limit", type=int, default=0, help="Evaluate a seeded random subset of N samples (0 = all).")
@click.option("--exact-only", is_flag=True,
              help="Only the samples the dataset flags exact (CIFAR-10: the lossless, non-JPEG images).")
@click.option("--device", default="auto", show_default=True)
@click.option("-T", "--time-steps", type=click.IntRange(min=1), default=None,
              help="Run the model at this many time steps (default: its own T; not for .onnx files).")
@click.option("--steps-sweep", default="", metavar="T1,T2,...",
              help="Image models: also report accuracy and spikes after the first t steps of the run, for "
                   "each t (exactly the model at T = t; e.g. 1,2,4).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write the confusion matrix as a PNG here.")
@click.option("--hardest", type=click.IntRange(min=1), default=None, metavar="N",
              help="Event models: write the N hardest samples (misclassified first) as frame-strip PNGs, "
                   "with index.json, into --hardest-dir.")
@click.option("--hardest-dir", type=click.Path(), default=None, help="Folder for the --hardest strips.")
@click.option("--progress/--no-progress", default=True, help="Show progress bars (stderr).")
def eval_command(model: str, dataset: str, data_root: str, split: str, fmt: str, batch_size: int, limit: int,
                 device: str, plot: str | None, progress: bool, exact_only: bool, time_steps: int | None,
                 steps_sweep: str, hardest: int | None, hardest_dir: str | None) -> None:
    """Accuracy (95 % Wilson CI), per-class accuracy, confusion matrix and per-layer firing rates
    of MODEL — a registry name (pretrained weights), hf-hub:ORG/NAME[@REV], a checkpoint folder or an
    .onnx file. --hardest N shows what it gets wrong: frame strips of the N lowest-margin samples."""
    from ...runtime.allocator import keep_freed_memory
    from .evaluate import evaluate, format_text

    keep_freed_memory()  # eager torch on the CPU: reuse freed activations instead of re-faulting them
    try:
        if not Path(data_root).is_dir():
            raise NotADirectoryError(f"{data_root}: data root not found")
        if batch_size < 1:
            raise ValueError("--batch-size must be >= 1")
        if hardest_dir is not None and hardest is None:
            raise ValueError("--hardest-dir needs --hardest N")
        try:
            sweep = [int(t) for t in steps_sweep.split(",") if t.strip()]
        except ValueError:
            raise ValueError(f"--steps-sweep {steps_sweep!r}: expected comma-separated integers, e.g. 1,2,4") from None
        result = evaluate(model, dataset, data_root, split, batch_size, limit, device, progress, exact_only,
                          time_steps, sweep, hardest or 0, hardest_dir)
    except USER_ERRORS as e:
        _fail(e)
    if plot:
        import numpy as np

        from .plots import plot_confusion

        plot_confusion(np.asarray(result["confusion"]), result["classes"], plot,
                       title=f"{result['model']} on {result['dataset']}/{result['split']} "
                             f"({100 * result['accuracy']:.2f} %, n={result['n']})")
    click.echo(json.dumps(result) if fmt == "json" else format_text(result))
