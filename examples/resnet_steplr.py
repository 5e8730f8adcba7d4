"""bnwd's Monitor inside a plain training loop, on a model bnwd did not write: a small ResNet (affine BatchNorm, a
residual stream, a trained linear head) on sklearn's digits, SGD with weight decay and a StepLR schedule.

    python examples/resnet_steplr.py [--steps 600] [--out runs/example-resnet]

Only four lines touch bnwd: the import, ``Monitor(...)``, ``monitor.log(...)`` and ``monitor.close()``.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

from bnwd.empirical.data import load_dataset
from bnwd.empirical.monitor import Monitor


class Block(nn.Module):
    """conv → BN → ReLU → conv → BN, added to the stream (through a 1×1 conv → BN where the shape changes)."""

    def __init__(self, c_in: int, c_out: int, stride: int, eps: float):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out, eps=eps)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out, eps=eps)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out, eps=eps))

    def forward(self, x):
        return F.relu(self.shortcut(x) + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class SmallResNet(nn.Module):
    def __init__(self, in_channels: int = 1, n_classes: int = 10, width: int = 8, eps: float = 1e-5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width, eps=eps))
        self.blocks = nn.Sequential(Block(width, width, 1, eps), Block(width, 2 * width, 2, eps))
        self.head = nn.Linear(2 * width, n_classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.stem(x)))
        return self.head(x.mean(dim=(2, 3)))


def train(
    steps: int = 600,
    *,
    lr: float = 1.0,
    wd: float = 0.01,
    lr_step: int = 300,
    dtype: torch.dtype = torch.float32,
    eps: float = 1e-5,
    out: str | None = None,
    seed: int = 0,
) -> tuple[dict | None, list[dict]]:
    """Train for ``steps`` optimizer steps with η halved every ``lr_step``; return the monitor's summary and
    records. ``eps`` is BatchNorm's (the tests make it tiny, so that scale invariance is exact in float64)."""
    torch.manual_seed(seed)
    data = load_dataset("digits", dtype=dtype)
    model = SmallResNet(data.in_channels, data.n_classes, eps=eps).to(dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=wd)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=lr_step, gamma=0.5)
    dataset = torch.utils.data.TensorDataset(data.train_x, data.train_y)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=128, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(seed)
    )
    monitor = Monitor(
        model, optimizer, probe=(data.train_x[:128], data.train_y[:128]), loss_fn=F.cross_entropy, out=out
    )
    step = 0
    while step < steps:
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            monitor.log(loss=loss.detach(), batch=(x, y))
            step += 1
            if step == steps:
                break
    return monitor.close(), monitor.records()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--out", default=None, help="folder for config.json, series.jsonl and summary.json")
    args = parser.parse_args()
    summary, records = train(args.steps, out=args.out)
    first, last = records[0], records[-1]
    print(f"{len(records)} steps; η {first['lr']:g} → {last['lr']:g}; ρ {first['si_norm']:.3f} → {last['si_norm']:.3f}")
    print(f"η̃ {first['elr']:.4g} → {last['elr']:.4g}; angular update at the end {last['angular_update']:.4f} rad")
    print(f"destabilisations at steps {summary['events']}; regime: {summary['regime']}")
    print(
        f"mean period {summary['period_measured']:.1f} steps (detector band {summary['period_band_low']:.1f}–"
        f"{summary['period_band_high']:.1f})"
    )
    forecast = summary.get("period_forecast", {}).get("past_events")
    if forecast:  # with at least 5 periods
        upcoming = forecast["next"]
        print(
            f"next destabilisation in {upcoming['steps_to_next']:.0f} steps (80 % interval {upcoming['low']:.0f}–"
            f"{upcoming['high']:.0f}); the forecast assumes the last η holds"
        )


if __name__ == "__main__":
    main()
