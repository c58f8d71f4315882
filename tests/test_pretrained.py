"""create_model(..., pretrained=True): bundled -> HF cache -> Hub, sha256-checked, offline-aware.

Hub traffic goes to the local test double (tests/hub_server.py) through the real
huggingface_hub client."""
from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch
from hub_server import HubTestServer, point_client_at

import snnzoo
from snnzoo.zoo import models, pretrained
from snnzoo.publish.hub import push
from snnzoo.zoo.pretrained import IntegrityError, PretrainedError

from conftest import NAME, frames, register, tiny_cfg, tiny_net

TOKEN = "hf_test_token_pretrained_1234"
REPO = "org/tiny"


@pytest.fixture
def published(tmp_path, monkeypatch):
    """A tiny model pushed to the Hub double as REPO, registered with its sha256 and hf_hub_id
    (no bundled file); yields (server, net, weights entry)."""
    with HubTestServer(token=TOKEN) as server:
        point_client_at(monkeypatch, server.url, tmp_path / "hf", TOKEN)
        monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "bundled")
        net = tiny_net(tiny_cfg())
        folder = tmp_path / "built"
        push(net, REPO, onnx=False, folder=folder)
        sha = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
        weights = {"file": f"{NAME}/model.safetensors", "sha256": sha, "hf_hub_id": REPO, "revision": None}
        register(monkeypatch, tiny_cfg(weights))
        yield server, net, weights


def test_hub_download_then_cache(published):
    server, net, _ = published
    model = snnzoo.create_model(NAME, pretrained=True).eval()
    assert torch.equal(model(frames()), net(frames()))
    assert all(v.dtype == torch.float32 for v in model.state_dict().values())
    gets = [r for r in server.requests if r[0] == "GET" and r[1].endswith("/model.safetensors")]
    assert len(gets) == 1
    n = len(server.requests)
    snnzoo.create_model(NAME, pretrained=True)  # second time: from the HF cache, no request at all
    assert len(server.requests) == n


def test_corrupted_download_is_refused_then_healed(published):
    server, net, weights = published
    server.corrupt(REPO, "model.safetensors")
    with pytest.raises(IntegrityError, match=f"sha256 .* does not match {weights['sha256']}.*refused"):
        snnzoo.create_model(NAME, pretrained=True)
    with pytest.raises(IntegrityError, match="refused"):
        snnzoo.create_model(f"hf-hub:{REPO}")  # checked against the sha256 in the folder's config.json
    # the bad copy sits in the cache; once the server is fixed, a fresh download replaces it
    server.corrupt(REPO, "model.safetensors", enabled=False)
    n = len(server.requests)
    assert torch.equal(snnzoo.create_model(f"hf-hub:{REPO}").eval()(frames()), net(frames()))
    assert any(m == "GET" and p.endswith("/model.safetensors") for m, p, _ in server.requests[n:])  # re-fetched
    model = snnzoo.create_model(NAME, pretrained=True).eval()
    assert torch.equal(model(frames()), net(frames()))


def test_offline_from_cache_and_from_empty_cache(published, tmp_path, monkeypatch):
    server, net, _ = published
    snnzoo.create_model(NAME, pretrained=True)
    snnzoo.create_model(f"hf-hub:{REPO}")
    server.stop()  # nothing may be fetched from here on
    point_client_at(monkeypatch, server.url, tmp_path / "hf", TOKEN, offline=True)
    model = snnzoo.create_model(NAME, pretrained=True).eval()
    assert torch.equal(model(frames()), net(frames()))
    assert torch.equal(snnzoo.create_model(f"hf-hub:{REPO}").eval()(frames()), net(frames()))

    point_client_at(monkeypatch, server.url, tmp_path / "empty", TOKEN, offline=True)
    with pytest.raises(PretrainedError) as e:
        snnzoo.create_model(NAME, pretrained=True)
    msg = str(e.value)
    assert f"{REPO}/model.safetensors" in msg and "HF_HUB_OFFLINE=1" in msg and f"snnzoo pull {REPO}" in msg
    assert "\n" not in msg
    with pytest.raises(PretrainedError, match=f"{REPO}/config.json: not in the Hugging Face cache"):
        snnzoo.create_model(f"hf-hub:{REPO}")


