"""Hub folders and `snnzoo push`/`pull` through the real huggingface_hub client, against the
local Hub test double (tests/hub_server.py) on 127.0.0.1."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import torch
from click.testing import CliRunner
from huggingface_hub import ModelCard
from hub_server import HubTestServer, point_client_at

import snnzoo
from snnzoo.cli import cli
from snnzoo.publish import hub
from snnzoo.zoo import cards, pretrained
from snnzoo.zoo.pretrained import PretrainedError

from conftest import NAME, frames, register, tiny_cfg, tiny_net, write_card_inputs

TOKEN = "hf_test_token_hub_5678_do_not_print"
EVAL = {"model": NAME, "source": "checkpoint", "dataset": "nmnist", "split": "test", "n": 40, "correct": 31,
        "accuracy": 0.775, "ci95": [0.6245, 0.8768], "classes": [str(i) for i in range(10)],
        "per_class": {str(i): (0.75 if i else None) for i in range(10)},
        "per_class_n": {str(i): (4 if i else 0) for i in range(10)},
        "firing_rates": {"layers.1": 0.1234, "layers.6": 0.05}}


@pytest.fixture
def server(tmp_path, monkeypatch):
    with HubTestServer(token=TOKEN) as srv:
        point_client_at(monkeypatch, srv.url, tmp_path / "hf", TOKEN)
        yield srv


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def front_matter(text: str) -> dict:
    return ModelCard(text).data.to_dict()


def test_hub_folder_contents(tmp_path):
    net = tiny_net(tiny_cfg())
    out = hub.build_hub_folder(net, tmp_path / "f", eval_results=EVAL, repo_id="org/tiny")
    assert sorted(os.listdir(out)) == ["README.md", "config.json", "eval.json", "model.onnx", "model.safetensors"]
    cfg = json.loads((out / "config.json").read_text())
    for key in ("name", "arch", "model", "input", "classes", "license", "citation"):
        assert cfg[key] == net.config[key]
    assert cfg["input"]["binning"]["n_time_bins"] == 2 and cfg["model"]["k"] == 0.2
    assert cfg["weights"] == {"file": "model.safetensors", "dtype": "float16",
                              "sha256": pretrained.sha256_file(out / "model.safetensors")}
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    proto = onnx.load(str(out / "model.onnx"))
    onnx.checker.check_model(proto)
    onnx_meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(onnx_meta["weights"])["sha256"] == cfg["weights"]["sha256"]

    meta = front_matter((out / "README.md").read_text())
    assert meta["library_name"] == "snnzoo" and meta["license"] == "mit"
    assert meta["pipeline_tag"] == "image-classification" and meta["metrics"] == ["accuracy"]
    assert {"snnzoo", "spiking-neural-network", "event-camera"} <= set(meta["tags"]) and meta["datasets"]
    result = meta["model-index"][0]["results"][0]
    assert result["metrics"][0]["value"] == EVAL["accuracy"] and result["dataset"]["split"] == "test"
    text = (out / "README.md").read_text()
    for needle in ("## Intended use", "## Training data", "## Training recipe and compute",
                   "## How the numbers were measured", "## Limitations", "@inproceedings{wu2019direct",
                   "T = 2", "77.50 %", "62.45 % – 87.68 %", 'create_model("hf-hub:org/tiny")', "`layers.1` 0.123"):
        assert needle in text, needle
    assert torch.equal(pretrained.load_folder(out).eval()(frames()), net(frames()))


def test_push_pull_round_trip(server, tmp_path):
    net = tiny_net(tiny_cfg())
    built = tmp_path / "built"
    url = hub.push(net, "org/tiny", eval_results=EVAL, onnx=False, folder=built)
    assert url.startswith(f"{server.url}/org/tiny/commit/")
    pulled = hub.pull("org/tiny", local_dir=tmp_path / "pulled")
    assert {k: v for k, v in files(pulled).items() if k != ".gitattributes"} == files(built)
    assert torch.equal(snnzoo.create_model("hf-hub:org/tiny").eval()(frames()), net(frames()))
    # the calls the client made, all authorised: the subset of the Hub API the double implements
    seen = {(m, p.replace("org/tiny", "R")) for m, p, auth in server.requests if auth}
    assert {("POST", "/api/repos/create"), ("POST", "/api/models/R/preupload/main"),
            ("POST", "/api/models/R/commit/main"), ("GET", "/api/models/R/revision/main")} <= seen
    assert len(seen) == len({(m, p) for m, p, _ in server.requests})
    # pushing the same folder again creates no new commit (the server reports the files' oids)
    head = server.repos["org/tiny"].branches["main"]
    hub.push(built, "org/tiny")
    assert server.repos["org/tiny"].branches["main"] == head
    # a new push to main is what "hf-hub:org/tiny" loads next (the cached copy is not reused blindly)
    net2 = tiny_net(tiny_cfg())
    with torch.no_grad():
        for p in net2.parameters():
            p.mul_(2)  # exact in fp16
    assert not torch.equal(net2(frames()), net(frames()))
    hub.push(net2, "org/tiny", onnx=False)
    assert torch.equal(snnzoo.create_model("hf-hub:org/tiny").eval()(frames()), net2(frames()))


def test_private_repo_on_a_branch(server, tmp_path, monkeypatch):
    net = tiny_net(tiny_cfg())
    hub.push(net, "org/priv", private=True, revision="v1", onnx=False)
    repo = server.repos["org/priv"]
    assert repo.private and "model.safetensors" in repo.commits[repo.branches["v1"]].files
    assert "model.safetensors" not in repo.commits[repo.branches["main"]].files
    assert torch.equal(snnzoo.create_model("hf-hub:org/priv@v1").eval()(frames()), net(frames()))
    assert hub.pull("org/priv@v1").parent.name == "snapshots"
    with pytest.raises(PretrainedError, match="org/priv/config.json: download failed"):
        snnzoo.create_model("hf-hub:org/priv")  # main holds no model
    point_client_at(monkeypatch, server.url, tmp_path / "anon", None)  # no token: the repo is invisible
    with pytest.raises(PretrainedError, match="org/priv/config.json@v1: download failed"):
        snnzoo.create_model("hf-hub:org/priv@v1")
    with pytest.raises(PretrainedError, match="no Hugging Face token"):
        hub.push(net, "org/priv", onnx=False)


def test_pull_offline_and_corrupted(server, tmp_path, monkeypatch):
    net = tiny_net(tiny_cfg())
    hub.push(net, "org/tiny", onnx=False)
    cached = hub.pull("org/tiny")
    point_client_at(monkeypatch, server.url, tmp_path / "hf", TOKEN, offline=True)
    n = len(server.requests)
    assert hub.pull("org/tiny") == cached and len(server.requests) == n
    point_client_at(monkeypatch, server.url, tmp_path / "empty", TOKEN, offline=True)
    with pytest.raises(PretrainedError, match="org/tiny: pull failed with HF_HUB_OFFLINE=1"):
        hub.pull("org/tiny")
    point_client_at(monkeypatch, server.url, tmp_path / "fresh", TOKEN)
    server.corrupt("org/tiny", "model.safetensors")
    with pytest.raises(pretrained.IntegrityError, match="model.safetensors: sha256 .* refused"):
        hub.pull("org/tiny", local_dir=tmp_path / "bad")


def test_registry_model_folder_carries_its_card(tmp_path, monkeypatch):
    """For a registry model the Hub README is byte-for-byte model_cards/<id>/README.md."""
    point_client_at(monkeypatch, None, tmp_path / "hf", offline=True)
    net = tiny_net(tiny_cfg())
    bundled = tmp_path / "bundled" / NAME / "model.safetensors"
    bundled.parent.mkdir(parents=True)
    hub._save_fp16(net, bundled)
    register(monkeypatch, tiny_cfg({"file": f"{NAME}/model.safetensors", "sha256": pretrained.sha256_file(bundled),
                                    "hf_hub_id": "org/tiny"}))
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "bundled")
    cards_dir = tmp_path / "model_cards"
    write_card_inputs(cards_dir / NAME, EVAL)
    monkeypatch.setattr(hub, "DEFAULT_CARDS_DIR", cards_dir)
    card = cards.write_card(NAME, cards_dir)
    out = hub.push(NAME, "org/tiny", onnx=False, folder=tmp_path / "f", dry_run=True)
    assert Path(out, "README.md").read_bytes() == card.read_bytes()
    assert Path(out, "model.safetensors").read_bytes() == bundled.read_bytes()
    assert {"card.json", "eval.json"} <= set(os.listdir(out))
    assert json.loads(Path(out, "config.json").read_text())["training"] == "SGD, 2 epochs"
    # the same weights given as a model or as a training checkpoint folder: the same card
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(bundled.read_bytes())
    (ckpt / "config.json").write_text(json.dumps({**net.config, "training": {"epochs": 2}}))
    for i, src in enumerate((net, ckpt)):
        other = hub.build_hub_folder(src, tmp_path / f"f{i}", onnx=False)
        assert (other / "README.md").read_bytes() == card.read_bytes()
    assert json.loads((other / "config.json").read_text())["training"] == {"epochs": 2}


def run_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snnzoo.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_push_pull_with_the_environment(server, tmp_path):
    """The user's path: HF_ENDPOINT/HF_TOKEN/HF_HOME in the environment, Xet disabled (the plain
    create_commit upload); the token is used but never printed."""
    net = tiny_net(tiny_cfg())
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    hub._save_fp16(net, ckpt / "model.safetensors")
    (ckpt / "config.json").write_text(json.dumps({**net.config, "training": {"epochs": 2}}))
    (tmp_path / "eval.json").write_text(json.dumps(EVAL))
    env = {**os.environ, "HF_ENDPOINT": server.url, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "cli"),
           "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    r = run_cli("push", str(ckpt), "--repo", "org/cli", "--revision", "v2", "--eval", str(tmp_path / "eval.json"),
                "--no-onnx", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith(f"{server.url}/org/cli/commit/")
    assert ("POST", "/api/models/org/cli/commit/v2", True) in server.requests
    r2 = run_cli("pull", "org/cli@v2", "--local-dir", str(tmp_path / "got"), env=env)
    assert r2.returncode == 0, r2.stderr
    assert Path(r2.stdout.strip()) == tmp_path / "got"
    assert files(tmp_path / "got")["model.safetensors"] == (ckpt / "model.safetensors").read_bytes()
    assert json.loads(files(tmp_path / "got")["config.json"])["training"] == {"epochs": 2}
    for out in (r, r2):
        assert TOKEN not in out.stdout + out.stderr


def test_cli_errors_are_one_line(server, tmp_path):
    run = CliRunner().invoke
    for args, message in [(["pull", "org/missing"], "org/missing: pull failed"),
                          (["pull", "not-a-repo"], "not-a-repo: expected a Hub repository ORG/NAME[@REVISION]"),
                          (["push", str(tmp_path), "--repo", "org/x"], "config.json: missing (a checkpoint folder holds"),
                          (["push", "no_such_model", "--repo", "org/x"], "neither a checkpoint folder nor a registry"),
                          (["push", "tiny_events", "--repo", "org"], "org: expected a Hub repository")]:
        r = run(cli, args)
        assert r.exit_code == 1 and r.output.startswith(f"snnzoo: error: ") and message in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1 and TOKEN not in r.output
