"""The one model resolver: what a model reference names, without importing torch or ``snnzoo.zoo``.

:func:`resolve` turns every reference a command takes (``predict``, ``bench``, ``eval``,
``export``, ``push``) into a :class:`ModelRef`:
- nothing: the bundled default checkpoint, ``zoo/weights/nmnist_compact`` inside the package;
- a registry id (``nmnist_compact``), with its bundled folder ``zoo/weights/<id>`` when there is
  one (otherwise the zoo finds its weights, :mod:`snnzoo.zoo.pretrained`, which imports torch);
- ``hf-hub:ORG/NAME[@REV]``: a folder made by ``snnzoo push``, fetched by the zoo;
- a checkpoint folder (``config.json`` + ``model.safetensors``; a ``model.onnx`` in it is used as is);
- an ``.onnx`` file.

Before a checkpoint's weights are used they are checked against the sha256 its ``config.json``
records for them (:func:`verify_checkpoint`): a folder made by ``snnzoo push``/``export_folder``
records ``weights = {"file": "model.safetensors", "sha256"}``, a bundled folder its registry entry
``{"file": "<id>/model.safetensors", "sha256"}``; a mismatch refuses the file (:class:`IntegrityError`).

The user cache is ``$SNNZOO_CACHE``, else ``$XDG_CACHE_HOME/snnzoo``, else ``~/.cache/snnzoo``
(:mod:`snnzoo.runtime.onnx_cache` keeps the exported ONNX files there).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import IntegrityError, ModelError

DEFAULT_MODEL = "nmnist_compact"
WEIGHTS_FILE, CONFIG_FILE, ONNX_FILE = "model.safetensors", "config.json", "model.onnx"


@dataclass(frozen=True)
class ModelRef:
    """A resolved model reference. ``kind`` is what was named; the other fields, what is there:

    - ``"registry"``: a registry name (``registry_id``), built by the zoo; ``checkpoint`` is its
      bundled folder when the package ships one (the default model's is always there);
    - ``"hub"``: ``hf-hub:ORG/NAME[@REV]`` (``registry_id``; ``repo_id``, ``revision``), a folder
      made by ``snnzoo push``, fetched by the zoo;
    - ``"checkpoint"``: a folder with ``config.json`` + ``model.safetensors`` (``checkpoint``), and
      ``onnx`` when it holds a ``model.onnx`` too (a Hub folder);
    - ``"onnx"``: an ``.onnx`` file, or a folder holding only a ``model.onnx`` (``onnx``).

    Each command maps a kind to its backend: ONNX Runtime takes ``onnx``, else exports
    ``checkpoint``, else the registry model; torch loads ``checkpoint``, else the registry model."""

    name: str
    kind: str
    checkpoint: Path | None = None
    onnx: Path | None = None
    registry_id: str | None = None
    repo_id: str | None = None
    revision: str | None = None


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


def parse_hub_spec(spec: str) -> tuple[str, str | None]:
    """``"org/name@rev"`` → ``("org/name", "rev")``; ``"org/name"`` → ``("org/name", None)``."""
    repo_id, _, rev = spec.partition("@")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ModelError(f"{spec}: expected a Hub repository ORG/NAME[@REVISION]")
    return repo_id, rev or None


def resolve(model: str | os.PathLike | None) -> ModelRef:
    """Turn a model reference (``--model``, ``MODEL``) into a :class:`ModelRef`: ``None`` (the
    bundled default), a registry name, ``hf-hub:ORG/NAME[@REV]``, a checkpoint folder or an
    ``.onnx`` file. Reads no weights and imports neither torch nor the zoo."""
    if model is None:
        folder = bundled_dir(DEFAULT_MODEL)
        if not is_checkpoint(folder):
            raise ModelError(f"the bundled default model is missing: no {WEIGHTS_FILE} and "
                             f"{CONFIG_FILE} in {folder}")
        return ModelRef(DEFAULT_MODEL, "registry", checkpoint=folder, registry_id=DEFAULT_MODEL)
    text = os.fspath(model)
    if text.startswith("hf-hub:"):
        repo_id, revision = parse_hub_spec(text[len("hf-hub:"):])
        return ModelRef(text, "hub", registry_id=text, repo_id=repo_id, revision=revision)
    path = Path(text)
    if text.endswith(".onnx"):
        if not path.is_file():
            raise ModelError(f"{text}: no such ONNX file")
        return ModelRef(path.stem, "onnx", onnx=path)
    if path.is_dir():
        onnx = path / ONNX_FILE if (path / ONNX_FILE).is_file() else None
        if onnx is not None and not is_checkpoint(path):
            return ModelRef(path.name, "onnx", onnx=onnx)
        holds = f"a checkpoint folder holds {CONFIG_FILE} and {WEIGHTS_FILE}"
        if not (path / CONFIG_FILE).is_file():
            raise ModelError(f"{text}: not a checkpoint folder: {path / CONFIG_FILE}: missing ({holds})")
        checkpoint_config(path)
        if not (path / WEIGHTS_FILE).is_file():
            raise ModelError(f"{path / WEIGHTS_FILE}: missing ({holds})")
        return ModelRef(path.name, "checkpoint", checkpoint=path, onnx=onnx)
    if path.is_file():
        raise ModelError(f"{text}: neither an .onnx file nor a checkpoint folder")
    if os.sep in text or text.startswith("."):
        raise ModelError(f"{text}: no such file or folder")
    folder = bundled_dir(text)
    return ModelRef(text, "registry", checkpoint=folder if is_checkpoint(folder) else None, registry_id=text)


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


def checkpoint_config(folder: str | os.PathLike) -> dict:
    """``folder/config.json`` as a dict (a :class:`ModelError` when it cannot be read)."""
    path = Path(folder) / CONFIG_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{path}: unreadable config ({e})") from None


def verify_checkpoint(folder: str | os.PathLike) -> str:
    """sha256 of ``folder/model.safetensors``, checked against the one its ``config.json``
    records (:func:`recorded_sha256`) when it records one."""
    folder = Path(folder)
    cfg = checkpoint_config(folder)
    expected = recorded_sha256(folder, cfg)
    if expected is None:
        return sha256_file(folder / WEIGHTS_FILE)
    return verify_sha256(folder / WEIGHTS_FILE, expected, str(folder / CONFIG_FILE))
