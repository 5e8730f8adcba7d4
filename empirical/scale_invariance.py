"""Numerical detection of the parameter groups in which a network's training loss is scale-invariant.

A weight directly followed by BatchNorm (train mode, batch statistics) makes the training loss invariant under
``w -> c·w`` (``c > 0``); by Euler's identity for 0-homogeneous functions ``w·∇_w L = 0`` then holds. In residual
networks some weights are scale-invariant only *jointly* (e.g. in a pre-activation ResNet the stem conv and every
conv writing into the same residual stream have to be scaled together). Instead of picking such groups by parameter
names, :func:`find_si_groups` finds them numerically, for any architecture.

Algorithm (``n`` = number of trainable parameters, ``m`` = number of them that are live but not individually SI):

1. Work on a float64 deep copy of the model in train mode, with every BatchNorm's ``eps`` set to the smallest normal
   float64. BN computes ``(x - mean) / sqrt(var + eps)``; ``eps > 0`` breaks exact invariance (scaling ``x`` by ``c``
   scales ``var`` by ``c²`` but not ``eps``), which for typical ``eps = 1e-5`` shows up at the 1e-6 level and would
   blur the tests below. ``eps = 0`` is not an option (torch rejects it and a constant channel would give 0/0);
   ``eps = tiny`` changes nothing measurable while keeping ``0 · 1/sqrt(tiny) = 0`` finite. The caller's model, its
   buffers (BN running statistics) and its train/eval flag are never touched.
2. Evaluate the loss and its gradient at ``k0 = 3`` random points in weight space (each trainable parameter perturbed
   by Gaussian noise of half its RMS; frozen parameters stay fixed) and record ``e_p = p·∇_p L`` and the scale
   ``s_p = ‖p‖‖∇_p L‖``. Random points matter: scale invariance is a property of the function, and at the caller's
   weights a zero-initialised parameter would pass every test vacuously.
3. A parameter is *dead* if ``s_p`` is negligible (≤ 1e-10 of the largest ``s_q``) at every point: the loss does not
   depend on it (unused parameter, a bias cancelled by BN's mean subtraction, ...). Dead parameters are never
   reported, because both the gradient and the loss test hold vacuously for them.
4. A live parameter is *individually SI* if ``|e_p| ≤ GRAD_RTOL·s_p`` at all points (``GRAD_RTOL = 1e-8``: float64
   rounding in a backward pass leaves a cosine ``e_p/s_p`` of 1e-15..1e-12 for an SI parameter, while for a
   non-SI parameter the cosine is generically ≥ 1e-4 at random points, so 1e-8 has orders of magnitude of margin on
   both sides), confirmed by the loss test ``|L(c·p) - L(p)| ≤ rtol·(|L| + tiny)`` for every ``c`` in ``scales`` at
   the caller's weights and at one random point.
5. Joint groups among the ``m`` remaining live parameters: scaling a set ``S`` by ``c`` leaves ``L`` invariant only if
   ``Σ_{p∈S} e_p = 0`` at every point. Evaluate ``e`` at ``m + 8`` further random points; the matrix ``E`` (points ×
   parameters, each column divided by its typical ``s_p`` so the entries are cosines) then has, generically, as null
   space exactly the span of the indicator vectors of the jointly SI sets (plus real-coefficient rescaling symmetries,
   if any). The reduced row echelon form (RREF) of a null-space basis is unique for a given column order; when the
   minimal SI sets are disjoint, its rows are exactly their 0/1 indicator vectors. RREF is computed for two column
   orders (``named_parameters`` order, and largest parameters first) and every row whose entries are all 0 or 1 is
   a candidate group. Minimal SI sets can overlap (with affine BNs: the (γ, β) of the BN in front of a conv can
   replace that conv in a residual-stream group); candidates are therefore taken greedily, most weights
   (``numel``) first, ties by first appearance, skipping any that overlaps a group already taken, and each is
   confirmed by the loss test (scaling the whole group by each ``c``). The result is a list of disjoint, confirmed,
   minimal SI groups; where minimal sets overlap, or with real-coefficient symmetries (ReLU rescaling in BN-free
   parts), it need not cover every parameter that belongs to some SI set.

Cost: ``k0 + m + 8`` forward+backward passes, plus ``2·(1 + |scales|)`` forward passes per loss-tested candidate
(individual or joint), plus an SVD of an ``(k0 + m + 8) × m`` matrix and two RREFs. For a pre-activation ResNet-18
without affine BN parameters (22 trainable tensors, m = 14) that is about 25 backward and 75 forward passes; with
affine BNs, 62 tensors and m ≈ 50.

Stochastic layers (dropout) are handled by re-seeding torch's RNG before every forward pass, so all passes see the
same masks.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch.func import functional_call

__all__ = ["EXACT_BN_EPS", "GRAD_RTOL", "exact_batchnorm_", "find_si_groups", "si_parameters"]

#: Relative tolerance of the gradient (Euler identity) test, ``|p·∇L| ≤ GRAD_RTOL·‖p‖‖∇L‖``.
GRAD_RTOL = 1e-8
_DEAD_RTOL = 1e-10  # s_p below this fraction of the largest s_q at every point: the loss does not depend on p
_TINY = torch.finfo(torch.float64).tiny
EXACT_BN_EPS = _TINY
"""BatchNorm's ``eps`` that makes scale invariance exact to rounding (the smallest normal float64; see the module)."""


