"""Pretrained weights: find them, verify them, load them.

Resolution for a registry model (``create_model(name, pretrained=True)``), first hit wins:

1. the bundled file ``zoo/weights/<weights.file>`` shipped with the package;
2. the user's folder ``<user cache>/weights/<weights.file>`` (:func:`local_weights`; a Hub folder
   copied there by hand, e.g. on a machine without internet);
3. the Hugging Face cache (``HF_HOME``/``HF_HUB_CACHE``), ``<weights.hf_hub_id>/model.safetensors``
   at ``weights.revision`` — no network;
4. a Hub download (``hf_hub_download``), unless ``HF_HUB_OFFLINE=1``.

Every file is checked against the registry's ``weights.sha256`` before it is read; a mismatch
refuses the file. ``hf-hub:org/name[@rev]`` loads any folder made by ``snnzoo push``
(``config.json`` + ``model.safetensors``), checked against the sha256 its config records.
Loading: safetensors (fp16 on disk) → fp32 state dict → ``load_state_dict(strict=True)``.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from .._version import __version__
from ..errors import SnnzooError
from ..runtime.errors import IntegrityError as WeightsIntegrityError
from ..runtime.errors import ModelError
from ..runtime.models import CONFIG_FILE as HUB_CONFIG
from ..runtime.models import WEIGHTS_FILE as HUB_WEIGHTS
from ..runtime.models import parse_hub_spec as split_hub_spec
from ..runtime.models import cache_dir, recorded_sha256, sha256_file
from ..runtime.models import verify_sha256 as check_sha256
from .builder import build_model
from .entrypoints import get_pretrained_cfg, list_models

WEIGHTS_DIR = Path(__file__).parent / "weights"
HUB_CLIENT_KW = {"library_name": "snnzoo", "library_version": __version__}


class PretrainedError(SnnzooError, RuntimeError):
    """Weights missing, unreachable or unloadable; the message names the file and the fix."""


class IntegrityError(PretrainedError, WeightsIntegrityError):
    """A weights file whose sha256 differs from the recorded one (the file is refused)."""


def verify_sha256(path: str | os.PathLike, expected: str, what: str) -> None:
    """Raise :class:`IntegrityError` unless ``sha256(path) == expected`` (the runtime's check)."""
    try:
        check_sha256(path, expected, what)
    except WeightsIntegrityError as e:
        raise IntegrityError(str(e)) from None


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set, whether before or after huggingface_hub was imported."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "")
    return constants.HF_HUB_OFFLINE or env.upper() in {"1", "ON", "YES", "TRUE"}


def parse_hub_spec(spec: str) -> tuple[str, str | None]:
    """``"org/name@rev"`` → ``("org/name", "rev")``; ``"org/name"`` → ``("org/name", None)``
    (the resolver's parser, :func:`snnzoo.runtime.models.parse_hub_spec`, raising :class:`PretrainedError`)."""
    try:
        return split_hub_spec(spec)
    except ModelError as e:
        raise PretrainedError(str(e)) from None


def hub_file(repo_id: str, filename: str, revision: str | None = None, cache_first: bool = True,
             force: bool = False) -> Path:
    """Path of ``filename`` of ``repo_id@revision`` in the HF cache, downloaded if needed.

    ``cache_first``: a cached copy is used without asking the Hub (right when the content is
    pinned by a sha256); otherwise the Hub is asked whether the revision moved (huggingface_hub
    falls back to the cache when it cannot be reached); ``force`` downloads a fresh copy.
    Offline, a file missing from the cache is refused with a message saying which one and how
    to get it."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    where = f"{repo_id}/{filename}" + (f"@{revision}" if revision else "")
    if (cache_first and not force) or hub_offline():
        cached = try_to_load_from_cache(repo_id, filename, revision=revision)
        if isinstance(cached, str):
            return Path(cached)
    if hub_offline():
        raise PretrainedError(
            f"{where}: not in the Hugging Face cache and HF_HUB_OFFLINE=1; fetch it once online with "
            f"`snnzoo pull {repo_id}{'@' + revision if revision else ''}` (or unset HF_HUB_OFFLINE)")
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, force_download=force, **HUB_CLIENT_KW))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PretrainedError(f"{where}: download failed ({type(e).__name__}: {reason})") from e


def load_weights(model: nn.Module, path: str | os.PathLike, what: str) -> nn.Module:
    """Load a safetensors file into ``model``: floating tensors become fp32, strict key match."""
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise PretrainedError(f"{path}: not a readable safetensors file ({e})") from e
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        raise PretrainedError(f"{path}: weights do not fit {what}: {detail[:400]}") from e
    return model


def local_weights(weights: dict[str, Any]) -> Path:
    """Where a user puts weights the package does not ship: ``<user cache>/weights/<weights.file>``
    (``~/.cache/snnzoo/weights/<id>/model.safetensors`` unless ``$SNNZOO_CACHE`` says otherwise),
    i.e. the model's Hub folder copied to ``<user cache>/weights/<id>/``."""
    return cache_dir() / "weights" / weights["file"]


def resolve_weights(name: str, weights: dict[str, Any]) -> Path:
    """The verified weights file of registry model ``name`` (bundled → user folder → HF cache → Hub)."""
    expected = weights["sha256"]
    for path in (WEIGHTS_DIR / weights["file"], local_weights(weights)):
        if path.is_file():
            verify_sha256(path, expected, f"{name} in the registry")
            return path
    repo_id = weights.get("hf_hub_id")
    put = f"put its {HUB_WEIGHTS} (sha256 {expected[:12]}…) at {local_weights(weights)}"
    if not repo_id:
        raise PretrainedError(f"{name}: weights not found; {put}")
    try:
        return fetch_verified(repo_id, HUB_WEIGHTS, weights.get("revision"), expected, f"{name} in the registry")
    except IntegrityError:
        raise
    except PretrainedError as e:
        raise PretrainedError(f"{e}; or {put}") from None


def fetch_verified(repo_id: str, filename: str, revision: str | None, sha256: str, what: str) -> Path:
    """:func:`hub_file` checked against ``sha256``; a cached copy that fails the check is
    replaced by one fresh download (online), which must pass it."""
    path = hub_file(repo_id, filename, revision)
    try:
        verify_sha256(path, sha256, what)
    except IntegrityError:
        if hub_offline():
            raise
        path = hub_file(repo_id, filename, revision, force=True)
        verify_sha256(path, sha256, what)
    return path


def load_pretrained(model: nn.Module, name: str) -> nn.Module:
    """Load the published, sha256-verified weights of registry model ``name`` into ``model``."""
    weights = getattr(model, "config", {}).get("weights") or get_pretrained_cfg(name).get("weights")
    if not weights:
        raise PretrainedError(f"{name}: no published weights; models with weights: "
                              f"{', '.join(list_models(pretrained=True)) or 'none yet'}")
    return load_weights(model, resolve_weights(name, weights), name)


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint's ``config.json``, checked for the keys a model is built from."""
    try:
        cfg = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PretrainedError(f"{path}: missing (a checkpoint folder holds {HUB_CONFIG} and {HUB_WEIGHTS})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PretrainedError(f"{path}: unreadable config ({e})") from e
    return check_config(cfg, path)


def check_config(cfg: Any, where: str | os.PathLike) -> dict[str, Any]:
    """``cfg`` if it holds the keys a model is built from, else a :class:`PretrainedError`."""
    missing = [k for k in ("name", "arch", "model", "input", "classes") if not isinstance(cfg, dict) or k not in cfg]
    if missing:
        raise PretrainedError(f"{where}: not an snnzoo config (missing {', '.join(missing)})")
    return cfg


def build_from_config(cfg: dict[str, Any], **overrides: Any) -> nn.Module:
    """The network a checkpoint config describes (``overrides`` as in ``create_model``)."""
    return build_model(cfg["name"], cfg, overrides)


def load_folder(folder: str | os.PathLike, **overrides: Any) -> nn.Module:
    """Model from a checkpoint/Hub/bundled folder (``config.json`` + ``model.safetensors``), its
    weights checked against the sha256 the config records for this very file
    (:func:`snnzoo.runtime.models.recorded_sha256`) when it records one."""
    folder = Path(folder)
    cfg = read_config(folder / HUB_CONFIG)
    weights = folder / HUB_WEIGHTS
    if not weights.is_file():
        raise PretrainedError(f"{weights}: missing")
    sha = recorded_sha256(folder, cfg)
    if sha:
        verify_sha256(weights, sha, f"{folder / HUB_CONFIG}")
    return load_weights(build_from_config(cfg, **overrides), weights, str(folder))


def load_from_hub(spec: str, **overrides: Any) -> nn.Module:
    """``create_model("hf-hub:org/name[@rev]")``: a pushed snnzoo folder, weights included."""
    repo_id, revision = parse_hub_spec(spec)
    cfg_path = hub_file(repo_id, HUB_CONFIG, revision, cache_first=False)
    cfg = read_config(cfg_path)
    # the cache keeps files under snapshots/<commit>/: take the weights of that same commit
    commit = cfg_path.parent.name if re.fullmatch(r"[0-9a-f]{40}", cfg_path.parent.name) else revision
    sha = recorded_sha256(cfg_path.parent, cfg)
    weights = (fetch_verified(repo_id, HUB_WEIGHTS, commit, sha, f"hf-hub:{spec} ({HUB_CONFIG})") if sha
               else hub_file(repo_id, HUB_WEIGHTS, commit))
    model = load_weights(build_from_config(cfg, **overrides), weights, f"hf-hub:{spec}")
    model.config["source"] = f"hf-hub:{spec}"
    return model
