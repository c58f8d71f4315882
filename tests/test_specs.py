"""Typed configs (runtime/specs.py): exact dict round trips over every registered model and every
shipped config.json, one-line errors naming the bad key, the one metadata adapter giving what its
call sites built by hand before (on the shipped nmnist_compact ONNX file), and T set in one place."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from snnzoo.errors import SnnzooError
from snnzoo.runtime.binning import bin_events, bin_from_spec
from snnzoo.runtime.model_info import ModelInfo
from snnzoo.runtime.onnx_metadata import read_metadata
from snnzoo.runtime.specs import (BinningSpec, EventInput, ImageInput, ModelConfig, SpecError, input_from_dict,
                                  input_from_metadata)
from snnzoo.runtime.transforms import ToFrame
from snnzoo.zoo.entrypoints import get_pretrained_cfg, list_models
from snnzoo.zoo.training.evaluate import onnx_config

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "zoo" / "weights").glob("*/config.json"))
ONNX = ROOT / "zoo" / "weights" / "nmnist_compact" / "model.onnx"


def _configs() -> list[tuple[str, dict]]:
    import snnzoo.zoo.models  # noqa: F401  (registers the models)

    return ([(n, get_pretrained_cfg(n)) for n in list_models()]
            + [(str(p.relative_to(ROOT)), json.loads(p.read_text())) for p in SHIPPED])


def test_every_config_input_round_trips():
    configs = _configs()
    assert len(configs) >= 7 + 3 and {c["input"]["kind"] for _, c in configs} == {"events", "image"}
    for name, cfg in configs:
        spec = input_from_dict(cfg["input"])
        assert spec.to_dict() == cfg["input"], name
        assert input_from_dict(spec.to_dict()) == spec, name
        if spec.kind == "events":
            assert BinningSpec.from_dict(cfg["input"]["binning"]).to_dict() == cfg["input"]["binning"], name
            assert spec.shape == (spec.time_steps, *cfg["model"]["in_shape"]), name
        else:
            assert list(spec.shape) == cfg["model"]["in_shape"], name


def test_time_window_binning_round_trips_and_keeps_its_window():
    d = {"method": "time_window", "time_window": 1000.0, "mode": "count", "downsample": 2}
    spec = BinningSpec.from_dict(d)
    assert spec.to_dict() == d and spec.with_time_steps(5) == spec
    assert BinningSpec.from_dict({"n_time_bins": 4}).to_dict() == {
        "method": "n_time_bins", "n_time_bins": 4, "mode": "count", "downsample": 1}


@pytest.mark.parametrize("d,key", [
    ({"method": "n_time_bins", "n_time_bins": 4, "bins": 3}, "'bins'"),
    ({"method": "slices", "n_time_bins": 4}, "method"),
    ({"method": "n_time_bins", "n_time_bins": 0}, "n_time_bins"),
    ({"method": "n_time_bins"}, "n_time_bins"),
    ({"method": "time_window", "time_window": -1.0}, "time_window"),
    ({"method": "n_time_bins", "n_time_bins": 4, "mode": "sum"}, "mode"),
    ({"method": "n_time_bins", "n_time_bins": 4, "downsample": 1.5}, "downsample"),
    ({"method": "n_time_bins", "n_time_bins": 4, "polarity_channels": 3}, "polarity_channels"),
])
def test_bad_binning_names_the_key(d, key):
    with pytest.raises(SpecError, match=key) as e:
        BinningSpec.from_dict(d)
    assert isinstance(e.value, SnnzooError) and isinstance(e.value, ValueError)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("change,key", [
    ({"kind": "audio"}, "kind"),
    ({"sensor_size": [34, 34]}, "sensor_size"),
    ({"time_steps": 0}, "time_steps"),
    ({"binning": None}, "binning"),
    ({"extra": 1}, "'extra'"),
])
def test_bad_event_input_names_the_key(change, key):
    d = {**get_pretrained_cfg("nmnist_compact")["input"], **change}
    with pytest.raises(SpecError, match=key):
        input_from_dict(d)


def test_bad_image_input_names_the_key():
    d = get_pretrained_cfg("cifar10_qcfs")["input"]
    with pytest.raises(SpecError, match="'std'"):
        input_from_dict({k: v for k, v in d.items() if k != "std"})
    with pytest.raises(SpecError, match="one mean and std per channel"):
        input_from_dict({**d, "mean": [0.5]})


def test_adapter_on_the_shipped_onnx_equals_the_old_call_sites():
    meta = read_metadata(ONNX)
    cfg = json.loads((ONNX.parent / "config.json").read_text())
    spec = input_from_metadata(meta)
    assert isinstance(spec, EventInput) and spec.to_dict() == cfg["input"]
    # ModelInfo.from_metadata built these fields from the raw keys
    info = ModelInfo.from_metadata(meta, "x")
    assert (info.sensor_size, info.binning, info.time_steps, info.image) == (
        tuple(int(v) for v in meta["sensor_size"]), dict(meta["binning"]), int(meta["time_steps"]), None)
    assert info == ModelInfo.from_config(cfg)
    # evaluate.onnx_config built {kind, sensor_size, binning}; it now carries T and the layout too
    inp = onnx_config(meta, ONNX)["input"]
    assert {k: inp[k] for k in ("kind", "sensor_size", "binning")} == {
        "kind": meta["input_kind"], "sensor_size": meta["sensor_size"], "binning": meta["binning"]}
    assert inp == cfg["input"]


def test_adapter_for_image_metadata_and_its_errors():
    d = get_pretrained_cfg("cifar10_qcfs")["input"]
    meta = {"input_kind": "image", "input_shape": d["shape"], "time_steps": 8, "input_layout": d["layout"],
            "normalization": {"scale": d["scale"], "mean": d["mean"], "std": d["std"]}}
    spec = input_from_metadata(meta)
    assert isinstance(spec, ImageInput) and spec.to_dict() == d
    assert spec.image == ModelInfo.from_metadata({**meta, "classes": ["a"]}, "x").image
    inp = onnx_config({**meta, "classes": ["a"]}, Path("m.onnx"))["input"]
    assert {k: inp[k] for k in ("kind", "scale", "mean", "std")} == {"kind": "image", **meta["normalization"]}
    with pytest.raises(SpecError, match="'normalization'"):
        input_from_metadata({**meta, "normalization": None})
    with pytest.raises(SpecError, match="'time_steps'"):
        input_from_metadata({k: v for k, v in meta.items() if k != "time_steps"})
    with pytest.raises(ValueError, match="m.onnx: ONNX metadata: missing 'input_shape'"):
        onnx_config({k: v for k, v in meta.items() if k != "input_shape"} | {"classes": ["a"]}, Path("m.onnx"))


def test_binning_helpers_take_the_spec_or_its_dict():
    rng = np.random.default_rng(0)
    n = 500
    ev = np.zeros(n, [("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i2")])
    ev["x"], ev["y"] = rng.integers(0, 34, n), rng.integers(0, 34, n)
    ev["t"], ev["p"] = np.sort(rng.integers(0, 300_000, n)), rng.integers(0, 2, n)
    d = get_pretrained_cfg("nmnist_compact")["input"]["binning"]
    spec = BinningSpec.from_dict(d)
    want = bin_events(ev, (34, 34, 2), n_time_bins=8, mode="binary")
    np.testing.assert_array_equal(bin_from_spec(ev, (34, 34, 2), spec), want)
    np.testing.assert_array_equal(bin_from_spec(ev, (34, 34, 2), d), want)
    assert ToFrame.from_spec((34, 34, 2), spec) == ToFrame.from_spec((34, 34, 2), d)


def test_every_model_config_round_trips_in_order():
    for name, cfg in _configs():
        config = ModelConfig.from_dict(cfg)
        assert config.to_dict() == cfg and list(config.to_dict()) == list(cfg), name
        assert ModelConfig.from_dict(config.to_dict()) == config, name
        assert config.time_steps == cfg["model"]["time_steps"] == cfg["input"]["time_steps"], name
    for path in SHIPPED:  # every bundled folder's config.json: named after its folder, training records kept
        shipped = ModelConfig.from_dict(json.loads(path.read_text()))
        assert shipped.name == path.parent.name and {"training", "data"} <= set(shipped.extra), path
        assert "metrics" in shipped.extra or "converted_from" in shipped.extra, path


def test_model_config_is_frozen_and_copies():
    cfg = get_pretrained_cfg("nmnist_compact")
    config = ModelConfig.from_dict(cfg)
    with pytest.raises(AttributeError):
        config.arch = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.model["k"] = 1.0  # type: ignore[index]
    out = config.to_dict()
    out["model"]["k"] = out["input"]["binning"]["n_time_bins"] = 99
    assert cfg["model"]["k"] == 0.2 and config.to_dict() == cfg


@pytest.mark.parametrize("name", ["nmnist_compact", "wu2019_dvscifar10", "cifar10_qcfs"])
def test_with_time_steps_sets_every_t(name):
    cfg = get_pretrained_cfg(name)
    out = ModelConfig.from_dict(cfg).with_time_steps(3).to_dict()
    want = copy.deepcopy(cfg)  # the three places T lives, and nothing else
    want["model"]["time_steps"] = want["input"]["time_steps"] = 3
    if cfg["input"]["kind"] == "events":
        want["input"]["binning"]["n_time_bins"] = 3
    assert out == want
    with pytest.raises(SpecError, match="time_steps"):
        ModelConfig.from_dict(cfg).with_time_steps(0)


def test_built_and_exported_configs_keep_t_in_sync():
    from snnzoo.export.onnx import prepare
    from snnzoo.zoo.registry import create_model

    net = create_model("nmnist_compact", time_steps=5)
    assert net.time_steps == 5 and net.config["name"] == "nmnist_compact"
    assert net.config == {**ModelConfig.from_dict(get_pretrained_cfg("nmnist_compact")).with_time_steps(5).to_dict(),
                          "name": "nmnist_compact"}
    again = prepare(net, 2).config
    assert again["model"]["time_steps"] == again["input"]["time_steps"] == again["input"]["binning"]["n_time_bins"] == 2
    assert net.config["input"]["binning"]["n_time_bins"] == 5


@pytest.mark.parametrize("drop,key", [("arch", "'arch'"), ("input", "'input'"), ("classes", "'classes'")])
def test_bad_model_config_names_the_key(drop, key):
    cfg = {k: v for k, v in get_pretrained_cfg("nmnist_compact").items() if k != drop}
    with pytest.raises(SpecError, match=key):
        ModelConfig.from_dict(cfg)


def test_metadata_round_trip_for_every_config():
    """config["input"] → the metadata ``snnzoo export`` writes → :func:`input_from_metadata` gives it back."""
    from snnzoo.export.metadata import build_metadata
    from snnzoo.runtime.onnx_metadata import decode_metadata

    for name, cfg in _configs():
        spec = input_from_dict(cfg["input"])
        raw = build_metadata(cfg, input_name="frames" if spec.kind == "events" else "image",
                             input_shape=list(spec.shape), weights_sha256="0" * 64, weights=None, exporter="test")
        assert input_from_metadata(decode_metadata(raw)) == spec, name
