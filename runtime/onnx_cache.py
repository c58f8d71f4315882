"""The ONNX file of a resolved model: as given, shipped beside the bundled weights, or exported
once into the user cache.

A bundled folder (``zoo/weights/<id>``) may ship its ``model.onnx``, made by
``snnzoo export <id> -o zoo/weights/<id>/model.onnx``; it is used only while it is the export of
those very weights (:func:`shipped_onnx`), so ``pip install snnzoo`` runs the default model
without torch. Otherwise a checkpoint is exported to ONNX once and kept under
``<cache>/onnx/<folder name>-<sha256(weights, config)[:16]>-<snnzoo version>.onnx``; later runs
load that file. Exporting needs torch, the zoo and the exporter: :mod:`snnzoo.runtime.torch_backend`
is the door to them, opened only here (:func:`torch_door`) and for ``--backend torch``.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from .._version import __version__
from .errors import ModelError
from .models import (CONFIG_FILE, ONNX_FILE, ModelRef, cache_dir, checkpoint_config, recorded_sha256,
                     sha256_file, verify_checkpoint)
from .onnx_metadata import read_metadata


def cached_onnx_path(ref: ModelRef, weights_sha256: str | None = None) -> Path:
    """Cache location of a checkpoint's export: keyed by the weights' and config's sha256 and the
    snnzoo version, so new weights or a new exporter never reuse a stale file. The weights are
    verified first (:func:`verify_checkpoint`) unless their verified ``weights_sha256`` is given."""
    assert ref.checkpoint is not None
    sha = weights_sha256 or verify_checkpoint(ref.checkpoint)
    key = hashlib.sha256((sha + sha256_file(ref.checkpoint / CONFIG_FILE)).encode()).hexdigest()
    return cache_dir() / "onnx" / f"{_slug(ref.checkpoint.name)}-{key[:16]}-{__version__}.onnx"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def shipped_onnx(ref: ModelRef, weights_sha256: str) -> Path | None:
    """The ``model.onnx`` shipped in a registry model's bundled folder, when it is the export of
    the weights there: its metadata's ``weights.sha256`` equals the sha256 that the folder's
    ``config.json`` records from the registry (``tests/test_bundled.py`` holds the two equal), and
    ``weights_sha256``, the verified hash of the ``model.safetensors`` on disk, equals it too.
    ``None`` otherwise (no such file, other weights, or a folder that records no sha256)."""
    folder = ref.checkpoint
    if ref.kind != "registry" or folder is None or not (folder / ONNX_FILE).is_file():
        return None
    recorded = recorded_sha256(folder, checkpoint_config(folder))
    try:
        weights = read_metadata(folder / ONNX_FILE).get("weights")
    except (OSError, ValueError):
        return None  # unreadable: the cached export stands in
    exported_from = weights.get("sha256") if isinstance(weights, dict) else None
    if recorded is None or weights_sha256 != recorded or exported_from != recorded:
        return None
    return folder / ONNX_FILE


def torch_door(what: str):
    """:mod:`snnzoo.runtime.torch_backend`; where torch is not installed (``pip install snnzoo``
    without extras), a :class:`ModelError` saying that ``what`` needs it and how to add it."""
    try:
        from . import torch_backend
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != "torch":
            raise
        raise ModelError(f"{what} needs PyTorch, which this installation lacks: "
                         "pip install 'snnzoo[train]'") from None
    return torch_backend


def onnx_path(ref: ModelRef) -> Path:
    """The ONNX file for ``ref``: its own, the bundled folder's shipped export
    (:func:`shipped_onnx`), or a checkpoint's export in the cache, made on first use (this one
    time imports torch and the exporter)."""
    if ref.onnx is not None:
        return ref.onnx
    if ref.checkpoint is not None:
        sha = verify_checkpoint(ref.checkpoint)  # before any use, the shipped or cached export included
        shipped = shipped_onnx(ref, sha)
        if shipped is not None:
            return shipped
        dest = cached_onnx_path(ref, sha)
        if not dest.is_file():
            backend = torch_door(f"{ref.name}: exporting it to ONNX")
            model = backend.load_checkpoint(ref.checkpoint)
            _export(backend, model, dest, {"source": "checkpoint", "sha256": sha})
        return dest
    backend = torch_door(f"{ref.name}: building it to export to ONNX")  # nothing on disk to check
    model = backend.load_registry_model(ref.registry_id)
    dest = cache_dir() / "onnx" / f"{_slug(ref.name)}-{backend.state_sha256(model)[:16]}-{__version__}.onnx"
    if not dest.is_file():
        _export(backend, model, dest, {"source": "registry", "model_id": ref.registry_id})
    return dest


def _export(backend, model, dest: Path, weights: dict) -> None:
    """Export to a temporary file beside ``dest`` and rename, so concurrent runs never see half a file."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=dest.parent)
    except OSError as e:
        raise ModelError(f"{dest.parent}: cannot write the ONNX cache ({e.strerror}); "
                         "set SNNZOO_CACHE to a writable folder") from None
    os.close(fd)
    try:
        backend.export_onnx(model, tmp, weights=weights)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is an ordinary file
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
