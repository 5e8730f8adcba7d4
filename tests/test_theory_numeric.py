"""The numeric formulas of :mod:`theory.numeric` against a direct numpy iteration of the update rule.

:mod:`theory` proves each formula symbolically; these tests check, independently of sympy, that the
lambdified functions the rest of the package calls agree with what the optimizer actually does:

* plain SGD with coupled weight decay, ``w⁺ = (1−ηλ)w − η∇L(w)``, on random weights with random
  gradients orthogonal to ``w`` (the one property of a scale-invariant loss the formulas rely on);
* torch's SGD with heavy-ball momentum, ``b⁺ = βb + ∇L(w) + λw``, ``w⁺ = w − ηb⁺`` (empty buffer at the
  start, so the first ``b`` is ``∇L + λw``);
* GD on the Rayleigh quotient ``L(w) = wᵀAw/wᵀw``, a scale-invariant loss with closed-form gradient and
  Hessian, for the stability thresholds and the symmetry.

Everything is float64 numpy; hypothesis draws dimensions, hyper-parameters and the seeds of
``np.random.default_rng``. Tolerances are justified where they are set. The last part checks the domain
errors and the broadcasting of every public function.
"""

from __future__ import annotations

import functools
import inspect
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from bnwd.theory import numeric

SEEDS = st.integers(0, 2**32 - 1)
MOMENTA = st.floats(0.0, 0.95)
SCALES = st.floats(-2.0, 2.0).map(lambda e: 10.0**e)  # c in [0.01, 100], log-uniform
EPS = np.finfo(np.float64).eps


@st.composite
def lr_wd(draw, min_product=1e-4, max_product=0.3):
    """(η, λ) with η log-uniform in [1e-3, 10] and ηλ log-uniform in [min_product, max_product]."""
    lr = 10.0 ** draw(st.floats(-3.0, 1.0))
    product = 10.0 ** draw(st.floats(math.log10(min_product), math.log10(max_product)))
    return lr, product / lr


@st.composite
def lr_wd_momentum(draw, max_fraction=1.0):
    """(η, λ, β) with ηλ ≤ max_fraction·(1−√β)², the domain of the momentum formulas, and ηλ ≤ 0.3.

    ηλ is log-uniform over two decades below that bound; the factor 1 − 1e-9 keeps ``lr * wd`` inside it
    after the rounding of ``wd = product/lr``.
    """
    beta = draw(MOMENTA)
    bound = min(0.3, max_fraction * (1.0 - math.sqrt(beta)) ** 2) * (1.0 - 1e-9)
    product = bound * 10.0 ** draw(st.floats(-2.0, 0.0))
    lr = 10.0 ** draw(st.floats(-3.0, 1.0))
    return lr, product / lr, beta


# ---------------------------------------------------------------------------------------------------------
# Direct numpy iteration of the update rules
# ---------------------------------------------------------------------------------------------------------


def _orthogonal_direction(rng: np.random.Generator, w: np.ndarray) -> np.ndarray:
    """A random unit vector orthogonal to ``w`` (projected twice, so ``w·u`` is at rounding level)."""
    u = rng.standard_normal(w.shape)
    for _ in range(2):
        u = u - (u @ w) / (w @ w) * w
    return u / np.linalg.norm(u)


def _sgd_step(w: np.ndarray, grad: np.ndarray, lr: float, wd: float) -> np.ndarray:
    """One SGD step with coupled weight decay, ``w⁺ = (1−ηλ)w − η∇L``."""
    return (1.0 - lr * wd) * w - lr * grad


def _torch_sgd_step(w, buffer, grad, lr, wd, momentum):
    """One step of ``torch.optim.SGD`` (heavy ball, no dampening); ``buffer=None`` is torch's empty buffer."""
    direction = grad + wd * w
    buffer = direction if buffer is None else momentum * buffer + direction
    return w - lr * buffer, buffer


def _angle(w: np.ndarray, w_next: np.ndarray) -> float:
    """Angle between ``w`` and ``w_next`` from their parallel and orthogonal parts (no arccos of ≈1)."""
    parallel = (w @ w_next) / (w @ w)
    return float(np.arctan2(np.linalg.norm(w_next - parallel * w), parallel * np.linalg.norm(w)))


def _rayleigh(a: np.ndarray, w: np.ndarray) -> float:
    """The scale-invariant loss ``L(w) = wᵀAw / wᵀw``."""
    return float(w @ a @ w / (w @ w))


