r"""Image → event-stream emulator: N-MNIST's saccades replayed on MNIST digits.

N-MNIST (Orchard et al., 2015) was recorded by an ATIS camera (34×34 pixels in view) on a
pan-tilt unit, making three ~100 ms saccades along a triangle in front of a monitor showing the
static 28×28 digit. We replay that:

- **Scene.** The digit ``I ∈ [0, 1]`` shown as luminance ``I^γ`` (display gamma ``γ``) and magnified
  by ``s`` about its centre (``s = 1``: one sensor pixel per image pixel) sits at the sensor position
  ``p(t) = p_0 + δ + w(t)``: ``p_0`` the mean placement, ``δ ~ N(0, σ_δ²)`` per sample (applied
  once, by linear interpolation, as is ``s``), and
  ``w(t)`` the saccade path through the waypoints ``W_0 → W_1 → W_2 → W_0``. The pan (x) and tilt
  (y) motors move separately: in saccade ``i`` axis ``a`` runs from ``t_{i,a}^s`` to ``t_{i,a}^e``
  with a trapezoidal speed profile (raised-cosine ramps, a fraction ``r_a`` of the move at each end).
- **Optics.** Sensor pixel ``(X, Y)`` sees ``E = Σ_{r,c} g(Y − w_y − r) I_δ[r, c] g(X − w_x − c)``, with
  ``g`` a sampled Gaussian point-spread function of width ``σ_psf``: two small products per sample
  and time step, so that a sample's stream is bit-identical in any batch (one GEMM over the batch
  side by side rounds differently with its width on some BLAS builds). Log intensity
  ``L = log(b + E)``, ``b`` the display's black level.
- **Pixels.** Each pixel keeps a reference ``L_ref`` (its level at its last event). On a time grid
  of step ``Δt`` it fires when ``|L − L_ref| ≥ C_px``, ``C_px = C·max(0.2, 1 + σ_C·ε)``
  (``ε ~ N(0,1)`` per pixel: threshold mismatch), and at least ``τ_ref`` after its previous event
  (refractory period); ON (``p = 1``) for an increase; then ``L_ref ← L``. The test runs on the
  ratio ``(b + E)/(b + E_ref)`` against ``e^{±C_px}`` (no log per step); the event time is
  interpolated linearly in ``L`` to the threshold crossing within the step.
- **Noise.** Background events, Poisson at ``λ`` per pixel, uniform in space and time over the
  recording (duration ``D ~ N(D̄, σ_D²)``), ON with probability ``π_on``.

**Domain randomisation** (:class:`Randomization`, off by default) widens what the calibrated
constants fix for every sample, drawn from a second generator ``[seed, k, 1]`` (so the default
streams do not change): a per-sample sensitivity ``C_px ← C_px·e^{σ_s ε}`` and, per saccade and
axis, the start and end times shifted by ``N(0, σ_τ²)`` each (a move lasts at least 10 ms and
starts after the axis's previous one ended).

``polarity_sign=-1`` swaps ON and OFF: the real recordings put ON events on the trailing side of
a moving stroke, i.e. the screen showed dark digits on a bright background (or the sensor's
polarity bit is inverted); either way the stream is the same.
All randomness of sample ``k`` comes from ``np.random.default_rng([seed, k])``, so a sample does
not depend on which batch it was emulated in. The defaults were calibrated on the real
recordings of MNIST train images 0–199 (paired with their source images; the fit maximised
the overlap of binned frames and matched event counts and the event-rate profile), see
``benchmarks/emulator_fidelity.py``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import click
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from ..errors import UsageError
from ..runtime.events import make_events

SENSOR_SIZE = (34, 34, 2)
_PAD = 2  # canvas margin (pixels) for the per-sample jitter


@dataclass(frozen=True)
class EmulatorParams:
    """Constants of the emulator (lengths in pixels, times in µs, contrasts in log units)."""

    origin: tuple[float, float] = (2.4, 2.4)  # p_0: mean image top-left position (x, y)
    offset_sd: float = 0.15  # σ_δ
    scale: float = 1.0  # s: display magnification of the digit about its centre (sensor px per image px)
    gamma: float = 1.0  # γ: display gamma, luminance I^γ of pixel value I
    waypoints: tuple[tuple[float, float], ...] = ((-1.7, -1.0), (-0.9, 4.2), (3.0, -0.8))
    # per saccade: ((start, end) of the x motion, (start, end) of the y motion)
    saccades_us: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (
        ((37_000, 81_000), (10_000, 80_000)), ((81_000, 215_000), (115_000, 185_000)),
        ((217_000, 303_000), (225_000, 295_000)))
    ramp: tuple[float, float] = (0.35, 0.25)  # r, for x and y
    psf_sigma: float = 0.4  # σ_psf
    black_level: float = 0.1  # b
    threshold: float = 0.35  # C
    threshold_sd: float = 0.05  # σ_C (relative)
    refractory_us: int = 1_700  # τ_ref
    dt_us: int = 1_000  # Δt
    noise_hz: float = 0.35  # λ, per pixel
    noise_on: float = 0.95  # π_on
    duration_us: float = 311_000  # D̄
    duration_sd_us: float = 3_000  # σ_D
    polarity_sign: int = -1


@dataclass(frozen=True)
class Randomization:
    """Per-sample domain randomisation on top of :class:`EmulatorParams` (all zero: none)."""

    contrast_sd: float = 0.0  # σ_s: log-normal per-sample scale of every pixel's threshold
    timing_sd_us: float = 0.0  # σ_τ: shift of each saccade window's start and end (µs)

    def __post_init__(self) -> None:
        # floats, so that equal spreads give one cache key (``2000`` and ``2000.0`` would not)
        object.__setattr__(self, "contrast_sd", float(self.contrast_sd))
        object.__setattr__(self, "timing_sd_us", float(self.timing_sd_us))
        if self.contrast_sd < 0 or self.timing_sd_us < 0:
            raise ValueError(f"domain randomisation spreads must be ≥ 0, got contrast_sd={self.contrast_sd}, "
                             f"timing_sd_us={self.timing_sd_us}")

    @property
    def active(self) -> bool:
        return self.contrast_sd > 0 or self.timing_sd_us > 0

    def draw(self, rng: np.random.Generator, params: EmulatorParams) -> tuple[float, EmulatorParams]:
        """One sample's ``(threshold scale, params with its saccade schedule)``."""
        scale = float(np.exp(rng.normal(0.0, self.contrast_sd))) if self.contrast_sd > 0 else 1.0
        if self.timing_sd_us <= 0:
            return scale, params
        windows, free = [], [0, 0]  # per axis: when its previous move ended
        for saccade in params.saccades_us:
            axes = []
            for axis, (ts, te) in enumerate(saccade):
                start = max(free[axis], int(round(ts + rng.normal(0.0, self.timing_sd_us))))
                end = max(start + 10_000, int(round(te + rng.normal(0.0, self.timing_sd_us))))
                axes.append((start, end))
                free[axis] = end
            windows.append(tuple(axes))
        return scale, replace(params, saccades_us=tuple(windows))


