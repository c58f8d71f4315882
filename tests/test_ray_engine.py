"""``--engine ray`` (snnzoo.runtime.ray_engine) on a real local Ray cluster started here
(2 CPUs, no dashboard, every service on 127.0.0.1) and shut down afterwards: the rows equal the
local engine's on real N-MNIST recordings with bad files mixed in, a SIGKILLed actor loses and
duplicates nothing, a second run on the same output only computes what is missing, the CLI
connects to a running cluster. Each Ray run is bounded by an alarm."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import IN_CI, REPO
from snnzoo.cli import cli
from snnzoo.runtime import Predictor

LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # Ray's switch for 127.0.0.1-only nodes
WORKER = "MapWorker(MapBatches(PredictBatch))"  # the process title of our pool's actors


@contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging) when the block runs longer than ``seconds``."""
    def expired(signum, frame):
        raise TimeoutError(f"the Ray run took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def ray_cluster():
    """A local 2-CPU Ray cluster for this module (its GCS address), torn down afterwards."""
    try:
        import ray
    except ImportError:
        if IN_CI:
            pytest.fail("ray is not installed; CI=true requires it (pip install -e '.[ray]')", pytrace=False)
        pytest.skip("ray is not installed (pip install -e '.[ray]')")
    mp = pytest.MonkeyPatch()
    for k, v in LOOPBACK.items():
        mp.setenv(k, v)
    from ray._private import ray_constants

    mp.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)  # in case ray was imported before the env was set
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=256 << 20,
             logging_level="WARNING")  # "local": a new cluster even where `ray start` runs one
    try:
        address = ray.get_runtime_context().gcs_address
        assert address.startswith("127.0.0.1:"), address
        yield address
    finally:
        ray.shutdown()
        mp.undo()


@pytest.fixture(scope="module")
def recordings(nmnist_root) -> list[str]:
    """200 real N-MNIST recordings, every 5th of the 1,000 (all ten classes)."""
    return [str(f) for f in sorted((nmnist_root / "Train").glob("*/*.bin"))[::5]]


@pytest.fixture(scope="module")
def local_rows(recordings, bad_files, default_onnx):
    """The local engine's rows for the recordings and the bad files, by file."""
    from snnzoo.runtime.ray_engine import to_row

    files = recordings + [str(p) for p in bad_files.values()] + ["/nonexistent/recording.bin"]
    return {p.file: to_row(p) for p in Predictor(top_k=3).predict_files(files)}


def mixed(recordings: list[str], bad_files) -> list[str]:
    """The recordings with the bad files (and a missing one) spread among them."""
    files = list(recordings)
    for i, bad in enumerate([*map(str, bad_files.values()), "/nonexistent/recording.bin"]):
        files.insert(7 + 13 * i, bad)
    return files


def test_rows_equal_the_local_engine(ray_cluster, recordings, bad_files, local_rows):
    from snnzoo.runtime import ray_engine

    files = mixed(recordings[:100], bad_files)
    with deadline(120):
        rows = ray_engine.predict(files, num_workers=2, batch_size=8, top_k=3)
    assert [r["file"] for r in rows] == files  # one row per input, in input order
    assert rows == [local_rows[f] for f in files]  # labels, scores, top-k, events, errors
    errors = {r["file"]: r["error"] for r in rows if r["error"]}
    assert set(errors) == {*map(str, bad_files.values()), "/nonexistent/recording.bin"}
    assert "does not match the model's 34x34x2" in errors[str(bad_files["wrong_sensor"])]
    correct = sum(r["label"] == int(Path(r["file"]).parent.name) for r in rows if not r["error"])
    assert correct >= 90  # the bundled model (98.4 % on the 1,000) on 100 real recordings


def _our_workers() -> list:
    import psutil  # vendored by ray

    return [p for p in psutil.Process().children(recursive=True)
            if WORKER in " ".join(p.cmdline())]


def test_killed_worker_loses_and_duplicates_nothing(ray_cluster, recordings, bad_files, local_rows):
    from snnzoo.runtime.ray_engine import RayPredictor, to_row

    files = mixed(recordings, bad_files)
    engine = RayPredictor(num_workers=2, batch_size=4, top_k=3)
    rows, killed = [], None
    with deadline(150):
        for p in engine.predict_files(files):
            rows.append(to_row(p))
            if killed is None:  # the first batch is back: ~50 batches are queued on the two actors
                workers = _our_workers()
                assert len(workers) == 2, [w.cmdline() for w in workers]
                killed = workers[0].pid
                os.kill(killed, signal.SIGKILL)
                received_at_kill = len(rows)
    assert received_at_kill < len(files) / 4
    assert killed not in [w.pid for w in _our_workers()]
    assert sorted(r["file"] for r in rows) == sorted(files)  # every file exactly once
    assert all(r == local_rows[r["file"]] for r in rows)


