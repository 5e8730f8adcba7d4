"""Time to the top Hessian eigenvalue (SI group) of ConvNetSI: Lanczos vs power iteration vs the dense Hessian.

Setups (float32, CPU unless CUDA is available; BatchNorm in train mode, one batch):

* ``c=8`` on ``digits`` (8x8x1): the first 1000 training samples as one batch;
* ``c=32`` on ``synthetic`` (CIFAR-shaped 32x32x3): 512 samples as one batch;
* ``c=2`` on ``digits``: small enough for the dense Hessian (timed, as a reference for the other methods).

For each setup the target is the top eigenvalue to 1e-3 relative. The reference value is Lanczos at tol 1e-8 (or the
dense eigendecomposition where it fits); we report HVPs, seconds and the relative error for Lanczos (tol 1e-3) and
power iteration (relative change 1e-4), with both HVP modes; and, as in training (``--sharpness-every``), Lanczos
warm-started from the eigenvector of the weights one small gradient step earlier against a cold start. On a CPU the
c=32 setup is "heavy" (an HVP takes seconds): only the jvp mode, no tight reference (errors are relative to Lanczos
at tol 1e-3) and power iteration capped at 15 HVPs. Whether the dense Hessian fits is decided from its size, ``n² ×
8`` bytes (float64) against the available memory.

Run: ``.venv/bin/python benchmarks/curvature_top_eigenvalue.py [--quick | --only32]``.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from empirical.curvature import HessianOperator, top_eigenvalues
from empirical.data import load_dataset
from empirical.nets import ConvNetSI


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def _setup(width: int, data: str, n: int, device: torch.device):
    ds = load_dataset(data, device=device, synthetic_size=(max(n, 512), 0) if data == "synthetic" else (512, 128))
    x, y = ds.train_x[:n], ds.train_y[:n]
    torch.manual_seed(0)
    model = ConvNetSI(width=width, in_channels=ds.in_channels, n_classes=ds.n_classes).to(device).train()
    params = [p for name, p in model.named_parameters() if name.startswith("conv_layers")]
    return model, [(x, y)], params


def _timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t


def run(width: int, data: str, n: int, device: torch.device, *, heavy: bool = False) -> None:
    """Benchmark one setup. ``heavy``: one HVP mode only, no tight reference, power capped (CPU time budget)."""
    model, batches, params = _setup(width, data, n, device)
    size = sum(p.numel() for p in params)
    need, avail = size**2 * 8, _available_bytes()
    print(f"\n== ConvNetSI c={width} on {data} (batch {n}, {device}): SI params n={size}", flush=True)
    op = HessianOperator(model, batches, params)
    op.matvec(torch.ones(size, device=device))  # warm-up: the first call pays one-off dispatch/allocation costs
    _, hvp_sec = _timed(lambda: op.matvec(torch.ones(size, device=device)))
    print(f"   one HVP (jvp, warm): {hvp_sec:.3f} s", flush=True)
    # The dense Hessian must fit in memory (with room to spare for eigh's workspace) and its n HVPs must be affordable.
    fits_mem = need < avail / 4
    fits = fits_mem and size <= 20_000
    print(
        f"   dense Hessian: n^2 x 8 B = {need / 2**30:.3f} GiB vs {avail / 2**30:.1f} GiB available -> "
        f"{'fits' if fits_mem else 'does not fit'} in memory; {size} HVPs ~ {size * hvp_sec / 60:.1f} min -> "
        f"{'timed' if fits else 'skipped'}",
        flush=True,
    )
    ref, ref_name = None, ""
    if fits:
        op = HessianOperator(model, batches, params)
        (vals, _, info), sec = _timed(lambda: top_eigenvalues(op, 1, method="dense"))
        ref, ref_name = float(vals[0]), "dense"
        print(f"   dense              : lam={ref:.6g}  HVPs={info['n_hvp']:5d}  {sec:8.2f} s", flush=True)
    elif not heavy:
        op = HessianOperator(model, batches, params)
        (vals, _, info), sec = _timed(lambda: top_eigenvalues(op, 1, tol=1e-8, max_hvp=3000))
        ref, ref_name = float(vals[0]), "lanczos tol 1e-8"
        print(f"   reference lanczos tol 1e-8: lam={ref:.6g}  HVPs={info['n_hvp']}  {sec:.2f} s", flush=True)
    modes = ("jvp",) if heavy else ("jvp", "double_backward")
    for mode in modes:
        op = HessianOperator(model, batches, params, mode=mode)
        (vals, _, info), sec = _timed(lambda op=op: top_eigenvalues(op, 1, method="lanczos", tol=1e-3))
        lam = float(vals[0])
        if ref is None:
            ref, ref_name = lam, "lanczos tol 1e-3"
        err = abs(lam - ref) / abs(ref)
        print(
            f"   lanczos/{mode:15s}: lam={lam:.6g}  HVPs={info['n_hvp']:5d}  {sec:8.2f} s  rel.err={err:.1e}"
            f" (vs {ref_name})",
            flush=True,
        )
    max_hvp = 15 if heavy else 2000
    for mode in modes:
        op = HessianOperator(model, batches, params, mode=mode)
        run_power = lambda op=op: top_eigenvalues(op, 1, method="power", tol=1e-4, max_hvp=max_hvp)  # noqa: E731
        (vals, _, info), sec = _timed(run_power)
        err = abs(float(vals[0]) - ref) / abs(ref)
        print(
            f"   power/{mode:17s}: lam={vals[0]:.6g}  HVPs={info['n_hvp']:5d}  {sec:8.2f} s  rel.err={err:.1e}"
            f" (vs {ref_name})  converged={info['converged']} (max_hvp={max_hvp})",
            flush=True,
        )


def warm_start(width: int, data: str, n: int, device: torch.device) -> None:
    """HVPs and seconds of a cold and a warm-started Lanczos (tol 1e-3) after one gradient step of relative size
    1e-3 on the SI weights: the situation of consecutive measurements in the trainer's dense window."""
    model, batches, params = _setup(width, data, n, device)
    _, vecs, _ = top_eigenvalues(HessianOperator(model, batches, params, mode="double_backward"), 1, tol=1e-3)
    grads = torch.autograd.grad(torch.nn.functional.cross_entropy(model(batches[0][0]), batches[0][1]), params)
    with torch.no_grad():
        rho, g = torch.cat([p.reshape(-1) for p in params]).norm(), torch.cat([d.reshape(-1) for d in grads]).norm()
        torch._foreach_add_(params, grads, alpha=-1e-3 * float(rho / g))
    print(f"\n== warm start, ConvNetSI c={width} on {data} (batch {n}), one step later:", flush=True)
    for name, v0 in (("cold", None), ("warm", vecs[:, 0])):
        op = HessianOperator(model, batches, params, mode="double_backward")
        (vals, _, info), sec = _timed(lambda op=op, v0=v0: top_eigenvalues(op, 1, tol=1e-3, v0=v0))
        print(f"   lanczos {name}: lam={vals[0]:.6g}  HVPs={info['n_hvp']:5d}  {sec:8.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the small c=2 and c=8 setups")
    parser.add_argument("--only32", action="store_true", help="only the c=32 setup")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}")
    if args.only32:
        run(32, "synthetic", 512, device, heavy=device.type == "cpu")
        return
    run(2, "digits", 1000, device)
    run(8, "digits", 1000, device)
    warm_start(8, "digits", 1000, device)
    if not args.quick:
        run(32, "synthetic", 512, device, heavy=device.type == "cpu")


if __name__ == "__main__":
    main()
