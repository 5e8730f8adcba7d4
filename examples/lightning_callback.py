"""bnwd's Monitor as a PyTorch Lightning callback, on a tiny LightningModule (two conv → BatchNorm → ReLU layers and
a linear head) trained on sklearn's digits with SGD and weight decay.

    python examples/lightning_callback.py [--steps 400] [--out runs/example-lightning]

The per-step quantities go to the trainer's logger (here a CSV file) as ``bnwd/si_norm``, ``bnwd/elr``, ...
"""

from __future__ import annotations

import argparse

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from bnwd.empirical.data import load_dataset
from bnwd.empirical.lightning_callback import MonitorCallback


class TinyConvNet(pl.LightningModule):
    def __init__(self, lr: float = 1.0, wd: float = 0.01, width: int = 4, eps: float = 1e-5):
        super().__init__()
        self.lr, self.wd = lr, wd
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width, eps=eps, affine=False),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width, eps=eps, affine=False),
            nn.ReLU(),
        )
        self.head = nn.Linear(2 * width, 10)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, weight_decay=self.wd)


def train(
    steps: int = 400,
    *,
    out: str = "runs/example-lightning",
    precision: str = "32-true",
    eps: float = 1e-5,
    seed: int = 0,
) -> MonitorCallback:
    """Fit for ``steps`` optimizer steps with the callback; the CSV log and the monitor's files go to ``out``."""
    pl.seed_everything(seed, verbose=False)
    dtype = torch.float64 if precision.startswith("64") else torch.float32
    data = load_dataset("digits", dtype=dtype)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data.train_x, data.train_y), batch_size=128, shuffle=True, drop_last=True
    )
    callback = MonitorCallback(out=f"{out}/bnwd")
    trainer = pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        precision=precision,
        callbacks=[callback],
        logger=pl.loggers.CSVLogger(out, name="", version=""),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    trainer.fit(TinyConvNet(eps=eps), loader)
    return callback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--out", default="runs/example-lightning")
    args = parser.parse_args()
    callback = train(args.steps, out=args.out)
    records, summary = callback.monitor.records(), callback.summary
    print(f"{len(records)} steps logged to {args.out}/metrics.csv as bnwd/si_norm, bnwd/elr, ...")
    first, last = records[0], records[-1]
    print(f"ρ {first['si_norm']:.3f} → {last['si_norm']:.3f}; η̃ {first['elr']:.4g} → {last['elr']:.4g}")
    print(f"destabilisations at steps {summary['events']}; regime: {summary['regime']}")


if __name__ == "__main__":
    main()
