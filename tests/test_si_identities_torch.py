"""Scale-invariance identities of real BatchNorm networks, checked with torch.func.

A weight ``w`` that is directly followed by ``BatchNorm(affine=False)`` in train
mode (batch statistics) makes the loss scale-invariant (SI): ``L(c w) = L(w)``
for every ``c > 0``.  Differentiating that once and twice gives

1. ``L(c w) = L(w)``
2. ``grad L(c w) = grad L(w) / c``
3. ``w . grad L(w) = 0``                       (Euler, d/dc at c = 1)
4. ``H(c w) v = H(w) v / c**2``                 (Hessian-vector products)
5. ``H(w) w = -grad L(w)``                     (d/dc of identity 2 at c = 1)

These are checked on random float64 MLPs (Linear -> BatchNorm1d -> ReLU) and
convnets (Conv2d -> BatchNorm2d -> ReLU) with a fixed random head and a
cross-entropy loss, both for each SI weight alone and for the joint vector of
all SI weights.  Architectures, shapes, batch sizes, scales and seeds are drawn
by hypothesis.  Parameters and (cloned) buffers are passed to
``torch.func.functional_call`` explicitly, gradients come from
``torch.func.grad`` and Hessian-vector products from forward-over-reverse
``torch.func.jvp``.

eps = 0.  Recent torch rejects ``eps <= 0`` in training, so the "exact" nets use
``eps = finfo(float64).tiny``: ``var + tiny`` rounds to ``var`` for any variance
above ~1e-292, so the arithmetic is bit-identical to eps = 0 (asserted per
example).  The identities then hold up to float64 rounding; see ``RTOL``.

eps > 0.  ``BN_eps(t z) = BN_{eps/t**2}(z)`` exactly, so scaling the SI weights
by ``t`` only changes the eps of their BNs.  With ``y_k`` the BN output of
channel ``k``, ``sigma_k**2`` its (biased) pre-BN batch variance and
``g_k = dL/dy_k`` this gives the exact "generalised Euler" identity

    w . grad L(w) = eps * sum_k <g_k, y_k> / (sigma_k**2 + eps),

which is tested to float64 precision.  Along the path ``t -> L(t w)`` it yields
``|dL/dt| <= eps * S(t) / (t**3 v(t))`` with ``S = sum_k |<g_k, y_k>|`` and
``v(t) = min_k sigma_k**2(t w) / t**2``; integrating from 1 to c,

    |L(c w) - L(w)| <= eps/2 * |1 - 1/c**2| * sup_t S(t)/v(t).

So the relative violation is of order ``eps / var_min * |1 - 1/c**2|`` times the
loss's sensitivity to per-channel rescaling of the BN outputs.  The test
estimates the sup by the max over a geometric grid of t in [1, c] and takes
twice that (the factor 2 absorbs grid-vs-sup error, since S/v only drifts by
O(eps/var) along the path), i.e. it asserts
``|L(c w) - L(w)| <= eps * |1 - 1/c**2| * max_grid S/v`` (+ rounding).
Over 600 random draws the observed violation/bound ratio never exceeded 0.5,
i.e. the first-order bound itself was never beaten and the factor 2 was unused.
A separate test shows that this violation is really nonzero (c = 0.01), and a
negative control (weights *not* followed by BN) shows the checker can fail.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn
from torch.func import functional_call, grad, jvp

DTYPE = torch.float64
EPS_FREE = torch.finfo(DTYPE).tiny
EPS_DEFAULT = 1e-5

# float64 unit roundoff is 1.1e-16.  A forward/backward pass through <= 3 small
# BN layers accumulates O(10-100) roundings, amplified by the normalisation's
# 1/std of the most degenerate channel (random draws reach var_min ~ 1e-5).
# Over 300 random draws per architecture the worst residual was ~2e-12, while
# the smallest genuine violations exercised here (eps = 1e-5 BN at c = 0.01;
# weights not followed by BN) were >~1e-6.  1e-9 sits in between with >= 2.5
# orders of margin on each side.  Residuals are relative to each identity's
# natural scale (|L|, max|grad|, |w| |grad|, max|Hv|), so the absolute
# tolerance is relative to the gradient's scale.
RTOL = 1e-9

# torch's forward-AD setup scripts its jvp decompositions on first use, which
# warns on recent torch; that is torch-internal, not something tested here.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

# Grid points per path when estimating sup_t S(t)/v(t) for the eps bound.
N_GRID = 9


# --------------------------------------------------------------------------
# Random architectures
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class MlpSpec:
    """Linear(bias=False) -> [BN1d] -> ReLU blocks, then a Linear head."""

    seed: int
    in_dim: int
    widths: tuple[int, ...]
    batch: int
    n_classes: int


@dataclass(frozen=True)
class ConvSpec:
    """Conv2d(bias=False) -> [BN2d] -> ReLU blocks, then flatten + Linear head."""

    seed: int
    in_channels: int
    side: int
    channels: tuple[int, ...]
    batch: int
    n_classes: int


@dataclass(frozen=True)
class Problem:
    """A train-mode network, its data, and which weights are SI."""

    model: nn.Module
    x: Tensor
    y: Tensor
    si_names: tuple[str, ...]  # weights directly followed by an affine-free BN
    bn_after: dict[str, str]  # SI weight name -> name of the BN following it
    head_name: str  # a weight NOT followed by BN


def _blocks(
    make_layer: Callable[[int, int], nn.Module],
    make_bn: Callable[[int], nn.Module] | None,
    sizes: Sequence[int],
    activation: Callable[[], nn.Module] = nn.ReLU,
) -> tuple[list[nn.Module], list[str], dict[str, str]]:
    """Build layer -> BN -> activation blocks.

    Returns the modules, the SI weight names and the weight -> BN name map.
    """
    layers: list[nn.Module] = []
    si_names: list[str] = []
    bn_after: dict[str, str] = {}
    for fan_in, fan_out in itertools.pairwise(sizes):
        idx = len(layers)
        layers.append(make_layer(fan_in, fan_out))
        if make_bn is not None:
            layers.append(make_bn(fan_out))
            si_names.append(f"{idx}.weight")
            bn_after[f"{idx}.weight"] = str(idx + 1)
        layers.append(activation())
    return layers, si_names, bn_after


def build_mlp(spec: MlpSpec, eps: float, *, batchnorm: bool = True) -> Problem:
    """Seeded MLP problem; ``batchnorm=False`` gives the plain linear non-SI control."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        layers, si_names, bn_after = _blocks(
            lambda i, o: nn.Linear(i, o, bias=False, dtype=DTYPE),
            (lambda o: nn.BatchNorm1d(o, eps=eps, affine=False, dtype=DTYPE)) if batchnorm else None,
            (spec.in_dim, *spec.widths),
            # Without BN, dead ReLUs could make L locally constant (trivially
            # "invariant"); the control is therefore purely linear.
            activation=nn.ReLU if batchnorm else nn.Identity,
        )
        head_name = f"{len(layers)}.weight"
        layers.append(nn.Linear(spec.widths[-1], spec.n_classes, dtype=DTYPE))
        model = nn.Sequential(*layers).train()
        x = torch.randn(spec.batch, spec.in_dim, dtype=DTYPE)
        y = torch.randint(spec.n_classes, (spec.batch,))
    return Problem(model, x, y, tuple(si_names), bn_after, head_name)