def test_user_folder_comes_before_the_hub_and_is_named_when_empty(published, tmp_path, monkeypatch):
    """A Hub folder copied to <user cache>/weights/<id>/ is used offline, verified, and the
    error for an empty cache says where to put it."""
    server, net, weights = published
    monkeypatch.setenv("SNNZOO_CACHE", str(tmp_path / "user"))
    point_client_at(monkeypatch, server.url, tmp_path / "empty", TOKEN, offline=True)
    put = tmp_path / "user" / "weights" / weights["file"]
    with pytest.raises(PretrainedError) as e:
        snnzoo.create_model(NAME, pretrained=True)
    assert str(e.value).endswith(f"at {put}") and f"snnzoo pull {REPO}" in str(e.value)
    put.parent.mkdir(parents=True)
    shutil.copy(tmp_path / "built" / "model.safetensors", put)
    n = len(server.requests)
    assert torch.equal(snnzoo.create_model(NAME, pretrained=True).eval()(frames()), net(frames()))
    assert len(server.requests) == n
    data = bytearray(put.read_bytes())
    data[-1] ^= 1
    put.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=f"{put}: sha256"):
        snnzoo.create_model(NAME, pretrained=True)


def test_offline_env_set_after_import_is_honoured(published, monkeypatch):
    """HF_HUB_OFFLINE=1 exported after huggingface_hub was imported still keeps us off the network."""
    server, _, _ = published
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = len(server.requests)
    with pytest.raises(PretrainedError, match="HF_HUB_OFFLINE=1"):
        snnzoo.create_model(NAME, pretrained=True)
    assert len(server.requests) == n


def test_bundled_weights_come_first_and_are_verified(tmp_path, monkeypatch):
    point_client_at(monkeypatch, None, tmp_path / "hf", offline=True)  # any network use would fail
    net = tiny_net(tiny_cfg())
    bundled = tmp_path / "bundled" / NAME / "model.safetensors"
    bundled.parent.mkdir(parents=True)
    from safetensors.torch import save_file

    save_file({k: v.half() for k, v in net.state_dict().items()}, str(bundled))
    sha = hashlib.sha256(bundled.read_bytes()).hexdigest()
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "bundled")
    register(monkeypatch, tiny_cfg({"file": f"{NAME}/model.safetensors", "sha256": sha,
                                    "hf_hub_id": "org/unreachable"}))
    model = snnzoo.create_model(NAME, pretrained=True, time_steps=3).eval()  # overrides still apply
    assert model.time_steps == 3 and model.config["input"]["time_steps"] == 3
    ref = models._build(NAME, tiny_cfg(), {"time_steps": 3})
    ref.load_state_dict(net.state_dict())
    x = torch.cat([frames(), frames()[:, :1]], 1)
    assert torch.equal(model(x), ref.eval()(x))

    data = bytearray(bundled.read_bytes())
    data[-1] ^= 1
    bundled.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=f"{bundled}: sha256"):
        snnzoo.create_model(NAME, pretrained=True)


def test_errors_name_the_file_and_the_problem(tmp_path, monkeypatch):
    point_client_at(monkeypatch, None, tmp_path / "hf", offline=True)
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "bundled")
    register(monkeypatch, tiny_cfg(None))
    with pytest.raises(PretrainedError, match=f"{NAME}: no published weights"):
        snnzoo.create_model(NAME, pretrained=True)
    monkeypatch.setenv("SNNZOO_CACHE", str(tmp_path / "user"))
    register(monkeypatch, tiny_cfg({"file": f"{NAME}/model.safetensors", "sha256": "0" * 64}))
    put = tmp_path / "user" / "weights" / NAME / "model.safetensors"
    with pytest.raises(PretrainedError, match=f"{NAME}: weights not found; put its model.safetensors .* at {put}$"):
        snnzoo.create_model(NAME, pretrained=True)
    for bad in ("hf-hub:noslash", "hf-hub:a/b/c", "hf-hub:/x"):
        with pytest.raises(PretrainedError, match="expected a Hub repository ORG/NAME"):
            snnzoo.create_model(bad)