def _rayleigh_grad(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``∇L(w) = 2(Aw − L(w)w)/‖w‖²``, orthogonal to ``w``."""
    norm_sq = w @ w
    return 2.0 * (a @ w - (w @ a @ w / norm_sq) * w) / norm_sq


def _rayleigh_hessian_unit(a: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Hessian of ``L`` at a unit vector ``u``: ``2(A − L·I) − 4(u(Au)ᵀ + (Au)uᵀ) + 8L·uuᵀ``."""
    au = a @ u
    loss = u @ au
    return 2.0 * (a - loss * np.eye(len(u))) - 4.0 * (np.outer(u, au) + np.outer(au, u)) + 8.0 * loss * np.outer(u, u)


def _random_weights(rng: np.random.Generator, dim: int) -> np.ndarray:
    """Gaussian weights with a norm spread over four decades (the formulas must not care)."""
    return rng.standard_normal(dim) * 10.0 ** rng.uniform(-2.0, 2.0)


# ---------------------------------------------------------------------------------------------------------
# 1–3. One SGD step: norm, effective learning rate, angle
# ---------------------------------------------------------------------------------------------------------


@settings(max_examples=50)
@given(seed=SEEDS, dim=st.integers(2, 50), hyper=lr_wd(), log_grad=st.floats(-4.0, 4.0))
def test_norm_recursion_matches_one_sgd_step(seed, dim, hyper, log_grad):
    lr, wd = hyper
    rng = np.random.default_rng(seed)
    w = _random_weights(rng, dim)
    grad = _orthogonal_direction(rng, w) * 10.0**log_grad * np.linalg.norm(w) / lr
    w_next = _sgd_step(w, grad, lr, wd)
    predicted = numeric.si_norm_after_step(np.linalg.norm(w), np.linalg.norm(grad), lr, wd)
    # Both sides are sums of two non-negative terms, each correct to a few ulps; the residual w·g of the
    # projection adds a relative 1e-16 at most.
    assert_allclose(predicted, np.linalg.norm(w_next), rtol=1e-12)


@settings(max_examples=30)
@given(seed=SEEDS, dim=st.integers(2, 50), hyper=lr_wd(), steps=st.integers(50, 200))
def test_elr_map_tracks_vector_sgd(seed, dim, hyper, steps):
    lr, wd = hyper
    rng = np.random.default_rng(seed)
    w = _random_weights(rng, dim)
    elr = numeric.effective_lr(lr, np.linalg.norm(w))
    assert_allclose(elr, lr / (w @ w), rtol=1e-14)
    for _ in range(steps):
        rho = np.linalg.norm(w)
        # The dimensionless step η̃‖g̃‖ = η‖g‖/ρ spans 1e-3 .. 2 (angles from tiny to ~60°).
        grad = _orthogonal_direction(rng, w) * 10.0 ** rng.uniform(-3.0, 0.3) * rho / lr
        eff_grad = numeric.effective_grad_norm(np.linalg.norm(grad), rho)
        assert_allclose(eff_grad, rho * np.linalg.norm(grad), rtol=1e-14)
        w = _sgd_step(w, grad, lr, wd)
        elr = numeric.elr_after_step(elr, eff_grad, lr, wd)
        # Each step adds a few ulps of relative error to both sides; 200 steps stay far below 1e-10.
        assert_allclose(elr, lr / (w @ w), rtol=1e-10)
        assert_allclose(numeric.effective_lr(lr, np.linalg.norm(w)), elr, rtol=1e-10)


@settings(max_examples=30)
@given(seed=SEEDS, dim=st.integers(2, 20), hyper=lr_wd())
def test_effective_quantities_on_the_unit_sphere(seed, dim, hyper):
    """``w⁺/ρ = (1−ηλ)ŵ − η̃∇L(ŵ)`` with η̃ = effective_lr and ‖∇L(ŵ)‖ = effective_grad_norm (Rayleigh L)."""
    lr, wd = hyper
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((dim, dim))
    a = a + a.T
    w = _random_weights(rng, dim)
    rho = np.linalg.norm(w)
    unit = w / rho
    grad_unit = _rayleigh_grad(a, unit)
    assert_allclose(
        numeric.effective_grad_norm(np.linalg.norm(_rayleigh_grad(a, w)), rho),
        np.linalg.norm(grad_unit),
        rtol=1e-12,
    )
    elr = numeric.effective_lr(lr, rho)
    expected = (1.0 - lr * wd) * unit - elr * grad_unit
    # Absolute tolerance: the components are O(1) and O(η̃‖g̃‖); rounding in A·w is ~1e-15 of ‖A‖.
    assert_allclose(
        _sgd_step(w, _rayleigh_grad(a, w), lr, wd) / rho,
        expected,
        rtol=1e-12,
        atol=1e-12 * (1.0 + elr * np.linalg.norm(grad_unit)),
    )


@settings(max_examples=50)
@given(seed=SEEDS, dim=st.integers(2, 50), hyper=lr_wd(), log_step=st.floats(-8.0, 1.0))
def test_angular_update_matches_angle_between_steps(seed, dim, hyper, log_step):
    lr, wd = hyper
    rng = np.random.default_rng(seed)
    w = _random_weights(rng, dim)
    rho = np.linalg.norm(w)
    grad = _orthogonal_direction(rng, w) * 10.0**log_step * rho / lr
    theta = _angle(w, _sgd_step(w, grad, lr, wd))
    predicted = numeric.angular_update(
        numeric.effective_lr(lr, rho), numeric.effective_grad_norm(np.linalg.norm(grad), rho), lr, wd
    )
    # The float vector w⁺ fixes its own angle only to ~ε√d absolute (each component is rounded), so
    # tiny angles get an absolute tolerance; large ones are relative to ~1e-13.
    assert_allclose(predicted, theta, rtol=1e-12, atol=20 * EPS * math.sqrt(dim))


@settings(max_examples=50)
@given(hyper=lr_wd(), log_step=st.floats(-300.0, 1.0), rho=SCALES)
def test_angular_update_tiny_angles_to_machine_precision(hyper, log_step, rho):
    """Axis-aligned ``w = ρe₁``, ``g ∥ e₂``: the angle of ``w⁺`` is known to ulps even at 1e-300 rad."""
    lr, wd = hyper
    grad_norm = 10.0**log_step * rho / lr
    w_next = _sgd_step(np.array([rho, 0.0]), np.array([0.0, grad_norm]), lr, wd)
    theta = -np.arctan2(w_next[1], w_next[0])
    predicted = numeric.angular_update(lr / rho**2, rho * grad_norm, lr, wd)
    # arctan of a ratio of two correctly rounded numbers: a few ulps, independent of the angle's size
    # (an arccos-of-cosine formula would lose everything below ~1e-8 rad).
    assert_allclose(predicted, theta, rtol=1e-14)
    assert predicted > 0


# ---------------------------------------------------------------------------------------------------------
# 4–5. Equilibrium
# ---------------------------------------------------------------------------------------------------------


@settings(max_examples=50)
@given(hyper=lr_wd(), eff_grad=SCALES)
def test_equilibrium_is_a_fixed_point(hyper, eff_grad):
    lr, wd = hyper
    rho_star = numeric.equilibrium_si_norm(eff_grad, lr, wd)
    assert_allclose(numeric.si_norm_after_step(rho_star, eff_grad / rho_star, lr, wd), rho_star, rtol=1e-13)
    elr_star = numeric.equilibrium_elr(eff_grad, lr, wd)
    assert_allclose(numeric.effective_lr(lr, rho_star), elr_star, rtol=1e-13)
    assert_allclose(numeric.elr_after_step(elr_star, eff_grad, lr, wd), elr_star, rtol=1e-13)
    # β = 0: the angle per step at equilibrium is exactly arccos(1 − ηλ). arccos near 1 amplifies the
    # rounding of 1 − ηλ to a relative ε/(2ηλ) ≤ 1e-12 for ηλ ≥ 1e-4.
    assert_allclose(
        numeric.angular_update(elr_star, eff_grad, lr, wd), numeric.equilibrium_angular_update(lr, wd), rtol=1e-11
    )


@settings(max_examples=25)
@given(hyper=lr_wd(min_product=1e-2), eff_grad=SCALES)
def test_norm_recursion_converges_to_equilibrium(hyper, eff_grad):
    lr, wd = hyper
    product = lr * wd
    rho_star = numeric.equilibrium_si_norm(eff_grad, lr, wd)
    rho = rho_star * np.array([0.01, 0.3, 1.5, 10.0, 100.0])  # several starts, iterated together
    # From above, ρ² first decays geometrically at (1−ηλ)² (≲ ln(1e4)/(2ηλ) steps); near ρ* the error of
    # ρ² contracts by |2(1−ηλ)² − 1| ≤ 1 − 3ηλ per step for ηλ ≤ 0.3, so 1e-13 needs ≲ 30/(3ηλ) more.
    # ηλ ≥ 1e-2 keeps that under ~1500 steps.
    for _ in range(math.ceil(15.0 / product)):
        rho = numeric.si_norm_after_step(rho, eff_grad / rho, lr, wd)
    assert_allclose(rho, rho_star, rtol=1e-10)


@settings(max_examples=50)
@given(hyper=lr_wd(), beta=MOMENTA)
def test_equilibrium_angle_leading_order(hyper, beta):
    lr, wd = hyper
    exact = numeric.equilibrium_angular_update(lr, wd, beta)
    leading = numeric.equilibrium_angular_update_leading(lr, wd, beta)
    y = lr * wd / (1.0 + beta)
    assert_allclose(1.0 - np.cos(exact), y, rtol=1e-13, atol=4 * EPS)
    # θ*/θ_lead = arcsin(s)/s with s² = y/2: 1 + y/12 + 3y²/160 + 5y³/896 + …, all terms positive and the
    # tail after y/12 below 0.02·y²/(1−y). The rounding of arccos(1 − y) is ε/(2y) relative.
    excess = exact / leading - 1.0 - y / 12.0
    rounding = 2 * EPS / y + 8 * EPS
    assert -rounding <= excess <= 0.02 * y**2 / (1.0 - y) + rounding
    assert 0.0 < exact / leading - 1.0 <= y / 12.0 * (1.0 + 0.3 * y / (1.0 - y)) + rounding


def _momentum_equilibrium_one_minus_cos(lr, wd, momentum, seed, dim=100, chains=16):
    """Time average of ``1 − cos θ_t`` of torch-SGD with momentum in the steady state (``‖g̃‖ = 1``).

    Gradients: a fresh random direction orthogonal to ``w_t`` with norm ``1/ρ_t``; ``chains`` independent
    runs go side by side (rows). Starts at the approximate momentum equilibrium
    ``ρ⁴ ≈ η/(2λ(1−β))``, burns in ``10(1−β)/(ηλ) + 10/(1−β)`` steps (the norm relaxes at rate
    ~ηλ/(1−β), the buffer at 1−β), then averages over ``4/(ηλ)`` steps.
    """
    rng = np.random.default_rng(seed)
    product = lr * wd
    w = rng.standard_normal((chains, dim))
    w *= (lr / (2 * wd * (1 - momentum))) ** 0.25 / np.linalg.norm(w, axis=1, keepdims=True)
    buffer = None
    burn_in = int(10 * (1 - momentum) / product + 10 / (1 - momentum))
    measured = int(4 / product)
    total = 0.0
    for t in range(burn_in + measured):
        norm_sq = np.einsum("ij,ij->i", w, w)
        u = rng.standard_normal(w.shape)
        u -= (np.einsum("ij,ij->i", u, w) / norm_sq)[:, None] * w
        grad = u / (np.linalg.norm(u, axis=1) * np.sqrt(norm_sq))[:, None]
        w_next, buffer = _torch_sgd_step(w, buffer, grad, lr, wd, momentum)
        if t >= burn_in:
            parallel = np.einsum("ij,ij->i", w, w_next) / norm_sq
            orthogonal = np.linalg.norm(w_next - parallel[:, None] * w, axis=1)
            theta = np.arctan2(orthogonal, parallel * np.sqrt(norm_sq))
            total += np.sum(2 * np.sin(theta / 2) ** 2)  # = 1 − cos θ without cancellation
        w = w_next
    return total / (chains * measured)


@pytest.mark.parametrize(
    ("momentum", "product", "rtol"),
    [
        # β = 0: ‖g̃‖ constant makes the norm deterministic, ρ_t → ρ*, and cos θ_t = 1 − ηλ exactly.
        (0.0, 1e-2, 1e-10),
        # β > 0: the buffer mixes past gradients, so ρ_t and θ_t fluctuate. Observed relative errors
        # (6 seeds each, d = 100, 16 chains): β = 0.5: |err| ≤ 2.4e-4, centred on 0 (statistical);
        # β = 0.9 and 0.95: +0.7e-3 .. +1.25e-3, a bias that shrinks like 1/d (β = 0.9, ηλ = 1e-3:
        # 1.9e-3 at d = 25, ~6e-4 at d = 100, ~1.7e-4 at d = 400): correlations between successive random
        # gradients in finite dimension, which the steady-state argument neglects. 3e-3 is 2.4× the worst.
        (0.5, 5e-3, 3e-3),
        (0.9, 2e-3, 3e-3),
        (0.95, 5e-4, 3e-3),
    ],
)
def test_momentum_equilibrium_angle_matches_simulation(momentum, product, rtol):
    lr = 0.1
    wd = product / lr
    expected = 1.0 - np.cos(numeric.equilibrium_angular_update(lr, wd, momentum))
    assert_allclose(expected, product / (1 + momentum), rtol=1e-12)
    measured = _momentum_equilibrium_one_minus_cos(lr, wd, momentum, seed=1234)
    assert_allclose(measured, expected, rtol=rtol)


# ---------------------------------------------------------------------------------------------------------
# 6–7. Period law
# ---------------------------------------------------------------------------------------------------------


def _steps_until(elr, elr_critical, lr, wd):
    """Iterate ``elr_after_step`` with zero gradient until η̃ ≥ η̃_c; return the number of steps."""
    steps = 0
    while elr < elr_critical:
        elr = numeric.elr_after_step(elr, 0.0, lr, wd)
        steps += 1
    return steps


@settings(max_examples=30)
@given(hyper=lr_wd(min_product=1e-3), elr_start=SCALES, log_ratio=st.floats(0.0, 4.0))
def test_period_length_counts_decay_steps(hyper, elr_start, log_ratio):
    lr, wd = hyper
    elr_critical = elr_start * math.exp(log_ratio)
    period = float(numeric.period_length(elr_start, elr_critical, lr, wd))
    steps = _steps_until(elr_start, elr_critical, lr, wd)
    # T is exact but the iteration rounds: ~T ulps of η̃, i.e. ~T·ε/(2ηλ) ≤ 1e-10 steps for ηλ ≥ 1e-3.
    # Only when T lies that close to an integer may the count be the neighbouring one.
    if abs(period - round(period)) < 1e-9:
        assert steps in (round(period), round(period) + 1)
    else:
        assert steps == math.ceil(period)


@pytest.mark.parametrize(("product", "k"), [(1e-3, 1), (1e-3, 997), (0.05, 40), (0.3, 7), (0.3, 1)])
def test_period_length_at_whole_steps(product, k):
    """η̃_c reached exactly after k decay steps: T is k to 1e-9 and the count is k."""
    lr, elr_start = 0.5, 0.01
    wd = product / lr
    elr_critical = elr_start
    for _ in range(k):
        elr_critical = numeric.elr_after_step(elr_critical, 0.0, lr, wd)
    assert abs(numeric.period_length(elr_start, elr_critical, lr, wd) - k) < 1e-9
    assert _steps_until(elr_start, elr_critical, lr, wd) == k


@settings(max_examples=50)
@given(hyper=lr_wd(), elr_start=SCALES, log_ratio=st.floats(0.01, 10.0))
def test_period_leading_order_and_frequency(hyper, elr_start, log_ratio):
    lr, wd = hyper
    x = lr * wd
    elr_critical = elr_start * math.exp(log_ratio)
    period = numeric.period_length(elr_start, elr_critical, lr, wd)
    leading = numeric.period_length_leading(elr_start, elr_critical, lr, wd)
    assert_allclose(leading, log_ratio / (2 * x), rtol=1e-12)
    # leading/T = −ln(1−x)/x = 1 + x/2 + x²/3 + Σ_{k≥3} x^k/(k+1); the tail is positive and below
    # x³/(4(1−x)). The z₊ of period_length is computed with an absolute error ~ε, relative ~ε/x to ln z₊.
    rounding = 8 * EPS / x
    excess = leading / period - 1.0 - x / 2 - x**2 / 3
    assert -rounding <= excess <= x**3 / (4 * (1 - x)) + rounding
    # Frequency ∝ ηλ: T·ηλ / (ln(η̃_c/η̃_s)/2) = x/(−ln(1−x)) lies in [1 − x/2 − x²/3, 1] and → 1.
    normalised = period * x / (log_ratio / 2)
    assert 1.0 - x / 2 - x**2 / 3 - rounding <= normalised <= 1.0 + rounding


def test_frequency_proportional_to_lr_wd():
    """Along ηλ → 0 at fixed thresholds, ``T·ηλ → ln(η̃_c/η̃_s)/2`` with error ~ηλ/2."""
    elr_start, elr_critical = 0.02, 0.5
    products = np.array([1e-1, 1e-2, 1e-3, 1e-4])
    scaled = numeric.period_length(elr_start, elr_critical, 1.0, products) * products
    error = np.abs(scaled / (math.log(elr_critical / elr_start) / 2) - 1.0)
    assert_allclose(error, products / 2, rtol=0.1)
    assert np.all(np.diff(error) < 0)


@settings(max_examples=40)
@given(hyper=lr_wd_momentum(max_fraction=0.5), log_ratio=st.floats(0.01, 5.0))
def test_momentum_decay_factor_and_period(hyper, log_ratio):
    lr, wd, beta = hyper
    z_plus = float(numeric.norm_decay_factor(lr, wd, beta))
    if beta == 0.0:
        assert_allclose(z_plus, 1 - lr * wd, rtol=1e-14)
    # Zero gradient: w and b stay parallel, so (ρ, b) follows the scalar version of torch's update. The
    # ratio ρ_{t+1}/ρ_t approaches z₊ like (z₋/z₊)^t with z₋ = β/z₊ the other root; ηλ ≤ (1−√β)²/2 keeps
    # z₋/z₊ ≤ ~0.97, so the transient below fits in ~1000 steps.
    decay_ratio = beta / z_plus**2
    transient = 0 if beta == 0 else math.ceil(math.log(1e-13) / math.log(decay_ratio)) + 2
    rho, buffer = 1.0, None
    for _ in range(transient):
        rho, buffer = _torch_sgd_step(rho, buffer, 0.0, lr, wd, beta)
    rho_prev = rho
    rho, buffer = _torch_sgd_step(rho, buffer, 0.0, lr, wd, beta)
    assert abs(rho / rho_prev - z_plus) < 1e-9
    # After the transient ρ² shrinks by z₊² per step: it takes T steps to shrink by η̃_c/η̃_s.
    ratio = math.exp(log_ratio)
    target = rho**2 / ratio
    steps = 0
    while rho**2 > target:
        rho, buffer = _torch_sgd_step(rho, buffer, 0.0, lr, wd, beta)
        steps += 1
    period = float(numeric.period_length(1.0, ratio, lr, wd, beta))
    # The leftover transient is 1e-13 of ρ², and z₊ carries an absolute error ~ε, so T is known to
    # ~ε·T/(1−z₊) ≲ 1e-7 steps here: the count is ceil(T) unless T is that close to an integer.
    if abs(period - round(period)) < 1e-6:
        assert steps in (round(period), round(period) + 1)
    else:
        assert steps == math.ceil(period)
    assert_allclose(
        numeric.period_length_leading(1.0, ratio, lr, wd, beta), (1 - beta) * log_ratio / (2 * lr * wd), rtol=1e-12
    )


def test_norm_decay_factor_at_the_domain_boundary():
    """At ηλ = (1−√β)² the two roots meet at z₊ = √β; the double root is only ~√ε-conditioned."""
    momentum = 0.23
    product = (1 - math.sqrt(momentum)) ** 2
    assert_allclose(numeric.norm_decay_factor(1.0, product, momentum), math.sqrt(momentum), rtol=1e-6)
    assert np.isfinite(numeric.period_length(1.0, 2.0, 1.0, product, momentum))


# ---------------------------------------------------------------------------------------------------------
# 8–9. Stability thresholds on the Rayleigh quotient
# ---------------------------------------------------------------------------------------------------------


@settings(max_examples=40)
@given(
    seed=SEEDS,
    dim=st.integers(2, 10),
    hyper=lr_wd(),
    top=SCALES,
    factor=st.sampled_from([0.95, 1.05]) | st.floats(0.3, 0.99) | st.floats(1.01, 1.7),
)
def test_critical_norm_separates_stable_from_unstable(seed, dim, hyper, top, factor):
    lr, wd = hyper
    rng = np.random.default_rng(seed)
    # A = diag(0, a₂, a₃, …) with a₂ the largest: minimum at e₁, where the Hessian at unit norm is 2A.
    eigenvalues = np.concatenate([[0.0, top], top * rng.uniform(0.0, 1.0, dim - 2)])
    a = np.diag(eigenvalues)
    eff_sharpness = 2.0 * top
    assert_allclose(np.linalg.eigvalsh(_rayleigh_hessian_unit(a, np.eye(dim)[0])).max(), eff_sharpness)
    rho_c = numeric.critical_si_norm(eff_sharpness, lr, wd)
    elr_c = numeric.critical_elr(eff_sharpness, lr, wd)
    assert_allclose(numeric.effective_lr(lr, rho_c), elr_c, rtol=1e-14)
    # η̃s̃ = factor · 2(1−ηλ), i.e. ρ = ρ_c/√factor.
    rho = float(rho_c / math.sqrt(factor))
    elr = lr / rho**2
    assert_allclose(elr * eff_sharpness, factor * 2 * (1 - lr * wd), rtol=1e-13)
    delta = 1e-7
    w = rho * (np.eye(dim)[0] + delta * np.eye(dim)[1])
    w_next = _sgd_step(w, _rayleigh_grad(a, w), lr, wd)
    multiplier = np.arctan2(w_next[1], w_next[0]) / np.arctan2(w[1], w[0])
    # Linearisation error O(δ²) = 1e-14 relative. Rounding: the second component of w⁺ is a difference of
    # two terms of size ρδ, so the multiplier is off by ~ε·(1 + η̃s̃) absolutely (and it vanishes at factor
    # 0.5). Observed over 500 draws: ≤ 2e-13 absolute.
    assert_allclose(multiplier, 1 - elr * eff_sharpness / (1 - lr * wd), rtol=1e-9, atol=1e-11)
    assert (abs(multiplier) > 1) == (rho < rho_c)


def test_rayleigh_hessian_closed_form_matches_finite_differences():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((5, 5))
    a = a + a.T
    u = rng.standard_normal(5)
    u /= np.linalg.norm(u)
    h = 1e-6
    columns = [(_rayleigh_grad(a, u + h * e) - _rayleigh_grad(a, u - h * e)) / (2 * h) for e in np.eye(5)]
    # Central differences: O(h²) truncation plus O(ε/h) rounding, both ~1e-10 of ‖A‖.
    assert_allclose(np.array(columns).T, _rayleigh_hessian_unit(a, u), atol=1e-8 * np.abs(a).max())


@functools.cache
def _unit_smoothness_2d(points: int = 20001) -> float:
    """``L̃ = sup_{‖u‖=1} ‖H(u)‖`` for ``A = diag(0, 1)`` on a dense grid of angles in [0, π) (H(−u) = H(u)).

    H is linear in A, so ``diag(0, a)`` has ``L̃ = a`` times this.
    """
    a = np.diag([0.0, 1.0])
    angles = np.linspace(0.0, np.pi, points, endpoint=False)
    hessians = np.array([_rayleigh_hessian_unit(a, np.array([np.cos(t), np.sin(t)])) for t in angles])
    return float(np.abs(np.linalg.eigvalsh(hessians)).max())


@settings(max_examples=25)
@given(seed=SEEDS, hyper=lr_wd(), top=SCALES)
def test_descent_norm_guarantees_loss_decrease(seed, hyper, top):
    lr, wd = hyper
    rng = np.random.default_rng(seed)
    a = np.diag([0.0, top])
    # ‖H‖ is a trigonometric polynomial of the angle with derivatives ~top, so the grid (step 1.6e-4)
    # misses the sup by ~1e-8 relative, well inside the 1% margin below.
    smoothness = top * _unit_smoothness_2d()
    rho_d = float(numeric.descent_si_norm(smoothness, lr, wd))
    for _ in range(32):
        angle = rng.uniform(0.0, 2 * np.pi)
        rho = rho_d * rng.uniform(1.01, 10.0)
        w = rho * np.array([np.cos(angle), np.sin(angle)])
        w_next = _sgd_step(w, _rayleigh_grad(a, w), lr, wd)
        # Non-increase, up to the rounding of L itself (a few ε·top).
        assert _rayleigh(a, w_next) <= _rayleigh(a, w) + 8 * EPS * top


def test_below_critical_norm_a_step_can_increase_the_loss():
    """Negative control for the descent test: below ρ_c(s̃) the loss near the minimum grows."""
    lr, wd, top = 0.1, 0.1, 3.0
    a = np.diag([0.0, top])
    assert _unit_smoothness_2d() >= 2  # L̃ ≥ s̃ = 2·top, so ρ_d ≥ ρ_c
    rho = 0.9 * float(numeric.critical_si_norm(2 * top, lr, wd))
    w = rho * np.array([1.0, 1e-3])
    assert _rayleigh(a, _sgd_step(w, _rayleigh_grad(a, w), lr, wd)) > _rayleigh(a, w)


# ---------------------------------------------------------------------------------------------------------
# 10. Symmetry
# ---------------------------------------------------------------------------------------------------------


def _run_noisy_rayleigh(a, noise, w0, lr, wd, momentum):
    """Torch-SGD with momentum on ``L_t(w) = wᵀ(A + N_t)w/wᵀw``; returns directions and η̃ per step."""
    w, buffer = w0, None
    directions, elrs = [], []
    for noise_t in noise:
        w, buffer = _torch_sgd_step(w, buffer, _rayleigh_grad(a + noise_t, w), lr, wd, momentum)
        norm = np.linalg.norm(w)
        directions.append(w / norm)
        elrs.append(lr / norm**2)
    return np.array(directions), np.array(elrs)


@settings(max_examples=30)
@given(
    seed=SEEDS,
    dim=st.integers(3, 20),
    hyper=lr_wd(max_product=1e-2),
    momentum=MOMENTA,
    scale=SCALES,
    step=st.floats(0.01, 0.5),
)
def test_symmetric_config_gives_identical_directions(seed, dim, hyper, momentum, scale, step):
    lr, wd = hyper
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((dim, dim))
    a = (a + a.T) / 2
    noise = rng.standard_normal((100, dim, dim)) * 0.3
    noise = (noise + noise.transpose(0, 2, 1)) / 2  # the same minibatch sequence for both runs
    # ρ₀ such that η̃₀‖A‖/(1−β) = step: a stable regime, where the ~1e-16 differences the rescaling makes
    # at every step are not amplified exponentially over 100 steps.
    rho0 = math.sqrt(lr * np.abs(np.linalg.eigvalsh(a)).max() / ((1 - momentum) * step))
    direction0 = rng.standard_normal(dim)
    direction0 /= np.linalg.norm(direction0)
    lr_c, wd_c, rho0_c = numeric.symmetric_config(lr, wd, rho0, scale)
    assert_allclose([lr_c, wd_c, rho0_c], [scale * lr, wd / scale, math.sqrt(scale) * rho0], rtol=1e-15)
    dirs, elrs = _run_noisy_rayleigh(a, noise, rho0 * direction0, lr, wd, momentum)
    dirs_c, elrs_c = _run_noisy_rayleigh(a, noise, rho0_c * direction0, float(lr_c), float(wd_c), momentum)
    assert_allclose(dirs_c, dirs, rtol=0, atol=1e-9)
    assert_allclose(elrs_c, elrs, rtol=1e-9)


# ---------------------------------------------------------------------------------------------------------
# 11. Domain errors and broadcasting
# ---------------------------------------------------------------------------------------------------------

VALID = {
    "effective_lr": {"lr": 0.1, "si_norm": 2.0},
    "effective_grad_norm": {"grad_norm": 0.5, "si_norm": 2.0},
    "si_norm_after_step": {"si_norm": 2.0, "grad_norm": 0.5, "lr": 0.1, "wd": 0.01},
    "elr_after_step": {"elr": 0.1, "eff_grad_norm": 0.5, "lr": 0.1, "wd": 0.01},
    "angular_update": {"elr": 0.1, "eff_grad_norm": 0.5, "lr": 0.1, "wd": 0.01},
    "equilibrium_si_norm": {"eff_grad_norm": 0.5, "lr": 0.1, "wd": 0.01},
    "equilibrium_elr": {"eff_grad_norm": 0.5, "lr": 0.1, "wd": 0.01},
    "equilibrium_angular_update": {"lr": 0.1, "wd": 0.01, "momentum": 0.5},
    "equilibrium_angular_update_leading": {"lr": 0.1, "wd": 0.01, "momentum": 0.5},
    "critical_elr": {"eff_sharpness": 10.0, "lr": 0.1, "wd": 0.01},
    "critical_si_norm": {"eff_sharpness": 10.0, "lr": 0.1, "wd": 0.01},
    "descent_si_norm": {"eff_smoothness": 10.0, "lr": 0.1, "wd": 0.01},
    "norm_decay_factor": {"lr": 0.1, "wd": 0.01, "momentum": 0.5},
    "period_length": {"elr_start": 0.1, "elr_critical": 1.0, "lr": 0.1, "wd": 0.01, "momentum": 0.5},
    "period_length_leading": {"elr_start": 0.1, "elr_critical": 1.0, "lr": 0.1, "wd": 0.01, "momentum": 0.5},
    "symmetric_config": {"lr": 0.1, "wd": 0.01, "si_norm": 2.0, "scale": 3.0},
    "stability_threshold": {"lr": 0.1, "wd": 0.01, "momentum": 0.5},
    "escape_delay": {"log_amplification": 10.0, "lr": 0.1, "wd": 0.01},
    "whole_period": {"elr_start": 0.1, "elr_critical": 1.0, "log_amplification": 10.0, "lr": 0.1, "wd": 0.01},
    "plane_period": {"log_amplification": 10.0, "lr": 0.1, "wd": 0.01},
    "escape_angle": {"lr": 0.1, "wd": 0.01},
    "noise_floor": {"eff_sharpness": 2.0, "gradient_noise": 1e-5, "lr": 0.1, "wd": 0.01},
    "catapult_period": {
        "elr_critical": 0.02,
        "far_grad_norm": 50.0,
        "landing_angle": 0.35,
        "slowdown": 1.1,
        "spike_steps": 5.0,
        "lr": 0.1,
        "wd": 0.01,
    },
}
POSITIVE = {
    "lr",
    "si_norm",
    "elr",
    "eff_sharpness",
    "eff_smoothness",
    "elr_start",
    "elr_critical",
    "scale",
    "log_amplification",
    "gradient_noise",
    "far_grad_norm",
    "landing_angle",
    "slowdown",
}
NON_NEGATIVE = {"wd", "grad_norm", "eff_grad_norm", "spike_steps"}
STRICT = {  # arguments that must be > 0 although their symbol's domain is ≥ 0
    "equilibrium_si_norm": {"eff_grad_norm", "wd"},
    "equilibrium_elr": {"eff_grad_norm", "wd"},
    "period_length": {"wd"},
    "period_length_leading": {"wd"},
    "escape_delay": {"wd"},
    "whole_period": {"wd"},
    "plane_period": {"wd"},
    "noise_floor": {"wd"},
    "catapult_period": {"wd"},
}
MONOTONE_DECAY = {"norm_decay_factor", "period_length", "period_length_leading", "stability_threshold"}


HELPERS = {"validate", "monotone_decay"}  # public, but domain checks themselves rather than formulas


def test_every_public_formula_is_covered():
    public = {
        name
        for name, obj in vars(numeric).items()
        if inspect.isfunction(obj) and not name.startswith("_") and obj.__module__ == numeric.__name__
    }
    assert public - HELPERS == set(VALID)
    for name, args in VALID.items():
        assert list(inspect.signature(getattr(numeric, name)).parameters) == list(args)


def _domain_cases():
    """(function, arguments, message pattern) for one out-of-domain argument at a time."""
    for name, valid in VALID.items():
        for arg, value in valid.items():
            bad = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "abc": "abc", "array_nan": [value, np.nan]}
            if arg in POSITIVE:
                bad |= {"zero": 0.0, "negative": -1.0}
            if arg in NON_NEGATIVE:
                bad |= {"negative": -1e-3}
            if arg in STRICT.get(name, ()):
                bad |= {"zero": 0.0}
            if arg == "momentum":
                bad |= {"one": 1.0, "above_one": 1.5, "negative": -0.1}
            for label, bad_value in bad.items():
                yield pytest.param(name, {**valid, arg: bad_value}, rf"^{arg} must", id=f"{name}-{arg}-{label}")
        if {"lr", "wd"} <= valid.keys():
            for lr, wd in [(10.0, 0.1), (4.0, 0.5), (4e266, 4e266)]:  # the last overflows to inf
                yield pytest.param(
                    name, {**valid, "lr": lr, "wd": wd}, r"^lr \* wd must be < 1", id=f"{name}-lr_wd-{lr * wd:g}"
                )
        if name in MONOTONE_DECAY:
            yield pytest.param(
                name, {**valid, "lr": 0.1, "wd": 0.1, "momentum": 0.9}, r"sqrt\(momentum\)", id=f"{name}-oscillating"
            )
        if "elr_start" in valid:
            yield pytest.param(
                name,
                {**valid, "elr_start": 2.0, "elr_critical": 1.0},
                r"elr_critical must be >= elr_start",
                id=f"{name}-start_above_critical",
            )


