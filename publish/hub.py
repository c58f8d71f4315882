"""Publish and fetch checkpoints as Hugging Face Hub folders (``snnzoo push`` / ``snnzoo pull``).

A Hub folder holds

* ``config.json`` — the model's full config: architecture, neuron constants, input and binning
  spec, classes, training records, and ``weights = {"file": "model.safetensors", "sha256",
  "dtype": "float16"}`` describing the file beside it;
* ``model.safetensors`` — fp16 weights (what ``create_model`` loads, as fp32);
* ``model.onnx`` — exported at publish time by :func:`snnzoo.export.onnx.export_onnx`;
* ``README.md`` — the model card (:mod:`snnzoo.zoo.cards`); for a registry model with a card
  folder, byte-for-byte ``model_cards/<model-id>/README.md``, with that folder's ``card.json``
  and eval JSON files copied beside it.

Authentication is huggingface_hub's own (``HF_TOKEN`` or ``hf auth login``); snnzoo only checks
that a token is configured, and never prints or logs it. ``HF_ENDPOINT`` selects the server, ``HF_HUB_OFFLINE=1`` forbids
network access (``pull`` then serves only what is cached).
"""
from __future__ import annotations

import copy
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click
from torch import nn

from .._version import __version__
from ..errors import SnnzooError
from ..runtime.models import ONNX_FILE, resolve
from ..zoo.cards import (DEFAULT_CARDS_DIR, PROVENANCE_FILE, CardError, card_files, check_eval, load_card_inputs,
                         read_json, registry_config, render_card)
from ..zoo.pretrained import (HUB_CLIENT_KW, HUB_CONFIG, HUB_WEIGHTS, PretrainedError, check_config,
                              hub_offline, load_folder, load_weights, parse_hub_spec, read_config, resolve_weights,
                              sha256_file, verify_sha256)
from ..zoo.registry import create_model, list_models

HUB_ONNX = ONNX_FILE
HUB_CARD = "README.md"


def _save_fp16(model: nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {k: (v.detach().half() if v.is_floating_point() else v.detach()).cpu().contiguous()
               for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"format": "pt"})


def _export_onnx(model: nn.Module, path: Path, sha256: str) -> None:
    """Write ``model.onnx`` with the exporter (a note on stderr where it is not installed)."""
    try:
        from ..export.onnx import export_onnx
    except ImportError as e:
        click.echo(f"snnzoo: note: {path.name} not written: the ONNX exporter is unavailable ({e})", err=True)
        return
    export_onnx(model, path, weights={"source": "checkpoint", "file": HUB_WEIGHTS, "sha256": sha256})


def _as_evaluations(eval_results: dict | list[dict] | None) -> list[tuple[dict, dict]]:
    results = [eval_results] if isinstance(eval_results, dict) else list(eval_results or [])
    names = ["eval.json"] if len(results) == 1 else [f"eval_{i}.json" for i in range(len(results))]
    return [({"file": f, "command": None}, check_eval(r, Path(f))) for f, r in zip(names, results)]


def _registered_config(name: str, sha256: str) -> dict[str, Any] | None:
    """The registry config of ``name`` if its published weights are the file hashing to ``sha256``."""
    if name not in list_models(pretrained=True):
        return None
    cfg = registry_config(name)
    return cfg if cfg["weights"].get("sha256") == sha256 else None