def test_resume_skips_the_files_already_written(ray_cluster, recordings, bad_files, local_rows, tmp_path):
    import pyarrow.parquet as pq

    from snnzoo.runtime import ray_engine

    files = mixed(recordings[:60], bad_files)
    out = tmp_path / "preds"
    with deadline(120):
        first = ray_engine.predict(files[:25], output=out, num_workers=2, batch_size=8, top_k=3)
        (out / ".part-killed-run.parquet.tmp").write_bytes(b"PAR1 half a part")  # a run killed mid-write
        second = ray_engine.predict(files, output=out, num_workers=2, batch_size=8, top_k=3)
    assert [r["file"] for r in first] == files[:25]
    assert [r["file"] for r in second] == files[25:]  # only the missing ones were computed
    assert not list(out.glob("*.tmp"))
    table = pq.read_table(out)  # the folder reads back as one Parquet dataset
    assert table.schema.names == list(ray_engine.ROW_FIELDS)
    written = table.to_pylist()
    assert sorted(r["file"] for r in written) == sorted(files)
    assert all(r == local_rows[r["file"]] for r in written)

    lines = tmp_path / "preds.jsonl"
    with deadline(120):
        ray_engine.predict(files[:10], output=lines, num_workers=1, batch_size=8, top_k=3)
        with open(lines, "a") as f:
            f.write('{"file": "' + files[10])  # a torn last line (driver killed mid-write)
        second = ray_engine.predict(files[:20], output=lines, num_workers=1, batch_size=8, top_k=3)
    assert [r["file"] for r in second] == files[10:20]
    written = [json.loads(line) for line in lines.read_text().splitlines()]
    assert sorted(r["file"] for r in written) == sorted(files[:20])
    assert all(r == local_rows[r["file"]] for r in written)


def test_a_dataset_of_paths(ray_cluster, recordings, bad_files, local_rows, tmp_path):
    """A Ray Dataset with a ``path`` column (as ``read_binary_files(include_paths=True)`` names
    it), written with resume: the filter of done paths runs beside a full actor pool."""
    import ray

    from snnzoo.runtime.ray_engine import RayPredictor, to_row

    files = mixed(recordings[:30], bad_files)
    engine = RayPredictor(num_workers=2, batch_size=8, top_k=3)
    out = tmp_path / "from_dataset.jsonl"
    with deadline(120):
        list(engine.predict_files(ray.data.from_items([{"path": f} for f in files[:12]]), output=out))
        new = [to_row(p) for p in engine.predict_files(ray.data.from_items([{"path": f} for f in files]), output=out)]
    assert sorted(r["file"] for r in new) == sorted(files[12:])
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["file"] for r in written) == sorted(files)
    assert all(r == local_rows[r["file"]] for r in written)


def test_cli_on_a_running_cluster(ray_cluster, recordings, bad_files, local_rows, tmp_path):
    """What a user runs after `ray start --head`: a separate driver process joins the cluster."""
    out = tmp_path / "cli.jsonl"
    bad = str(bad_files["truncated"])
    cmd = [sys.executable, "-m", "snnzoo", "predict", "--engine", "ray", "--address", ray_cluster,
           "--num-workers", "1", "--top-k", "3", "-o", str(out), *recordings[:12], bad]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=REPO,
                       env={**os.environ, **LOOPBACK})
    assert r.returncode == 1, r.stderr
    assert f"snnzoo: error: {bad}: " in r.stderr
    assert r.stdout == f"{out}: 13 rows written, 0 files skipped (already there)\n"
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(w["file"] for w in written) == sorted([*recordings[:12], bad])
    assert all(w == local_rows[w["file"]] for w in written)


def test_without_ray_one_line_says_how_to_install(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; sys.argv = ['snnzoo', *sys.argv[1:]]\n"
            "from snnzoo.cli import main; main()")
    r = subprocess.run([sys.executable, "-c", code, "predict", "--engine", "ray", "x.bin"],
                       capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 1
    assert r.stderr == ("snnzoo: error: --engine ray needs Ray Data, which is not installed: "
                        "pip install 'snnzoo[ray]'\n")


@pytest.mark.parametrize("args", [["--output", "out"], ["--num-workers", "2"], ["--address", "auto"]])
def test_ray_options_need_the_ray_engine(args):
    r = CliRunner().invoke(cli, ["predict", *args, "x.bin"])
    assert r.exit_code == 2 and "need --engine ray" in r.output
