"""Write model_cards/wu2019_nmnist/card.json for the current snapshot of the long CPU run.

The paper-topology run outlives sessions; each session that publishes a new snapshot
(`snnzoo snapshot`, then the card's commands) reruns this script, then `snnzoo card wu2019_nmnist`,
so that the samples seen, epoch, CPU-hours (from the logged throughput in the runs' metrics.jsonl)
and the accuracy come from the records. Run from the repository root after recording the eval JSON.

The run has two phases. Phase 1 (`wu2019_nmnist_emulated`, steps 1–450: 2 threads for steps 1–30,
then one pinned core) left digit 2's voting group silent; `examples/voting_currents.py --revive`
re-initialised that group from the live ones (found on the run's emulated validation streams) and
phase 2 (`wu2019_nmnist_emulated_p2`, one pinned core) goes on from there with `--init`.
"""
import json
from pathlib import Path

runs = Path.home() / ".cache/snnzoo/runs"
P1_STEPS = 450  # phase 1's last step: the snapshot that was revived
snap = json.loads((runs / "wu2019_nmnist_snapshot/config.json").read_text())
ev = json.loads(Path("model_cards/wu2019_nmnist/eval_real_nmnist.json").read_text())
sn = snap["snapshot"]


def walls(run: str, last_step: int, threads: list[int]) -> list[float]:
    """Training wall seconds per segment (a segment ends at a resume) up to ``last_step``, from the
    logged throughput (samples in each interval / samples_per_s), batch 100."""
    recs = [json.loads(line) for line in (runs / run / "metrics.jsonl").read_text().splitlines()]
    prev, seg, out = 0, 0, [0.0] * len(threads)
    for r in recs:
        if r["kind"] == "resume":
            seg, prev = min(seg + 1, len(threads) - 1), r["step"]
        elif r["kind"] == "train" and r["step"] <= last_step:
            out[seg] += (r["step"] - prev) * 100 / r["samples_per_s"]
            prev = r["step"]
    return out