def test_load_folder_checks_shapes_and_its_own_hash(tmp_path):
    net = tiny_net(tiny_cfg())
    folder = tmp_path / "ckpt"
    folder.mkdir()
    from safetensors.torch import save_file

    save_file({k: v.half() for k, v in net.state_dict().items()}, str(folder / "model.safetensors"))
    cfg = dict(net.config)
    # a training checkpoint may carry the registry entry of an earlier published file: not its own hash
    cfg["weights"] = {"file": f"{NAME}/model.safetensors", "sha256": "0" * 64}
    (folder / "config.json").write_text(json.dumps(cfg))
    assert torch.equal(pretrained.load_folder(folder).eval()(frames()), net(frames()))
    # a Hub folder's entry describes model.safetensors itself: checked
    cfg["weights"] = {"file": "model.safetensors", "sha256": "0" * 64}
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(IntegrityError, match="model.safetensors: sha256"):
        pretrained.load_folder(folder)
    # weights of another architecture: refused with the file named
    cfg["weights"], cfg["arch"] = None, "8C3-AP2-16FC-Voting"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(PretrainedError, match="model.safetensors: weights do not fit .*size mismatch"):
        pretrained.load_folder(folder)
    (folder / "config.json").write_text("{}")
    with pytest.raises(PretrainedError, match="config.json: not an snnzoo config"):
        pretrained.load_folder(folder)
    shutil.rmtree(folder)


def test_models_command_says_where_the_weights_are(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from snnzoo.cli import cli

    monkeypatch.setenv("SNNZOO_CACHE", str(tmp_path / "user"))
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path / "bundled")
    weights = {"file": f"{NAME}/model.safetensors", "sha256": "0" * 64, "hf_hub_id": "org/tiny"}
    register(monkeypatch, tiny_cfg(weights))

    def row() -> dict:
        res = CliRunner().invoke(cli, ["models", "--pretrained", "--format", "json"])
        assert res.exit_code == 0, res.output
        return next(r for r in map(json.loads, res.output.splitlines()) if r["model"] == NAME)

    assert row()["weights"] == "hub:org/tiny"
    for where, label in ((tmp_path / "user" / "weights", "user folder"), (tmp_path / "bundled", "bundled")):
        (where / NAME).mkdir(parents=True)
        (where / NAME / "model.safetensors").write_bytes(b"x")
        assert row()["weights"] == label


def test_wu2019_nmnist_lives_outside_the_package_and_says_where_to_put_it(tmp_path, monkeypatch):
    """The paper topology's 35 MB weights are a Hub folder, not bundled: the registry pins their
    sha256 and Hub id, and with neither the user folder nor the HF cache holding them, the error
    names both ways to get them."""
    point_client_at(monkeypatch, None, tmp_path / "hf", offline=True)
    monkeypatch.setenv("SNNZOO_CACHE", str(tmp_path / "user"))
    from snnzoo.zoo.entrypoints import get_pretrained_cfg

    w = get_pretrained_cfg("wu2019_nmnist")["weights"]
    assert w["hf_hub_id"] == "snnzoo/wu2019_nmnist" and len(w["sha256"]) == 64
    assert not (pretrained.WEIGHTS_DIR / w["file"]).exists()
    sums = (pretrained.WEIGHTS_DIR.parents[1] / "model_cards" / "wu2019_nmnist" / "SHA256SUMS").read_text()
    assert f"{w['sha256']}  model.safetensors" in sums.splitlines()
    with pytest.raises(PretrainedError) as e:
        snnzoo.create_model("wu2019_nmnist", pretrained=True)
    msg = str(e.value)
    assert "snnzoo pull snnzoo/wu2019_nmnist" in msg
    assert msg.endswith(f"at {tmp_path / 'user' / 'weights' / 'wu2019_nmnist' / 'model.safetensors'}")
