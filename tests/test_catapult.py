"""analysis.catapult: the jump at each destabilisation, on series built by the exact ELR map and on three real runs.

Built series: pure or slowed quiet growth of η̃, each spike S steps of ‖g̃‖ = c/η̃(e). There the jump is the ELR
map's sum exactly, the spike lasts S steps, and the slowdown has a closed form: ln(1−ηλ)⁻² over ln of the quiet
step's factor. Real runs (tests/data/labelled_runs, ConvNetSI on digits): the recorded η̃ obeys the map across every
spike, and the landing angle η̃(b)·max‖g̃‖ is steadier than η̃(b) alone (the control).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from labelled import labelled_runs

from bnwd import theory
from bnwd.analysis import analyze
from bnwd.analysis.catapult import catapults, run_catapult_constants, summarize_catapults


def built_run(lr, wd, period, spike, c, a, n_events=6):
    """η̃ and ‖g̃‖ of a run whose every step follows the exact ELR map: spikes of ``spike`` steps of ‖g̃‖ = c/η̃(e)
    every ``period`` steps, and between them ‖g̃‖ = a·√(ηλ(2−ηλ))/η̃ (a < 1: η̃ grows by a constant factor)."""
    quiet = a * math.sqrt(lr * wd * (2 - lr * wd))
    elr, grad, events = [0.05], [], []
    for t in range(period * n_events):
        if t % period == 0:
            events.append(t)
            kick = c / elr[-1]
        grad.append(kick if t % period < spike else quiet / elr[-1])
        elr.append(float(theory.elr_after_step(elr[-1], grad[-1], lr, wd)))
    return np.array(elr[:-1]), np.array(grad), events


@settings(max_examples=40, deadline=None)
@given(
    wd=st.floats(0.002, 0.02),
    period=st.integers(40, 120),
    spike=st.integers(1, 6),
    c=st.floats(1.0, 3.0),
    a=st.floats(0.0, 0.9),
)
def test_jump_spike_and_slowdown_on_runs_the_map_built(wd, period, spike, c, a):
    lr = 1.0
    elr, grad, events = built_run(lr, wd, period, spike, c, a)
    found = catapults(elr, grad, None, events, lr=lr, wd=wd)
    assert [f.event for f in found] == events[1:]  # the first, after initialisation, is left out
    pure = -2 * math.log1p(-lr * wd)
    quiet = -math.log((1 - lr * wd) ** 2 + a**2 * lr * wd * (2 - lr * wd))
    for f in found:
        assert f.spike_steps == spike and f.quiet_steps == period - spike
        assert f.jump == pytest.approx(f.jump_by_elr_map, abs=1e-9)
        assert f.slowdown == pytest.approx(pure / quiet, rel=1e-6)
        assert f.landing == pytest.approx(elr[f.bottom] * grad[f.event : f.bottom + 1].max())
    summary = summarize_catapults(found)
    assert summary.n == len(events) - 1 and summary.map_residual < 1e-9


@pytest.mark.parametrize(
    ("name", "entry", "series"), list(labelled_runs()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_real_runs_jump_by_the_map_and_land_at_a_steady_angle(name, entry, series):
    lr, wd = entry["run"]["lr"], entry["run"]["wd"]
    events = analyze(series, lr=lr, wd=wd).events
    found = catapults(series["elr"], series["eff_grad_norm"], series["loss"], events, lr=lr, wd=wd)
    summary = summarize_catapults(found)
    assert summary.n >= 10
    assert summary.map_residual < 1e-2  # the files keep 6–9 digits
    assert 1.0 < summary.slowdown < 1.5  # the gradients slow the quiet decay, a little
    bottoms = np.array([series["elr"][f.bottom] for f in found])
    assert summary.landing_spread < 0.35 < bottoms.std(ddof=1) / bottoms.mean()  # the control: η̃(b) alone varies
    assert summary.correlations["elr_at_event"] > 0.5  # deeper convergence, bigger jump
    row = {"events": events, "lr_effective": lr, "wd": wd, "momentum": 0.0}
    constants = run_catapult_constants(np.arange(series["elr"].size), series, row)
    assert constants.n_catapults == summary.n
    assert constants.landing_angle == pytest.approx(np.exp(np.mean(np.log([f.landing for f in found]))))
    assert constants.spike_steps == summary.spike_steps
    # the quiet ‖g̃‖ relaxes (τ_q finite) from well below the far gradient
    assert 0 < constants.quiet_steps < 1e4 and constants.quiet_grad_norm < constants.far_grad_norm / 2


def test_bad_input():
    with pytest.raises(ValueError, match="one length"):
        catapults(np.ones(5), np.ones(4), None, [1, 3], lr=1.0, wd=0.01)
    with pytest.raises(ValueError, match="increasing"):
        catapults(np.ones(5), np.ones(5), None, [3, 1], lr=1.0, wd=0.01)
    with pytest.raises(ValueError, match="indices"):
        catapults(np.ones(5), np.ones(5), None, [1, 7], lr=1.0, wd=0.01)
    assert summarize_catapults([]).n == 0 and math.isnan(summarize_catapults([]).jump)


def test_a_run_without_destabilisations_has_no_catapult():  # an equilibrium or convergent run: summarised as empty
    elr, grad, _ = built_run(1.0, 0.01, 50, 2, 2.0, 0.5)
    assert catapults(elr, grad, None, [], lr=1.0, wd=0.01) == []