w1 = walls("wu2019_nmnist_emulated", P1_STEPS, [2, 1])
w2 = walls("wu2019_nmnist_emulated_p2", sn["step"], [1])
cpu_h = (2 * w1[0] + w1[1] + w2[0]) / 3600
p1_samples, p2_samples = P1_STEPS * 100, sn["samples_seen"]
samples = p1_samples + p2_samples
n_train = snap["data"]["n_train"]
epochs = samples / n_train
last = sn["last_train_record"]
acc = ev["accuracy"] * 100
two = ev["per_class"]["2"] * 100
facts = {
 "model": "wu2019_nmnist",
 "summary": (f"The paper's N-MNIST topology (128C3-128C3-AP2-128C3-256C3-AP2-1024FC-Voting, NeuNorm, T = 10, the "
             f"paper's recipe: MSE on voted rates, Adam 1e-3, batch 100) trained on this 2-core CPU in bf16 on "
             f"emulated N-MNIST streams only, for as long as the sessions so far allowed: a **snapshot after "
             f"{samples:,} training samples ({epochs:.2f} epochs' worth, about {cpu_h:.1f} CPU-hours)**, in two phases "
             "with a revival of digit 2's silent voting group between them (see the limitations). It scores **{acc:.2f} %** on the 1,000 real N-MNIST recordings, none of "
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
                   f"{n_train:,}: phase 1 saw the first {p1_samples:,} of a seeded shuffled order (seed 0), phase 2 the first "
                   f"{p2_samples:,} of a second order (seed 1), so some streams were seen twice and others not yet. "
                   "Not seen in any form: the 1,000 real N-MNIST recordings (the evaluation below) and their MNIST "
                   "images 0–999; all MNIST test images. 200 of the real recordings (MNIST 0–199) calibrated the "
                   "emulator's ~20 constants, never the network's weights."),
 "datasets": ["mnist", "nmnist"],
 "recipe": {
   "config": "configs/nmnist_paper.toml (the authors' public STBP code: MSE between voted rates and the one-hot label, Adam lr 1e-3, batch 100, lr ×0.1 every 40 epochs, no augmentation); epochs set to 2 for this CPU run",
   "model": "wu2019_nmnist defaults: NeuNorm on (k2 = 0.9), LIF k = 0.2, V_th = 0.5, rect surrogate, 10 voting neurons per class, T = 10 binary frames",
   "precision": "bf16 autocast on CPU (LIF membrane state in fp32), torch.compile on CPU from step 30 on",
   "phase_1": {"run": "wu2019_nmnist_emulated", "steps": P1_STEPS, "samples": p1_samples, "order_seed": 0},
   "revival": json.loads((Path(snap["data"]["init"]) / "config.json").read_text())["revived"],
   "phase_2": {"run": "wu2019_nmnist_emulated_p2", "order_seed": 1,
               **{k: sn[k] for k in ("step", "epoch", "samples_seen", "mid_epoch")}},
   "train_batch_accuracy_at_snapshot": round(last["acc"], 4),
   "train_loss_at_snapshot": round(last["loss"], 5),
 },
 "compute": (f"CPU only, no GPU: phase 1 steps 1–30 on 2 threads without compilation ({w1[0] / 60:.0f} min of "
             f"training), then one pinned core with torch.compile at ~3.9 samples/s ({w1[1] / 3600:.2f} h); phase 2 on "
             f"one pinned core ({w2[0] / 3600:.2f} h). About {cpu_h:.1f} "
             f"CPU-hours in all, from the logged throughput in `metrics.jsonl`. One epoch of {n_train:,} samples is "
             "about 3.8 h of one core at this speed."),
 "commands": {
   "phase 1 (resumable; its first session ran without --compile and with 2 threads)": "python examples/train_nmnist_emulated.py train --mnist-root ../shared/data/mnist --out ~/.cache/snnzoo/runs/wu2019_nmnist_emulated --cache ~/.cache/snnzoo/emulated_nmnist_cache --config nmnist_paper --epochs 2 --compile --resume --set train.amp=bf16 --set train.ckpt_every=50 --set train.log_every=10 --set train.threads=1",
   "phase 1's last snapshot (step 450)": "snnzoo snapshot ~/.cache/snnzoo/runs/wu2019_nmnist_emulated ~/.cache/snnzoo/runs/wu2019_nmnist_step450",
   "find and revive the silent voting group (on the run's emulated validation streams)": "python examples/voting_currents.py ~/.cache/snnzoo/runs/wu2019_nmnist_step450 --emulated-val ~/.cache/snnzoo/runs/wu2019_nmnist_emulated --mnist-root ../shared/data/mnist --cache ~/.cache/snnzoo/emulated_nmnist_cache --every 20 --revive ~/.cache/snnzoo/runs/wu2019_nmnist_step450_revived",
   "phase 2 (resumable)": "python examples/train_nmnist_emulated.py train --mnist-root ../shared/data/mnist --out ~/.cache/snnzoo/runs/wu2019_nmnist_emulated_p2 --cache ~/.cache/snnzoo/emulated_nmnist_cache --config nmnist_paper --epochs 1 --compile --init ~/.cache/snnzoo/runs/wu2019_nmnist_step450_revived --resume --set train.amp=bf16 --set train.ckpt_every=25 --set train.log_every=5 --set train.threads=1 --set train.seed=1",
   "snapshot of the running phase": "snnzoo snapshot ~/.cache/snnzoo/runs/wu2019_nmnist_emulated_p2 ~/.cache/snnzoo/runs/wu2019_nmnist_snapshot",
   "install for create_model (no network)": "mkdir -p ~/.cache/snnzoo/weights/wu2019_nmnist && cp ~/.cache/snnzoo/runs/wu2019_nmnist_snapshot/model.safetensors ~/.cache/snnzoo/weights/wu2019_nmnist/",
   "Hub folder (config.json keeps the run's training, data and snapshot records)": "snnzoo push ~/.cache/snnzoo/runs/wu2019_nmnist_snapshot --repo snnzoo/wu2019_nmnist --card-dir model_cards/wu2019_nmnist --dry-run --folder ~/.cache/snnzoo/hub/wu2019_nmnist",
   "files kept in the repo": "cp ~/.cache/snnzoo/hub/wu2019_nmnist/config.json model_cards/wu2019_nmnist/ && (cd ~/.cache/snnzoo/hub/wu2019_nmnist && sha256sum *) > model_cards/wu2019_nmnist/SHA256SUMS",
 },
 "checkpoint_selection": ("The run's latest step checkpoint when the snapshot was taken (no selection on any split; "
                          "the run's own rule is the last epoch, which it has not reached)."),
 "limitations": [
   (f"**Digit 2's voting group was silent after phase 1 and was revived.** At step 450 its ten voting neurons "
    "never fired: on the run's emulated validation streams their largest input current was −1.07 against V_th = 0.5 "
    "(mean −4.24; the other nine groups reach 2.8–4.1), so the rectangular surrogate gave them no gradient and the "
    "group could not recover. `examples/voting_currents.py --revive` "
    "set each of its neurons' synapses to the mean of the live groups' and raised their biases so that the group's "
    "largest current sits at V_th, the centre of the surrogate's window; phase 2 trains on from there. "
    f"At this snapshot the model scores {two:.1f} % on the real 2s (0 % at steps 250 and 450); the confusion matrix "
    "below shows where the rest go. The group was found and repaired on emulated training-run data; the real "
    "recordings had shown the silent digit in the step-250 card, so this repair is a recipe change made after a "
    "real-recording score had been seen."),
   f"Far from converged: {epochs:.2f} epochs' worth of samples against the paper's 100 epochs; {acc:.2f} % on the real recordings against the paper's 99.53 % (a different test set: the paper's is the official N-MNIST test split, not available offline).",
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
print(w1, w2, cpu_h)
