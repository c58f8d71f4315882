"""The training loop behind ``snnzoo train``.

Determinism: the seed fixes the model's initialisation; each epoch's order comes from a
``DistributedSampler(seed, epoch)`` and each batch's augmentation from a generator seeded by
``(seed, epoch, batch, rank)``. A run resumed from a mid-epoch checkpoint therefore skips the
batches already done and repeats, bit for bit, what the uninterrupted run computes (same
device, thread count and world size).

Outputs in ``out``: ``last.ckpt`` (every ``ckpt_every`` steps and every epoch, atomically),
``metrics.jsonl``, ``curves.png`` (every epoch), and at the end ``model.safetensors`` +
``config.json`` (the weights of the last epoch — never selected on any split).

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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from . import ddp
from .checkpoint import CKPT_NAME, export_folder, load_training_state, rng_state, save_training_state, set_rng_state
from .config import RESUMABLE, ConfigError, diff
from .data import (Frames, augment, batch_generator, holdout_split, indices_digest, load_frames, open_dataset,
                   subset_indices, to_input)
from .metrics import MetricsLog
from .optim import build_optimizer, build_scheduler, loss_fn
from .plots import plot_curves


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
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed batch shapes: let cuDNN time its algorithms once
        self.ckpt_path = self.out / CKPT_NAME
        self.log = MetricsLog(self.out / "metrics.jsonl")
        self.history: list[dict[str, Any]] = []

    # ---- setup -------------------------------------------------------------------------
    def _build_model(self) -> nn.Module:
        from ..registry import create_model

        torch.manual_seed(self.cfg["train"]["seed"])
        return create_model(self.cfg["model"], **self.cfg["model_args"])

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
        model.train()
        return loss_sum / len(val), correct / len(val)

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
        cfg, t = self.cfg, self.cfg["train"]
        t_run = time.perf_counter()
        main = self.dist.main
        if self.ckpt_path.exists() and not self.resume:
            raise FileExistsError(f"{self.ckpt_path}: a run exists here; pass --resume to continue it "
                                  "or choose another --out")
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
        random.seed(t["seed"])
        np.random.seed(t["seed"])
        model = self._build_model().to(self.device)
        auto_cl = self.device.type == "cuda" or t["amp"] == "bf16"
        self.channels_last = auto_cl if t["channels_last"] == "auto" else bool(t["channels_last"])
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        input_spec = model.config["input"]
        train, val, split = self._load_data(input_spec)
        split["world_size"] = self.dist.world

        sampler = DistributedSampler(range(len(train)), num_replicas=self.dist.world, rank=self.dist.rank,
                                     shuffle=True, seed=t["seed"], drop_last=False)
        bs = t["batch_size"]
        steps_per_epoch = math.ceil(len(sampler) / bs)
        opt = build_optimizer(model.parameters(), cfg)
        sched = build_scheduler(opt, cfg, steps_per_epoch)
        loss = loss_fn(cfg, model.num_classes)

        epoch = batch = step = 0
        accum, interval = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]  # loss·n, correct, n
        state = load_training_state(self.ckpt_path) if self.resume and self.ckpt_path.exists() else None
        if state is not None:
            changed = [k for k in diff(state["config"], cfg) if k not in RESUMABLE and k != "name"]
            if changed:
                raise ConfigError(f"{self.ckpt_path}: --resume continues the stored run; these settings differ "
                                  f"from it: {', '.join(changed)}")
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"])
            epoch, batch, step = state["epoch"], state["batch"], state["step"]
            accum, interval = list(state["accum"]), list(state["interval"])
            self.history = list(state["history"])
            if main:
                self.log.path.write_text("")
                for rec in self.history:
                    self.log.write(rec)
            self._record({"kind": "resume", "step": step, "epoch": epoch, "batch": batch})
        else:
            if main:
                self.log.path.write_text("")
            self._record({"kind": "config", "step": 0, "config": cfg, "model_config": model.config,
                          "data": split, "steps_per_epoch": steps_per_epoch})

        fwd: nn.Module = model
        if self.dist.enabled:
            fwd = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if t["compile"]:
            fwd = torch.compile(fwd)

        def save() -> None:
            if main:
                save_training_state(self.ckpt_path, {
                    "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "rng": rng_state(), "epoch": epoch, "batch": batch, "step": step, "config": cfg,
                    "accum": accum, "interval": interval, "history": self.history, "split": split})

        samples_per_epoch = len(sampler) * self.dist.world
        bar = tqdm(total=t["epochs"] * samples_per_epoch, initial=min(epoch * samples_per_epoch + batch * bs
                   * self.dist.world, t["epochs"] * samples_per_epoch), unit="sample", unit_scale=True,
                   dynamic_ncols=True, disable=not (self.progress and main), smoothing=0.1)
        model.train()
        lr = opt.param_groups[0]["lr"]
        t_interval = t_epoch = t_wall = time.perf_counter()
        stopped: dict[str, Any] | None = None
        while epoch < t["epochs"]:
            sampler.set_epoch(epoch)
            order = torch.tensor(list(sampler), dtype=torch.long)
            bar.set_description(f"epoch {epoch + 1}/{t['epochs']}")
            for b in range(batch, steps_per_epoch):
                idx = order[b * bs:(b + 1) * bs]
                xb = train.x[idx]
                if cfg["data"]["augment"]:
                    xb = augment(xb, train.kind, cfg["data"], batch_generator(t["seed"], epoch, b, self.dist.rank))
                x, y = self._prepare(xb, input_spec), train.y[idx].to(self.device)
                with self._autocast():
                    scores = fwd(x)
                batch_loss = loss(scores.float(), y)
                opt.zero_grad(set_to_none=True)
                batch_loss.backward()
                opt.step()
                lr = opt.param_groups[0]["lr"]
                sched.step()
                step, batch = step + 1, b + 1
                n, c, lv = len(idx), float((scores.detach().argmax(1) == y).sum()), float(batch_loss.detach())
                for acc in (accum, interval):
                    acc[0] += lv * n
                    acc[1] += c
                    acc[2] += n
                bar.update(n * self.dist.world)
                if step % t["log_every"] == 0:
                    ls, cs, ns = ddp.all_reduce_sum(interval, self.device)
                    now = time.perf_counter()
                    rec = {"kind": "train", "step": step, "epoch": epoch + 1,
                           "epoch_float": epoch + batch / steps_per_epoch, "loss": ls / ns, "acc": cs / ns,
                           "lr": lr, "samples_per_s": ns / max(now - t_interval, 1e-9)}
                    self._record(rec)
                    bar.set_postfix(loss=f"{rec['loss']:.4f}", acc=f"{rec['acc']:.3f}", lr=f"{rec['lr']:.2e}")
                    interval, t_interval = [0.0, 0.0, 0.0], now
                if step % t["ckpt_every"] == 0:
                    save()
            ls, cs, ns = ddp.all_reduce_sum(accum, self.device)
            rec = {"kind": "epoch", "step": step, "epoch": epoch + 1, "train_loss": ls / ns, "train_acc": cs / ns,
                   "val_loss": None, "val_acc": None, "val_n": 0, "lr": lr,
                   "time_s": time.perf_counter() - t_epoch}
            if val is not None:
                rec["val_loss"], rec["val_acc"] = self._validate(model, val, input_spec, loss)
                rec["val_n"] = len(val)
            self._record(rec)
            if main:
                bar.write(f"epoch {epoch + 1}/{t['epochs']}: train loss {rec['train_loss']:.4f} "
                          f"acc {rec['train_acc']:.4f}" + ("" if val is None else
                          f" | val loss {rec['val_loss']:.4f} acc {rec['val_acc']:.4f} (n={len(val)})"))
            if t["time_limit_s"] > 0:
                now = time.perf_counter()
                elapsed, epoch_wall, t_wall = now - t_run, now - t_wall, now
                late = epoch + 1 < t["epochs"] and elapsed + epoch_wall > t["time_limit_s"]
                if ddp.all_reduce_sum([float(late)], self.device)[0] > 0:
                    stopped = {"reason": "train.time_limit_s", "time_limit_s": t["time_limit_s"],
                               "elapsed_s": elapsed, "last_epoch_s": epoch_wall, "epochs_done": epoch + 1,
                               "epochs_planned": t["epochs"]}
                    self._record({"kind": "stop", "step": step, "epoch": epoch + 1, **stopped})
                    if main:
                        bar.write(f"stopping after epoch {epoch + 1}/{t['epochs']}: {elapsed:.0f} s elapsed, "
                                  f"one more epoch ({epoch_wall:.0f} s) would pass train.time_limit_s")
            epoch, batch, accum, t_epoch = epoch + 1, 0, [0.0, 0.0, 0.0], time.perf_counter()
            save()
            if main:
                self._plot()
            if stopped:
                break
        bar.close()

        epochs = [r for r in self.history if r["kind"] == "epoch"]
        final = dict(epochs[-1]) if epochs else {}
        final.pop("kind", None)
        if main:
            self._plot()
            export_folder(model.to("cpu").to(memory_format=torch.contiguous_format), self.out,
                          {"training": cfg, "data": split, "metrics": final,
                           **({"stopped_early": stopped} if stopped else {})})
        ddp.barrier()
        return final

    def _plot(self) -> None:
        plot_curves([r for r in self.history if r["kind"] == "train"],
                    [r for r in self.history if r["kind"] == "epoch"], self.out / "curves.png",
                    title=f"{self.cfg['name']} ({self.cfg['model']})")
