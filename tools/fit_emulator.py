"""Fit the emulator to real N-MNIST recordings of the same digits: two fits, each on MNIST train
images ``start … start + n − 1`` (their recordings paired with the emulator's streams of them,
emulation seed 0, so that the objective is a deterministic function of the parameters).

    python tools/fit_emulator.py schedule --data-root ../shared/data --n 200 [--rounds 3] [--check 200:1000]
    python tools/fit_emulator.py footprint --data-root ../shared/data --n 200 [--check 200:1000] [--out fit.json] \
        [--init start.json --moves --bin-penalty 1]

**schedule.** Both streams are binned into ``bin_ms``-wide count frames ``r_{i,k}``, ``e_{i,k}``
(``[2, 34, 34]`` each, ``k`` over the 0–320 ms recording). The objective is the paired,
per-sample normalised squared error of the frames, on a 3×3 box-blurred copy (so that a one-pixel
offset costs less than a missing edge):

    L = mean_i  Σ_k ‖B r_{i,k} − B e_{i,k}‖² / Σ_k ‖B r_{i,k}‖²

It sees where the sensor is at every instant (which pixels fire when) and how fast it moves (how
many). Coordinate descent over each saccade's x and y start and end times and the two ramp
fractions, at steps of ``8, 4, 2, 1`` ms (0.04, 0.02 for ramps); everything else stays at its
default. Prints the loss before and after, the fitted ``saccades_us`` and ``ramp``, and the mean
event rate per 5 ms window (real, default, fitted) where they differ most; with ``--check
START:STOP`` also the loss, the rate-profile error and the IoU of binary T=8 frames (what the
model sees) of both schedules on recordings the fit did not see.
Measured (2026-12-01, fit on MNIST train 0–199, check on 200–999): L 0.381 → 0.353 and the
rate-profile error 1,104 → 994 events on the held-out recordings, but the T=8 frame IoU stays at
0.526 → 0.527 — the model's binned input barely changes, so the emulator's defaults were kept.

**footprint.** What the model sees: binary T=8 frames ``R_i``, ``E_i`` (``[8, 2, 34, 34]``). The
objective is their IoU less a penalty on the mismatch of active pixels per polarity ``p``
(``A_p``: frame pixels of polarity ``p`` summed over the bins, mean over samples), without which the
IoU buys overlap by dropping noise (noise never overlaps) or widening the footprint, and (``μ`` > 0,
``--bin-penalty``) one on the per-bin profiles ``P_{s,k}`` (mean pixels in bin ``k`` of polarity
0, of polarity 1, and of both at once):

    J = mean_i |R_i ∧ E_i| / |R_i ∨ E_i|  −  λ Σ_p |A_p(E) / A_p(R) − 1|  −  μ Σ_{s,k} |P_{s,k}(E) − P_{s,k}(R)| / Σ P(R)

Coordinate ascent over the scene and pixel constants (:data:`FOOTPRINT_STEPS`: magnification,
threshold and its mismatch, PSF width, placement, black level, refractory period, background
noise) and with ``--moves`` the saccades (:data:`MOVE_STEPS`: waypoints, window edges, ramps),
each moved by its step while ``J`` improves by more than 10⁻⁴, until a pass changes nothing; then
again at half steps; from the defaults or ``--init``'s overrides. Writes the fitted overrides as
JSON (``--out``, the form ``snnzoo emulate --params`` reads). Measured (2026-12-02, fit on
0–199; fits A and D predate the gamma knob: add ``--freeze gamma`` to reproduce them): see
``model_cards/nmnist_compact/ceiling_diagnostics.txt`` and ``emulator_fits/`` beside it.
"""
from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from snnzoo.runtime.binning import bin_events
from snnzoo.runtime.readers import read_nmnist_bin
from snnzoo.zoo.datasets.mnist import load_mnist
from snnzoo.zoo.datasets.nmnist import mnist_index
from snnzoo.zoo.emulator import SENSOR_SIZE, EmulatorParams, emulate, load_params, param_overrides

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from emulator_fidelity import frame_iou  # noqa: E402  (the fidelity table's per-sample IoU)

SPAN_US = 320_000


