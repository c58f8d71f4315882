"""``snnzoo export MODEL -o FILE``: a registry model, Hub folder or checkpoint folder to ONNX or NIR."""
from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from ..errors import SnnzooError


class ExportError(SnnzooError):
    """What ``snnzoo export`` cannot do; the CLI prints it as ``snnzoo: error: <message>``."""


def load_model(spec: str, pretrained: bool | None):
    """A registry name, ``hf-hub:org/name`` or checkpoint folder (:func:`snnzoo.runtime.models.resolve`)
    → ``(model, weights provenance)``."""
    from ..runtime.models import WEIGHTS_FILE, resolve
    from ..zoo.pretrained import load_folder, sha256_file
    from ..zoo.registry import create_model, get_pretrained_cfg, list_models

    ref = resolve(spec)
    if ref.kind == "onnx":
        raise ExportError(f"{spec}: already an ONNX model; export takes a checkpoint folder, a registry "
                          "name or hf-hub:ORG/NAME")
    if ref.kind == "checkpoint":
        model = load_folder(ref.checkpoint)
        return model, {"source": "checkpoint", "path": ref.checkpoint.resolve().name,
                       "file": WEIGHTS_FILE, "sha256": sha256_file(ref.checkpoint / WEIGHTS_FILE)}
    if ref.kind == "hub":
        return create_model(spec), {"source": "hf-hub", "id": spec[len("hf-hub:"):]}
    if spec not in list_models():
        raise ExportError(f"{spec}: neither a checkpoint folder nor a registered model "
                          f"(known: {', '.join(list_models())})")
    published = spec in list_models(pretrained=True)
    if pretrained is None and not published:
        raise ExportError(f"{spec}: no published weights; pass --no-pretrained to export "
                          "a randomly initialised model")
    if pretrained is False:
        return create_model(spec), {"source": "random-init"}
    model = create_model(spec, pretrained=True)
    return model, {"source": "registry", **get_pretrained_cfg(spec)["weights"]}


def _check_inputs(net, files: tuple[str, ...], count: int) -> tuple[np.ndarray, str]:
    from ..runtime.errors import EventFileError
    from ..runtime.inputs import expand_inputs
    from ..runtime.readers import EXTENSIONS, read_events
    from .onnx import example_input
    from .verify import event_inputs

    if not files:
        return example_input(net, batch=count).numpy(), f"{count} random inputs"
    if net.encoding:
        return _check_images(net, files)
    recordings = []
    sensor = tuple(net.config["input"]["sensor_size"])
    for f, problem in expand_inputs(files, set(EXTENSIONS)):
        if problem:
            raise ExportError(f"{f}: {problem}")
        try:
            events, size, _ = read_events(f, sensor_size=sensor)
        except EventFileError as e:
            raise ExportError(str(e)) from None
        if tuple(size) != sensor:
            raise ExportError(f"{f}: sensor size {tuple(size)} does not match the model's {sensor}")
        recordings.append((events, size))
    return event_inputs(recordings, net.config), f"{len(recordings)} recordings"


def _check_images(net, files: tuple[str, ...]) -> tuple[np.ndarray, str]:
    """Image files for ``--check`` of an image model, decoded and normalised as `snnzoo predict` does."""
    from ..runtime.errors import EventFileError
    from ..runtime.images import IMAGE_EXTENSIONS, ImageSpec, load_image
    from ..runtime.inputs import expand_inputs

    inp = net.config["input"]
    spec = ImageSpec.from_input(inp["shape"], inp)
    images = []
    for f, problem in expand_inputs(files, set(IMAGE_EXTENSIONS), kind="image"):
        if problem:
            raise ExportError(f"{f}: {problem}")
        try:
            images.append(load_image(f, spec, net.config["name"]))
        except EventFileError as e:
            raise ExportError(str(e)) from None
    return np.stack(images), f"{len(images)} images"


