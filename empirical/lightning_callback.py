"""bnwd inside PyTorch Lightning: :class:`MonitorCallback` runs :class:`empirical.monitor.Monitor` on the trainer's
optimizer and logs its per-step quantities as ``bnwd/<name>`` to the trainer's loggers.

Needs the optional ``lightning`` package (``pip install 'bnwd[lightning]'``; ``make test`` installs it).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from bnwd.empirical.monitor import Monitor

__all__ = ["MonitorCallback"]

try:
    import lightning.pytorch as pl
except ImportError as error:  # pragma: no cover - the test environment has lightning
    raise ImportError("bnwd's Lightning callback needs lightning: pip install 'bnwd[lightning]'") from error


class MonitorCallback(pl.Callback):
    """Measure every optimizer step of a Lightning fit with :class:`~empirical.monitor.Monitor`.

    The monitor is built at the first training batch (the optimizer exists then), on ``probe`` or, without one, on
    that batch; it is given each step's batch (for s̃) and the loss ``training_step`` returned. Each record that
    reaches the host is logged as ``bnwd/<name>`` for every number in it, at its optimizer step, the early warning
    among them (``bnwd/warning``, 0 or 1, and ``bnwd/steps_to_threshold``). At the end of the fit the monitor
    closes: :attr:`summary` holds the run's summary, :attr:`monitor` the records.

    Parameters
    ----------
    probe : (inputs, targets), optional
        Where the scale-invariant weights are found (default: the first training batch).
    loss_fn : callable
        ``loss_fn(outputs, targets)``: the mean loss ``training_step`` computes from ``module(inputs)``.
    out : path, optional
        Where the monitor writes its files at the end.
    sharpness_every, sync_every :
        As for :class:`~empirical.monitor.Monitor`.
    """

    def __init__(
        self,
        probe: tuple[torch.Tensor, torch.Tensor] | None = None,
        loss_fn: Callable = F.cross_entropy,
        *,
        out: str | Path | None = None,
        sharpness_every: int = 0,
        sync_every: int | None = None,
    ):
        self.probe, self.loss_fn, self.out = probe, loss_fn, out
        self.sharpness_every, self.sync_every = sharpness_every, sync_every
        self.monitor: Monitor | None = None
        self.summary: dict | None = None
        self._logged_steps = 0

    @staticmethod
    def _pair(batch) -> tuple[torch.Tensor, torch.Tensor] | None:
        is_pair = isinstance(batch, list | tuple) and len(batch) == 2 and all(torch.is_tensor(t) for t in batch)
        return tuple(batch) if is_pair else None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.monitor is not None:
            return
        if len(trainer.optimizers) != 1:
            raise ValueError(f"MonitorCallback follows one optimizer; this module has {len(trainer.optimizers)}")
        probe = self.probe or self._pair(batch)
        if probe is None:
            raise ValueError("MonitorCallback: the batches are not (inputs, targets) pairs; pass probe=(x, y)")

        def log_records(records: list[dict]) -> None:
            for record in records:
                # the numbers (floats, NaN as they are, and the int warning); not the step, nor per-tensor lists
                metrics = {f"bnwd/{k}": v for k, v in record.items() if k != "step" and isinstance(v, int | float)}
                for logger in trainer.loggers:
                    logger.log_metrics(metrics, step=record["step"])

        self.monitor = Monitor(
            pl_module,
            trainer.optimizers[0],
            probe,
            self.loss_fn,
            out=self.out,
            sharpness_every=self.sharpness_every,
            sync_every=self.sync_every,
            on_records=log_records,
        )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.monitor.step == self._logged_steps:  # no optimizer step on this batch (accumulation)
            return
        self._logged_steps = self.monitor.step
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        values = {"loss": loss.detach()} if torch.is_tensor(loss) else {}
        self.monitor.log(batch=self._pair(batch), **values)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.monitor is not None:
            self.summary = self.monitor.close()