def exact_batchnorm_(model: torch.nn.Module) -> torch.nn.Module:
    """Set the ``eps`` of every BatchNorm of ``model`` to :data:`EXACT_BN_EPS`, in place; return ``model``.

    ``eps > 0`` breaks scale invariance at the 1e-6 level (``var`` scales by ``c²``, ``eps`` does not); ``tiny``
    keeps a constant channel finite. For float64 checks of identities that hold exactly only without it.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eps = EXACT_BN_EPS
    return model


_K0 = 3  # random points for the individual tests
_EXTRA = 8  # points beyond the number of unknowns for the joint null space
_RNG_SEED = 0


def _forward_loss(model, params, inputs, targets, loss_fn) -> torch.Tensor:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_RNG_SEED)
        out = functional_call(model, params, (inputs,))
    return loss_fn(out, targets)


def _loss_value(model, params, inputs, targets, loss_fn) -> float:
    with torch.no_grad():
        return float(_forward_loss(model, params, inputs, targets, loss_fn))


def _random_point(base: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
    point = {}
    for name, p in base.items():
        rms = float(p.pow(2).mean().sqrt()) if p.numel() else 0.0
        scale = 0.5 * rms if rms > 0 else 0.1
        noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        point[name] = p + scale * noise
    return point


def _euler_terms(model, point, names, inputs, targets, loss_fn) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(e, s)``: ``e_p = p·∇_p L`` and ``s_p = ‖p‖‖∇_p L‖`` for every name, at ``point``."""
    leaves = {n: point[n].detach().clone().requires_grad_(True) for n in names}
    loss = _forward_loss(model, leaves, inputs, targets, loss_fn)
    grads = torch.autograd.grad(loss, [leaves[n] for n in names], allow_unused=True)
    e = np.zeros(len(names))
    s = np.zeros(len(names))
    for i, (n, g) in enumerate(zip(names, grads, strict=True)):
        if g is None:
            continue
        p = leaves[n].detach()
        e[i] = float((p * g).sum())
        s[i] = float(p.norm() * g.norm())
    return e, s


def _scaled_invariant(model, points, group, scales, inputs, targets, loss_fn, rtol) -> bool:
    """Loss test: ``|L(c·S) - L| ≤ rtol·(|L| + tiny)`` for every ``c`` in ``scales`` and every point."""
    for point in points:
        base = _loss_value(model, point, inputs, targets, loss_fn)
        for c in scales:
            scaled = dict(point)
            for n in group:
                scaled[n] = c * point[n]
            if abs(_loss_value(model, scaled, inputs, targets, loss_fn) - base) > rtol * (abs(base) + _TINY):
                return False
    return True


def _rref(a: np.ndarray, tol: float) -> np.ndarray:
    a = a.copy()
    rows, cols = a.shape
    r = 0
    for c in range(cols):
        if r == rows:
            break
        piv = r + int(np.argmax(np.abs(a[r:, c])))
        if abs(a[piv, c]) <= tol:
            a[r:, c] = 0.0
            continue
        a[[r, piv]] = a[[piv, r]]
        a[r] /= a[r, c]
        others = np.arange(rows) != r
        a[others] -= np.outer(a[others, c], a[r])
        r += 1
    return a[:r]


