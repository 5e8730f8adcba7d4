"""Top Hessian eigenvalue of ConvNetSI's SI weights: bnwd's Lanczos against power iteration, the dense Hessian and
PyHessian, in seconds, HVPs and seconds per HVP.

Setups (float32, CPU unless CUDA is available, BatchNorm in train mode unless said otherwise):

* ``c=8`` on ``digits``: the first 1000 training samples as one batch, after 50 full-batch GD steps (η = 1,
  λ = 0.01 on the SI weights, head frozen): the setting of issue 14. The tight reference is bnwd's Lanczos at
  tol 1e-10 (the dense Hessian, 24 264², does not fit the time).
* ``c=2`` on ``digits``, the same data and steps: small enough for the dense Hessian as the reference.

Rows, each cold-started (a fresh operator, a random start vector), the median of ``--repeats`` runs:

* ``bnwd lanczos``: :func:`empirical.eigensolvers.top_eigenvalues` at the tracking's tolerance (tol 1e-3, λ_max
  certified within 1 % at 99 % confidence), default HVP mode (the gradient graph built once, each HVP one backward
  pass through it), and the same with ``mode="jvp"``;
* ``bnwd lanczos, residual only``: the same without the certificate (``miss_tol=inf``), the rule before issue 28,
  which can stop on a lower eigenvalue (``benchmarks/lanczos_seeds.py``);
* ``power``: power iteration on the same operator, stopped at a relative change of 1e-4 (what reaches 1e-3);
* ``pyhessian, all weights``: PyHessian 0.1's ``hessian(...).eigenvalues()`` at its defaults, when installed
  (``pip install --no-deps pyhessian``); it switches the model to eval mode and takes every trainable weight (the
  head too), so it differentiates another function (running statistics instead of batch statistics): its number is
  shown for context, not compared;
* ``bare HVP``: one ``torch.autograd.grad(g, params, v, retain_graph=True)`` through a gradient graph built
  beforehand with plain autograd on the model, the least an HVP can cost; "s/HVP ÷ bare" divides each row's
  seconds per HVP (graph building included) by it.

Also: a warm start from the top eigenvector one small gradient step earlier, certified as a cold start is.

Run: ``.venv/bin/python benchmarks/curvature_top_eigenvalue.py [--repeats 5] [--out FILE]``.

Writes ``benchmarks/results/curvature_top_eigenvalue.json`` (``_results``): per setup the reference and the HVP's
cost (``setups``), the rows above (``top eigenvalue``) and the cold and warm starts (``warm start``); the last
numbers are on ``docs/results.md``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F
from _results import add_out_option, write_results

from bnwd.empirical.curvature import HessianOperator
from bnwd.empirical.data import load_dataset
from bnwd.empirical.eigensolvers import top_eigenvalues
from bnwd.empirical.monitor import SHARPNESS_TOL
from bnwd.empirical.nets import ConvNetSI

try:
    import importlib

    pyhessian = importlib.import_module("pyhessian.hessian")  # the module, whose HVP function is counted below
except ImportError:  # optional: shown for context only
    pyhessian = None


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _timed(fn, repeats: int):
    """``fn()``'s last result and the median of ``repeats`` wall-clock times."""
    times = []
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        out = fn()
        _sync()
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def _setup(width: int, device: torch.device):
    """ConvNetSI on the first 1000 digits, after 50 full-batch GD steps (η = 1, λ = 0.01) on its SI weights."""
    ds = load_dataset("digits", device=device)
    x, y = ds.train_x[:1000], ds.train_y[:1000]
    torch.manual_seed(0)
    model = ConvNetSI(width=width, in_channels=ds.in_channels, n_classes=ds.n_classes).to(device).train()
    params = [p for name, p in model.named_parameters() if name.startswith("conv_layers")]
    optimizer = torch.optim.SGD(params, lr=1.0, weight_decay=0.01)
    for _ in range(50):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return model, [(x, y)], params


