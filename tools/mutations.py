"""Mutation check: does the test suite catch what it claims to?

Each mutation below is a small, meaningful bug (a dropped term, a swapped channel, a skipped check)
written as an exact ``old → new`` text edit of one source file (or one flipped bit of a shipped
binary). For each, one at a time: the file is mutated in place, the named tests run, and the file
is restored from the in-memory original in a ``finally`` (on Ctrl-C and SIGTERM too). A mutation
is *killed* when at least one named test fails; every mutation must be killed. An ``old`` text that
no longer occurs exactly once is reported *stale* (the code moved on: update the list), which also
fails the check. After each restore the file's bytes and its ``git status`` entry must equal what
they were before, so the script never leaves a mutated file behind.

    nice -n 10 python tools/mutations.py            # baseline (all named tests pass), then every mutation
    python tools/mutations.py --list                # the mutations
    python tools/mutations.py --only lif-temporal-grad --only ddp-wrap-removed --no-baseline

Not collected by pytest and not part of CI's default run (it runs the named tests ~20 times).
Exit status 0 only when the baseline passes and every mutation is killed.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to the repository root
    old: str  # exact text, must occur once (binary: "" and ``flip`` set)
    new: str
    tests: tuple[str, ...]  # pytest node ids (or files) expected to catch it
    why: str
    flip: int | None = None  # binary file: XOR this mask into the middle byte


T = "tests/"
MUTATIONS: list[Mutation] = [
    Mutation("lif-temporal-grad", "zoo/lif.py",
             "du = (g_o[t] - k * u_all[t] * du_next) * h_all[t] + k * (1 - o_all[t]) * du_next",
             "du = g_o[t] * h_all[t]",
             (T + "test_models.py::test_gradient_reaches_first_layer_through_time", T + "test_neurons.py"),
             "STBP backward without the temporal term (only the spatial path)"),
    Mutation("lif-reset-grad", "zoo/lif.py",
             "+ k * (1 - o_all[t]) * du_next", "+ k * du_next",
             (T + "test_neurons.py",), "backward ignores the reset gate (1 - o[t])"),
    Mutation("lif-no-reset", "zoo/lif.py",
             "return k * u * (1 - o) + i_t", "return k * u + i_t",
             (T + "test_neurons.py",), "membrane not reset after a spike"),
    Mutation("neunorm-no-decay", "zoo/neunorm.py",
             "a = self.k2 * a + self.v * o_t.mean(dim=1, keepdim=True)",
             "a = self.v * o_t.mean(dim=1, keepdim=True)",
             (T + "test_neunorm.py",), "one-step NeuNorm forgets a[t-1]"),
    Mutation("neunorm-sign", "zoo/neunorm.py",
             "return spikes - self.scale * self.auxiliary(spikes)",
             "return spikes + self.scale * self.auxiliary(spikes)",
             (T + "test_neunorm.py",), "NeuNorm adds instead of subtracting"),
    Mutation("init-pool-m2", "zoo/init.py",
             "m2 = m2 / p2 + m2 * m2 * (1 - 1 / p2)", "m2 = m2",
             (T + "test_init_rates.py",), "init ignores how pooling shrinks the second moment"),
    Mutation("binning-polarity-swap", "runtime/binning.py",
             "spatial += p.astype(np.int32) * (h * w)", "spatial += (1 - p.astype(np.int32)) * (h * w)",
             (T + "test_binning.py",), "ON/OFF channels swapped"),
    Mutation("binning-binary-cap", "runtime/binning.py",
             "np.minimum(out, 1.0, out=out)", "np.minimum(out, 2.0, out=out)",
             (T + "test_binning.py",), "binary frames keep counts of 2"),
    Mutation("reader-nmnist-polarity", "runtime/readers.py",
             "yield make_events(raw[:, 0], raw[:, 1], t, raw[:, 2] >> 7), offsets",
             "yield make_events(raw[:, 0], raw[:, 1], t, 1 - (raw[:, 2] >> 7)), offsets",
             (T + "test_predictor.py::test_samples_are_the_n_mnist_recordings", T + "test_events_io.py"),
             "N-MNIST .bin polarity bit inverted"),
    Mutation("reader-nmnist-time", "runtime/readers.py",
             "t = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]",
             "t = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 7) | raw[:, 4]",
             (T + "test_predictor.py::test_samples_are_the_n_mnist_recordings", T + "test_events_io.py"),
             "N-MNIST .bin timestamp bytes mis-shifted"),
    Mutation("export-stale-bins", "export/onnx.py",
             'binning["n_time_bins"] = time_steps', "pass",
             (T + "test_export.py::test_export_at_another_T_describes_that_T",),
             "export at a new T keeps the old binning in the metadata"),
    Mutation("eval-onnx-time-reversed", "zoo/training/evaluate.py",
             "return self.session.run(None, {self.input_name: inp})[0]",
             "return self.session.run(None, {self.input_name: inp[:, ::-1].copy()})[0]",
             (T + "test_eval.py::test_eval_text_and_onnx",
              T + "test_eval.py::test_onnx_runner_agrees_with_torch_sample_by_sample"),
             "snnzoo eval feeds the ONNX model its frames in reversed time order"),
    Mutation("predictor-rank-ascending", "runtime/predictor.py",
             'np.argsort(-scores, kind="stable")', 'np.argsort(scores, kind="stable")',
             (T + "test_predictor.py::test_files_in_order_with_errors_and_cross_file_batches",),
             "top-k ranks the lowest scores first"),
    Mutation("predictor-batch-error-escapes", "runtime/predictor.py",
             "except Exception as e:  # a backend failure fails this batch's files, never the run",
             "except ZeroDivisionError as e:",
             (T + "test_predictor.py::test_a_backend_failure_mid_run_is_each_file_error_not_a_traceback",
              T + "test_predict_cli.py::test_a_backend_failure_mid_batch_is_exit_1_with_one_line_per_file"),
             "a backend exception mid-batch escapes as a traceback"),
    Mutation("runtime-bundled-unverified", "runtime/models.py",
             "    if expected is None:\n        return sha256_file(folder / WEIGHTS_FILE)",
             "    if True:\n        return sha256_file(folder / WEIGHTS_FILE)",
             (T + "test_bundled.py::test_a_flipped_bit_is_refused_by_every_loader",),
             "snnzoo predict's ONNX path uses checkpoint weights without their recorded sha256"),
    Mutation("pretrained-folder-unverified", "zoo/pretrained.py",
             "    if sha:\n        verify_sha256(weights, sha,", "    if False:\n        verify_sha256(weights, sha,",
             (T + "test_bundled.py::test_a_flipped_bit_is_refused_by_every_loader", T + "test_pretrained.py"),
             "checkpoint/Hub folders loaded without their recorded sha256"),
    Mutation("pretrained-registry-unverified", "zoo/pretrained.py",
             'verify_sha256(bundled, expected, f"{name} in the registry")', "sha256_file(bundled)",
             (T + "test_pretrained.py",), "create_model(pretrained=True) skips the registry sha256"),
    Mutation("weights-bit-flip", "zoo/weights/nmnist_compact/model.safetensors", "", "",
             (T + "test_bundled.py::test_shipped_weights_are_the_recorded_file",
              T + "test_predict_cli.py::test_bundled_default_offline_then_without_torch"),
             "one flipped bit in the shipped weights", flip=0x04),
    Mutation("cli-usage-block", "cli.py",
             "raise LineUsageError(e.format_message(), e.ctx) from None", "raise",
             (T + "test_predict_cli.py::test_usage_errors_exit_2",), "usage errors print click's four-line block"),
    Mutation("ddp-wrap-removed", "zoo/training/trainer.py",
             "        if self.dist.enabled:\n            fwd = nn.parallel.DistributedDataParallel(",
             "        if False:\n            fwd = nn.parallel.DistributedDataParallel(",
             (T + "test_ddp.py",), "no DistributedDataParallel: ranks never all-reduce gradients"),
    Mutation("trainer-stays-in-eval", "zoo/training/trainer.py",
             "        model.train()\n        return loss_sum / len(val), correct / len(val)",
             "        return loss_sum / len(val), correct / len(val)",
             (T + "test_train.py::test_tiny_run_learns_on_real_nmnist",),
             "after validation the model stays in eval mode"),
]


class Interrupted(Exception):
    pass


def _on_term(signum, frame):  # SIGTERM → an exception, so the finally blocks restore the file
    raise Interrupted(f"signal {signum}")


def git_status(path: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--", str(path.relative_to(REPO))], cwd=REPO,
                          capture_output=True, text=True).stdout


def run_tests(tests: tuple[str, ...], timeout: float) -> tuple[str, list[str], float, str]:
    """(outcome, failing test ids, seconds, output); outcome: passed | failed | timeout."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", *tests]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return "timeout", [], time.perf_counter() - t0, out
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    failing = [m.group(2) for m in re.finditer(r"^(FAILED|ERROR) (\S+)", out, re.M)]
    outcome = "passed" if proc.returncode == 0 else ("failed" if failing or proc.returncode == 1 else
                                                      f"error (pytest exit {proc.returncode})")
    return outcome, failing, time.perf_counter() - t0, out


