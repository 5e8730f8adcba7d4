"""The paper's Fig. 2 as an analogue on data every machine here can have (``bnwd analogue``).

The paper's setting — ConvNetSI c = 32 (head frozen at norm 10), SGD at batch 128 without momentum or augmentation,
λ = 1e-3, η ∈ {1, 0.03, 0.01, 0.001}, as many steps as 1001 CIFAR-10 epochs (391 391) — on Fashion-MNIST instead of
CIFAR-10, the four runs trained together (:mod:`empirical.batched`), drawn as the paper's four panels. It is an
analogue, not a reproduction: other images (grey 28×28 clothes, not colour 32×32 objects), so other minima, other
curvature and other periods; what it shows is whether the same regimes appear at the same learning rates.
"""

from __future__ import annotations

from pathlib import Path

from bnwd.empirical.data import TRAIN_SIZES
from bnwd.paper_checks.common import CheckContext, Run
from bnwd.paper_checks.figures import four_panels

__all__ = ["LEARNING_RATES", "NOTICE", "PAPER_STEPS", "RUN", "run_analogue"]

LEARNING_RATES = (1.0, 0.03, 0.01, 0.001)
PAPER_STEPS = 391_391
"""1001 epochs of CIFAR-10 (50 000 images) at batch 128: the paper's training length, in steps."""
RUN = {"model": "convnet_si", "data": "fashion-mnist", "batch_size": 128, "wd": 1e-3, "eval_points": 20}
NOTICE = (
    "an ANALOGUE of the paper's Fig. 2, not a reproduction: Fashion-MNIST (60 000 grey 28×28 images) stands in for "
    "CIFAR-10 (50 000 colour 32×32), with the paper's net, batch size, λ, learning rates and number of steps"
)


def run_analogue(
    out: Path,
    *,
    data_dir: str | None,
    device: str,
    steps: int = PAPER_STEPS,
    width: int = 32,
    together: int = len(LEARNING_RATES),
    allow_tf32: bool = False,
    progress: bool = True,
) -> tuple[Path, list[Run]]:
    """Train the four runs into ``out/runs/`` (resuming unfinished ones from their checkpoints, written at the paper
    scale's :data:`~paper_checks.common.CHECKPOINT_EVERY`) and draw ``out/figure2.png``; return the figure's path and
    the runs (in :data:`LEARNING_RATES` order).

    ``ValueError`` (or :class:`~empirical.data.DataError`) for missing data files or bad sizes.
    """
    ctx = CheckContext(out=Path(out), scale="paper", device=device, data_dir=data_dir, progress=progress,
                       together=together)  # fmt: skip
    specs = [ctx.spec(**RUN, width=width, steps=steps, lr=lr, allow_tf32=allow_tf32) for lr in LEARNING_RATES]
    runs = ctx.train_many(specs)
    epochs = steps * RUN["batch_size"] / TRAIN_SIZES[RUN["data"]]
    title = f"ConvNetSI c={width}, Fashion-MNIST, λ={RUN['wd']:g}, {steps:,} steps ({epochs:.0f} epochs): {NOTICE}"
    return four_panels(runs, Path(out) / "figure2.png", title=title), runs