def _bare_hvp_seconds(model, x, y, params, repeats: int = 10) -> tuple[float, float]:
    """Seconds to build the gradient graph with plain autograd, and the median seconds of one HVP through it."""
    _sync()
    start = time.perf_counter()
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), params, create_graph=True)
    _sync()
    build = time.perf_counter() - start
    v = [torch.randn_like(p) for p in params]
    torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True)  # warm-up
    _, hvp = _timed(lambda: torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True), repeats)
    return build, hvp


def _pyhessian_top(model, x, y, device) -> tuple[float, int]:
    """PyHessian's top eigenvalue at its defaults and the HVPs it took (its HVP function wrapped to count)."""
    import copy

    count, hvp = [0], pyhessian.hessian_vector_product

    def counted(*args, **kwargs):
        count[0] += 1
        return hvp(*args, **kwargs)

    pyhessian.hessian_vector_product = counted
    try:
        torch.manual_seed(0)
        # PyHessian switches the model to eval mode; a copy keeps this one in train mode.
        h = pyhessian.hessian(
            copy.deepcopy(model), torch.nn.CrossEntropyLoss(), data=(x, y), cuda=device.type == "cuda"
        )
        eigenvalues, _ = h.eigenvalues()
    finally:
        pyhessian.hessian_vector_product = hvp
    return float(eigenvalues[0]), count[0]


def _row(name: str, bn: str, lam: float, n_hvp: int, seconds: float, bare: float, reference: float) -> dict:
    return {
        "method": name,
        "bn": bn,
        "eigenvalue": lam,
        "n_hvp": n_hvp,
        "seconds": seconds,
        "per_hvp_over_bare": seconds / n_hvp / bare if n_hvp else float("nan"),
        "rel_err": abs(lam - reference) / abs(reference) if bn == "train" else float("nan"),
    }


def run(width: int, device: torch.device, repeats: int) -> tuple[dict, list[dict]]:
    """All rows of one setup, printed as a table; returns the setup (size, reference, HVP costs) and the rows."""
    model, batches, params = _setup(width, device)
    x, y = batches[0]
    size = sum(p.numel() for p in params)
    HessianOperator(model, batches, params).matvec(torch.ones(size, device=device))  # one-off dispatch costs
    build, bare = _bare_hvp_seconds(model, x, y, params)
    dense = size <= 5000
    if dense:
        op = HessianOperator(model, batches, params)
        found, seconds = _timed(lambda: top_eigenvalues(op, 1, method="dense"), 1)
        reference, reference_name = float(found.eigenvalues[0]), "dense"
    else:
        found = top_eigenvalues(HessianOperator(model, batches, params), 1, tol=1e-10, max_hvp=3000)
        reference, reference_name = float(found.eigenvalues[0]), f"lanczos tol 1e-10 ({found.n_hvp} HVPs)"
    print(f"\n== ConvNetSI c={width}, 1000 digits as one batch, after 50 GD steps ({device}): n = {size} SI weights")
    print(
        f"   reference λ_max = {reference:.6g} ({reference_name}); bare HVP {bare * 1e3:.1f} ms, "
        f"its gradient graph {build * 1e3:.1f} ms"
    )
    op = HessianOperator(model, batches, params)
    op.matvec(torch.ones(size, device=device))  # builds the gradient graph
    _, matvec = _timed(lambda: op.matvec(torch.ones(size, device=device)), 10)
    print(f"   bnwd HVP through its kept graph: {matvec * 1e3:.1f} ms = {matvec / bare:.2f} × bare")
    setup = {"width": width, "n": size, "reference": reference, "reference_method": reference_name}
    setup |= {"bare_hvp_ms": bare * 1e3, "gradient_graph_ms": build * 1e3, "bnwd_hvp_ms": matvec * 1e3}
    rows = []
    if dense:
        rows.append(_row("dense", "train", reference, found.n_hvp, seconds, bare, reference))
    for name, kwargs, mode in (
        ("bnwd lanczos", {"tol": SHARPNESS_TOL}, "double_backward"),
        ("bnwd lanczos, jvp", {"tol": SHARPNESS_TOL}, "jvp"),
        ("bnwd lanczos, residual only", {"tol": SHARPNESS_TOL, "miss_tol": math.inf}, "double_backward"),
        ("power", {"method": "power", "tol": 1e-4, "max_hvp": 2000}, "double_backward"),
    ):
        found, seconds = _timed(
            lambda kwargs=kwargs, mode=mode: top_eigenvalues(
                HessianOperator(model, batches, params, mode=mode), 1, **kwargs
            ),
            repeats,
        )
        rows.append(_row(name, "train", float(found.eigenvalues[0]), found.n_hvp, seconds, bare, reference))
    if pyhessian is not None:
        (lam, n_hvp), seconds = _timed(lambda: _pyhessian_top(model, x, y, device), repeats)
        rows.append(_row("pyhessian, all weights", "eval", lam, n_hvp, seconds, bare, reference))
    print(
        f"   {'method':28s} {'BN':5s} {'λ_max':>10s} {'HVPs':>5s} {'seconds':>8s} {'s/HVP÷bare':>10s} {'rel.err':>8s}"
    )
    for r in rows:
        print(
            f"   {r['method']:28s} {r['bn']:5s} {r['eigenvalue']:10.5g} {r['n_hvp']:5d} {r['seconds']:8.3f} "
            f"{r['per_hvp_over_bare']:10.2f} {r['rel_err']:8.1e}"
        )
    return setup, rows


