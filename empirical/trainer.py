"""Training of scale-invariant nets with SGD + weight decay: a thin loop over :class:`empirical.monitor.Monitor`.

The trainer owns the data order, the evaluation and the checkpoints; every per-step quantity (ρ, η̃, ‖∇L‖, ‖g̃‖,
the angular update, s̃ on its schedule) is the monitor's, measured from the optimizer's step.

Randomness is stateless: the order of epoch ``e`` comes from a generator seeded with ``(seed, e)`` and the
augmentation of step ``t`` from ``(seed, t)``. A checkpoint (:mod:`empirical.checkpoints`) therefore needs only the
model, the optimizer, the evaluations and the monitor's position in the streamed records; resuming from it
reproduces the uninterrupted run's files byte for byte on a CPU.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from bnwd.analysis.records import check_writable, write_json, write_jsonl
from bnwd.empirical.checkpoints import load_checkpoint, save_checkpoint
from bnwd.empirical.config import MAY_CHANGE_ON_RESUME, TrainConfig
from bnwd.empirical.curvature import batch_sharpness
from bnwd.empirical.data import AUGMENTATION, Dataset, augment, epoch_batches
from bnwd.empirical.monitor import Monitor
from bnwd.empirical.scale_invariance import find_si_groups, si_parameters

__all__ = ["Trainer", "eval_steps", "steps_per_epoch", "versions"]


def steps_per_epoch(config: TrainConfig, n_train: int) -> int:
    """Optimiser steps in one pass over ``n_train`` samples: one in full-batch mode, else ``⌈n/B⌉`` minibatches
    (the last one partial, as :func:`empirical.data.epoch_batches` cuts them)."""
    return 1 if config.full_batch else math.ceil(n_train / config.batch_size)


def versions() -> dict:
    """The versions that decide a run's rounding: Python, bnwd, torch and numpy (for ``config.json``)."""
    return {
        "python": platform.python_version(),
        "bnwd": importlib.metadata.version("bnwd"),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def eval_steps(total: int, points: int) -> list[int]:
    """About ``points`` log-spaced steps in ``[0, total]`` (always 0 and ``total``): where to evaluate."""
    if points <= 0:
        return []
    return sorted({0, total, *np.unique(np.geomspace(1, max(total, 1), points).round().astype(int)).tolist()})


class Trainer:
    """Train ``model`` on ``data`` with ``config``; records go to ``out`` (see :meth:`run`).

    The SI parameters are found numerically (:func:`empirical.scale_invariance.find_si_groups`) on the first batch.
    Without an ``optimizer``, SGD is built with them as the first parameter group (lr, wd, momentum) and every other
    trainable parameter as the second (``noninv_lr``, wd, momentum); a given optimizer is used as it is (the config's
    lr, wd and momentum then unused; ``fix_elr``, which sets the lr, refused). ``loss_fn(outputs, targets)`` is the
    mean loss trained on. ``spec`` is everything that defines the run (default: the config's fields;
    :func:`empirical.runs.build_trainer` gives the whole :class:`~empirical.config.RunSpec`): written to
    ``config.json`` and to every checkpoint, and compared on :meth:`resume`.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        data: Dataset,
        config: TrainConfig,
        out: Path,
        *,
        loss_fn: Callable = F.cross_entropy,
        optimizer: torch.optim.Optimizer | None = None,
        spec: dict | None = None,
    ):
        if config.batch_size > data.n_train:
            raise ValueError(f"batch_size {config.batch_size} is larger than the {data.n_train} training samples")
        if optimizer is not None and config.fix_elr is not None:
            raise ValueError("fix_elr sets the learning rate: it needs the trainer's own optimizer")
        self.model, self.data, self.config, self.out, self.loss_fn = model, data, config, Path(out), loss_fn
        self.spec = asdict(config) if spec is None else dict(spec)
        self.resumes: list[dict] = []  # where the run was resumed, from which checkpoint, with which fields changed
        size = min(config.batch_size, data.n_train)
        probe = (data.train_x[:size], data.train_y[:size])
        self.si_groups = find_si_groups(model, *probe, loss_fn=loss_fn)
        self.si_params = si_parameters(model, self.si_groups)
        if not self.si_params:
            raise ValueError("the model has no scale-invariant parameters (no weight feeds a BatchNorm)")
        self.si_norm0 = float(self._si_norm())
        target = config.fix_norm if config.fix_norm else self.si_norm0
        self.fixed_norm = target if (config.fix_norm is not None or config.fix_elr is not None) else None
        self.lr = config.fix_elr * self.fixed_norm**2 if config.fix_elr is not None else config.lr
        self._owns_optimizer = optimizer is None
        if optimizer is None:
            si_ids = {id(p) for p in self.si_params}
            others = [p for p in model.parameters() if p.requires_grad and id(p) not in si_ids]
            default_noninv = self.lr if getattr(model, "trains_all_parameters", False) else 0.0
            noninv_lr = default_noninv if config.noninv_lr is None else config.noninv_lr
            groups = [{"params": self.si_params, "lr": self.lr}]
            if others:
                groups.append({"params": others, "lr": noninv_lr})
            optimizer = torch.optim.SGD(groups, lr=self.lr, momentum=config.momentum, weight_decay=config.wd)
        self.optimizer = optimizer
        if self.fixed_norm is not None:
            self._project()
            # registered before the monitor's hooks: the monitor sees the projected weights
            optimizer.register_step_post_hook(lambda *_: self._project())
        self.monitor = Monitor(
            model,
            optimizer,
            probe,
            loss_fn,
            out=self.out,
            sharpness_every=config.sharpness_every,
            si_groups=self.si_groups,
            run_config=self._run_config(),
        )
        self.step = 0
        self.resumed_from: Path | None = None
        self.checkpointed_at: int | None = None  # the step of the newest checkpoint on disk
        self._written: dict = {}  # what the last checkpoint wrote of config.json and eval.jsonl
        self.evals: list[dict] = []
        self.diverged_at: int | None = None

    def _run_config(self) -> dict:
        """The trainer's part of ``config.json``: the spec (with the steps the config resolved), the learning rate
        applied to the SI weights, ρ₀, the fixed norm (None for a free one), the versions and the resumes. With a
        given optimizer, the monitor's reading of its η, λ, β stands."""
        config = self.spec | asdict(self.config) | {"lr_effective": self.lr}
        if not self._owns_optimizer:
            config = {k: v for k, v in config.items() if k not in ("lr", "wd", "momentum", "lr_effective")}
        extra = {"versions": versions(), "resumes": self.resumes}
        return {**config, "si_norm0": self.si_norm0, "fixed_norm": self.fixed_norm, **extra}

    @property
    def series(self) -> list[dict]:
        """The per-step records so far (:meth:`empirical.monitor.Monitor.records`)."""
        return self.monitor.records()

    @torch.no_grad()
    def _si_norm(self) -> torch.Tensor:
        return torch.stack(torch._foreach_norm(self.si_params)).norm()

    @torch.no_grad()
    def _project(self) -> None:
        torch._foreach_mul_(self.si_params, self.fixed_norm / self._si_norm())

    def _batch(self, indices: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The inputs and targets of ``step``'s batch (augmented as at that step)."""
        x, y = self.data.train_x[indices], self.data.train_y[indices]
        if self.config.augment:
            generator = torch.Generator(device="cpu").manual_seed(self.config.seed * 1_000_003 + step)
            padding, flip = AUGMENTATION[self.data.name]
            x = augment(x, generator, padding, flip=flip)
        return x, y

    def _step_batches(self, indices: torch.Tensor, step: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The loss of ``step`` as (ghost) batches: the step's batch, or the full batch's fixed partition."""
        parts = indices.split(self.config.batch_size) if self.config.full_batch else (indices,)
        return [self._batch(p, step) for p in parts]

    def _loss_and_grads(self, batches: list[tuple[torch.Tensor, torch.Tensor]]):
        """Mean loss, accuracy and gradients over the (ghost) ``batches``."""
        self.optimizer.zero_grad(set_to_none=False)
        total = sum(y.shape[0] for _, y in batches)
        loss_sum, correct = 0.0, 0
        for x, y in batches:
            logits = self.model(x)
            loss = self.loss_fn(logits, y) * (y.shape[0] / total)
            loss.backward()
            loss_sum = loss_sum + loss.detach()
            correct = correct + (logits.argmax(1) == y).sum()
        return loss_sum, correct / total

    def _batch_sharpness(self, step: int) -> dict:
        """:func:`empirical.curvature.batch_sharpness` on minibatches drawn at random for ``step`` (a generator of
        its own: the training's order and augmentation are untouched)."""
        stream = np.random.SeedSequence([self.config.seed, step, 1]).generate_state(1)[0]  # not the augmentation's
        generator = torch.Generator(device="cpu").manual_seed(int(stream))
        size = min(self.config.batch_size, self.data.n_train)

        def draws():
            while True:
                indices = torch.randperm(self.data.n_train, generator=generator)[:size]
                yield self._batch(indices.to(self.data.train_y.device), step)

        found = batch_sharpness(self.model, draws(), self.si_params)
        keys = ("batch_sharpness", "eff_batch_sharpness", "eff_batch_sharpness_ci_low", "eff_batch_sharpness_ci_high")
        return {key: found[key] for key in keys}

    # --- one step, in the pieces a loop over several trainers shares (empirical.batched) --------------------

    @property
    def finished(self) -> bool:
        """Whether the run is over: all its steps taken, or diverged."""
        return self.step >= self.config.steps or self.diverged_at is not None

    def _start(self) -> None:
        """Before the first step of :meth:`run` (or of a resumed run): the folder, writable with room for a
        checkpoint (``OSError`` now rather than after the work), the schedule of evaluations."""
        self.out.mkdir(parents=True, exist_ok=True)
        check_writable(self.out, self._checkpoint_bytes() if self.config.checkpoint_every else 0)
        self._evaluate_at = set(eval_steps(self.config.steps, self.config.eval_points))
        self._per_epoch = steps_per_epoch(self.config, self.data.n_train)
        self._epoch_order: tuple[int, list[torch.Tensor]] | None = None
        self.model.train(True)

    def _begin_step(self) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], dict]:
        """What comes before the gradient of step :attr:`step`: its evaluation if scheduled, the batch sharpness if
        scheduled (returned), and the step's (ghost) batches (returned)."""
        if self.step in self._evaluate_at:
            self.evals.append(self.evaluate())
        epoch, offset = divmod(self.step, self._per_epoch)
        if self._epoch_order is None or self._epoch_order[0] != epoch:
            self._epoch_order = (epoch, self._order(epoch))
        every = self.config.batch_sharpness_every
        measured = self._batch_sharpness(self.step) if every and self.step % every == 0 else {}
        return self._step_batches(self._epoch_order[1][offset], self.step), measured

    def _end_step(self, batches, loss, acc, measured: dict, after_step: Callable[[int], None] | None) -> None:
        """What comes after the gradient: the update, the monitor's record, ``after_step``, the checkpoint."""
        self.optimizer.step()
        self.monitor.log(batch=batches, loss=loss, acc=acc, **measured)
        if after_step is not None:
            after_step(self.step)
        self.step += 1
        self.diverged_at = self.monitor.diverged_at
        if self.diverged_at is None and self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0:
            self._checkpoint()

    def _finish(self) -> dict:
        """After the last step: the final evaluation, ``eval.jsonl``, the monitor's files; the summary."""
        if self.diverged_at is None and self.step in self._evaluate_at:
            self.evals.append(self.evaluate())
        if self.diverged_at is not None:  # found when the values reached the host, maybe some steps later
            self.evals = [e for e in self.evals if e["step"] <= self.diverged_at]
        write_jsonl(self.out / "eval.jsonl", self.evals)
        return self.monitor.close()

    # --- evaluation ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Train loss/accuracy in train-mode BN on fixed batches, test loss/accuracy in eval mode.

        Train mode updates BatchNorm's running statistics; they are saved and restored, so evaluation leaves
        training untouched.
        """
        buffers = {name: b.clone() for name, b in self.model.named_buffers()}
        record = {"step": self.step}
        for split, x_all, y_all, train_mode in (
            ("train", self.data.train_x, self.data.train_y, True),
            ("test", self.data.test_x, self.data.test_y, False),
        ):
            self.model.train(train_mode)
            loss, correct = 0.0, 0
            for part in torch.arange(y_all.numel(), device=y_all.device).split(self.config.batch_size):
                logits = self.model(x_all[part])
                loss += float(self.loss_fn(logits, y_all[part])) * part.numel()
                correct += int((logits.argmax(1) == y_all[part]).sum())
            record[f"{split}_loss"], record[f"{split}_acc"] = loss / y_all.numel(), correct / y_all.numel()
        self.model.train(True)
        for name, b in self.model.named_buffers():
            b.copy_(buffers[name])
        return record

    # --- files --------------------------------------------------------------------------------------------

    def _checkpoint_bytes(self) -> int:
        """An upper estimate of a checkpoint's size: the model's state three times (the weights, and at most two
        optimizer buffers per weight: SGD's momentum, Adam's moments), with room for the rest."""
        return 3 * sum(t.numel() * t.element_size() for t in self.model.state_dict().values()) + 2**20

    def _checkpoint(self) -> None:
        """The records streamed so far made durable, then the state (:mod:`empirical.checkpoints`): the model, the
        optimizer, the monitor's position in the stream and the evaluations, not the history."""
        state = {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "monitor": self.monitor.state_dict(),
            "evals": self.evals,
            "si_norm0": self.si_norm0,
            "fixed_norm": self.fixed_norm,
            "spec": self.spec,
            "resumes": self.resumes,
        }
        save_checkpoint(self.out, state)
        self.checkpointed_at = self.step
        config = self.monitor.config()
        if config != self._written.get("config"):  # both change rarely: rewritten only when they did
            write_json(self.out / "config.json", config)
            self._written["config"] = config
        if len(self.evals) != self._written.get("evals"):
            write_jsonl(self.out / "eval.jsonl", self.evals)
            self._written["evals"] = len(self.evals)

    def resume(self) -> bool:
        """Continue from the newest whole checkpoint in ``out`` if there is one (:attr:`resumed_from` says which);
        return whether there was.

        The checkpoint's spec must equal this trainer's but for the fields of
        :data:`~empirical.config.MAY_CHANGE_ON_RESUME` (those changed are recorded in :attr:`resumes`, and so in
        ``config.json``). ``ValueError``, naming what differs, for a checkpoint of another run, one beyond the steps
        asked for, or one whose weights do not fit the model; and if every checkpoint there is damaged.
        """
        found = load_checkpoint(self.out, map_location=self.data.train_x.device)
        if found is None:
            return False
        state, path = found
        changed = self._changed_since(state)
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as error:  # a checkpoint written before specs were recorded
            reason = " ".join(line.strip() for line in str(error).strip().splitlines()[:2])
            raise ValueError(f"{path}: its weights do not fit this model and optimizer ({reason})") from None
        self.resumed_from = path
        self.resumes = [*state.get("resumes", []), {"step": state["step"], "checkpoint": path.name, "changed": changed}]
        self.step, self.evals, self.checkpointed_at = state["step"], state["evals"], state["step"]
        self.si_norm0, self.fixed_norm = state["si_norm0"], state["fixed_norm"]  # the run's, not this fresh model's
        self.monitor.run_config |= self._run_config()
        self.monitor.load_state_dict(state["monitor"])
        return True

    def _changed_since(self, state: dict) -> dict:
        """The spec fields that differ from those the checkpoint ``state`` was written with, as ``{name: [then,
        now]}``; ``ValueError`` if one may not change on resume, or if the checkpoint is beyond the last step. A
        checkpoint written before specs were recorded is compared with the fields ``config.json`` holds."""
        if "spec" in state:
            written = state["spec"]
        else:
            config_path = self.out / "config.json"
            written = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
        changed = {k: [written[k], v] for k, v in self.spec.items() if k in written and written[k] != v}
        refused = [k for k in changed if k not in MAY_CHANGE_ON_RESUME]
        if refused:
            differences = ", ".join(f"{k} {changed[k][0]!r} (now {changed[k][1]!r})" for k in refused)
            raise ValueError(
                f"{self.out} holds another run: its checkpoint has {differences}; only "
                f"{', '.join(MAY_CHANGE_ON_RESUME)} may change on resume"
            )
        if state["step"] > self.config.steps:
            raise ValueError(
                f"{self.out}: its checkpoint is at step {state['step']}, beyond the {self.config.steps} steps asked for"
            )
        return changed

    def _order(self, epoch: int) -> list[torch.Tensor]:
        device = self.data.train_y.device
        if self.config.full_batch:
            return [torch.arange(self.data.n_train, device=device)]
        return epoch_batches(
            self.data.n_train, self.config.batch_size, seed=self.config.seed, epoch=epoch, device=device
        )

    def run(self, progress: bool = True, after_step: Callable[[int], None] | None = None) -> dict:
        """Train to ``config.steps``; write config, series, evals, checkpoints and the summary; return the summary.

        ``after_step(t)``, if given, is called after the update of each step ``t`` (the model then holds the weights
        of step t + 1)."""
        self._start()
        # closed on an interrupt too: what is printed after it starts on a line of its own
        with tqdm(total=self.config.steps, initial=self.step, disable=not progress, desc="train", unit="step") as bar:
            while not self.finished:
                batches, measured = self._begin_step()
                loss, acc = self._loss_and_grads(batches)
                self._end_step(batches, loss, acc, measured, after_step)
                bar.update(1)
        return self._finish()

    def summary(self) -> dict:
        """The run's summary (:meth:`empirical.monitor.Monitor.summary` of the records so far)."""
        return self.monitor.summary()