@click.command("export")
@click.argument("model")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write (.onnx, or .nir with --format nir).")
@click.option("--time-steps", "-T", type=click.IntRange(min=1), help="Time steps T (default: the model's).")
@click.option("--opset", type=click.IntRange(min=18), help="ONNX opset (default: the exporter's).")
@click.option("--check", is_flag=True, help="Verify the file against PyTorch (checker + ONNX Runtime).")
@click.option("--check-data", multiple=True,
              help="Event file, folder or quoted glob for --check (repeatable; formats as `snnzoo predict`; "
                   "implies --check); default: random inputs.")
@click.option("--streaming", is_flag=True, help="One-time-step graph with explicit state (ONNX).")
@click.option("--format", "fmt", type=click.Choice(["onnx", "nir"]), default="onnx", show_default=True)
@click.option("--target", type=click.Choice(["generic", "snntorch", "norse", "sinabs", "spikingjelly"]),
              default="generic", show_default=True,
              help="NIR: the importer whose time step and discretisation the parameters are chosen for.")
@click.option("--dt", type=float, help="NIR: time step in seconds (default: the target's; snntorch and sinabs fix it).")
@click.option("--pretrained/--no-pretrained", default=None,
              help="Load the published weights (default: required for registry models).")
def export_command(model: str, output: Path, time_steps: int | None, opset: int | None, check: bool,
                   check_data: tuple[str, ...], streaming: bool, fmt: str, target: str, dt: float | None,
                   pretrained: bool | None) -> None:
    """Export MODEL (a registry name, hf-hub:ORG/NAME or a checkpoint folder) to a
    self-describing ONNX file (time loop unrolled, dynamic batch) or a NIR graph."""
    check = check or bool(check_data)
    if fmt == "nir" and (streaming or opset or check):
        raise ExportError("--streaming, --opset and --check apply to --format onnx only")
    if fmt == "onnx" and (dt is not None or target != "generic"):
        raise ExportError("--dt and --target apply to --format nir only")
    try:
        net, weights = load_model(model, pretrained)
        if check:  # read the check data first: a bad file fails before a long export
            from .onnx import prepare

            inputs, what = _check_inputs(prepare(net, time_steps), check_data, count=16)
        start = time.perf_counter()
        if fmt == "nir":
            from .nir import export_nir

            export_nir(net, output, time_steps=time_steps, dt=dt, target=target)
            click.echo(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB, NIR for {target}) "
                       f"in {time.perf_counter() - start:.1f} s")
            return
        from .onnx import export_onnx

        export_onnx(net, output, time_steps=time_steps, opset=opset, streaming=streaming, weights=weights)
    except SnnzooError:
        raise
    except ValueError as e:
        raise ExportError(f"{model}: {e}") from None
    except OSError as e:
        raise ExportError(f"{output}: {e.strerror or e}") from None
    import onnx

    nodes = len(onnx.load(str(output), load_external_data=False).graph.node)
    click.echo(f"wrote {output} ({nodes} nodes, {output.stat().st_size / 1e6:.1f} MB) "
               f"in {time.perf_counter() - start:.1f} s")
    if check:
        from .verify import verify_onnx

        r = verify_onnx(output, net, inputs)
        tf = r.get("teacher_forced")
        forced = ""
        if tf:
            bad = "".join(f" ({x['name']}: {x['flips']})" for x in tf["layers"] if not x["ok"])
            forced = f"teacher-forced spike flips {tf['flips']} of {tf['neuron_steps']:,} neuron-steps{bad}; "
        click.echo(f"check ({what}): onnx.checker ok; {forced}top-1 {r['top1_agree_unique']}/{r['top1_unique']} "
                   f"(unique); max |Δscore| {r['max_abs_diff']:.2e}; flip rate {r['flip_rate']:.2e} "
                   f"({r['vote_flips']} of {r['voting_spikes']} voting spikes) -> "
                   f"{'passed' if r['passed'] else 'FAILED'}")
        if not r["passed"]:
            raise ExportError(f"{output}: ONNX Runtime and PyTorch disagree beyond the tolerance {r['tolerance']}")