def first_error(output: str) -> str:
    """The first ``E   ...`` line pytest printed (what the first failing test reported)."""
    line = next((ln[1:].strip() for ln in output.splitlines() if ln.startswith("E ")), "")
    return (line[:90] + "...") if len(line) > 90 else line


def apply(m: Mutation, original: bytes) -> bytes:
    if m.flip is not None:
        data = bytearray(original)
        data[len(data) // 2] ^= m.flip
        return bytes(data)
    return original.decode().replace(m.old, m.new, 1).encode()


def restore(path: Path, original: bytes, mutated: bytes, m: Mutation) -> None:
    """Put the original back; if someone else edited the file meanwhile, undo only our edit."""
    current = path.read_bytes()
    if current == mutated or m.flip is not None:
        path.write_bytes(original)
    elif m.new.encode() in current:
        path.write_bytes(current.decode().replace(m.new, m.old, 1).encode())


def check(m: Mutation, timeout: float) -> dict:
    path = REPO / m.file
    original = path.read_bytes()
    if m.flip is None and original.decode().count(m.old) != 1:
        return {"outcome": "stale", "failing": [], "seconds": 0.0, "clean": True, "tail": ""}
    status_before = git_status(path)
    mutated = apply(m, original)
    try:
        path.write_bytes(mutated)
        outcome, failing, seconds, tail = run_tests(m.tests, timeout)
    finally:
        restore(path, original, mutated, m)
    clean = git_status(path) == status_before and (path.read_bytes() == original or m.flip is None
                                                     and m.new.encode() not in path.read_bytes())
    return {"outcome": outcome, "failing": failing, "seconds": seconds, "clean": clean, "tail": tail}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="print the mutations and exit")
    ap.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these (repeatable)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of the named tests")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per test run (default 900)")
    args = ap.parse_args()
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    if args.only and len(chosen) != len(set(args.only)):
        ap.error(f"unknown mutation in {args.only}; see --list")
    if args.list:
        for m in chosen:
            print(f"{m.name:32s} {m.file:45s} {m.why}")
        return 0
    signal.signal(signal.SIGTERM, _on_term)
    ok = True
    if not args.no_baseline:
        tests = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        outcome, failing, seconds, tail = run_tests(tests, args.timeout * 3)
        print(f"baseline (no mutation, {len(tests)} test targets): {outcome} in {seconds:.0f} s", flush=True)
        if outcome != "passed":
            print(tail[-3000:])
            return 1
    rows = []
    for m in chosen:
        r = check(m, args.timeout)
        killed = r["outcome"] == "failed" and bool(r["failing"])
        ok &= killed and r["clean"]
        shown = ", ".join(f.removeprefix("tests/") for f in r["failing"][:4]) + \
            (f" (+{len(r['failing']) - 4})" if len(r["failing"]) > 4 else "")
        rows.append((m.name, m.file, "killed" if killed else r["outcome"].upper(), f"{r['seconds']:.0f}",
                     "yes" if r["clean"] else "NO", shown or "-",
                     first_error(r["tail"]).replace("|", "/") or "-"))
        print(f"{m.name}: {rows[-1][2]} ({rows[-1][3]} s; restored: {rows[-1][4]}) {shown}", flush=True)
        if not killed and r["outcome"] not in ("stale",):
            print(r["tail"][-2000:])
    print("\n| mutation | file | result | s | restored | failing tests | first failure |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    survivors = [r[0] for r in rows if r[2] != "killed"]
    print(f"\n{len(rows) - len(survivors)} of {len(rows)} mutations killed" +
          (f"; NOT killed: {', '.join(survivors)}" if survivors else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
