"""Typed configs (timm's ``PretrainedCfg`` habit): frozen dataclasses for a model's config
(:class:`ModelConfig`), its input (:class:`EventInput`, :class:`ImageInput`) and its binning
(:class:`BinningSpec`), each with ``from_dict``/``to_dict`` round-tripping the dicts of
``config.json`` and of the ONNX metadata (``binning``) exactly, and :func:`input_from_metadata`,
the one adapter from decoded ONNX metadata (:mod:`snnzoo.runtime.onnx_metadata`) to an input spec.

Configs stay dicts where they are stored and passed around (``net.config``, ``config.json``, the
registry's pretrained configs: many readers); these types are built from them and dumped back at
the boundaries that check or change them. :meth:`ModelConfig.with_time_steps` is the one place
where T is set. A bad value raises :class:`SpecError`, one line naming the key.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, ClassVar, Mapping

from ..errors import SnnzooError
from .images import ImageSpec

BINNING_METHODS = ("n_time_bins", "time_window")
BINNING_MODES = ("count", "binary")


class SpecError(SnnzooError, ValueError):
    """A config or metadata block that does not describe a valid input (one line, naming the key)."""


def _known(d: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
    if not isinstance(d, Mapping):
        raise SpecError(f"{where}: expected a mapping, got {type(d).__name__}")
    unknown = sorted(set(d) - set(keys))
    if unknown:
        raise SpecError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(keys)})")


def _need(d: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in d or d[key] is None:
        raise SpecError(f"{where}: missing {key!r}")
    return d[key]


def _positive_int(value: Any, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{where}: {key} must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True)
class BinningSpec:
    """Events → ``[T, P, H, W]`` frames (:func:`snnzoo.runtime.binning.bin_events`): ``n_time_bins``
    equal slices of the recording or slices of ``time_window`` µs; ``mode`` ``count`` or
    ``binary`` (counts clamped to 1); ``downsample`` pools ``d × d`` pixels."""

    method: str
    n_time_bins: int | None = None
    time_window: float | None = None
    mode: str = "count"
    downsample: int = 1
    polarity_channels: int | None = None

    KEYS: ClassVar[tuple[str, ...]] = ("method", "n_time_bins", "time_window", "mode", "downsample",
                                       "polarity_channels")

    def __post_init__(self) -> None:
        where = "binning"
        if self.method not in BINNING_METHODS:
            raise SpecError(f"{where}: method must be one of {', '.join(BINNING_METHODS)}, got {self.method!r}")
        if self.method == "n_time_bins":
            _positive_int(self.n_time_bins, "n_time_bins", where)
            if self.time_window is not None:
                raise SpecError(f"{where}: time_window given with method n_time_bins")
        else:
            if isinstance(self.time_window, bool) or not isinstance(self.time_window, (int, float)) \
                    or self.time_window <= 0:
                raise SpecError(f"{where}: time_window must be a positive number, got {self.time_window!r}")
            if self.n_time_bins is not None:
                raise SpecError(f"{where}: n_time_bins given with method time_window")
        if self.mode not in BINNING_MODES:
            raise SpecError(f"{where}: mode must be one of {', '.join(BINNING_MODES)}, got {self.mode!r}")
        _positive_int(self.downsample, "downsample", where)
        if self.polarity_channels is not None and self.polarity_channels not in (1, 2):
            raise SpecError(f"{where}: polarity_channels must be 1 or 2, got {self.polarity_channels!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "BinningSpec":
        """From ``config["input"]["binning"]`` / the metadata's ``binning``; ``method`` may be
        left out when exactly one of ``n_time_bins``, ``time_window`` is given."""
        _known(d, cls.KEYS, "binning")
        method = d.get("method")
        if method is None:
            method = "time_window" if d.get("time_window") is not None else "n_time_bins"
        return cls(method, d.get("n_time_bins"), d.get("time_window"), d.get("mode", "count"),
                   d.get("downsample", 1), d.get("polarity_channels"))

    def to_dict(self) -> dict[str, Any]:
        """The dict form: every field, those that are None left out."""
        return {k: getattr(self, k) for k in self.KEYS if getattr(self, k) is not None}

    def with_time_steps(self, steps: int) -> "BinningSpec":
        """``n_time_bins = steps`` for ``n_time_bins`` binning; a time-window spec is unchanged."""
        return replace(self, n_time_bins=steps) if self.method == "n_time_bins" else self


@dataclass(frozen=True)
class EventInput:
    """An event-stream model's input: ``sensor_size = (W, H, P)`` before downsampling, binned
    with ``binning`` into ``time_steps`` frames of ``layout`` ``[B, T, P, H, W]``."""

    sensor_size: tuple[int, int, int]
    time_steps: int
    binning: BinningSpec
    layout: str = "[B, T, P, H, W]"

    kind: ClassVar[str] = "events"
    KEYS: ClassVar[tuple[str, ...]] = ("kind", "sensor_size", "time_steps", "layout", "binning")

    def __post_init__(self) -> None:
        if len(self.sensor_size) != 3 or not all(isinstance(v, int) and v >= 1 for v in self.sensor_size):
            raise SpecError(f"input: sensor_size must be [W, H, P] positive integers, got {list(self.sensor_size)}")
        _positive_int(self.time_steps, "time_steps", "input")

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """One sample's frames ``(T, P, H, W)``."""
        (w, h, p), ds = self.sensor_size, self.binning.downsample
        return self.time_steps, p, h // ds, w // ds

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EventInput":
        _known(d, cls.KEYS, "input")
        sensor = _need(d, "sensor_size", "input")
        return cls(tuple(sensor), _need(d, "time_steps", "input"),
                   BinningSpec.from_dict(_need(d, "binning", "input")), d.get("layout", "[B, T, P, H, W]"))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "sensor_size": list(self.sensor_size), "time_steps": self.time_steps,
                "layout": self.layout, "binning": self.binning.to_dict()}

    def with_time_steps(self, steps: int) -> "EventInput":
        return replace(self, time_steps=steps, binning=self.binning.with_time_steps(steps))