def find_si_groups(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    loss_fn=torch.nn.functional.cross_entropy,
    scales=(0.5, 3.0),
    rtol: float = 1e-6,
) -> list[list[str]]:
    """Groups of parameter names in which the training loss of ``model`` on ``(inputs, targets)`` is scale-invariant.

    Returns minimal groups (names in ``model.named_parameters()`` order, groups sorted by first appearance), found
    numerically as described in the module docstring; individually SI parameters come as singleton groups. Only
    parameters with ``requires_grad`` are considered; parameters the loss does not depend on are never reported.
    The caller's model is not modified. Raises ``ValueError`` for a model without parameters or a batch of size < 2.
    """
    if not list(model.parameters()):
        raise ValueError("find_si_groups: the model has no parameters")
    if inputs.ndim == 0 or inputs.shape[0] < 2:
        raise ValueError("find_si_groups: BatchNorm in train mode needs a batch of size >= 2")
    scales = tuple(float(c) for c in scales)
    if not scales or any(c <= 0 for c in scales):
        raise ValueError("find_si_groups: scales must be a non-empty sequence of positive numbers")

    net = exact_batchnorm_(copy.deepcopy(model).double().train())
    x = inputs.detach().to(torch.float64) if inputs.is_floating_point() else inputs.detach()
    y = targets.detach().to(torch.float64) if targets.is_floating_point() else targets.detach()

    order = [n for n, _ in net.named_parameters()]
    names = [n for n, p in net.named_parameters() if p.requires_grad]
    if not names:
        return []
    base = {n: p.detach() for n, p in net.named_parameters() if p.requires_grad}
    gen = torch.Generator().manual_seed(_RNG_SEED)
    points = [_random_point(base, gen) for _ in range(_K0)]
    loss_points = [base, points[0]]

    es, ss = zip(*(_euler_terms(net, pt, names, x, y, loss_fn) for pt in points), strict=True)
    e, s = np.array(es), np.array(ss)  # (points, params)
    live = (s > _DEAD_RTOL * s.max(axis=1, keepdims=True)).any(axis=0)
    grad_si = (np.abs(e) <= GRAD_RTOL * s).all(axis=0)

    groups: list[list[str]] = []
    pool: list[int] = []
    for i, n in enumerate(names):
        if not live[i]:
            continue
        if grad_si[i] and _scaled_invariant(net, loss_points, [n], scales, x, y, loss_fn, rtol):
            groups.append([n])
        else:
            pool.append(i)

    if pool:
        pool_names = [names[i] for i in pool]
        extra = [_random_point(base, gen) for _ in range(len(pool) + _EXTRA)]
        more = [_euler_terms(net, pt, pool_names, x, y, loss_fn) for pt in extra]
        ep = np.vstack([e[:, pool], np.array([m[0] for m in more])])
        sp = np.vstack([s[:, pool], np.array([m[1] for m in more])])
        col = np.sqrt((sp**2).mean(axis=0))
        mat = ep / col  # entries are cosines between p and ∇_p L
        _, sing, vh = np.linalg.svd(mat, full_matrices=True)
        sing = np.concatenate([sing, np.zeros(vh.shape[0] - sing.size)])
        null = vh[sing <= GRAD_RTOL * max(sing[0], 1.0)]
        numel = np.array([base[n].numel() for n in pool_names])
        candidates: dict[tuple[int, ...], None] = {}
        if null.shape[0]:
            # Two column orders: named_parameters order, and largest parameters first (so that where minimal SI sets
            # overlap, the big weights become pivots and their 0/1 groups appear as RREF rows).
            for perm in (np.arange(len(pool)), np.argsort(-numel, kind="stable")):
                for row in _rref((null / col)[:, perm], tol=1e-6):
                    row = row / row[np.argmax(np.abs(row) > 1e-6)]
                    if ((np.abs(row) <= 1e-6) | (np.abs(row - 1.0) <= 1e-6)).all():
                        candidates[tuple(sorted(perm[row > 0.5].tolist()))] = None
        # Disjoint selection: groups with the most weights first (ties: first appearance), each confirmed.
        taken: set[int] = set()
        for cand in sorted(candidates, key=lambda c: (-int(numel[list(c)].sum()), c)):
            if taken.isdisjoint(cand):
                group = [pool_names[j] for j in cand]
                if _scaled_invariant(net, loss_points, group, scales, x, y, loss_fn, rtol):
                    groups.append(group)
                    taken.update(cand)

    rank = {n: k for k, n in enumerate(order)}
    groups = [sorted(g, key=rank.__getitem__) for g in groups]
    groups.sort(key=lambda g: rank[g[0]])
    return groups


def si_parameters(model: torch.nn.Module, groups: list[list[str]]) -> list[torch.nn.Parameter]:
    """The parameters of ``model`` in any of ``groups``, flattened, in ``model.named_parameters()`` order."""
    wanted = {n for g in groups for n in g}
    params = dict(model.named_parameters())
    missing = wanted - params.keys()
    if missing:
        raise KeyError(f"si_parameters: no parameters named {sorted(missing)} in the model")
    return [p for n, p in params.items() if n in wanted]