def count_frames(events: list[np.ndarray], bin_us: int) -> np.ndarray:
    """``[N, K, 2, 34, 34]`` event counts in ``bin_us`` windows over ``[0, SPAN_US)``, 3×3 box-blurred."""
    W, H, _ = SENSOR_SIZE
    k = SPAN_US // bin_us
    out = np.zeros((len(events), k * 2 * H * W), np.float32)
    for i, ev in enumerate(events):
        keep = ev["t"] < SPAN_US
        flat = ((ev["t"][keep] // bin_us) * 2 + ev["p"][keep].astype(np.int64)) * H * W \
            + ev["y"][keep].astype(np.int64) * W + ev["x"][keep]
        out[i] = np.bincount(flat, minlength=out.shape[1])
    f = out.reshape(len(events), k, 2, H, W)
    p = np.pad(f, ((0, 0), (0, 0), (0, 0), (1, 1), (1, 1)))
    return sum(p[..., dy:dy + H, dx:dx + W] for dy in range(3) for dx in range(3))


def loss(real_frames: np.ndarray, emulated: list[np.ndarray], bin_us: int) -> float:
    """The objective ``L`` of the module docstring."""
    e = count_frames(emulated, bin_us)
    num = ((real_frames - e) ** 2).sum((1, 2, 3, 4))
    return float((num / np.maximum((real_frames ** 2).sum((1, 2, 3, 4)), 1e-9)).mean())


def _with(params: EmulatorParams, name: tuple[int, ...] | str, value: float) -> EmulatorParams:
    """``params`` with one schedule entry (``(saccade, axis, 0 start | 1 end)``) or ramp (``"ramp_x"``,
    ``"ramp_y"``) set to ``value``."""
    if isinstance(name, str):
        ramp = list(params.ramp)
        ramp["xy".index(name[-1])] = value
        return replace(params, ramp=tuple(ramp))
    s, a, e = name
    sched = [[list(w) for w in saccade] for saccade in params.saccades_us]
    sched[s][a][e] = int(value)
    return replace(params, saccades_us=tuple(tuple(tuple(w) for w in saccade) for saccade in sched))


def _get(params: EmulatorParams, name: tuple[int, ...] | str) -> float:
    if isinstance(name, str):
        return params.ramp["xy".index(name[-1])]
    s, a, e = name
    return params.saccades_us[s][a][e]


def _valid(params: EmulatorParams) -> bool:
    """Each axis's moves are ordered, last ≥ 10 ms, and ramps in (0, 0.5]."""
    for axis in range(2):
        free = 0
        for saccade in params.saccades_us:
            ts, te = saccade[axis]
            if ts < free or te - ts < 10_000:
                return False
            free = te
    return all(0.0 < r <= 0.5 for r in params.ramp)


def rate_profile(events: list[np.ndarray], bin_us: int = 5_000) -> np.ndarray:
    """Mean event rate (events/ms) per ``bin_us`` window over ``[0, SPAN_US)``."""
    k = SPAN_US // bin_us
    counts = sum(np.bincount(np.minimum(ev["t"] // bin_us, k - 1), minlength=k) for ev in events)
    return counts / len(events) / (bin_us / 1000)


def _recordings(data_root: str, wanted: list[int], held: list[int]) -> tuple[np.ndarray, list, list]:
    """``(MNIST train images, real streams of wanted, of held)``; exits 2 naming the folder when a
    recording is missing."""
    root = Path(data_root)
    files = {mnist_index(f): f for f in (root / "nmnist" / "Train").glob("*/*.bin")}
    if not files or any(i not in files for i in wanted + held):
        click.echo(f"snnzoo: error: {root / 'nmnist' / 'Train'}: recordings of MNIST train {wanted[0]}–{wanted[-1]} "
                   f"{'and of the --check range ' if held else ''}not all present", err=True)
        sys.exit(2)
    images, _ = load_mnist(root / "mnist", "train")
    return images, [read_nmnist_bin(files[i])[0] for i in wanted], [read_nmnist_bin(files[i])[0] for i in held]


def _check_range(check: str) -> list[int]:
    try:
        return list(range(*map(int, check.split(":")))) if check else []
    except (TypeError, ValueError):
        raise click.BadParameter(f"{check!r}: expected START:STOP", param_hint="--check") from None


data_options = [
    click.option("--data-root", required=True, type=click.Path(file_okay=False),
                 help="Folder holding nmnist/Train/<label>/<idx>.bin and mnist/*.gz."),
    click.option("--n", type=int, default=200, show_default=True, help="Paired samples."),
    click.option("--start", type=int, default=0, show_default=True, help="First MNIST train index (0–999)."),
    click.option("--check", default="", metavar="START:STOP", help="Also compare default and fit on these recordings."),
]


def with_data_options(f):
    for option in reversed(data_options):
        f = option(f)
    return f


@click.group()
def cli() -> None:
    """Fit the emulator's constants to real recordings (see the module docstring)."""


@cli.command("schedule")
@with_data_options
@click.option("--bin-ms", type=int, default=10, show_default=True, help="Frame width of the objective.")
@click.option("--rounds", type=int, default=3, show_default=True, help="Passes over all parameters per step size.")
def schedule(data_root: str, n: int, start: int, check: str, bin_ms: int, rounds: int) -> None:
    """Fit the saccade schedule and ramps to 10-ms count frames."""
    wanted, held = list(range(start, start + n)), _check_range(check)
    images, real, real_held = _recordings(data_root, wanted, held)
    bin_us = bin_ms * 1000
    real_frames = count_frames(real, bin_us)

    def objective(p: EmulatorParams) -> float:
        return loss(real_frames, emulate(images[wanted], seed=0, keys=wanted, params=p), bin_us)

    names: list[tuple[int, ...] | str] = [(s, a, e) for s in range(3) for a in range(2) for e in range(2)]
    names += ["ramp_x", "ramp_y"]
    best = EmulatorParams()
    best_loss = start_loss = objective(best)
    click.echo(f"default schedule: L = {start_loss:.4f}")
    for step_ms in (8, 4, 2, 1):
        for _ in range(rounds):
            improved = False
            for name in tqdm(names, desc=f"step {step_ms} ms", leave=False):
                step = step_ms * 0.005 if isinstance(name, str) else step_ms * 1000
                for sign in (1, -1):
                    while True:
                        cand = _with(best, name, _get(best, name) + sign * step)
                        if not _valid(cand):
                            break
                        cand_loss = objective(cand)
                        if cand_loss >= best_loss:
                            break
                        best, best_loss, improved = cand, cand_loss, True
            click.echo(f"step {step_ms} ms: L = {best_loss:.4f}")
            if not improved:
                break
    click.echo(f"\nL: default {start_loss:.4f} → fitted {best_loss:.4f} (MNIST train {start}–{start + n - 1}, "
               f"{bin_ms} ms frames)")
    click.echo(f"saccades_us = {best.saccades_us}")
    click.echo(f"ramp = {tuple(round(r, 3) for r in best.ramp)}")
    profiles = {"real": rate_profile(real),
                "default": rate_profile(emulate(images[wanted], seed=0, keys=wanted)),
                "fitted": rate_profile(emulate(images[wanted], seed=0, keys=wanted, params=best))}
    click.echo("\nevent rate (events/ms) per 5 ms window, the 12 windows where default and real differ most:")
    click.echo(f"{'window':>12s}" + "".join(f" {k:>8s}" for k in profiles))
    worst = np.sort(np.argsort(-np.abs(profiles["default"] - profiles["real"]))[:12])
    for w in worst:
        click.echo(f"{5 * w:5d}–{5 * w + 5:3d} ms" + "".join(f" {v[w]:8.2f}" for v in profiles.values()))
    for name, v in list(profiles.items())[1:]:
        click.echo(f"sum |{name} − real| over all windows: {np.abs(v - profiles['real']).sum() * 5:.0f} events")
    if held:
        frames = count_frames(real_held, bin_us)
        click.echo(f"\nheld-out recordings, MNIST train {check} (n = {len(held)}):")
        for name, p in (("default", EmulatorParams()), ("fitted", best)):
            em = emulate(images[held], seed=0, keys=held, params=p)
            err = np.abs(rate_profile(em) - rate_profile(real_held)).sum() * 5
            click.echo(f"  {name:8s} L {loss(frames, em, bin_us):.4f}, rate-profile error {err:.0f} events, "
                       f"T=8 binary frame IoU {frame_iou(real_held, em).mean():.4f}")


# the constants the footprint fit moves, in this order, with their full steps
FOOTPRINT_STEPS = {"scale": 0.02, "gamma": 0.2, "threshold": 0.02, "threshold_sd": 0.05, "psf_sigma": 0.05,
                   "origin_x": 0.2, "origin_y": 0.2, "black_level": 0.02, "refractory_us": 300, "noise_hz": 0.05,
                   "noise_on": 0.02}


def binary_frames(events: list[np.ndarray]) -> np.ndarray:
    """``bool [N, 8, 2, 34, 34]``: the binary T=8 frames the model sees."""
    return np.stack([bin_events(e, SENSOR_SIZE, n_time_bins=8, mode="binary") for e in events]).astype(bool)


def footprint_scores(real: np.ndarray, em: np.ndarray) -> dict[str, object]:
    """IoU of paired binary frames (all, per polarity), active pixels per polarity ``A_p`` and the
    per-bin profiles ``[8]`` of p0, p1 and both-polarity pixels (means over samples)."""
    def iou(a: np.ndarray, b: np.ndarray) -> float:
        axes = tuple(range(1, a.ndim))
        return float(((a & b).sum(axes) / np.maximum((a | b).sum(axes), 1)).mean())

    out: dict[str, object] = {"iou": iou(real, em), "iou_p0": iou(real[:, :, 0], em[:, :, 0]),
                              "iou_p1": iou(real[:, :, 1], em[:, :, 1])}
    out.update({f"active_p{q}": a for q, a in enumerate(active_pixels(em))})
    out["bins"] = bin_profiles(em)
    return out


def active_pixels(frames: np.ndarray) -> list[float]:
    """``A_p``: mean binary-frame pixels of polarity ``p`` over the 8 bins, for p = 0, 1."""
    return [float(frames[:, :, q].sum((1, 2, 3)).mean()) for q in (0, 1)]


def profile_error(bins: np.ndarray, target: np.ndarray) -> float:
    """``Σ |P(E) − P(R)| / Σ P(R)`` of :func:`bin_profiles`."""
    return float(np.abs(bins - target).sum() / target.sum())


def bin_profiles(frames: np.ndarray) -> np.ndarray:
    """``[3, 8]``: mean pixels per time bin of polarity 0, of polarity 1, and of both at once."""
    return np.stack([frames[:, :, 0].sum((2, 3)).mean(0), frames[:, :, 1].sum((2, 3)).mean(0),
                     (frames[:, :, 0] & frames[:, :, 1]).sum((2, 3)).mean(0)])


def _get_knob(params: EmulatorParams, name: tuple[int, ...] | str) -> float:
    """A constant by field name, ``origin_x``/``_y``, ``waypoint_<i><x|y>``, a ramp or a saccade window edge."""
    if isinstance(name, tuple) or name.startswith("ramp_"):
        return _get(params, name)
    if name.startswith("origin_"):
        return params.origin["xy".index(name[-1])]
    if name.startswith("waypoint_"):
        return params.waypoints[int(name[-2])]["xy".index(name[-1])]
    return getattr(params, name)


def _set_knob(params: EmulatorParams, name: tuple[int, ...] | str, value: float) -> EmulatorParams:
    if isinstance(name, tuple) or name.startswith("ramp_"):
        return _with(params, name, value)
    if name.startswith("origin_"):
        origin = list(params.origin)
        origin["xy".index(name[-1])] = value
        return replace(params, origin=tuple(origin))
    if name.startswith("waypoint_"):
        way = [list(w) for w in params.waypoints]
        way[int(name[-2])]["xy".index(name[-1])] = value
        return replace(params, waypoints=tuple(tuple(w) for w in way))
    return replace(params, **{name: type(getattr(params, name))(value)})


# with --moves also the saccades: waypoints (px), each axis's window edges (µs) and the ramps
MOVE_STEPS: dict[tuple[int, ...] | str, float] = {
    **{f"waypoint_{i}{a}": 0.2 for i in range(3) for a in "xy"},
    **{(s, a, e): 4000 for s in range(3) for a in range(2) for e in range(2)},
    "ramp_x": 0.04, "ramp_y": 0.04}


@cli.command("footprint")
@with_data_options
@click.option("--penalty", "lam", type=float, default=0.3, show_default=True, help="λ of the active-pixel penalty.")
@click.option("--bin-penalty", "mu", type=float, default=0.0, show_default=True,
              help="μ of the per-bin profile penalty (p0, p1, both-polarity pixels per time bin).")
@click.option("--moves", is_flag=True, help="Also fit the saccades: waypoints, window edges and ramps.")
@click.option("--init", "init_file", type=click.Path(exists=True, dir_okay=False),
              help="Start from these overrides (JSON) instead of the defaults.")
@click.option("--freeze", multiple=True, metavar="NAME", help="Leave this constant as it starts (repeatable).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the fitted overrides here (JSON).")
def footprint(data_root: str, n: int, start: int, check: str, lam: float, mu: float, moves: bool,
              init_file: str | None, freeze: tuple[str, ...], out: str | None) -> None:
    """Fit the scene and pixel constants (and with --moves the saccades) to binary T=8 frames."""
    try:
        best = load_params(init_file)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    unknown = sorted(set(freeze) - set(FOOTPRINT_STEPS))
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not a constant of the fit ({', '.join(FOOTPRINT_STEPS)})",
                                 param_hint="--freeze")
    wanted, held = list(range(start, start + n)), _check_range(check)
    images, real, real_held = _recordings(data_root, wanted, held)
    frames = binary_frames(real)
    target, target_bins = active_pixels(frames), bin_profiles(frames)

    def objective(p: EmulatorParams) -> tuple[float, dict[str, object]]:
        sc = footprint_scores(frames, binary_frames(emulate(images[wanted], seed=0, keys=wanted, params=p)))
        j = sc["iou"] - lam * sum(abs(sc[f"active_p{q}"] / target[q] - 1) for q in (0, 1))
        return j - mu * profile_error(sc["bins"], target_bins), sc

    def show(name: str, j: float | None, sc: dict[str, object], real_bins: np.ndarray) -> None:
        bins = profile_error(sc["bins"], real_bins)
        click.echo(f"{name:28s} {'' if j is None else f'J {j:.4f}  '}IoU {sc['iou']:.4f} (p0 {sc['iou_p0']:.4f}, "
                   f"p1 {sc['iou_p1']:.4f})  active p0 {sc['active_p0']:.0f}, p1 {sc['active_p1']:.0f}  "
                   f"bin-profile error {bins:.3f}")

    click.echo(f"real, MNIST train {start}–{start + n - 1}: active p0 {target[0]:.0f}, p1 {target[1]:.0f}")
    knobs = {k: v for k, v in FOOTPRINT_STEPS.items() if k not in freeze} | (MOVE_STEPS if moves else {})
    start_params = best
    best_j, best_sc = objective(best)
    show("start", best_j, best_sc, target_bins)
    for fraction in (1.0, 0.5):
        improved = True
        while improved:
            improved = False
            for name, full in knobs.items():
                for sign in (1, -1):
                    while True:
                        value = round(_get_knob(best, name) + sign * full * fraction, 6)
                        if name == "noise_on":
                            value = min(value, 1.0)
                        positive = not (isinstance(name, tuple) or name.startswith(("origin_", "waypoint_")))
                        if (positive and value <= 0) or value == _get_knob(best, name):
                            break
                        cand = _set_knob(best, name, value)
                        if not _valid(cand):
                            break
                        j, sc = objective(cand)
                        if j <= best_j + 1e-4:
                            break
                        best, best_j, best_sc, improved = cand, j, sc, True
                        show(f"  {name} = {value:g}", j, sc, target_bins)
    fitted = param_overrides(best)
    click.echo(f"\nfitted overrides: {json.dumps(fitted)}")
    if out:
        Path(out).write_text(json.dumps(fitted, indent=1) + "\n")
        click.echo(f"wrote {out}")
    runs = [("default", EmulatorParams())] + ([("start", start_params)] if init_file else []) + [("fitted", best)]
    if held:
        frames_held = binary_frames(real_held)
        active = active_pixels(frames_held)
        click.echo(f"\nheld-out recordings, MNIST train {check} (n = {len(held)}), real active p0 {active[0]:.0f}, "
                   f"p1 {active[1]:.0f}:")
        profiles = [("real", bin_profiles(frames_held))]
        for name, p in runs:
            sc = footprint_scores(frames_held, binary_frames(emulate(images[held], seed=0, keys=held, params=p)))
            show(f"  {name}", None, sc, profiles[0][1])
            profiles.append((name, sc["bins"]))
        click.echo("per-bin pixels (p0 | p1 | both polarities):")
        for name, prof in profiles:
            click.echo(f"  {name:8s} " + " | ".join(" ".join(f"{v:4.0f}" for v in row) for row in prof))


if __name__ == "__main__":
    cli()
