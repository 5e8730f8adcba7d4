"""A reduced model of periodic training: one unstable direction, the minimum, and gradient noise. It predicts
periods from s̃, σ, η, λ and β; it replays nothing.

Every scale-invariant loss with a quadratic minimum of effective sharpness s̃ reads ``L = (s̃/2) sin²θ`` in the plane
of the minimum and its top Hessian direction, θ the angle to the minimum. The reduced model keeps that direction
(coordinate ``y``) and treats every other one as flat (``f``, ``dim − 1`` coordinates): it is the Rayleigh toy
(:class:`simulate.models.RayleighQuotient`) with the spectrum ``0, …, 0, s̃/2`` and its noise term ``σξ/ρ`` in
every direction, under torch's SGD (coupled weight decay, heavy-ball momentum β, :mod:`simulate.integrate`). Since
the flat directions are all alike, their weights and buffer enter only through ``‖f‖`` and the buffer's parts along
``f`` and across it: the noise's components along ``f``, along the buffer's across part, and (as a χ²) in the rest
are drawn, and the three numbers are updated exactly. So the model costs O(1) per configuration and step and is
the two-level toy in distribution (without noise: to rounding), in any dimension.

Linearised at the minimum the angle is multiplied by ``1 − η̃s̃/(1−ηλ)`` (β = 0, :mod:`theory.stability`); past
the threshold it grows, the weights swing across the minimum, ρ jumps and η̃ drops (:mod:`theory.escape`): the
periodic regime. Noise alone keeps ‖g̃‖ ≈ σ√(dim−1): where the equilibrium η̃ = √(ηλ(2−ηλ))/‖g̃‖ is below the
threshold there are no jumps (equilibrium); without noise and with a short budget training converges. All three
regimes come from the same update. The angle is kept above ``floor`` (the weights' rounding, when asked).

Its periods against the full Rayleigh toy's (64 directions, evenly spaced spectrum, ``bnwd simulate``'s grid, 20 000
steps, the mean of several seeds) are measured by ``benchmarks/reduced_vs_toy.py`` (``--noise 1e-5``, and ``--noise 0``
for the deterministic toy); the last numbers are on ``docs/results.md``. ``tests/test_reduced.py`` holds it to the toy
over random spectra, noise levels and momenta. Without noise it does not apply: the deterministic toy's directions
between the minimum and the top keep errors the reduced model does not have, its depth of convergence varies from
period to period, and so do its periods at equal ηλ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bnwd import theory
from bnwd.analysis.destabilization import analyze

__all__ = ["NOISE_GRID", "ReducedModel", "held_out_periods", "held_out_rows", "predict_period", "run_reduced"]


@dataclass(frozen=True)
class ReducedModel:
    """One unstable direction of effective sharpness s̃, ``dim − 1`` flat ones, isotropic gradient noise.

    Parameters
    ----------
    eff_sharpness : float
        s̃ > 0 of the minimum.
    noise : float
        σ ≥ 0, the gradient noise per direction at unit norm.
    dim : int
        Number of weights (≥ 2).
    floor : float or None
        The smallest angle to the minimum kept, in (0, 1); None (default): none, as in the toy.
    """

    eff_sharpness: float
    noise: float = 0.0
    dim: int = 64
    floor: float | None = None

    def __post_init__(self):
        if not (math.isfinite(self.eff_sharpness) and self.eff_sharpness > 0):
            raise ValueError(f"eff_sharpness must be finite and > 0; got {self.eff_sharpness!r}")
        if not (math.isfinite(self.noise) and self.noise >= 0):
            raise ValueError(f"noise must be finite and >= 0; got {self.noise!r}")
        if int(self.dim) != self.dim or self.dim < 2:
            raise ValueError(f"dim must be an integer >= 2; got {self.dim!r}")
        if self.floor is not None and not (math.isfinite(self.floor) and 0 < self.floor < 1):
            raise ValueError(f"floor must be None or in (0, 1); got {self.floor!r}")


def run_reduced(model: ReducedModel, lr, wd, *, steps: int, elr0, angle0=0.3, momentum=0.0, seed: int = 0) -> dict:
    """Integrate the reduced model for all configurations at once.

    Parameters
    ----------
    model : ReducedModel
    lr, wd, momentum : array_like, broadcast to (n_configs,)
        η > 0, λ ≥ 0 with ηλ < 1, β in [0, 1).
    steps : int
        Number of steps, ≥ 1.
    elr0, angle0 : array_like, broadcast to (n_configs,)
        η̃ and θ (radians) at the start; the buffer starts empty.
    seed : int
        Seeds the noise.

    Returns
    -------
    dict of ndarray, shape (n_configs, steps) each
        ``si_norm`` (ρ), ``elr``, ``loss`` ((s̃/2) sin²θ), ``eff_grad_norm``, ``angular_update`` and ``angle`` (θ),
        per step before its update: the series :func:`analysis.destabilization.analyze` reads.
    """
    lr, wd, momentum, elr, angle = (
        np.array(a, dtype=np.float64) for a in np.broadcast_arrays(lr, wd, momentum, elr0, angle0)
    )
    theory.validate(lr=lr, wd=wd, momentum=momentum, elr=elr)
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer; got {steps!r}")
    lr, wd, momentum, elr, angle = (np.atleast_1d(a).copy() for a in (lr, wd, momentum, elr, angle))
    n, sigma, top = lr.size, model.noise, model.eff_sharpness / 2
    rng = np.random.default_rng(seed)
    rho = np.sqrt(lr / elr)
    top_weight, flat = rho * np.sin(angle), rho * np.cos(angle)
    top_buffer, along, across = np.zeros(n), np.zeros(n), np.zeros(n)
    names = ("si_norm", "elr", "loss", "eff_grad_norm", "angular_update", "angle")
    out = {name: np.empty((n, int(steps))) for name in names}
    has_second = model.dim > 2  # the flat buffer can leave the flat weights' line
    for t in range(int(steps)):
        rho_sq = top_weight**2 + flat**2
        rho = np.sqrt(rho_sq)
        loss = top * top_weight**2 / rho_sq
        # the noise ξ in the frame: top, along f, along b_f ⟂ f, and the rest of the flat directions
        xi_top, xi_flat = rng.standard_normal(n), rng.standard_normal(n)
        xi_second = rng.standard_normal(n) * has_second
        xi_rest = np.sqrt(rng.chisquare(model.dim - 3, n)) if model.dim > 3 else np.zeros(n)
        radial = (xi_top * top_weight + xi_flat * flat) / rho  # ξ·ŵ, projected out: the noise is tangent
        kick = sigma / rho
        grad_top = 2 * (top - loss) * top_weight / rho_sq + kick * (xi_top - radial * top_weight / rho)
        grad_flat = -2 * loss * flat / rho_sq + kick * (xi_flat - radial * flat / rho)
        grad_second, grad_rest = kick * xi_second, kick * xi_rest
        # torch's SGD: b ← βb + ∇L + λw, w ← w − ηb; the flat buffer along f, across it, and in the rest
        top_buffer = momentum * top_buffer + grad_top + wd * top_weight
        buffer_flat = momentum * along + grad_flat + wd * flat
        buffer_second = momentum * across + grad_second
        next_top, next_flat = top_weight - lr * top_buffer, flat - lr * buffer_flat
        off_line_sq = lr**2 * (buffer_second**2 + grad_rest**2)
        grad_sq = grad_top**2 + grad_flat**2 + grad_second**2 + grad_rest**2
        # angle between w and w⁺ from w⁺'s part orthogonal to w (no cancellation for tiny steps)
        dot = (top_weight * next_top + flat * next_flat) / rho_sq
        orthogonal_sq = (next_top - dot * top_weight) ** 2 + (next_flat - dot * flat) ** 2 + off_line_sq
        out["si_norm"][:, t] = rho
        out["elr"][:, t] = lr / rho_sq
        out["loss"][:, t] = loss
        out["eff_grad_norm"][:, t] = rho * np.sqrt(grad_sq)
        out["angular_update"][:, t] = np.arctan2(np.sqrt(orthogonal_sq), dot * rho)
        out["angle"][:, t] = np.arctan2(np.abs(top_weight), flat)
        # the new frame: f⁺ = (f − ηb₁, −ηb₂, −ηb₃) in the old one; b's parts along f⁺ and across it, the latter
        # from |b × f⁺| = |f|·|(b₂, b₃)| (a difference of squares would lose half the digits)
        off_line = np.sqrt(buffer_second**2 + grad_rest**2)
        top_weight, next_flat_norm = next_top, np.sqrt(next_flat**2 + off_line_sq)
        along = (buffer_flat * next_flat - lr * off_line**2) / next_flat_norm
        across = flat * off_line / next_flat_norm
        flat = next_flat_norm
        if model.floor is not None:
            smallest = model.floor * np.sqrt(top_weight**2 + flat**2)
            top_weight = np.copysign(np.maximum(np.abs(top_weight), smallest), top_weight)
    return out


def predict_period(model: ReducedModel, lr, wd, momentum=0.0, *, steps: int, seeds=(0, 1, 2)) -> list[dict]:
    """The period and regime the reduced model predicts for each (η, λ, β): runs from a quarter of the threshold's
    η̃ (:func:`theory.stability_threshold`) at a random angle, one per seed, analysed as any run
    (:func:`analysis.destabilization.analyze`).

    Parameters
    ----------
    model : ReducedModel
    lr, wd, momentum : array_like, broadcast to (n_configs,)
        With momentum, ηλ ≤ (1−√β)² (the threshold's domain).
    steps : int
        Steps per run.
    seeds : sequence of int
        One run per seed; the period's uncertainty is the spread over them.

    Returns
    -------
    list of dict, one per configuration
        ``period`` (mean over the seeds' mean periods; NaN where none is periodic), ``period_std`` (their
        standard deviation), ``periods`` (per seed), ``regime`` (the most common over the seeds) and ``regimes``.
    """
    lr, wd, momentum = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in np.broadcast_arrays(lr, wd, momentum))
    start = theory.stability_threshold(lr, wd, momentum) / model.eff_sharpness / 4
    found = []
    for seed in seeds:
        angle0 = np.random.default_rng([seed, 1]).uniform(0.05, 0.5, lr.size)
        series = run_reduced(model, lr, wd, steps=steps, elr0=start, angle0=angle0, momentum=momentum, seed=seed)
        names = ("si_norm", "elr", "angular_update", "loss", "eff_grad_norm")
        result = analyze({k: series[k] for k in names}, lr=lr, wd=wd, momentum=momentum)
        found.append(result if isinstance(result, list) else [result])
    rows = []
    for i in range(lr.size):
        periods = [per_seed[i].period for per_seed in found if per_seed[i].regime == "periodic"]
        regimes = [per_seed[i].regime for per_seed in found]
        rows.append(
            {
                "lr": float(lr[i]),
                "wd": float(wd[i]),
                "momentum": float(momentum[i]),
                "period": float(np.mean(periods)) if periods else math.nan,
                "period_std": float(np.std(periods)) if len(periods) > 1 else math.nan,
                "periods": periods,
                "regime": max(set(regimes), key=regimes.count),
                "regimes": regimes,
            }
        )
    return rows


NOISE_GRID = tuple(10.0 ** np.arange(-14.0, -1.5, 0.5))
"""The gradient noise σ (at s̃ = 2) that :func:`held_out_periods` calibrates over."""


def held_out_periods(
    lr, wd, momentum, measured, *, dim: int = 64, noise_grid=NOISE_GRID, seeds=(0, 1, 2), steps: int | None = None
) -> dict:
    """Leave one product ηλ out: the reduced model's noise calibrated on the runs at the other products, then its
    period and regime at the held-out run's (η, λ, β), beside the baseline ``T·ηλ = const`` fitted on the same runs.

    Only η̃·s̃ and σ/s̃ matter to the model, so s̃ = 2 and σ is its one free parameter: for each held-out run, the σ of
    ``noise_grid`` that minimises the squared log-error of the predicted mean periods of the other runs (every one
    of which must come out periodic). The held-out run's own period is used by nothing but its score.

    Parameters
    ----------
    lr, wd, momentum : array_like, shape (n_runs,)
        The runs' η, λ, β (β inside the monotone domain).
    measured : array_like, shape (n_runs,)
        Their measured mean periods (NaN where a run is not periodic: it calibrates nothing).
    dim : int
        The model's dimension.
    noise_grid : sequence of float
        Candidate σ.
    seeds : sequence of int
        Seeds of each prediction (:func:`predict_period`).
    steps : int, optional
        Steps per simulated run; default 12 × the longest measured period.

    Returns
    -------
    dict of ndarray, shape (n_runs,) each
        ``predicted`` and ``regime`` (at the calibrated σ), ``noise`` (that σ; NaN where no σ fits), ``baseline``
        (T·ηλ = const), ``control`` (the model's period at the ηλ farthest from the run's own: it must do worse), and
        ``measured``; and ``table`` (the predicted periods, shape (len(noise_grid), n_runs)). All NaN (regime
        "undetermined") when the runs with a measured period span fewer than two products.
    """
    lr, wd, momentum, measured = (
        np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in np.broadcast_arrays(lr, wd, momentum, measured)
    )
    n, lr_wd = lr.size, lr * wd
    out = {name: np.full(n, np.nan) for name in ("predicted", "noise", "baseline", "control")}
    out["regime"] = np.full(n, "undetermined", dtype=object)
    if np.unique(np.round(np.log(lr_wd[np.isfinite(measured)]), 9)).size < 2:  # nothing to calibrate on
        return out | {"measured": measured, "table": np.full((len(noise_grid), n), np.nan)}
    if steps is None:
        steps = int(12 * np.nanmax(measured))
    found = [
        predict_period(ReducedModel(2.0, noise, dim), lr, wd, momentum, steps=steps, seeds=seeds)
        for noise in noise_grid
    ]
    table = np.array([[row["period"] for row in rows] for rows in found])
    regimes = np.array([[row["regime"] for row in rows] for rows in found])
    for i in range(n):
        others = (np.abs(np.log(lr_wd / lr_wd[i])) > 1e-9) & np.isfinite(measured)
        if not others.any():
            continue
        cost = np.sum((np.log(table[:, others]) - np.log(measured[others])) ** 2, axis=1)
        cost[~np.isfinite(cost)] = np.inf
        out["baseline"][i] = np.exp(np.mean(np.log(measured[others] * lr_wd[others]))) / lr_wd[i]
        if np.isfinite(cost).any():
            best = int(np.argmin(cost))
            farthest = int(np.argmax(np.abs(np.log(lr_wd / lr_wd[i]))))
            out["noise"][i] = noise_grid[best]
            out["predicted"][i] = table[best, i]
            out["regime"][i] = regimes[best, i]
            out["control"][i] = table[best, farthest]
    return out | {"measured": measured, "table": table}


def held_out_rows(rows: list[dict], *, min_periods: int, dim: int = 64) -> dict:
    """:func:`held_out_periods` of summary rows (:func:`analysis.summary.summarize_run`): each row's η on the SI
    weights, λ, β, and its mean period where it has at least ``min_periods`` periods (the others calibrate nothing)."""
    measured = [r["period_measured"] if len(r["periods"]) >= min_periods else np.nan for r in rows]
    columns = [[r[k] for r in rows] for k in ("lr_effective", "wd", "momentum")]
    return held_out_periods(*columns, np.asarray(measured, dtype=float), dim=dim)
