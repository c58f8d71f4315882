"""Write model_cards/wu2019_nmnist/card.json for the current snapshot of the long CPU run.

The paper-topology run outlives sessions; each session that publishes a new snapshot
(`snnzoo snapshot`, then the card's commands) reruns this script, then `snnzoo card wu2019_nmnist`,
so that the samples seen, epoch, CPU-hours (from the logged throughput in metrics.jsonl: 2 threads
for the first segment, 1 pinned core after the resume) and the accuracy come from the records.
Run from the repository root after recording the eval JSON. The prose findings (the silent
digit-2 voting group of the step-250 snapshot) are this snapshot's: check and edit them for the next.
"""
import json
from pathlib import Path

run = Path.home() / ".cache/snnzoo/runs/wu2019_nmnist_emulated"
snap = json.loads((Path.home() / ".cache/snnzoo/runs/wu2019_nmnist_snapshot/config.json").read_text())
ev = json.loads(Path("model_cards/wu2019_nmnist/eval_real_nmnist.json").read_text())
recs = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
sn = snap["snapshot"]
# training wall time per segment, from the logged throughput (samples in each interval / samples_per_s)
prev_step, seg, walls, threads = 0, 0, [0.0, 0.0], [2, 1]
for r in recs:
    if r["kind"] == "resume":
        seg, prev_step = 1, r["step"]
    elif r["kind"] == "train" and r["step"] <= sn["step"]:
        walls[seg] += (r["step"] - prev_step) * 100 / r["samples_per_s"]
        prev_step = r["step"]