def load_params(path: str | Path | None) -> EmulatorParams:
    """:class:`EmulatorParams` with the fields named in a JSON object file overridden (see
    :func:`params_from_dict`); the defaults for ``None``. Raises ``ValueError`` naming the file and
    the problem."""
    if path is None:
        return EmulatorParams()
    try:
        spec = json.loads(Path(path).read_text())
    except OSError as e:
        raise ValueError(f"{path}: cannot read emulator parameters ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e.msg}, line {e.lineno})") from None
    return params_from_dict(spec, str(path))


def params_from_dict(spec: object, source: str = "emulator parameters") -> EmulatorParams:
    """:class:`EmulatorParams` with the fields in ``spec`` overridden, the rest at their defaults
    (lists become tuples); ``ValueError`` naming ``source`` for anything but known fields."""
    if not isinstance(spec, dict):
        raise ValueError(f"{source}: expected a JSON object of EmulatorParams fields")
    fields = set(EmulatorParams.__dataclass_fields__)
    unknown = sorted(set(spec) - fields)
    if unknown:
        raise ValueError(f"{source}: unknown emulator parameter(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(fields))}")

    def tuples(v: object) -> object:
        return tuple(tuples(x) for x in v) if isinstance(v, list) else v

    return replace(EmulatorParams(), **{k: tuples(v) for k, v in spec.items()})


def param_overrides(params: EmulatorParams) -> dict[str, object]:
    """The fields of ``params`` that differ from the defaults: what :func:`params_from_dict` reads back."""
    default = asdict(EmulatorParams())
    return {k: v for k, v in asdict(params).items() if v != default[k]}