def warm_start(width: int, device: torch.device) -> list[dict]:
    """HVPs and seconds of a cold and a warm Lanczos (the tracking's tolerance) after one gradient step of relative
    size 1e-3, printed and returned as rows."""
    model, batches, params = _setup(width, device)
    vecs = top_eigenvalues(HessianOperator(model, batches, params), 1, tol=SHARPNESS_TOL).eigenvectors
    grads = torch.autograd.grad(F.cross_entropy(model(batches[0][0]), batches[0][1]), params)
    with torch.no_grad():
        rho, g = torch.cat([p.reshape(-1) for p in params]).norm(), torch.cat([d.reshape(-1) for d in grads]).norm()
        torch._foreach_add_(params, grads, alpha=-1e-3 * float(rho / g))
    print(f"\n== warm start, c={width}, one gradient step later:")
    rows = []
    for name, v0 in (("cold", None), ("warm", vecs[:, 0])):
        found, seconds = _timed(
            lambda v0=v0: top_eigenvalues(HessianOperator(model, batches, params), 1, tol=SHARPNESS_TOL, v0=v0), 3
        )
        print(f"   lanczos {name}: λ = {found.eigenvalues[0]:.6g}, {found.n_hvp} HVPs, {seconds:.3f} s")
        rows.append(
            {
                "width": width,
                "start": name,
                "eigenvalue": found.eigenvalues[0],
                "n_hvp": found.n_hvp,
                "seconds": seconds,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timings are the median of this many runs")
    add_out_option(parser, "curvature_top_eigenvalue")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}")
    tables = {"setups": [], "top eigenvalue": []}
    for width in (2, 8):
        setup, rows = run(width, device, args.repeats)
        tables["setups"].append(setup)
        tables["top eigenvalue"] += [{"width": width} | r for r in rows]
    rows = {r["method"]: r for r in tables["top eigenvalue"] if r["width"] == 8}
    ours, alone = rows["bnwd lanczos"], rows["bnwd lanczos, residual only"]
    print(
        f"\n   on c=8, cold: certified Lanczos {ours['n_hvp']} HVPs, {ours['seconds']:.3f} s, "
        f"error {ours['rel_err']:.1e}; its residual rule alone {alone['n_hvp']} HVPs, "
        f"{alone['seconds']:.3f} s, error {alone['rel_err']:.1e} (uncertified, as power iteration and PyHessian are)"
    )
    tables["warm start"] = warm_start(8, device)
    write_results(args.out, "curvature_top_eigenvalue", tables, device=device.type)


if __name__ == "__main__":
    main()
