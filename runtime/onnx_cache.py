"""The ONNX file of a resolved model: as given, or exported once into the user cache.

A checkpoint is exported to ONNX once and kept under
``<cache>/onnx/<folder name>-<sha256(weights, config)[:16]>-<snnzoo version>.onnx``; later runs
load that file. Exporting needs torch, the zoo and the exporter: :mod:`snnzoo.runtime.torch_backend`
is the door to them, opened only here and for ``--backend torch``.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from .._version import __version__
from .errors import ModelError
from .models import CONFIG_FILE, ModelRef, cache_dir, sha256_file, verify_checkpoint


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


def onnx_path(ref: ModelRef) -> Path:
    """The ONNX file for ``ref``, exporting a checkpoint into the cache on first use (this one
    time imports torch and the exporter)."""
    if ref.onnx is not None:
        return ref.onnx
    if ref.checkpoint is not None:
        sha = verify_checkpoint(ref.checkpoint)  # before any use, the cached export included
        dest = cached_onnx_path(ref, sha)
        if not dest.is_file():
            from .torch_backend import load_checkpoint

            _export(load_checkpoint(ref.checkpoint), dest, {"source": "checkpoint", "sha256": sha})
        return dest
    from .torch_backend import load_registry_model, state_sha256  # torch: nothing on disk to check

    model = load_registry_model(ref.registry_id)
    dest = cache_dir() / "onnx" / f"{_slug(ref.name)}-{state_sha256(model)[:16]}-{__version__}.onnx"
    if not dest.is_file():
        _export(model, dest, {"source": "registry", "model_id": ref.registry_id})
    return dest


def _export(model, dest: Path, weights: dict) -> None:
    """Export to a temporary file beside ``dest`` and rename, so concurrent runs never see half a file."""
    from .torch_backend import export_onnx

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=dest.parent)
    except OSError as e:
        raise ModelError(f"{dest.parent}: cannot write the ONNX cache ({e.strerror}); "
                         "set SNNZOO_CACHE to a writable folder") from None
    os.close(fd)
    try:
        export_onnx(model, tmp, weights=weights)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is an ordinary file
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
