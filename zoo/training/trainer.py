"""The training loop behind ``snnzoo train``.

Determinism: the seed fixes the model's initialisation; each epoch's order comes from a
``DistributedSampler(seed, epoch)`` and each batch's augmentation from a generator seeded by
``(seed, epoch, batch, rank)``. A run resumed from a mid-epoch checkpoint therefore skips the
batches already done and repeats, bit for bit, what the uninterrupted run computes (same
device, thread count and world size).

Outputs in ``out``: ``last.ckpt`` (every ``ckpt_every`` steps and every epoch, atomically),
``metrics.jsonl``, ``curves.png`` (every epoch), and at the end ``model.safetensors`` +
``config.json`` (the weights of the last epoch — never selected on any split).

On the CPU the trainer first applies :func:`snnzoo.runtime.allocator.keep_freed_memory` (eager
steps stop paying page faults for their activations; ``train.keep_freed_memory = false`` opts out).

Time limit: with ``train.time_limit_s = L > 0`` the run ends at the first epoch end where
``elapsed + last epoch's wall time > L`` (elapsed since ``run()`` began), with the weights of that
last completed epoch; ``metrics.jsonl`` gets a ``stop`` record and ``config.json`` a
``stopped_early`` entry, and ``--resume`` (with a new limit or none) continues the run.
"""
from __future__ import annotations

import contextlib
import math
import random
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from ...runtime.allocator import keep_freed_memory
from . import ddp
from .checkpoint import (CKPT_NAME, export_folder, init_weights, load_training_state, rng_state, save_training_state,
                         set_rng_state)
from .config import RESUMABLE, ConfigError, diff
from .data import (Frames, augment, batch_generator, holdout_split, indices_digest, load_frames, open_dataset,
                   subset_indices, to_input)
from .metrics import MetricsLog
from .optim import build_optimizer, build_scheduler, loss_fn
from .plots import plot_curves


def native_cpu_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX tiles); without it, bf16 autocast
    on the CPU is emulated and measured 4-7x slower than fp32 (``benchmarks/RESULTS.md``)."""
    return any(getattr(torch.cpu, f, lambda: False)() for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def _zeros() -> list[float]:
    return [0.0, 0.0, 0.0]


@dataclass
class _Loop:
    """Where a run stands: the counters and sums ``last.ckpt`` stores (``accum`` over the epoch,
    ``interval`` since the last ``train`` record, each loss·n, correct, n), the learning rate of the
    last step, and the clocks of the log interval, the epoch and the time limit's epoch wall time."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    accum: list[float] = field(default_factory=_zeros)
    interval: list[float] = field(default_factory=_zeros)
    lr: float = 0.0
    t_interval: float = 0.0
    t_epoch: float = 0.0
    t_wall: float = 0.0


