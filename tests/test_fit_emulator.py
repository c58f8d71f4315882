"""tools/fit_emulator.py: the knobs the footprint fit turns and the statistics it matches."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from snnzoo.zoo.emulator import EmulatorParams

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import fit_emulator as fit  # noqa: E402  (a script beside the package, not part of it)


@pytest.mark.parametrize("knob, value", [("scale", 0.9), ("threshold", 0.3), ("refractory_us", 2000),
                                         ("origin_y", 2.7), ("waypoint_2x", 3.4), ("waypoint_0y", -1.2),
                                         ((1, 0, 1), 211_000), ("ramp_y", 0.3)])
def test_each_knob_sets_one_field_and_reads_back(knob, value):
    base = EmulatorParams()
    p = fit._set_knob(base, knob, value)
    assert fit._get_knob(p, knob) == value
    changed = {k for k, v in vars(p).items() if v != getattr(base, k)}
    assert len(changed) == 1  # only the field the knob names
    assert fit._get_knob(fit._set_knob(p, knob, fit._get_knob(base, knob)), knob) == fit._get_knob(base, knob)


def test_bin_profiles_count_polarities_and_overlap():
    f = np.zeros((2, 8, 2, 34, 34), bool)
    f[0, 3, 0, :2, :2] = True  # 4 p0 pixels in bin 3 of sample 0
    f[0, 3, 1, :1, :3] = True  # 3 p1 pixels, 2 of them also p0
    f[1, 7, 1, 5, 5] = True
    prof = fit.bin_profiles(f)
    assert prof.shape == (3, 8)
    assert prof[:, 3].tolist() == [2.0, 1.5, 1.0] and prof[:, 7].tolist() == [0.0, 0.5, 0.0]
    assert prof[:, [0, 1, 2, 4, 5, 6]].sum() == 0


def test_scores_are_perfect_for_identical_frames_and_penalise_a_missing_polarity():
    rng = np.random.default_rng(0)
    f = rng.random((3, 8, 2, 34, 34)) < 0.1
    same = fit.footprint_scores(f, f)
    assert same["iou"] == same["iou_p0"] == same["iou_p1"] == 1.0
    no_p0 = f.copy()
    no_p0[:, :, 0] = False
    sc = fit.footprint_scores(f, no_p0)
    assert sc["iou_p0"] == 0.0 and sc["iou_p1"] == 1.0 and sc["active_p0"] == 0.0