@pytest.mark.parametrize(("name", "args", "message"), list(_domain_cases()))
def test_domain_errors(name, args, message):
    with pytest.raises(ValueError, match=message):
        getattr(numeric, name)(**args)


@pytest.mark.parametrize("name", list(VALID))
def test_valid_arguments_accepted(name):
    result = getattr(numeric, name)(**VALID[name])
    assert np.all(np.isfinite(result))


def test_domain_edges_that_are_allowed():
    """λ = 0 is in the domain of the per-step formulas; the steady-state angle needs no monotone decay."""
    assert numeric.equilibrium_angular_update(0.1, 0.0) == 0.0
    assert numeric.norm_decay_factor(0.1, 0.0, 0.5) == 1.0
    assert numeric.si_norm_after_step(2.0, 0.0, 0.1, 0.0) == 2.0
    # ηλ = 0.01 > (1 − √0.9)²: the zero-gradient decay oscillates, but the steady state still exists.
    assert_allclose(1 - np.cos(numeric.equilibrium_angular_update(0.1, 0.1, 0.9)), 0.01 / 1.9, rtol=1e-12)


@pytest.mark.parametrize("name", list(VALID))
def test_broadcasting(name):
    """First argument of shape (3, 1), second of shape (4,): the result is (3, 4), element by element."""
    function = getattr(numeric, name)
    (first, x), (second, y), *rest = VALID[name].items()
    xs = x * np.array([[1.0], [1.1], [1.2]])
    ys = y * np.array([1.0, 0.9, 0.8, 0.7])
    result = function(**{first: xs, second: ys}, **dict(rest))
    outputs = result if isinstance(result, tuple) else (result,)
    for i in range(3):
        for j in range(4):
            scalar = function(**{first: xs[i, 0], second: ys[j]}, **dict(rest))
            for output, expected in zip(outputs, scalar if isinstance(scalar, tuple) else (scalar,), strict=True):
                assert output.shape == (3, 4)
                assert output.dtype == np.float64
                assert_allclose(output[i, j], expected, rtol=1e-15)


