"""Where a model comes from, without importing torch or ``snnzoo.zoo``.

``--model`` accepts
- nothing: the bundled default checkpoint, ``zoo/weights/nmnist_compact`` inside the package;
- a registry id (``nmnist_compact``): its bundled folder ``zoo/weights/<id>`` when there is one,
  otherwise (and for ``hf-hub:org/name``) the weights resolved by ``snnzoo.zoo.pretrained``,
  which imports torch on every run;
- a checkpoint folder (``config.json`` + ``model.safetensors``; a ``model.onnx`` in it is used as is);
- an ``.onnx`` file.

Before a checkpoint's weights are used they are checked against the sha256 its ``config.json``
records for them (:func:`verify_checkpoint`): a folder made by ``snnzoo push``/``export_folder``
records ``weights = {"file": "model.safetensors", "sha256"}``, a bundled folder its registry entry
``{"file": "<id>/model.safetensors", "sha256"}``; a mismatch refuses the file (:class:`IntegrityError`).

A checkpoint is exported to ONNX once and kept in the user cache
(``$SNNZOO_CACHE``, else ``$XDG_CACHE_HOME/snnzoo``, else ``~/.cache/snnzoo``) under
``onnx/<folder name>-<sha256(weights, config)[:16]>-<snnzoo version>.onnx``; later runs load that file.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .._version import __version__

DEFAULT_MODEL = "nmnist_compact"
WEIGHTS_FILE, CONFIG_FILE, ONNX_FILE = "model.safetensors", "config.json", "model.onnx"


class ModelError(Exception):
    """A model that cannot be found, loaded or run; the message is one line for the CLI."""


class IntegrityError(ModelError):
    """A weights file whose sha256 differs from the one recorded for it (the file is refused)."""


@dataclass(frozen=True)
class ModelRef:
    """A resolved ``--model``: exactly one of ``checkpoint``, ``onnx`` or ``registry_id`` is set."""

    name: str
    checkpoint: Path | None = None
    onnx: Path | None = None
    registry_id: str | None = None


def cache_dir() -> Path:
    """The user cache: ``$SNNZOO_CACHE`` or ``$XDG_CACHE_HOME/snnzoo`` or ``~/.cache/snnzoo``."""
    if os.environ.get("SNNZOO_CACHE"):
        return Path(os.environ["SNNZOO_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "snnzoo"


def bundled_root() -> Path:
    """``zoo/weights`` inside the installed package, located without importing the zoo."""
    spec = importlib.util.find_spec("snnzoo.zoo")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the snnzoo.zoo package is missing from this installation")
    return Path(list(spec.submodule_search_locations)[0]) / "weights"


def bundled_dir(name: str) -> Path:
    """``zoo/weights/<name>``: the bundled checkpoint folder of registry model ``name``."""
    return bundled_root() / name


def is_checkpoint(folder: Path) -> bool:
    return (folder / WEIGHTS_FILE).is_file() and (folder / CONFIG_FILE).is_file()


def resolve(model: str | os.PathLike | None) -> ModelRef:
    """Turn a ``--model`` value into a :class:`ModelRef` (see the module docstring)."""
    if model is None:
        folder = bundled_dir(DEFAULT_MODEL)
        if not is_checkpoint(folder):
            raise ModelError(f"the bundled default model is missing: no {WEIGHTS_FILE} and "
                             f"{CONFIG_FILE} in {folder}")
        return ModelRef(DEFAULT_MODEL, checkpoint=folder)
    text = os.fspath(model)
    if text.startswith("hf-hub:"):
        return ModelRef(text, registry_id=text)
    path = Path(text)
    if text.endswith(".onnx"):
        if not path.is_file():
            raise ModelError(f"{text}: no such ONNX file")
        return ModelRef(path.stem, onnx=path)
    if path.is_dir():
        if (path / ONNX_FILE).is_file():
            return ModelRef(path.name, onnx=path / ONNX_FILE, checkpoint=None)
        if not is_checkpoint(path):
            raise ModelError(f"{text}: not a checkpoint folder (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
        return ModelRef(path.name, checkpoint=path)
    if path.is_file():
        raise ModelError(f"{text}: neither an .onnx file nor a checkpoint folder")
    if os.sep in text or text.startswith("."):
        raise ModelError(f"{text}: no such file or folder")
    folder = bundled_dir(text)
    if is_checkpoint(folder):
        return ModelRef(text, checkpoint=folder)
    return ModelRef(text, registry_id=text)


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str, what: str) -> str:
    """``sha256(path)``; :class:`IntegrityError` unless it equals ``expected``."""
    actual = sha256_file(path)
    if actual != expected.lower():
        raise IntegrityError(f"{path}: sha256 {actual} does not match {expected} recorded for {what}; "
                             "file refused (corrupted or tampered download?)")
    return actual


def recorded_sha256(folder: str | os.PathLike, cfg: dict) -> str | None:
    """The sha256 that checkpoint config ``cfg`` records for the ``model.safetensors`` in ``folder``:
    its ``weights`` entry when ``file`` names that file (``model.safetensors``, or for a bundled
    folder ``<id>/model.safetensors`` under ``zoo/weights``). A training checkpoint's config may
    carry the registry entry of an earlier published file, which says nothing about its own."""
    recorded = cfg.get("weights") if isinstance(cfg, dict) else None
    file, sha = (recorded.get("file"), recorded.get("sha256")) if isinstance(recorded, dict) else (None, None)
    if not (isinstance(file, str) and isinstance(sha, str)):
        return None
    own = Path(folder) / WEIGHTS_FILE
    if file == WEIGHTS_FILE or (bundled_root() / file).resolve() == own.resolve():
        return sha
    return None


def verify_checkpoint(folder: str | os.PathLike) -> str:
    """sha256 of ``folder/model.safetensors``, checked against the one its ``config.json``
    records (:func:`recorded_sha256`) when it records one."""
    folder = Path(folder)
    try:
        cfg = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{folder / CONFIG_FILE}: unreadable config ({e})") from None
    expected = recorded_sha256(folder, cfg)
    if expected is None:
        return sha256_file(folder / WEIGHTS_FILE)
    return verify_sha256(folder / WEIGHTS_FILE, expected, str(folder / CONFIG_FILE))


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
    if ref.registry_id is not None:
        from .torch_backend import load_registry_model, state_sha256  # torch: not a bundled model

        model = load_registry_model(ref.registry_id)
        dest = cache_dir() / "onnx" / f"{_slug(ref.name)}-{state_sha256(model)[:16]}-{__version__}.onnx"
        if not dest.is_file():
            _export(model, dest, {"source": "registry", "model_id": ref.registry_id})
        return dest
    sha = verify_checkpoint(ref.checkpoint)  # before any use, the cached export included
    dest = cached_onnx_path(ref, sha)
    if not dest.is_file():
        from .torch_backend import load_checkpoint

        _export(load_checkpoint(ref.checkpoint), dest, {"source": "checkpoint", "sha256": sha})
    return dest


def _export(model, dest: Path, weights: dict) -> None:
    """Export to a temporary file beside ``dest`` and rename, so concurrent runs never see half a file."""
    from snnzoo.export.onnx import export_onnx

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