@dataclass(frozen=True)
class ImageInput:
    """An image model's input: ``shape = (C, H, W)``, ``x = (pixel · scale − mean) / std`` per
    channel, presented at each of ``time_steps`` steps (the encoding layer)."""

    shape: tuple[int, int, int]
    time_steps: int
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    layout: str = "[B, C, H, W]"

    kind: ClassVar[str] = "image"
    KEYS: ClassVar[tuple[str, ...]] = ("kind", "shape", "time_steps", "layout", "scale", "mean", "std")

    def __post_init__(self) -> None:
        _positive_int(self.time_steps, "time_steps", "input")
        try:
            self.image
        except ValueError as e:
            raise SpecError(f"input: {e}") from None

    @property
    def image(self) -> ImageSpec:
        """The normalisation of :mod:`snnzoo.runtime.images`."""
        return ImageSpec(self.shape, self.scale, self.mean, self.std)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ImageInput":
        _known(d, cls.KEYS, "input")
        return cls(tuple(_need(d, "shape", "input")), _need(d, "time_steps", "input"),
                   _need(d, "scale", "input"), tuple(_need(d, "mean", "input")),
                   tuple(_need(d, "std", "input")), d.get("layout", "[B, C, H, W]"))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "shape": list(self.shape), "time_steps": self.time_steps,
                "layout": self.layout, "scale": self.scale, "mean": list(self.mean), "std": list(self.std)}

    def with_time_steps(self, steps: int) -> "ImageInput":
        return replace(self, time_steps=steps)


InputSpec = EventInput | ImageInput
_KINDS = {"events": EventInput, "image": ImageInput}


def input_from_dict(d: Mapping[str, Any]) -> InputSpec:
    """``config["input"]`` → :class:`EventInput` or :class:`ImageInput`, by its ``kind``."""
    kind = d.get("kind") if isinstance(d, Mapping) else None
    if kind not in _KINDS:
        raise SpecError(f"input: kind must be one of {', '.join(_KINDS)}, got {kind!r}")
    return _KINDS[kind].from_dict(d)