def _measured_threshold(lr: float, wd: float, momentum: float, steps: int = 3000) -> float:
    """η̃·s̃ where the top direction of the deterministic Rayleigh toy stops shrinking under torch's SGD: the step
    where the angle to the minimum is smallest, started a little off the minimum well below any threshold."""
    from bnwd.simulate.models import RayleighQuotient

    model = RayleighQuotient(np.array([0.0, 0.5]), noise=0.0)  # the plane of the minimum and the top direction, s̃ = 1
    w, buffer = np.array([[1.0, 1e-6]]), None
    # start at η̃s̃ = 1.5, below both thresholds (2(1−ηλ) and ≈ 2(1+β)) and clear of GD's fastest contraction at
    # η̃s̃ ≈ 1, where the angle would underflow
    w *= math.sqrt(lr / 1.5)
    angles, elrs = [], []
    for _ in range(steps):
        _, grad = model.loss_and_grad(w, None)
        elrs.append(lr / float((w * w).sum()))
        angles.append(abs(math.atan2(w[0, 1], w[0, 0])))
        if angles[-1] > 1e-3:  # the direction has left the minimum: the first period is over
            break
        w, buffer = _torch_sgd_step(w, buffer, grad, lr, wd, momentum)
    # heavy ball spirals in (complex roots) until close to the threshold: the angle's envelope, the largest over
    # a few of its turns, is what shrinks and then grows
    envelope = np.lib.stride_tricks.sliding_window_view(np.asarray(angles), 9).max(axis=1)
    start = 20  # past the transient of the start (the empty buffer)
    turn = start + int(np.argmin(envelope[start:])) + 4
    assert start < turn < len(angles) - 5 < steps - 6, "the angle must shrink first and grow after, within the run"
    assert min(angles) > 1e-280, "the angle must stay clear of underflow for its turn to be seen"
    return elrs[turn] * model.eff_sharpness