def trajectory(params: EmulatorParams, t_us: np.ndarray) -> np.ndarray:
    """Saccade displacement ``w(t)`` → ``[len(t), 2]`` (x, y): along the waypoints, each axis
    (pan x, tilt y) on its own schedule ``saccades_us[i][axis]`` and ramp ``ramp[axis]``."""
    t = np.asarray(t_us, dtype=np.float64)
    way = np.asarray(params.waypoints, dtype=np.float64)
    pos = np.repeat(way[:1], len(t), axis=0)
    for i, windows in enumerate(params.saccades_us):
        a, b = way[i % len(way)], way[(i + 1) % len(way)]
        for axis, (ts, te) in enumerate(windows):
            u = np.clip((t - ts) / (te - ts), 0.0, 1.0)
            after = t >= ts
            pos[after, axis] = a[axis] + _progress(u[after], params.ramp[axis]) * (b[axis] - a[axis])
    return pos


def _progress(u: np.ndarray, ramp: float) -> np.ndarray:
    """Distance covered at fraction ``u`` of a saccade (0 → 1) with a trapezoidal speed profile
    of raised-cosine ramps of length ``ramp`` (closed form of the speed's integral)."""
    r = max(ramp, 1e-6)
    up = np.where(u < r, (u - r / np.pi * np.sin(np.pi * u / r)) / 2, r / 2 + (u - r))
    v = 1.0 - u
    down_total = r / 2 + (1 - 2 * r) + r / 2
    s = np.where(u > 1 - r, down_total - (v - r / np.pi * np.sin(np.pi * v / r)) / 2, up)
    return s / down_total


