"""CLI cold start: wall time of ``snnzoo predict`` on one real recording vs a bare interpreter.

Each command runs as a fresh process (hyperfine when it is on PATH, else repeated subprocess
timing). The model is an exported ``.onnx`` file (``snnzoo export``; random seeded weights
unless the registry has published ones), so the timings are the ONNX Runtime path a user gets
after the first run; ``predict (bundled default)`` is added when the bundled checkpoint exists,
timed with a warm export cache. The script also checks that the ONNX path never imports torch.

    python benchmarks/bench_cold_start.py
    python benchmarks/bench_cold_start.py --quick
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine_header, markdown_table  # noqa: E402

SAMPLE = REPO / "runtime" / "samples" / "nmnist_00001_label5.npy"


def snnzoo_cmd() -> list[str]:
    """The installed console script beside this interpreter (not a pyenv/asdf shim, which adds
    its own start-up), else ``python -m snnzoo``."""
    exe = Path(sys.executable).parent / "snnzoo"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "snnzoo"]


def run_ok(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def time_subprocess(cmd: list[str], runs: int, warmup: int, env: dict[str, str]) -> dict[str, float]:
    for _ in range(warmup):
        subprocess.run(cmd, capture_output=True, env=env, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env=env, check=True)
        times.append(time.perf_counter() - start)
    return {"mean": statistics.mean(times), "stddev": statistics.stdev(times) if runs > 1 else 0.0,
            "min": min(times)}


def time_hyperfine(cmd: list[str], runs: int, warmup: int, env: dict[str, str]) -> dict[str, float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run(["hyperfine", "--style", "none", "-N", "--runs", str(runs), "--warmup", str(warmup),
                        "--export-json", out.name, subprocess.list2cmdline(cmd)],
                       capture_output=True, env=env, check=True)
        res = json.loads(Path(out.name).read_text())["results"][0]
    return {"mean": res["mean"], "stddev": res["stddev"] or 0.0, "min": res["min"]}


def imports_torch(args: list[str], env: dict[str, str]) -> bool:
    """Whether ``python -m snnzoo ARGS`` imports torch (``-X importtime`` lists every import)."""
    proc = run_ok([sys.executable, "-X", "importtime", "-m", "snnzoo", *args], env)
    if proc.returncode != 0:
        raise RuntimeError(f"snnzoo {' '.join(args)} failed: {proc.stderr.strip().splitlines()[-1]}")
    return any(line.split("|")[-1].strip() == "torch" for line in proc.stderr.splitlines())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--model", default="nmnist_compact", help="registry model to export")
    p.add_argument("--file", type=Path, default=SAMPLE, help="event file to predict")
    p.add_argument("--no-hyperfine", action="store_true", help="time with subprocess even if hyperfine exists")
    p.add_argument("--quick", action="store_true", help="short run: a check, not a measurement")
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.warmup = 3, 1
    use_hf = shutil.which("hyperfine") is not None and not args.no_hyperfine
    timer = time_hyperfine if use_hf else time_subprocess
    cli = snnzoo_cmd()

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, SNNZOO_CACHE=str(Path(tmp) / "cache"))
        onnx = Path(tmp) / f"{args.model}.onnx"
        export = run_ok(cli + ["export", args.model, "-o", str(onnx)], env)
        weights = "published weights"
        if export.returncode != 0:  # no published weights yet: random seeded ones
            export = run_ok(cli + ["export", args.model, "--no-pretrained", "-o", str(onnx)], env)
            weights = "random weights (no published checkpoint)"
        if export.returncode != 0:
            sys.exit(f"bench_cold_start: error: snnzoo export failed: {export.stderr.strip()}")

        predict = ["predict", str(args.file), "--model", str(onnx), "--device", "cpu"]
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import torch'": [sys.executable, "-c", "import torch"],
            "snnzoo --version": cli + ["--version"],
            f"snnzoo predict FILE --model {args.model}.onnx": cli + predict,
        }
        notes = [f"- model: `{args.model}` exported with `snnzoo export` ({weights}); file: "
                 f"`{os.path.relpath(args.file, REPO)}`",
                 f"- `snnzoo predict` on the ONNX path imports torch: "
                 f"{'yes' if imports_torch(predict, env) else 'no'}"]
        bundled = run_ok(cli + ["predict", str(args.file), "--device", "cpu"], env)  # fills the export cache
        if bundled.returncode == 0:
            commands["snnzoo predict FILE (bundled default, warm cache)"] = cli + ["predict", str(args.file),
                                                                                   "--device", "cpu"]
        else:
            notes.append(f"- `snnzoo predict FILE` with the bundled default model: not measured — "
                         f"{bundled.stderr.strip().splitlines()[-1]}")

        rows = []
        base = None
        for label, cmd in commands.items():
            r = timer(cmd, args.runs, args.warmup, env)
            base = base or r["mean"]
            rows.append([f"`{label}`", f"{r['mean'] * 1e3:.0f} ± {r['stddev'] * 1e3:.0f}",
                         f"{r['min'] * 1e3:.0f}", f"{r['mean'] / base:.1f}×"])
            print(f"  {label}: {r['mean'] * 1e3:.0f} ms", file=sys.stderr)

    print(machine_header("CLI cold start (ms per process, lower is better)"))
    print(markdown_table(["command", "mean ± sd", "min", "vs python -c pass"], rows))
    print()
    print(f"- timer: {'hyperfine -N' if use_hf else 'subprocess'}, {args.runs} runs after {args.warmup} warm-up")
    print("\n".join(notes))


if __name__ == "__main__":
    main()