@pytest.mark.parametrize(("lr", "wd", "momentum"), [(1.0, 1e-3, 0.0), (1.0, 1e-4, 0.9), (0.1, 1e-2, 0.5)])
def test_stability_threshold_is_where_the_toys_top_direction_turns(lr, wd, momentum):
    measured = _measured_threshold(lr, wd, momentum)
    predicted = float(numeric.stability_threshold(lr, wd, momentum))
    # η̃ grows by z₊⁻² ≈ 1 + 2ηλ/(1−β) per step; the envelope resolves the turn to a few steps
    assert abs(measured / predicted - 1) <= 10 * lr * wd / (1 - momentum)
    if momentum:  # control: plain GD's threshold is not where heavy ball turns
        assert abs(measured / (2 * (1 - lr * wd)) - 1) > 0.1


@settings(max_examples=40, deadline=None)
@given(lr_wd=st.floats(1e-4, 3e-2), log_amplification=st.floats(3.0, 40.0))
def test_escape_delay_matches_the_linear_mode_iteration(lr_wd, log_amplification):
    # the error's multiplier k steps past the crossing is |1 − η̃_k s̃/(1−ηλ)| with η̃_k = η̃_c(1−ηλ)^(−2k): count
    # the steps until the product reaches A
    lr = 1.0
    critical = float(numeric.critical_elr(1.0, lr, lr_wd))
    grown, steps = 0.0, 0
    while grown < log_amplification:
        grown += math.log(abs(1 - critical * (1 - lr_wd) ** (-2 * steps) / (1 - lr_wd)))
        steps += 1
    delay = float(numeric.escape_delay(log_amplification, lr, lr_wd))
    # the first step past A, and the exponent's O(ηλk) relative error summed over the delay
    assert abs(steps - delay) <= 1 + lr_wd * delay**2 / 2
    leading = math.sqrt(log_amplification / (2 * lr_wd))
    assert abs(delay - leading) <= 1  # (1 + √(1 + 2 ln A/ηλ))/2 against √(ln A/2ηλ)
    whole = numeric.whole_period(0.5 * critical, critical, log_amplification, lr, lr_wd)
    assert whole == pytest.approx(float(numeric.period_length(0.5 * critical, critical, lr, lr_wd, 0.0)) + delay)