def _kernel_matrix(shift: float | np.ndarray, size: int, n_out: int, kind: str, sigma: float = 1.0,
                   scale: float = 1.0) -> np.ndarray:
    """``K[..., Y, r] = k(Y − shift − r)`` for a Gaussian ``k`` of width ``sigma`` (sampled, unit
    area) or the linear-interpolation tent ``max(0, 1 − |d|)``; ``shift`` scalar or ``[B]``. With
    ``scale`` s ≠ 1 the input is magnified about its centre ``c``:
    ``K[..., Y, r] = k((Y − shift − c)/s + c − r)``."""
    if scale != 1.0:
        c = (size - 1) / 2
        d = ((np.arange(n_out)[None, :, None] - np.reshape(shift, (-1, 1, 1)) - c) / scale + c
             - np.arange(size)[None, None, :])
    else:  # the unscaled expression as it always was: the default streams stay bit-identical
        d = (np.arange(n_out)[:, None] - np.arange(size)[None, :])[None] - np.reshape(shift, (-1, 1, 1))
    if kind == "gauss":
        k = np.exp(-0.5 * (d / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)
    else:
        k = np.maximum(0.0, 1.0 - np.abs(d))
    return k.astype(np.float32).squeeze(0) if np.ndim(shift) == 0 else k.astype(np.float32)


def emulate(images: np.ndarray, seed: int = 0, keys: Sequence[int] | None = None,
            params: EmulatorParams = EmulatorParams(),
            randomization: Randomization | None = None) -> list[np.ndarray]:
    """Emulate N-MNIST streams of ``images`` (uint8 ``[N, 28, 28]`` or one ``[28, 28]``).

    ``keys`` (default ``0..N−1``) seed each sample's randomness with ``[seed, key]`` — pass the
    MNIST indices so that a digit's stream is the same in any batch; ``randomization`` draws
    each sample's sensitivity and saccade schedule (module docstring). Returns one structured
    event array (``EVENT_DTYPE``, sorted by ``t``, sensor ``34×34×2``) per image.
    """
    # small GEMMs: one BLAS thread is faster, and a threaded BLAS on a busy machine is ~15× slower
    with threadpool_limits(1, user_api="blas"):
        return _emulate(images, seed, keys, params, randomization or Randomization())


def _emulate(images: np.ndarray, seed: int, keys: Sequence[int] | None,
             params: EmulatorParams, rand: Randomization) -> list[np.ndarray]:
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.shape[0] == 0:
        raise ValueError(f"expected images [N, H, W] with N ≥ 1, got shape {images.shape}")
    n = images.shape[0]
    keys = np.arange(n) if keys is None else np.asarray(keys)
    if len(keys) != n:
        raise ValueError(f"{len(keys)} keys for {n} images")
    rngs = [np.random.default_rng([seed, int(k)]) for k in keys]
    # each draw in this order, so that a sample's stream depends on its own generator alone
    jitter = np.clip(np.stack([r.normal(0.0, params.offset_sd, 2) for r in rngs]), -_PAD + 1, _PAD - 1)
    log_thr = _thresholds(rngs, params)
    duration = np.array([r.normal(params.duration_us, params.duration_sd_us) for r in rngs])
    drawn = [rand.draw(np.random.default_rng([seed, int(k), 1]), params) for k in keys]
    log_thr *= np.array([d[0] for d in drawn], np.float32)[None, :, None]
    canvas = _canvas(images, jitter, params.scale, params.gamma)
    b, x, y, t, p = _saccade_events(canvas, log_thr, params, [d[1] for d in drawn])
    order = np.argsort(b, kind="stable")
    bounds = np.searchsorted(b[order], np.arange(n + 1))
    streams = []
    for i, r in enumerate(rngs):
        sel = order[bounds[i]:bounds[i + 1]]
        streams.append(_with_noise(x[sel], y[sel], t[sel], p[sel], r, duration[i], params))
    return streams


def _thresholds(rngs: list[np.random.Generator], params: EmulatorParams) -> np.ndarray:
    """Per-pixel contrast thresholds ``C_px`` (log units), laid out ``[H, B, W]``."""
    W, H, _ = SENSOR_SIZE
    log_thr = np.stack([r.normal(1.0, params.threshold_sd, (H, W)) for r in rngs]).astype(np.float32)
    return np.ascontiguousarray((np.maximum(log_thr, 0.2) * np.float32(params.threshold)).transpose(1, 0, 2))


def _canvas(images: np.ndarray, jitter: np.ndarray, scale: float = 1.0, gamma: float = 1.0) -> np.ndarray:
    """The static digits as luminance ``(I/255)^γ`` in [0, 1], each magnified by ``scale`` about its
    centre and shifted by its jitter δ into a padded canvas: ``[B, h + 2·pad, w + 2·pad]``, one
    product per sample (the module docstring says why)."""
    n, h, w = images.shape
    hc, wc = h + 2 * _PAD, w + 2 * _PAD
    img = images.astype(np.float32) / np.float32(255.0)
    if gamma != 1.0:
        img = img ** np.float32(gamma)
    ky = _kernel_matrix(jitter[:, 1] + _PAD, h, hc, "tent", scale=scale)
    kxt = _kernel_matrix(jitter[:, 0] + _PAD, w, wc, "tent", scale=scale).transpose(0, 2, 1)
    return np.stack([ky[i] @ img[i] @ kxt[i] for i in range(n)])  # not a stacked matmul: batch-dependent too


def _saccade_events(canvas: np.ndarray, log_thr: np.ndarray, params: EmulatorParams,
                    schedules: list[EmulatorParams]) -> tuple[np.ndarray, ...]:
    """The pixels' events while the sensor moves along the saccades (sample ``i`` on the schedule
    of ``schedules[i]``) → ``(b, x, y, t, p)`` of all ``n`` samples together (``b`` the sample),
    unsorted; ``t`` in µs, not yet floored."""
    P = params
    W, H, _ = SENSOR_SIZE
    n, hc, wc = canvas.shape
    up, down = np.exp(log_thr), np.exp(-log_thr)
    t_end = max(te for s in schedules for windows in s.saccades_us for _, te in windows)
    grid = np.arange(0, t_end + P.dt_us, P.dt_us, dtype=np.int64)
    shared = all(s.saccades_us == P.saccades_us for s in schedules)
    paths = [trajectory(s, grid) for s in (schedules[:1] if shared else schedules)]
    path = np.stack(paths, axis=1) + np.asarray(P.origin) - _PAD  # [K, 1 or n, 2]

    def luminance(k: int) -> np.ndarray:
        """``b + E`` at grid step ``k``, laid out ``[H, B, W]``."""
        gy = _kernel_matrix(path[k, :, 1], hc, H, "gauss", P.psf_sigma)
        gxt = _kernel_matrix(path[k, :, 0], wc, W, "gauss", P.psf_sigma).transpose(0, 2, 1)
        e = np.empty((H, n, W), np.float32)
        for i in range(n):  # per sample (module docstring: batch-independent rounding)
            j = 0 if shared else i
            e[:, i] = gy[j] @ canvas[i] @ gxt[j]
        e += np.float32(P.black_level)
        return e

    ref = luminance(0)
    prev = ref
    last = np.full(ref.shape, -np.inf)
    out_b, out_x, out_y, out_t, out_p = [], [], [], [], []
    moving = np.abs(np.diff(path, axis=0)).sum((1, 2)) > 0
    for k in range(1, len(grid)):
        if not moving[k - 1]:
            continue
        cur = luminance(k)
        ratio = cur / ref  # |log cur − log ref| ≥ C  ⇔  ratio ≥ e^C or ratio ≤ e^−C
        idx = np.flatnonzero((ratio >= up) | (ratio <= down))
        idx = idx[last.ravel()[idx] <= grid[k] - P.refractory_us]
        if len(idx):
            lr = np.log(ref.ravel()[idx])
            d1 = np.log(cur.ravel()[idx]) - lr
            d0 = np.abs(np.log(prev.ravel()[idx]) - lr)
            frac = np.clip((log_thr.ravel()[idx] - d0) / np.maximum(np.abs(d1) - d0, 1e-6), 0.0, 1.0)
            t_ev = np.maximum(grid[k - 1] + frac * P.dt_us, last.ravel()[idx] + P.refractory_us)
            y, rest = np.divmod(idx, n * W)
            bb, x = np.divmod(rest, W)
            out_b.append(bb)
            out_x.append(x)
            out_y.append(y)
            out_t.append(t_ev)
            out_p.append(d1 * P.polarity_sign > 0)
            ref.ravel()[idx] = cur.ravel()[idx]
            last.ravel()[idx] = t_ev
        prev = cur
    return tuple(np.concatenate(v) if v else np.zeros(0) for v in (out_b, out_x, out_y, out_t, out_p))


def _with_noise(x: np.ndarray, y: np.ndarray, t: np.ndarray, p: np.ndarray, rng: np.random.Generator,
                duration: float, params: EmulatorParams) -> np.ndarray:
    """One sample's stream: its pixel events plus Poisson background noise, cut at ``duration``,
    sorted by time."""
    W, H, _ = SENSOR_SIZE
    n_noise = rng.poisson(params.noise_hz * H * W * duration * 1e-6)
    noise = (rng.integers(0, W, n_noise), rng.integers(0, H, n_noise), rng.uniform(0, duration, n_noise),
             rng.random(n_noise) < params.noise_on)
    x, y, t, p = (np.concatenate([a, v]) for a, v in zip((x, y, t, p), noise))
    keep = t < duration
    ev = make_events(x[keep], y[keep], np.floor(t[keep]).astype(np.int64), p[keep].astype(np.int8))
    return ev[np.argsort(ev["t"], kind="stable")]


def _parse_indices(text: str, n: int) -> np.ndarray:
    """``"0:100"`` (Python slice, bounds optional), ``"5"`` or ``"1,7,9"`` → indices in ``[0, n)``."""
    try:
        if ":" in text:
            parts = [int(p) if p.strip() else None for p in text.split(":")]
            if len(parts) > 3:
                raise ValueError
            return np.arange(n)[slice(*parts)]
        idx = np.array([int(p) for p in text.split(",")], dtype=np.int64)
    except ValueError:
        raise ValueError(f"--indices {text!r}: expected START:STOP[:STEP] or comma-separated integers") from None
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"--indices {text!r}: out of range for {n} images")
    return idx