def build_hub_folder(model_or_checkpoint: nn.Module | str | Path, out_dir: str | Path,
                     eval_results: dict | list[dict] | None = None, card_dir: str | Path | None = None,
                     repo_id: str | None = None, onnx: bool = True) -> Path:
    """Write the Hub folder of a model to ``out_dir`` and return it.

    ``model_or_checkpoint``: a built model (with ``.config``), or a reference
    (:func:`snnzoo.runtime.models.resolve`): a checkpoint folder (``config.json`` +
    ``model.safetensors``, as training writes), a registry name with published weights or
    ``hf-hub:ORG/NAME[@REV]``. The card's numbers come from ``eval_results`` (eval JSON object(s) as
    ``snnzoo eval --format json`` prints them) or from ``card_dir`` (``card.json`` + its eval
    files); the registered weights of a registry model default to its ``model_cards/<name>/``
    folder, giving the README of ``snnzoo card``. ``repo_id`` is named in the card's usage snippet.
    """
    if eval_results is not None and card_dir is not None:
        raise CardError(f"{card_dir}: give eval results or a card folder, not both")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PretrainedError(f"{out}: not an empty folder (everything in it would be published)")
    out.mkdir(parents=True, exist_ok=True)
    src = model_or_checkpoint
    ref = None if isinstance(src, nn.Module) else resolve(src)
    if ref is not None and ref.kind == "onnx":
        raise PretrainedError(f"{src}: an ONNX file; a Hub folder is built from a checkpoint folder, a registry "
                              "model or hf-hub:ORG/NAME")
    if ref is None or ref.kind == "hub":
        model = src if ref is None else create_model(ref.registry_id)
        cfg = copy.deepcopy(check_config(getattr(model, "config", None), "model.config"))
        _save_fp16(model, out / HUB_WEIGHTS)
    elif ref.kind == "checkpoint":
        folder = ref.checkpoint
        cfg = read_config(folder / HUB_CONFIG)
        model = load_folder(folder)
        shutil.copyfile(folder / HUB_WEIGHTS, out / HUB_WEIGHTS)
    else:
        name = ref.registry_id
        if name not in list_models(pretrained=True):
            raise PretrainedError(f"{name}: neither a checkpoint folder nor a registry model with published weights")
        model = create_model(name)
        cfg = copy.deepcopy(model.config)
        weights = resolve_weights(name, cfg["weights"])
        load_weights(model, weights, name)
        shutil.copyfile(weights, out / HUB_WEIGHTS)
    sha = sha256_file(out / HUB_WEIGHTS)
    # the registered weights of a registry model: its card is rendered from the registry config,
    # and by default from model_cards/<name>/, so the README equals that of `snnzoo card <name>`
    card_cfg = _registered_config(cfg["name"], sha)
    default = DEFAULT_CARDS_DIR / cfg["name"]
    if card_cfg and eval_results is None and card_dir is None and (default / PROVENANCE_FILE).is_file():
        card_dir = default
    cfg["weights"] = {"file": HUB_WEIGHTS, "sha256": sha, "dtype": "float16"}
    cfg["snnzoo_version"] = __version__

    facts = None
    if card_dir is not None:
        card_dir = Path(card_dir)
        facts, evaluations = load_card_inputs(card_dir)
        if facts["model"] != cfg["name"]:
            raise CardError(f"{card_dir / PROVENANCE_FILE}: describes {facts['model']}, not {cfg['name']}")
        for f in card_files(evaluations, facts):  # the README's images too
            (out / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(card_dir / f, out / f)
        if "training" not in cfg:
            cfg["training"] = facts["recipe"]
    else:
        evaluations = _as_evaluations(eval_results)
        for entry, result in evaluations:
            (out / entry["file"]).write_text(json.dumps(result, indent=2) + "\n")
    (out / HUB_CONFIG).write_text(json.dumps(cfg, indent=2) + "\n")
    num_params = sum(p.numel() for p in model.parameters())
    text = render_card(card_cfg or cfg, evaluations, facts, num_params, hub_id=None if card_cfg else repo_id)
    (out / HUB_CARD).write_text(text)
    if onnx:
        _export_onnx(model, out / HUB_ONNX, sha)
    elif (out / HUB_ONNX).exists():
        (out / HUB_ONNX).unlink()
    return out


def is_hub_folder(path: Path) -> bool:
    return all((path / f).is_file() for f in (HUB_CONFIG, HUB_WEIGHTS, HUB_CARD))


def verify_hub_folder(folder: str | Path) -> dict[str, Any]:
    """Check a Hub folder: readable config, weights matching its recorded sha256; returns the config."""
    folder = Path(folder)
    cfg = read_config(folder / HUB_CONFIG)
    w = cfg.get("weights") or {}
    if w.get("file") != HUB_WEIGHTS or not w.get("sha256"):
        raise PretrainedError(f"{folder / HUB_CONFIG}: weights entry does not record {HUB_WEIGHTS}'s sha256")
    if not (folder / HUB_WEIGHTS).is_file():
        raise PretrainedError(f"{folder / HUB_WEIGHTS}: missing")
    verify_sha256(folder / HUB_WEIGHTS, w["sha256"], f"{folder / HUB_CONFIG}")
    return cfg


def push(model_or_folder: nn.Module | str | Path, repo_id: str, private: bool = False,
         revision: str | None = None, commit_message: str | None = None,
         eval_results: dict | list[dict] | None = None, card_dir: str | Path | None = None,
         onnx: bool = True, folder: str | Path | None = None, dry_run: bool = False) -> str:
    """Build (unless given a built Hub folder), verify and upload a checkpoint to ``repo_id``.

    ``create_repo`` (kept if it exists) then ``upload_folder``. ``revision``: a branch, created
    from ``main`` if new. ``eval_results``/``card_dir``: as in :func:`build_hub_folder`.
    ``folder`` keeps the built folder there; ``dry_run`` stops after building and verifying.
    Returns the commit URL (or, for a dry run, the folder path).
    """
    from huggingface_hub import HfApi, get_token

    parse_hub_spec(repo_id)
    if dry_run and folder is None:
        raise PretrainedError(f"{repo_id}: a dry run needs a folder to keep the built Hub folder in")
    if not dry_run and hub_offline():
        raise PretrainedError(f"{repo_id}: cannot push with HF_HUB_OFFLINE=1")
    if not dry_run and get_token() is None:
        raise PretrainedError(f"{repo_id}: no Hugging Face token; set HF_TOKEN or run `hf auth login`")
    with tempfile.TemporaryDirectory(prefix="snnzoo-push-") as tmp:
        src = model_or_folder
        if not isinstance(src, nn.Module) and Path(src).is_dir() and is_hub_folder(Path(src)):
            if eval_results is not None or card_dir is not None:
                raise CardError(f"{src}: already a Hub folder with its card; rebuild it to change the card")
            hub_dir = Path(src)
            load_folder(hub_dir)  # builds, and the weights fit
        else:
            hub_dir = build_hub_folder(src, folder or tmp, eval_results=eval_results, card_dir=card_dir,
                                       repo_id=repo_id, onnx=onnx)
        cfg = verify_hub_folder(hub_dir)
        if dry_run:
            return str(hub_dir)
        api = HfApi(**HUB_CLIENT_KW)
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(folder_path=str(hub_dir), repo_id=repo_id, revision=revision,
                                 commit_message=commit_message or f"snnzoo push {cfg['name']} ({__version__})")
        return str(info.commit_url)


def pull(spec: str, local_dir: str | Path | None = None) -> Path:
    """Fetch ``ORG/NAME[@REV]`` (``snapshot_download``; the HF cache unless ``local_dir``) and
    verify it is an snnzoo folder whose weights match its config's sha256. Offline, only a
    complete cached copy is returned."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo_id, revision = parse_hub_spec(spec)
    try:
        path = Path(snapshot_download(repo_id, revision=revision, local_dir=local_dir,
                                      local_files_only=hub_offline(), **HUB_CLIENT_KW))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
        offline = " with HF_HUB_OFFLINE=1 (not cached; pull it once online)" if hub_offline() else ""
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise PretrainedError(f"{spec}: pull failed{offline}: {reason}") from e
    verify_hub_folder(path)
    return path


def _errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub.errors import HfHubHTTPError

    return PretrainedError, CardError, HfHubHTTPError, OSError, ValueError


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@click.command("push")
@click.argument("model")
@click.option("--repo", "repo_id", required=True, metavar="ORG/NAME", help="Hub repository to publish to.")
@click.option("--private", is_flag=True, help="Create the repository as private.")
@click.option("--revision", default=None, help="Branch to commit to (created from main if new).")
@click.option("--message", default=None, help="Commit message.")
@click.option("--eval", "eval_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Eval JSON (`snnzoo eval --format json`) to put in the card; repeatable.")
@click.option("--card-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with card.json and its eval files (default for a registry model: model_cards/MODEL).")
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Build the Hub folder here and keep it.")
@click.option("--no-onnx", is_flag=True, help="Do not export model.onnx.")
@click.option("--dry-run", is_flag=True, help="Build and verify the folder (needs --folder); upload nothing.")
def push_command(model: str, repo_id: str, private: bool, revision: str | None, message: str | None,
                 eval_files: tuple[Path, ...], card_dir: Path | None, folder: Path | None, no_onnx: bool,
                 dry_run: bool) -> None:
    """Publish MODEL (registry name, hf-hub:ORG/NAME[@REV], checkpoint folder or built Hub folder) to the Hub.

    The token comes from HF_TOKEN or `hf auth login`; it is never printed."""
    try:
        evals = [read_json(p) for p in eval_files] or None
        out = push(model, repo_id, private=private, revision=revision, commit_message=message,
                   eval_results=evals, card_dir=card_dir, onnx=not no_onnx, folder=folder, dry_run=dry_run)
    except _errors() as e:
        raise SnnzooError(_first_line(e)) from None
    click.echo(out)


@click.command("pull")
@click.argument("spec", metavar="ORG/NAME[@REV]")
@click.option("--local-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Download into this folder instead of the Hugging Face cache.")
def pull_command(spec: str, local_dir: Path | None) -> None:
    """Download a published snnzoo folder (verified) and print its path."""
    try:
        path = pull(spec, local_dir)
    except _errors() as e:
        raise SnnzooError(_first_line(e)) from None
    click.echo(str(path))