def _plane_period_iterated(lr_wd: float, log_amplification: float, periods: int = 6) -> float:
    """Mean period of GD on L = (s̃/2) sin²θ (the plane map of theory.escape, angle floored at 1/A), measured
    between the peaks of a = η̃s̃/(2(1−ηλ)) after a transient of three."""
    decay, floor = 1 - lr_wd, math.exp(-log_amplification)
    overshoot, angle, history, peaks = 0.5, 0.3, [], []
    while len(peaks) < periods + 3:
        gradient = math.sin(2 * angle)  # η̃‖g̃‖/(1−ηλ) = a sin 2θ
        history.append(overshoot)
        angle = math.remainder(angle - math.atan(overshoot * gradient), math.pi)  # ±w are the same minimum
        angle = math.copysign(max(abs(angle), floor), angle)
        overshoot /= decay**2 * (1 + (overshoot * gradient) ** 2)  # the exact ELR map
        if len(history) >= 3 and history[-3] <= history[-2] > history[-1]:
            peaks.append(len(history) - 2)
    return float(np.mean(np.diff(peaks[3:])))


@settings(max_examples=25, deadline=None)
@given(lr_wd=st.floats(1e-3, 2e-2), log_amplification=st.floats(8.0, 25.0))
def test_plane_period_matches_the_plane_map(lr_wd, log_amplification):
    predicted = float(numeric.plane_period(log_amplification, 1.0, lr_wd))
    assume(lr_wd * predicted / 2 <= 0.35)  # ηλK ≪ 1, where the delay's exponent holds
    measured = _plane_period_iterated(lr_wd, log_amplification)
    # 150 random draws of this domain: worst −12 % (ln A ≈ 8, where the 2-cycle's amplitude is not yet O(1))
    assert abs(measured / predicted - 1) <= 0.15
    # control: the escape delay alone (the reset's decay forgotten) is about half the period
    assert abs(measured / float(numeric.escape_delay(log_amplification, 1.0, lr_wd)) - 1) > 0.5