cpu_h = sum(w * t for w, t in zip(walls, threads)) / 3600
last = sn["last_train_record"]
acc = ev["accuracy"] * 100
n_train = snap["data"]["n_train"]
facts = {
 "model": "wu2019_nmnist",
 "summary": (f"The paper's N-MNIST topology (128C3-128C3-AP2-128C3-256C3-AP2-1024FC-Voting, NeuNorm, T = 10, the "
             f"paper's recipe: MSE on voted rates, Adam 1e-3, batch 100) trained on this 2-core CPU in bf16 on "
             f"emulated N-MNIST streams only, for as long as the sessions so far allowed: a **snapshot after "
             f"{sn['samples_seen']:,} training samples ({sn['epoch']:.2f} of the {sn['epochs_planned']} planned epochs, "
             f"about {cpu_h:.1f} CPU-hours)**. It scores **{acc:.2f} %** on the 1,000 real N-MNIST recordings, none of "
             "which it saw; the paper reports 99.53 % after 100 full epochs on the real training set. The run "
             "continues (`--resume`) in later sessions, and this card will be regenerated from the next snapshot. "
             "Not shipped in the package (35 MB fp16): a Hub folder built by `snnzoo push --dry-run --folder`."),
 "intended_use": ("A reference checkpoint of the paper's N-MNIST network, for comparing training recipes, "
                  "exporting the full time loop (ONNX, NIR) of a 17 M-parameter SNN, and benchmarking runtimes. "
                  "At this stage of training it is less accurate than the bundled `nmnist_compact`; for "
                  "classification use `nmnist_compact` or `nmnist_compact_real`."),
 "training_data": ("Emulated streams only, the protocol of `nmnist_compact`: MNIST **train** images 1000–59999, "
                   "each converted once into an event stream by `snnzoo.zoo.emulator.emulate` (seed 0, default "
                   f"`EmulatorParams`, recorded in `config.json` under `data.emulator_params`); a seeded (seed 0), "
                   f"class-stratified 10 % ({snap['data']['n_val']:,}) held out for validation; training on the other "
                   f"{n_train:,}, in a seeded shuffled order, of which the first {sn['samples_seen']:,} were seen by this snapshot. "
                   "Not seen in any form: the 1,000 real N-MNIST recordings (the evaluation below) and their MNIST "
                   "images 0–999; all MNIST test images. 200 of the real recordings (MNIST 0–199) calibrated the "
                   "emulator's ~20 constants, never the network's weights."),
 "datasets": ["mnist", "nmnist"],
 "recipe": {
   "config": "configs/nmnist_paper.toml (the authors' public STBP code: MSE between voted rates and the one-hot label, Adam lr 1e-3, batch 100, lr ×0.1 every 40 epochs, no augmentation); epochs set to 2 for this CPU run",
   "model": "wu2019_nmnist defaults: NeuNorm on (k2 = 0.9), LIF k = 0.2, V_th = 0.5, rect surrogate, 10 voting neurons per class, T = 10 binary frames",
   "precision": "bf16 autocast on CPU (LIF membrane state in fp32), torch.compile on CPU from step 30 on",
   "snapshot": {k: sn[k] for k in ("step", "epoch", "epochs_planned", "samples_seen", "mid_epoch")},
   "train_batch_accuracy_at_snapshot": round(last["acc"], 4),
   "train_loss_at_snapshot": round(last["loss"], 5),
 },
 "compute": (f"CPU only, no GPU: steps 1–30 on 2 threads without compilation ({walls[0] / 60:.0f} min of training), "
             f"then one pinned core with torch.compile at ~3.9 samples/s ({walls[1] / 3600:.2f} h). About {cpu_h:.1f} "
             f"CPU-hours in all, from the logged throughput in `metrics.jsonl`. One epoch of {n_train:,} samples is "
             "about 3.8 h of one core at this speed."),
 "commands": {
   "train (resumable; first session without --compile and with 2 threads)": "python examples/train_nmnist_emulated.py train --mnist-root ../shared/data/mnist --out ~/.cache/snnzoo/runs/wu2019_nmnist_emulated --cache ~/.cache/snnzoo/emulated_nmnist_cache --config nmnist_paper --epochs 2 --compile --resume --set train.amp=bf16 --set train.ckpt_every=50 --set train.log_every=10 --set train.threads=1",
   "snapshot of the running run": "snnzoo snapshot ~/.cache/snnzoo/runs/wu2019_nmnist_emulated ~/.cache/snnzoo/runs/wu2019_nmnist_snapshot",
   "install for create_model (no network)": "mkdir -p ~/.cache/snnzoo/weights/wu2019_nmnist && cp ~/.cache/snnzoo/runs/wu2019_nmnist_snapshot/model.safetensors ~/.cache/snnzoo/weights/wu2019_nmnist/",
   "Hub folder (config.json keeps the run's training, data and snapshot records)": "snnzoo push ~/.cache/snnzoo/runs/wu2019_nmnist_snapshot --repo snnzoo/wu2019_nmnist --card-dir model_cards/wu2019_nmnist --dry-run --folder ~/.cache/snnzoo/hub/wu2019_nmnist",
   "files kept in the repo": "cp ~/.cache/snnzoo/hub/wu2019_nmnist/config.json model_cards/wu2019_nmnist/ && (cd ~/.cache/snnzoo/hub/wu2019_nmnist && sha256sum *) > model_cards/wu2019_nmnist/SHA256SUMS",
 },
 "checkpoint_selection": ("The run's latest step checkpoint when the snapshot was taken (no selection on any split; "
                          "the run's own rule is the last epoch, which it has not reached)."),
 "limitations": [
   "**Digit 2 is never predicted** (0 of 99 real 2s; 85 go to 8): its ten voting neurons are silent. On every 10th real recording, their largest input current over all steps is 0.008 against V_th = 0.5 (mean −4.56; the other nine groups reach 1.9–3.1; `python examples/voting_currents.py wu2019_nmnist --data-root ../shared/data/nmnist --every 10`). With the rectangular surrogate, a neuron that stays this far below threshold gets almost no gradient, so the group may not recover as training goes on. The next session checks this at the next snapshot; the remedy, if it is still silent, is a restart with a surrogate whose gradient does not vanish (sigmoid) or a readout that cannot die.",
   f"Far from converged: {sn['epoch']:.2f} of an epoch against the paper's 100 epochs; {acc:.2f} % on the real recordings against the paper's 99.53 % (a different test set: the paper's is the official N-MNIST test split, not available offline).",
   "Trained on emulated streams only; the emulated-to-real gap of the compact net was about 1.1 points (see `nmnist_compact`).",
   "35 MB in fp16, so it is not in the package: `create_model(\"wu2019_nmnist\", pretrained=True)` reads `~/.cache/snnzoo/weights/wu2019_nmnist/model.safetensors` (or `$SNNZOO_CACHE/weights/...`), else the Hugging Face cache or Hub `snnzoo/wu2019_nmnist`, and says where to put the file when none has it. The Hub repository has not been uploaded from this offline machine.",
   "Inference is slow on CPU: 24.4 samples/s on the ONNX path at batch 32 on 2 cores, against 559 for `nmnist_compact` (benchmarks/RESULTS.md, NeuNorm off there).",
 ],
 "evaluations": [{
   "file": "eval_real_nmnist.json",
   "command": "snnzoo eval wu2019_nmnist --dataset nmnist --data-root ../shared/data/nmnist --split train --format json --no-progress --plot model_cards/wu2019_nmnist/confusion_real.png > model_cards/wu2019_nmnist/eval_real_nmnist.json",
   "name": "N-MNIST real recordings (Train 00001–01000 = MNIST train 0–999)",
   "dataset_type": "nmnist",
   "split": "train[0:1000] (real recordings, unseen in training)",
   "notes": "All 1,000 real recordings available offline; none was trained on. 200 of them (MNIST 0–199) calibrated the emulator.",
   "confusion_png": "confusion_real.png",
 }],
 "tags": ["mnist", "emulated-events", "paper-topology", "work-in-progress"],
}
Path("model_cards/wu2019_nmnist/card.json").write_text(json.dumps(facts, indent=1, ensure_ascii=False) + "\n")
print(walls, cpu_h)