def input_from_metadata(meta: Mapping[str, Any]) -> InputSpec:
    """THE adapter from decoded ONNX metadata (``snnzoo.export.metadata``) to the input spec of
    the unrolled graph: ``input_kind``, ``time_steps``, ``input_layout`` and ``sensor_size`` +
    ``binning`` (events) or ``input_shape`` + ``normalization`` (image)."""
    kind = _need(meta, "input_kind", "ONNX metadata")
    if kind == "events":
        d = {"kind": kind, "sensor_size": _need(meta, "sensor_size", "ONNX metadata"),
             "binning": _need(meta, "binning", "ONNX metadata")}
    elif kind == "image":
        norm = _need(meta, "normalization", "ONNX metadata")
        if not isinstance(norm, Mapping):
            raise SpecError(f"ONNX metadata: normalization must be a mapping, got {norm!r}")
        d = {"kind": kind, "shape": _need(meta, "input_shape", "ONNX metadata"), **norm}
    else:
        raise SpecError(f"ONNX metadata: input_kind must be one of {', '.join(_KINDS)}, got {kind!r}")
    d["time_steps"] = _need(meta, "time_steps", "ONNX metadata")
    if meta.get("input_layout"):
        d["layout"] = meta["input_layout"]
    return input_from_dict(d)


def _frozen(d: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(copy.deepcopy(dict(d)))


@dataclass(frozen=True)
class ModelConfig:
    """A model's config (``net.config``, ``config.json``): ``SpikingNet(arch, **model)`` fed
    ``input`` and labelled ``classes``. The records a checkpoint's ``config.json`` adds (``training``,
    ``data``, ``metrics``, ``converted_from``, ``source``…) are kept as they are in ``extra``.
    ``name``, ``dataset``, ``license`` and ``citation`` are left out of the dict when None;
    ``weights`` (the bundled file and its sha256, or None) is always written."""

    arch: str
    model: Mapping[str, Any]
    input: InputSpec
    classes: tuple[str, ...]
    name: str | None = None
    dataset: str | None = None
    weights: Mapping[str, Any] | None = None
    license: str | None = None
    citation: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    KEYS: ClassVar[tuple[str, ...]] = ("arch", "dataset", "model", "input", "classes", "weights",
                                       "license", "citation", "name")

    def __post_init__(self) -> None:
        if not isinstance(self.arch, str) or not self.arch:
            raise SpecError(f"config: arch must be a layer notation string, got {self.arch!r}")
        if not isinstance(self.model, Mapping):
            raise SpecError(f"config: model must be a mapping of constructor arguments, got {self.model!r}")
        if not self.classes or not all(isinstance(c, str) for c in self.classes):
            raise SpecError(f"config: classes must be a non-empty list of strings, got {list(self.classes)!r}")
        clash = sorted(set(self.extra) & set(self.KEYS))
        if clash:
            raise SpecError(f"config: extra holds the field {clash[0]!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelConfig":
        """From a config dict; keys beyond :attr:`KEYS` go to ``extra`` (deep copies throughout)."""
        if not isinstance(d, Mapping):
            raise SpecError(f"config: expected a mapping, got {type(d).__name__}")
        weights = d.get("weights")
        return cls(_need(d, "arch", "config"), _frozen(_need(d, "model", "config")),
                   input_from_dict(_need(d, "input", "config")), tuple(_need(d, "classes", "config")),
                   d.get("name"), d.get("dataset"), None if weights is None else _frozen(weights),
                   d.get("license"), d.get("citation"),
                   _frozen({k: v for k, v in d.items() if k not in cls.KEYS}))

    def to_dict(self) -> dict[str, Any]:
        """The config dict (fresh, mutable copies), keys in ``config.json``'s order."""
        out: dict[str, Any] = {"arch": self.arch, "dataset": self.dataset, "model": copy.deepcopy(dict(self.model)),
                               "input": self.input.to_dict(), "classes": list(self.classes),
                               "weights": None if self.weights is None else copy.deepcopy(dict(self.weights)),
                               "license": self.license, "citation": self.citation, "name": self.name}
        out = {k: v for k, v in out.items() if v is not None or k == "weights"}
        out.update(copy.deepcopy(dict(self.extra)))
        return out

    @property
    def time_steps(self) -> int:
        return self.input.time_steps

    def with_time_steps(self, steps: int) -> "ModelConfig":
        """The one place T is set: ``model.time_steps``, ``input.time_steps`` and, for
        ``n_time_bins`` binning, ``binning.n_time_bins``."""
        _positive_int(steps, "time_steps", "config")
        return replace(self, model=MappingProxyType({**self.model, "time_steps": steps}),
                       input=self.input.with_time_steps(steps))