class Trainer:
    """``Trainer(cfg, data_root, out).run()`` trains the config's model; ``resume`` continues
    the run stored in ``out/last.ckpt``."""

    def __init__(self, cfg: dict[str, Any], data_root: str | Path, out: str | Path, resume: bool = False,
                 progress: bool = True) -> None:
        self.cfg, self.root, self.out = cfg, Path(data_root), Path(out)
        self.resume, self.progress = resume, progress
        t = cfg["train"]
        self.dist, self.device = ddp.setup(t["device"])
        if self.device.type not in ("cuda", "cpu") and t["amp"] != "none":
            raise ValueError(f"--amp {t['amp']} runs on CUDA or CPU; this run is on {self.device}")
        if t["threads"] > 0:
            torch.set_num_threads(t["threads"])
        self.allocator = (keep_freed_memory() if self.device.type == "cpu" and t["keep_freed_memory"]
                          else "default")
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed batch shapes: let cuDNN time its algorithms once
        elif t["amp"] == "bf16" and not native_cpu_bf16():
            warnings.warn(f"--amp bf16: this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native bf16 "
                          "(AVX512-BF16 or AMX), so autocast emulates it and usually trains slower than fp32; "
                          "compare with benchmarks/bench_train_cpu.py --amp fp32,bf16", stacklevel=2)
        self.ckpt_path = self.out / CKPT_NAME
        self.log = MetricsLog(self.out / "metrics.jsonl")
        self.history: list[dict[str, Any]] = []

    # ---- setup -------------------------------------------------------------------------
    def _build_model(self) -> nn.Module:
        from ..registry import create_model

        torch.manual_seed(self.cfg["train"]["seed"])
        model = create_model(self.cfg["model"], **self.cfg["model_args"])
        if self.cfg["train"]["init"] and not (self.resume and self.ckpt_path.exists()):  # resumed: last.ckpt's
            init_weights(model, self.cfg["train"]["init"])
        return model

    def _load_data(self, input_spec: dict[str, Any]) -> tuple[Frames, Frames | None, dict[str, Any]]:
        d = self.cfg["data"]
        ds = open_dataset(d["dataset"], self.root, "train")
        pool = subset_indices(len(ds), d["limit"], d["split_seed"])
        shown = self.progress and self.dist.main
        frames = load_frames(ds, input_spec, pool, desc=f"reading {d['dataset']}/train", progress=shown)
        info: dict[str, Any] = {"dataset": d["dataset"], "root": str(self.root), "train_split": "train",
                                "pool": len(pool), "pool_digest": indices_digest(pool)}
        if d["val_split"]:
            val = load_frames(open_dataset(d["dataset"], self.root, d["val_split"]), input_spec,
                              desc=f"reading {d['dataset']}/{d['val_split']}", progress=shown)
            train = frames
            info.update(val_split=d["val_split"], n_train=len(train), n_val=len(val))
        elif d["val_fraction"] > 0:
            tr, va = holdout_split(frames.y.numpy(), d["val_fraction"], d["split_seed"])
            train = Frames(frames.x[tr], frames.y[tr], frames.classes, frames.kind)
            val = Frames(frames.x[va], frames.y[va], frames.classes, frames.kind)
            info.update(val_split=f"held out {d['val_fraction']} of train (stratified, seed {d['split_seed']})",
                        n_train=len(tr), n_val=len(va), val_digest=indices_digest(pool[va]))
        else:
            train, val = frames, None
            info.update(val_split=None, n_train=len(train), n_val=0)
        return train, val, info

    # ---- evaluation on the validation set ----------------------------------------------
    @torch.no_grad()
    def _validate(self, model: nn.Module, val: Frames, input_spec: dict[str, Any], loss) -> tuple[float, float]:
        model.eval()
        bs = self.cfg["train"]["eval_batch_size"] or 2 * self.cfg["train"]["batch_size"]
        idx = torch.arange(self.dist.rank, len(val), self.dist.world)
        loss_sum = correct = 0.0
        for start in range(0, len(idx), bs):
            b = idx[start:start + bs]
            x, y = self._prepare(val.x[b], input_spec), val.y[b].to(self.device)
            with self._autocast():
                scores = model(x)
            loss_sum += float(loss(scores.float(), y)) * len(b)
            correct += float((scores.argmax(1) == y).sum())
        loss_sum, correct = ddp.all_reduce_sum([loss_sum, correct], self.device)
        self._train_mode(model)
        return loss_sum / len(val), correct / len(val)

    def _train_mode(self, model: nn.Module) -> None:
        """``model.train()``; with ``train.freeze_bn`` the BatchNorm layers stay in eval mode (their
        running statistics normalise and are not updated; their affine weights still train)."""
        model.train()
        if self.cfg["train"]["freeze_bn"]:
            for m in model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _prepare(self, x: torch.Tensor, input_spec: dict[str, Any]) -> torch.Tensor:
        x = to_input(x, input_spec, self.device)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _autocast(self):
        if self.cfg["train"]["amp"] == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _record(self, rec: dict[str, Any]) -> None:
        self.history.append(rec)
        if self.dist.main:
            self.log.write(rec)

    # ---- the run -----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train to ``train.epochs`` (or the time limit) and export; returns the last epoch's record."""
        t_run = time.perf_counter()
        self._setup()
        loop = self._start()
        fwd = self._forward_module()
        bar = self._progress_bar(loop)
        self._train_mode(self.model)
        loop.lr = self.opt.param_groups[0]["lr"]
        loop.t_interval = loop.t_epoch = loop.t_wall = time.perf_counter()
        stopped: dict[str, Any] | None = None
        while loop.epoch < self.cfg["train"]["epochs"]:
            self._train_epoch(fwd, loop, bar)
            self._end_epoch(loop, bar)
            stopped = self._time_limit(loop, t_run, bar)
            loop.epoch, loop.batch, loop.accum, loop.t_epoch = loop.epoch + 1, 0, _zeros(), time.perf_counter()
            self._save(loop)
            if self.dist.main:
                self._plot()
            if stopped:
                break
        bar.close()
        return self._finish(stopped)

    def _setup(self) -> None:
        """The output folder, the seeds, the model, the data, the sampler, optimizer, schedule and loss."""
        t = self.cfg["train"]
        if self.ckpt_path.exists() and not self.resume:
            raise FileExistsError(f"{self.ckpt_path}: a run exists here; pass --resume to continue it "
                                  "or choose another --out")
        if self.dist.main:
            self.out.mkdir(parents=True, exist_ok=True)
        random.seed(t["seed"])
        np.random.seed(t["seed"])
        self.model = self._build_model().to(self.device)
        auto_cl = self.device.type == "cuda" or t["amp"] == "bf16"
        self.channels_last = auto_cl if t["channels_last"] == "auto" else bool(t["channels_last"])
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.input_spec = self.model.config["input"]
        self.train_set, self.val_set, self.split = self._load_data(self.input_spec)
        self.split["world_size"] = self.dist.world
        self.sampler = DistributedSampler(range(len(self.train_set)), num_replicas=self.dist.world,
                                          rank=self.dist.rank, shuffle=True, seed=t["seed"], drop_last=False)
        self.steps_per_epoch = math.ceil(len(self.sampler) / t["batch_size"])
        self.opt = build_optimizer(self.model.parameters(), self.cfg)
        self.sched = build_scheduler(self.opt, self.cfg, self.steps_per_epoch)
        self.loss = loss_fn(self.cfg, self.model.num_classes)

    def _start(self) -> _Loop:
        """A fresh run with its ``config`` record, or the stored run restored with a ``resume`` record."""
        loop = _Loop()
        state = load_training_state(self.ckpt_path) if self.resume and self.ckpt_path.exists() else None
        if state is None:
            if self.dist.main:
                self.log.path.write_text("")
            self._record({"kind": "config", "step": 0, "config": self.cfg, "model_config": self.model.config,
                          "data": self.split, "steps_per_epoch": self.steps_per_epoch, "allocator": self.allocator,
                          "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                          "threads": torch.get_num_threads()})
            return loop
        changed = [k for k in diff(state["config"], self.cfg) if k not in RESUMABLE and k != "name"]
        if changed:
            raise ConfigError(f"{self.ckpt_path}: --resume continues the stored run; these settings differ "
                              f"from it: {', '.join(changed)}")
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        loop.epoch, loop.batch, loop.step = state["epoch"], state["batch"], state["step"]
        loop.accum, loop.interval = list(state["accum"]), list(state["interval"])
        self.history = list(state["history"])
        if self.dist.main:
            self.log.path.write_text("")
            for rec in self.history:
                self.log.write(rec)
        self._record({"kind": "resume", "step": loop.step, "epoch": loop.epoch, "batch": loop.batch,
                      "threads": torch.get_num_threads()})
        return loop

    def _forward_module(self) -> nn.Module:
        """The model as the training steps call it: under DDP across processes, compiled if asked."""
        fwd: nn.Module = self.model
        if self.dist.enabled:
            fwd = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if self.cfg["train"]["compile"]:
            fwd = torch.compile(fwd)
        return fwd

    def _progress_bar(self, loop: _Loop) -> tqdm:
        t = self.cfg["train"]
        samples_per_epoch = len(self.sampler) * self.dist.world
        total = t["epochs"] * samples_per_epoch
        done = loop.epoch * samples_per_epoch + loop.batch * t["batch_size"] * self.dist.world
        return tqdm(total=total, initial=min(done, total), unit="sample", unit_scale=True, dynamic_ncols=True,
                    disable=not (self.progress and self.dist.main), smoothing=0.1)

    def _save(self, loop: _Loop) -> None:
        """``last.ckpt``: everything a resumed run needs to repeat this one bit for bit."""
        if self.dist.main:
            save_training_state(self.ckpt_path, {
                "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "rng": rng_state(), "epoch": loop.epoch, "batch": loop.batch,
                "step": loop.step, "config": self.cfg, "accum": loop.accum, "interval": loop.interval,
                "history": self.history, "split": self.split})

    # ---- one epoch -----------------------------------------------------------------------
    def _train_epoch(self, fwd: nn.Module, loop: _Loop, bar: tqdm) -> None:
        """The epoch's remaining batches from ``loop.batch`` on, with ``train`` records and checkpoints."""
        t, bs = self.cfg["train"], self.cfg["train"]["batch_size"]
        self.sampler.set_epoch(loop.epoch)
        order = torch.tensor(list(self.sampler), dtype=torch.long)
        bar.set_description(f"epoch {loop.epoch + 1}/{t['epochs']}")
        for b in range(loop.batch, self.steps_per_epoch):
            idx = order[b * bs:(b + 1) * bs]
            n, c, lv = self._train_step(fwd, loop, idx, b)
            loop.step, loop.batch = loop.step + 1, b + 1
            for acc in (loop.accum, loop.interval):
                acc[0] += lv * n
                acc[1] += c
                acc[2] += n
            bar.update(n * self.dist.world)
            if loop.step % t["log_every"] == 0:
                self._log_interval(loop, bar)
            if loop.step % t["ckpt_every"] == 0:
                self._save(loop)

    def _train_step(self, fwd: nn.Module, loop: _Loop, idx: torch.Tensor, b: int) -> tuple[int, float, float]:
        """One optimizer step on the samples ``idx`` (batch ``b``) → (n, correct, loss)."""
        t, d = self.cfg["train"], self.cfg["data"]
        xb = self.train_set.x[idx]
        if d["augment"]:
            xb = augment(xb, self.train_set.kind, d, batch_generator(t["seed"], loop.epoch, b, self.dist.rank))
        x, y = self._prepare(xb, self.input_spec), self.train_set.y[idx].to(self.device)
        with self._autocast():
            scores = fwd(x)
        batch_loss = self.loss(scores.float(), y)
        self.opt.zero_grad(set_to_none=True)
        batch_loss.backward()
        self.opt.step()
        loop.lr = self.opt.param_groups[0]["lr"]
        self.sched.step()
        return len(idx), float((scores.detach().argmax(1) == y).sum()), float(batch_loss.detach())

    def _log_interval(self, loop: _Loop, bar: tqdm) -> None:
        """The ``train`` record of the steps since the last one."""
        ls, cs, ns = ddp.all_reduce_sum(loop.interval, self.device)
        now = time.perf_counter()
        rec = {"kind": "train", "step": loop.step, "epoch": loop.epoch + 1,
               "epoch_float": loop.epoch + loop.batch / self.steps_per_epoch, "loss": ls / ns, "acc": cs / ns,
               "lr": loop.lr, "samples_per_s": ns / max(now - loop.t_interval, 1e-9)}
        self._record(rec)
        bar.set_postfix(loss=f"{rec['loss']:.4f}", acc=f"{rec['acc']:.3f}", lr=f"{rec['lr']:.2e}")
        loop.interval, loop.t_interval = _zeros(), now

    # ---- the end of an epoch ---------------------------------------------------------------
    def _end_epoch(self, loop: _Loop, bar: tqdm) -> None:
        """The ``epoch`` record: the epoch's training loss and accuracy, and the validation set's."""
        t, val = self.cfg["train"], self.val_set
        ls, cs, ns = ddp.all_reduce_sum(loop.accum, self.device)
        rec = {"kind": "epoch", "step": loop.step, "epoch": loop.epoch + 1, "train_loss": ls / ns,
               "train_acc": cs / ns, "val_loss": None, "val_acc": None, "val_n": 0, "lr": loop.lr,
               "time_s": time.perf_counter() - loop.t_epoch}
        if val is not None:
            rec["val_loss"], rec["val_acc"] = self._validate(self.model, val, self.input_spec, self.loss)
            rec["val_n"] = len(val)
        self._record(rec)
        if self.dist.main:
            bar.write(f"epoch {loop.epoch + 1}/{t['epochs']}: train loss {rec['train_loss']:.4f} "
                      f"acc {rec['train_acc']:.4f}" + ("" if val is None else
                      f" | val loss {rec['val_loss']:.4f} acc {rec['val_acc']:.4f} (n={len(val)})"))

    def _time_limit(self, loop: _Loop, t_run: float, bar: tqdm) -> dict[str, Any] | None:
        """With ``train.time_limit_s`` set: the ``stop`` facts (also recorded) when one more epoch
        would pass the limit on any rank, else None."""
        t = self.cfg["train"]
        if t["time_limit_s"] <= 0:
            return None
        now = time.perf_counter()
        elapsed, epoch_wall, loop.t_wall = now - t_run, now - loop.t_wall, now
        late = loop.epoch + 1 < t["epochs"] and elapsed + epoch_wall > t["time_limit_s"]
        if not ddp.all_reduce_sum([float(late)], self.device)[0] > 0:
            return None
        stopped = {"reason": "train.time_limit_s", "time_limit_s": t["time_limit_s"], "elapsed_s": elapsed,
                   "last_epoch_s": epoch_wall, "epochs_done": loop.epoch + 1, "epochs_planned": t["epochs"]}
        self._record({"kind": "stop", "step": loop.step, "epoch": loop.epoch + 1, **stopped})
        if self.dist.main:
            bar.write(f"stopping after epoch {loop.epoch + 1}/{t['epochs']}: {elapsed:.0f} s elapsed, "
                      f"one more epoch ({epoch_wall:.0f} s) would pass train.time_limit_s")
        return stopped

    # ---- the end of the run ----------------------------------------------------------------
    def _finish(self, stopped: dict[str, Any] | None) -> dict[str, Any]:
        """The final curves and the exported folder (the last epoch's weights); the last epoch's record."""
        epochs = [r for r in self.history if r["kind"] == "epoch"]
        final = dict(epochs[-1]) if epochs else {}
        final.pop("kind", None)
        if self.dist.main:
            self._plot()
            export_folder(self.model.to("cpu").to(memory_format=torch.contiguous_format), self.out,
                          {"training": self.cfg, "data": self.split, "metrics": final,
                           **({"stopped_early": stopped} if stopped else {})})
        ddp.barrier()
        return final

    def _plot(self) -> None:
        plot_curves([r for r in self.history if r["kind"] == "train"],
                    [r for r in self.history if r["kind"] == "epoch"], self.out / "curves.png",
                    title=f"{self.cfg['name']} ({self.cfg['model']})")