def build_conv(spec: ConvSpec, eps: float) -> Problem:
    """Seeded convnet problem; BN statistics are over batch x H x W."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        layers, si_names, bn_after = _blocks(
            lambda i, o: nn.Conv2d(i, o, 3, padding=1, bias=False, dtype=DTYPE),
            lambda o: nn.BatchNorm2d(o, eps=eps, affine=False, dtype=DTYPE),
            (spec.in_channels, *spec.channels),
        )
        layers.append(nn.Flatten())
        head_name = f"{len(layers)}.weight"
        n_features = spec.channels[-1] * spec.side**2
        layers.append(nn.Linear(n_features, spec.n_classes, dtype=DTYPE))
        model = nn.Sequential(*layers).train()
        x = torch.randn(spec.batch, spec.in_channels, spec.side, spec.side, dtype=DTYPE)
        y = torch.randint(spec.n_classes, (spec.batch,))
    return Problem(model, x, y, tuple(si_names), bn_after, head_name)


def build(spec: MlpSpec | ConvSpec, eps: float) -> Problem:
    """Dispatch on the spec type."""
    return build_mlp(spec, eps) if isinstance(spec, MlpSpec) else build_conv(spec, eps)


seeds = st.integers(0, 2**31 - 1)
scales = st.floats(0.05, 20.0)

# Batch >= 3 for MLPs: BN1d over 2 samples maps every channel to exactly +-1,
# so the loss is locally constant in w and its gradient is pure roundoff.
mlp_specs = st.builds(
    MlpSpec,
    seed=seeds,
    in_dim=st.integers(2, 6),
    widths=st.lists(st.integers(2, 8), min_size=1, max_size=3).map(tuple),
    batch=st.integers(3, 16),
    n_classes=st.integers(2, 4),
)
# Conv BN pools batch x H x W (>= 2 x 2 x 2 values), so batch 2 is fine here.
conv_specs = st.builds(
    ConvSpec,
    seed=seeds,
    in_channels=st.integers(1, 3),
    side=st.integers(2, 5),
    channels=st.lists(st.integers(1, 4), min_size=1, max_size=2).map(tuple),
    batch=st.integers(2, 4),
    n_classes=st.integers(2, 4),
)
SPECS = {"mlp": mlp_specs, "conv": conv_specs}


def targets(problem: Problem) -> list[tuple[str, ...]]:
    """Each SI weight alone, then all SI weights jointly."""
    singles = [(name,) for name in problem.si_names]
    return [*singles, problem.si_names] if len(singles) > 1 else singles


# --------------------------------------------------------------------------
# Loss as a function of the weights under test
# --------------------------------------------------------------------------


def loss_fn(problem: Problem, names: Sequence[str]) -> tuple[Callable[[Tensor], Tensor], Tensor]:
    """Return ``(L, theta)``: L of the flat concatenation of ``names``, rest frozen."""
    params = {k: p.detach() for k, p in problem.model.named_parameters()}
    buffers = {k: b.detach() for k, b in problem.model.named_buffers()}
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]

    def loss(theta: Tensor) -> Tensor:
        p = dict(params)
        for name, shape, chunk in zip(names, shapes, theta.split(sizes), strict=True):
            p[name] = chunk.view(shape)
        # Train-mode BN writes running stats in place: fresh clones keep the
        # module's buffers untouched and the calls independent of each other.
        b = {k: v.clone() for k, v in buffers.items()}
        logits = functional_call(problem.model, (p, b), (problem.x,))
        return F.cross_entropy(logits, problem.y)

    theta = torch.cat([params[n].reshape(-1) for n in names])
    return loss, theta


def _rel(actual: Tensor, expected: Tensor) -> float:
    """Max-abs error relative to the max-abs of the expected tensor."""
    return ((actual - expected).abs().max() / expected.abs().max()).item()


def si_residuals(loss: Callable[[Tensor], Tensor], theta: Tensor, c: float, v: Tensor) -> dict[str, float]:
    """Relative residuals of identities 1-5 at ``theta`` (all ~0 iff SI)."""
    grad_fn = grad(loss)
    # jvp of grad gives (grad, Hessian-vector product) in one forward-over-reverse pass.
    g1, hv1 = jvp(grad_fn, (theta,), (v,))
    gc, hvc = jvp(grad_fn, (c * theta,), (v,))
    _, hw = jvp(grad_fn, (theta,), (theta,))
    l1, lc = loss(theta), loss(c * theta)
    return {
        "loss": (abs(lc - l1) / abs(l1)).item(),
        "grad": _rel(c * gc, g1),
        "euler": (abs(theta @ g1) / (theta.norm() * g1.norm())).item(),
        "hvp": _rel(c**2 * hvc, hv1),
        "hess_w": _rel(hw, -g1),
    }


def direction(theta: Tensor, seed: int) -> Tensor:
    """Seeded random direction for Hessian-vector products."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(theta.shape, generator=gen, dtype=DTYPE)