@settings(max_examples=20, deadline=None)
@given(lr_wd=st.floats(1e-3, 3e-2), log_start=st.floats(-20.0, -8.0))
def test_escape_angle_is_where_the_plane_maps_elr_peaks(lr_wd, log_start):
    decay, overshoot, angle = 1 - lr_wd, 1.0, math.exp(log_start)  # from the crossing, a tiny error
    while True:
        swing = overshoot * math.sin(2 * angle)  # tan of the angular update
        following = overshoot / (decay**2 * (1 + swing**2))
        if following < overshoot:
            break
        angle, overshoot = angle - math.atan(swing), following
    predicted = float(numeric.escape_angle(1.0, lr_wd))
    # the angle grows by |1 − 2a| per step: the peak is found to within one step's growth
    assert abs(math.log(abs(angle) / predicted)) <= math.log(2 * overshoot - 1)
    assert abs(math.log(abs(angle) / (2 * predicted))) > 0.2  # control: the whole equilibrium update is not it


@settings(max_examples=10, deadline=None)
@given(lr_wd=st.floats(1e-3, 1e-2), log_noise=st.floats(-16.0, -4.0))
def test_noise_floor_is_the_noisy_linear_modes_error_at_the_crossing(lr_wd, log_noise):
    # x⁺ = (1 − 2a)x + κξ with a = (1−ηλ)^(−2t) through the crossing (t = 0); the error at the end, divided by
    # its growth since the crossing, is the error the kicks leave there
    kick, reps = math.exp(log_noise), 2000
    steps = np.arange(-int(4 / math.sqrt(lr_wd)), int(4 / math.sqrt(lr_wd)))
    multiplier = 1 - 2 * (1 - lr_wd) ** (-2.0 * steps)
    rng = np.random.default_rng(0)
    error = np.zeros(reps)
    for m in multiplier:
        error = m * error + kick * rng.standard_normal(reps)
    at_crossing = np.log(np.abs(error)) - np.sum(np.log(np.abs(multiplier[steps >= 0])))
    predicted = math.log(float(numeric.noise_floor(2.0, kick, 1.0, lr_wd)))  # s̃ = 2: κ = σ
    # 2000 draws of ln|N|: standard error 0.025; the sum over steps taken as an integral: < 0.03 in ln
    assert abs(at_crossing.mean() - predicted) <= 0.1
    # control: a single kick is not the floor (ln((π/4ηλ)^¼ e^{−(γ+ln 2)/2}) ≥ 0.37 for ηλ ≤ 0.01)
    assert abs(at_crossing.mean() - math.log(kick)) > 0.3