@click.command("emulate")
@click.option("--mnist-root", required=True, type=click.Path(file_okay=False),
              help="Folder with the MNIST idx .gz files.")
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True)
@click.option("--indices", default="0:100", show_default=True, help="START:STOP[:STEP] or i,j,k (MNIST indices).")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Output folder: OUT/<label>/<split>_<index:05d>.npy (structured x, y, t, p).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--chunk", type=int, default=500, show_default=True, help="Images emulated together.")
@click.option("--contrast-sd", type=float, default=0.0, show_default=True,
              help="Domain randomisation: log-normal spread of each sample's sensitivity.")
@click.option("--timing-sd-ms", type=float, default=0.0, show_default=True,
              help="Domain randomisation: spread of each saccade's start and end times.")
@click.option("--params", "params_file", type=click.Path(dir_okay=False),
              help="JSON object of EmulatorParams fields to override (e.g. a fit's output).")
def emulate_command(mnist_root: str, split: str, indices: str, out: str, seed: int, chunk: int,
                    contrast_sd: float, timing_sd_ms: float, params_file: str | None) -> None:
    """Emulate N-MNIST-like event streams (saccades over a 34×34 ATIS) of MNIST digits."""
    from .datasets.mnist import load_mnist

    try:
        images, labels = load_mnist(mnist_root, split)
        idx = _parse_indices(indices, len(images))
        if chunk < 1:
            raise ValueError(f"--chunk must be ≥ 1, got {chunk}")
        rand = Randomization(contrast_sd, timing_sd_ms * 1000)
        params = load_params(params_file)
    except (OSError, ValueError) as e:
        raise UsageError(str(e)) from None
    root = Path(out)
    with tqdm(total=len(idx), desc="emulating", unit="digit") as bar:
        for lo in range(0, len(idx), chunk):
            sel = idx[lo:lo + chunk]
            for i, ev in zip(sel, emulate(images[sel], seed, sel, params, rand)):
                path = root / str(int(labels[i])) / f"{split}_{int(i):05d}.npy"
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, ev)
            bar.update(len(sel))
    click.echo(f"wrote {len(idx)} streams to {root}")
