"""`ModelInfo`: what the runtime needs to know about a model, read from its config or its ONNX metadata."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .errors import ModelError
from .images import ImageSpec
from .specs import InputSpec, SpecError, input_from_dict, input_from_metadata


@dataclass(frozen=True)
class ModelInfo:
    """What the runtime needs to know about a model: its classes and its input — events
    (``sensor_size``, ``binning``) or, for image models, ``image`` (both others None)."""

    name: str
    classes: list[str]
    sensor_size: tuple[int, int, int] | None
    binning: dict[str, Any] | None
    time_steps: int
    image: ImageSpec | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's input: ``(T, P, H, W)`` binned events or ``(C, H, W)`` image."""
        if self.image is not None:
            return self.image.shape
        ds = self.binning.get("downsample", 1)
        return (self.time_steps, self.sensor_size[2], self.sensor_size[1] // ds, self.sensor_size[0] // ds)

    @classmethod
    def from_config(cls, cfg: dict[str, Any], name: str | None = None) -> "ModelInfo":
        """From a zoo config (``net.config`` / ``config.json``)."""
        inp = cfg["input"]
        name = cfg.get("name") or name or "model"
        if inp.get("kind") not in ("events", "image"):
            raise ModelError(f"{name} takes {inp.get('kind')} input; predict runs event-stream and image models")
        return cls._from_input(name, cfg["classes"], _checked(input_from_dict, inp, name))

    @classmethod
    def _from_input(cls, name: str, classes: list[str], spec: InputSpec) -> "ModelInfo":
        if spec.kind == "image":
            return cls(name, list(classes), None, None, spec.time_steps, spec.image)
        return cls(name, list(classes), spec.sensor_size, spec.binning.to_dict(), spec.time_steps)

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], name: str) -> "ModelInfo":
        """From an exported ONNX file's decoded metadata (:mod:`snnzoo.runtime.onnx_metadata`)."""
        if "classes" not in meta or "input_kind" not in meta:
            raise ModelError(f"{name}: the ONNX file has no snnzoo metadata (classes, input spec); "
                             "export it with `snnzoo export`")
        if meta.get("streaming"):
            raise ModelError(f"{name}: a streaming (one-step) graph; predict needs the unrolled export")
        if meta["input_kind"] == "image" and (not meta.get("normalization")
                                               or len(meta.get("input_shape") or ()) != 3):
            raise ModelError(f"{name}: an image model without input_shape [C, H, W] and "
                             "normalization in its metadata; export it with `snnzoo export`")
        if meta["input_kind"] not in ("events", "image"):
            raise ModelError(f"{name} takes {meta['input_kind']} input; predict runs event-stream and image models")
        return cls._from_input(meta.get("model_id", name), meta["classes"],
                               _checked(input_from_metadata, meta, name))


def _checked(adapt: Callable[[dict[str, Any]], InputSpec], d: dict[str, Any], name: str) -> InputSpec:
    """``adapt(d)``, a :class:`SpecError` re-raised as the ``ModelError`` ``"NAME: reason"``."""
    try:
        return adapt(d)
    except SpecError as e:
        raise ModelError(f"{name}: {e}") from None