# --------------------------------------------------------------------------
# BN internals for the eps > 0 analysis
# --------------------------------------------------------------------------


@contextmanager
def capture_bn(model: nn.Module, bn_names: Sequence[str]) -> Iterator[dict[str, tuple[Tensor, Tensor]]]:
    """Record ``(input, output)`` of the named BN modules on each forward."""
    store: dict[str, tuple[Tensor, Tensor]] = {}

    def hook(name: str) -> Callable[..., None]:
        def record(_module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            store[name] = (inputs[0], output)

        return record

    handles = [model.get_submodule(n).register_forward_hook(hook(n)) for n in bn_names]
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()


def per_channel(z: Tensor) -> Tensor:
    """View as (channels, batch*spatial), the axes BN reduces over."""
    return z.transpose(0, 1).reshape(z.shape[1], -1)


@dataclass(frozen=True)
class BnTerms:
    """Quantities at one weight vector: w.grad L, per-channel var and <g_k, y_k>."""

    euler: float  # theta . grad L(theta)
    var: Tensor  # biased pre-BN batch variance per channel (all BNs concatenated)
    gy: Tensor  # <dL/dy_k, y_k> per channel


def bn_terms(problem: Problem, names: Sequence[str], theta: Tensor) -> BnTerms:
    """Evaluate the BN quantities of the generalised Euler identity at ``theta``."""
    loss, _ = loss_fn(problem, names)
    theta = theta.detach().requires_grad_()
    bns = [problem.bn_after[n] for n in names]
    with capture_bn(problem.model, bns) as store:
        value = loss(theta)
    ys = [store[b][1] for b in bns]
    g_theta, *g_ys = torch.autograd.grad(value, [theta, *ys])
    var = torch.cat([per_channel(store[b][0].detach()).var(dim=1, correction=0) for b in bns])
    gy = torch.cat([(per_channel(g) * per_channel(y.detach())).sum(dim=1) for g, y in zip(g_ys, ys, strict=True)])
    return BnTerms((theta.detach() @ g_theta).item(), var, gy)


def min_bn_variance(problem: Problem) -> float:
    """Smallest per-channel pre-BN batch variance over all BNs of the network."""
    bns = list(problem.bn_after.values())
    loss, theta = loss_fn(problem, problem.si_names)
    with capture_bn(problem.model, bns) as store:
        loss(theta)
    return min(per_channel(store[b][0]).var(dim=1, correction=0).min().item() for b in bns)


def eps_loss_bound(problem: Problem, names: Sequence[str], theta: Tensor, c: float, eps: float) -> float:
    """Bound ``|L(c theta) - L(theta)|`` for BN eps > 0 (see module docstring)."""
    worst = 0.0
    for j in range(N_GRID):
        t = c ** (j / (N_GRID - 1))
        terms = bn_terms(problem, names, t * theta)
        # v(t) = var(t theta) / t**2 expresses the variance in units of theta.
        worst = max(worst, terms.gy.abs().sum().item() * t**2 / terms.var.min().item())
    return eps * abs(1.0 - 1.0 / c**2) * worst


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def _single_thread() -> Iterator[None]:
    """Run these tiny-tensor tests single-threaded, restoring the setting after.

    Intra-op parallelism only adds fork/join cost at these sizes, and when the
    cores are busy OpenMP barriers stall for scheduler quanta (~100x slower).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@settings(max_examples=15, deadline=None)
@given(data=st.data(), c=scales)
def test_si_identities_eps_free(arch: str, data: st.DataObject, c: float) -> None:
    """Identities 1-5 hold to float64 precision for each SI weight and jointly."""
    spec = data.draw(SPECS[arch], label="spec")
    problem = build(spec, EPS_FREE)
    var_min = min_bn_variance(problem)
    # No channel is degenerate, and eps is absorbed by rounding (== eps 0).
    # At c * theta variances scale by c**2 >= 2.5e-3, still far from ~1e-292.
    assert var_min > 0.0, var_min
    assert var_min + EPS_FREE == var_min, var_min
    for names in targets(problem):
        loss, theta = loss_fn(problem, names)
        res = si_residuals(loss, theta, c, direction(theta, spec.seed))
        assert max(res.values()) <= RTOL, (names, c, res)
    # Running stats were only ever updated on clones.
    for name, buf in problem.model.named_buffers():
        if "running_mean" in name or "num_batches" in name:
            assert not buf.any(), name
        elif "running_var" in name:
            assert torch.all(buf == 1.0), name


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@settings(max_examples=15, deadline=None)
@given(data=st.data(), c=scales)
def test_generalised_euler_identity_with_eps(arch: str, data: st.DataObject, c: float) -> None:
    """With eps > 0: w . grad L = eps * sum_k <g_k, y_k> / (var_k + eps) exactly.

    Checked at w and at c w: small c inflates the eps term by ~1/c**2, so the
    identity is also exercised far from the near-SI regime.
    """
    spec = data.draw(SPECS[arch], label="spec")
    problem = build(spec, EPS_DEFAULT)
    for names in targets(problem):
        loss, theta0 = loss_fn(problem, names)
        for theta in (theta0, c * theta0):
            terms = bn_terms(problem, names, theta)
            predicted = EPS_DEFAULT * (terms.gy / (terms.var + EPS_DEFAULT)).sum().item()
            # Same rounding scale as the eps-free Euler residual: |theta| |grad L|.
            scale = (theta.norm() * grad(loss)(theta).norm()).item()
            assert abs(terms.euler - predicted) <= RTOL * scale, (
                names,
                c,
                terms.euler,
                predicted,
            )


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@settings(max_examples=10, deadline=None)
@given(data=st.data(), c=scales)
def test_eps_loss_violation_within_derived_bound(arch: str, data: st.DataObject, c: float) -> None:
    """With eps = 1e-5, |L(c w) - L(w)| stays below the derived eps / var_min bound."""
    spec = data.draw(SPECS[arch], label="spec")
    problem = build(spec, EPS_DEFAULT)
    for names in targets(problem):
        loss, theta = loss_fn(problem, names)
        l1 = loss(theta).item()
        violation = abs(loss(c * theta).item() - l1)
        bound = eps_loss_bound(problem, names, theta, c, EPS_DEFAULT)
        assert violation <= bound + RTOL * abs(l1), (names, c, violation, bound)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_eps_violation_is_nonzero(arch: str, data: st.DataObject) -> None:
    """Eps = 1e-5 breaks invariance at c = 0.01, far above the eps-free tolerance."""
    spec = data.draw(SPECS[arch], label="spec")
    problem = build(spec, EPS_DEFAULT)
    loss, theta = loss_fn(problem, problem.si_names)
    res = si_residuals(loss, theta, 0.01, direction(theta, spec.seed))
    assert res["loss"] > 1e2 * RTOL, res
    assert res["grad"] > 1e2 * RTOL, res


@pytest.mark.parametrize("control", ["mlp_without_bn", "head_of_si_net"])
@settings(max_examples=10, deadline=None)
@given(spec=mlp_specs, c=st.sampled_from([0.05, 0.5, 2.0, 20.0]))
def test_checker_flags_weights_not_followed_by_bn(control: str, spec: MlpSpec, c: float) -> None:
    """Negative control: the same checker flags weights not followed by BN."""
    if control == "mlp_without_bn":
        problem = build_mlp(spec, EPS_FREE, batchnorm=False)
        names: tuple[str, ...] = ("0.weight",)
    else:
        problem = build_mlp(spec, EPS_FREE)
        names = (problem.head_name,)
    loss, theta = loss_fn(problem, names)
    res = si_residuals(loss, theta, c, direction(theta, spec.seed))
    # Every identity on its own flags the weight, by >= 2 orders over RTOL.
    assert min(res.values()) > 1e2 * RTOL, res