def test_escape_delay_domain():
    with pytest.raises(ValueError, match="wd must be finite and > 0"):
        numeric.escape_delay(10.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="log_amplification"):
        numeric.escape_delay(-1.0, 1.0, 0.01)


@settings(max_examples=50, deadline=None)
@given(
    lr_wd=st.floats(1e-3, 0.05),
    jump=st.floats(0.1, 3.0),
    slowdown=st.floats(1.0, 1.5),
    spike_steps=st.integers(0, 10),
)
def test_catapult_period_counts_the_steps_of_its_own_assumptions(lr_wd, jump, slowdown, spike_steps):
    # land at θ/g, grow by (1−ηλ)^{−2/s} a step until η̃_c: the formula is the step count, to the step
    landing, far = 0.35, 50.0
    critical = landing / far * math.exp(jump)
    elr, steps = landing / far, 0
    while elr < critical:
        elr *= (1 - lr_wd) ** (-2 / slowdown)
        steps += 1
    predicted = float(numeric.catapult_period(critical, far, landing, slowdown, spike_steps, 1.0, lr_wd))
    assert spike_steps + steps - 1 <= predicted <= spike_steps + steps
    # the frequency law's leading order: T·ηλ → s·J/2
    assert (predicted - spike_steps) * lr_wd == pytest.approx(slowdown * jump / 2, rel=lr_wd)


def test_catapult_period_refuses_a_landing_above_the_threshold():
    with pytest.raises(ValueError, match="landing"):
        numeric.catapult_period(0.01, 10.0, 0.5, 1.0, 5, 1.0, 0.01)
