"""Training of scale-invariant nets with SGD + weight decay, every metric computed online from the step itself.

Per step the trainer records the batch loss and accuracy, the joint norm ρ of the scale-invariant (SI) weights
and the norm of each SI tensor, η̃ = η/ρ², ‖∇_SI L_B‖, ‖g̃‖ = ρ‖∇_SI L_B‖ and the angle between the SI weights
before and after the step. They come from the gradients the step computes anyway (no extra pass over data),
reduced with ``torch._foreach_*`` kernels and brought to the host in one transfer per step.

Randomness is stateless: the order of epoch ``e`` comes from a generator seeded with ``(seed, e)`` and the
augmentation of step ``t`` from ``(seed, t)``. A checkpoint therefore needs only the model, the optimizer and the
records; resuming from it reproduces the uninterrupted run bit for bit on a CPU.
"""

from __future__ import annotations

import copy
import math
import os
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

import theory
from empirical.curvature import batch_sharpness, effective_sharpness
from empirical.data import AUGMENTATION, Dataset, augment, epoch_batches
from empirical.scale_invariance import find_si_groups, si_parameters
from empirical.tracking import CrossingSearch, locate_crossing
from simulate.analysis import summarize_run, threshold_crossings
from simulate.destabilization import DEFAULT_SETTINGS
from simulate.forecast import MIN_HISTORY, run_forecast
from simulate.records import current_record, series_arrays, write_json, write_jsonl

SHARPNESS_TOL = 1e-3
"""Relative error bound of each measured λ_max (Lanczos, :func:`empirical.curvature.top_eigenvalues`)."""


@dataclass
class TrainConfig:
    """Everything that defines a run (written to ``config.json``).

    ``steps`` counts optimiser steps (one per minibatch, or one per epoch in full-batch mode). ``noninv_lr`` is the
    learning rate of the parameters that are not scale-invariant (0 freezes them; None: 0 for the SI nets, ``lr``
    for nets whose every parameter is trained). ``fix_norm`` projects the SI weights back to that norm after every
    step (0: to their initial norm ρ₀); ``fix_elr`` sets ``lr = fix_elr·ρ₀²`` with that projection.
    ``sharpness_every`` K > 0 measures the effective sharpness s̃ of the step's loss at least every K steps, where
    η̃·s̃ is predicted to cross 2(1−ηλ), and at the step before ρ rises; the latest upward crossing before each
    destabilisation is then located to one step over the weights of the last K steps (:mod:`empirical.tracking`).
    ``batch_sharpness_every`` K > 0 measures the batch sharpness (:func:`empirical.curvature.batch_sharpness`) on
    random minibatches every K steps. Neither changes the training.
    """

    lr: float
    wd: float
    steps: int = 4000
    momentum: float = 0.0
    batch_size: int = 128
    noninv_lr: float | None = None
    fix_norm: float | None = None
    fix_elr: float | None = None
    full_batch: bool = False
    augment: bool = False
    seed: int = 0
    eval_points: int = 20
    checkpoint_every: int = 0
    sharpness_every: int = 0
    batch_sharpness_every: int = 0

    def __post_init__(self):
        theory.validate(lr=self.lr, wd=self.wd, momentum=self.momentum)
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be >= 1")
        if self.fix_norm is not None and self.fix_elr is not None:
            raise ValueError("fix_norm and fix_elr exclude each other")
        if min(self.sharpness_every, self.batch_sharpness_every, self.checkpoint_every) < 0:
            raise ValueError("sharpness_every, batch_sharpness_every and checkpoint_every must be >= 0")
        if self.noninv_lr is not None and not (math.isfinite(self.noninv_lr) and self.noninv_lr >= 0):
            raise ValueError(f"noninv_lr must be finite and >= 0; got {self.noninv_lr!r}")


def stability_threshold(lr: float, wd: float, momentum: float = 0.0) -> float | None:
    """The η̃·s̃ above which SGD leaves a minimum (:func:`theory.stability_threshold`): 2(1−ηλ) without momentum;
    None where the theory gives none (with momentum, ηλ > (1−√β)²: the norm decays in oscillations)."""
    if not theory.monotone_decay(lr, wd, momentum):
        return None
    return float(theory.stability_threshold(lr, wd, momentum))


def summarize_records(config: dict, records: list[dict], settings=DEFAULT_SETTINGS) -> dict:
    """The summary of a measured run: :func:`simulate.analysis.summarize_run` of its records, with what the trainer
    knows besides.

    The norm control comes from ``fix_elr`` / ``fix_norm``, the learning rate from ``lr_effective``; the effective
    sharpness of the minima is the median of those measured (``sharpness_every > 0``). Where η̃·s̃ was measured, the
    summary adds ``elr_times_sharpness_threshold`` (:func:`stability_threshold`: 2(1−ηλ), or heavy ball's threshold
    with momentum) and, per destabilisation, where η̃·s̃ stood before it
    (:func:`simulate.analysis.threshold_crossings`); with momentum and ηλ > (1−√β)², where the theory derives no
    threshold, neither. With a free norm, λ > 0, a threshold and at least 5 periods it adds ``period_forecast``
    (:func:`simulate.forecast.run_forecast`): each period predicted from its first quarter, and the next one.

    Parameters
    ----------
    config : dict
        The run's ``config.json`` (``lr``, ``wd``, ``momentum``, ``lr_effective``, ``fix_norm``, ``fix_elr``).
    records : list of dict
        Its per-step records in memory form (:func:`simulate.records.read_jsonl` of ``series.jsonl``).
    settings : DetectorSettings
        The detector's settings (:mod:`simulate.destabilization`).

    Returns
    -------
    dict
        The :data:`simulate.schema.SUMMARY_FIELDS` of the run but ``run_id``.
    """
    steps, series = series_arrays(records)
    if config.get("fix_elr") is not None:
        norm_control = "fixed_elr"
    elif config.get("fix_norm") is not None:
        norm_control = "fixed_norm"
    else:
        norm_control = "free"
    measured = [r for r in records if "eff_sharpness" in r]
    lr, wd, momentum = config["lr_effective"], config["wd"], config["momentum"]
    summary = summarize_run(
        steps,
        series,
        lr=config["lr"],
        wd=wd,
        momentum=momentum,
        lr_effective=lr,
        norm_control=norm_control,
        eff_sharpness=float(np.median([r["eff_sharpness"] for r in measured])) if measured else None,
        settings=settings,
        error_floor=math.log(np.finfo(config.get("weights_dtype", "float32")).eps),
    )
    threshold = stability_threshold(lr, wd, momentum)
    if measured and threshold is not None:
        summary["elr_times_sharpness_threshold"] = threshold
        summary["elr_times_sharpness_before_destabilization"] = threshold_crossings(
            [r["step"] for r in measured], [r["elr_times_sharpness"] for r in measured], summary["events"], threshold
        )
    if norm_control == "free" and wd > 0 and threshold is not None and len(summary["events"]) >= MIN_HISTORY + 3:
        summary["period_forecast"] = run_forecast(
            steps,
            series["elr"],
            summary["events"],
            [r["step"] for r in measured],
            [r["eff_sharpness"] for r in measured],
            lr=lr,
            wd=wd,
            momentum=momentum,
        )
    return summary


def eval_steps(total: int, points: int) -> list[int]:
    """About ``points`` log-spaced steps in ``[0, total]`` (always 0 and ``total``): where to evaluate."""
    if points <= 0:
        return []
    return sorted({0, total, *np.unique(np.geomspace(1, max(total, 1), points).round().astype(int)).tolist()})


class Trainer:
    """Train ``model`` on ``data`` with ``config``; records go to ``out`` (see :meth:`run`).

    The SI parameters are found numerically (:func:`empirical.scale_invariance.find_si_groups`) on the first batch;
    they form the first parameter group (lr, wd, momentum), every other trainable parameter the second
    (``noninv_lr``, wd, momentum).
    """

    def __init__(self, model: torch.nn.Module, data: Dataset, config: TrainConfig, out: Path):
        if config.batch_size > data.n_train:
            raise ValueError(f"batch_size {config.batch_size} is larger than the {data.n_train} training samples")
        self.model, self.data, self.config, self.out = model, data, config, Path(out)
        probe = data.train_x[: min(config.batch_size, data.n_train)]
        self.si_groups = find_si_groups(model, probe, data.train_y[: probe.shape[0]])
        self.si_params = si_parameters(model, self.si_groups)
        if not self.si_params:
            raise ValueError("the model has no scale-invariant parameters (no weight feeds a BatchNorm)")
        si_ids = {id(p) for p in self.si_params}
        others = [p for p in model.parameters() if p.requires_grad and id(p) not in si_ids]
        self.si_norm0 = float(self._norms()[0])
        target = config.fix_norm if config.fix_norm else self.si_norm0
        self.fixed_norm = target if (config.fix_norm is not None or config.fix_elr is not None) else None
        lr = config.fix_elr * self.fixed_norm**2 if config.fix_elr is not None else config.lr
        default_noninv = lr if getattr(model, "trains_all_parameters", False) else 0.0
        noninv_lr = default_noninv if config.noninv_lr is None else config.noninv_lr
        groups = [{"params": self.si_params, "lr": lr}]
        if others:
            groups.append({"params": others, "lr": noninv_lr})
        self.lr = lr
        self.optimizer = torch.optim.SGD(groups, lr=lr, momentum=config.momentum, weight_decay=config.wd)
        self.step = 0
        self.series: list[dict] = []
        self.evals: list[dict] = []
        self.diverged_at: int | None = None
        every = config.sharpness_every
        threshold = stability_threshold(lr, config.wd, config.momentum)
        # without a threshold (momentum outside the theory's domain) s̃ is measured every K steps only
        self._search = CrossingSearch(math.inf if threshold is None else threshold, every) if every else None
        # The last K steps' weights and batches, for measurements at past steps; a shadow model holds them.
        self._history: deque[tuple[int, torch.Tensor, list[torch.Tensor]]] = deque(maxlen=every + 1)
        self._shadow, self._shadow_si = None, []
        if every:
            self._shadow = copy.deepcopy(model).train()
            # deepcopy keeps the parameter order: the shadow's SI weights sit where the model's do
            positions = {id(p): i for i, p in enumerate(model.parameters())}
            shadow = list(self._shadow.parameters())
            self._shadow_si = [shadow[positions[id(p)]] for p in self.si_params]
        self._eigenvectors: dict[int, np.ndarray] = {}
        if self.fixed_norm is not None:
            self._project()

    # --- metrics ------------------------------------------------------------------------------------------

    @torch.no_grad()
    def _norms(self) -> torch.Tensor:
        """Joint norm of the SI weights followed by the norm of each SI tensor (one tensor, on the device)."""
        per_tensor = torch.stack(torch._foreach_norm(self.si_params))
        return torch.cat([per_tensor.norm().reshape(1), per_tensor])

    def _project(self) -> None:
        with torch.no_grad():
            torch._foreach_mul_(self.si_params, self.fixed_norm / self._norms()[0])

    def _batch(self, indices: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The inputs and targets of ``step``'s batch (augmented as at that step)."""
        x, y = self.data.train_x[indices], self.data.train_y[indices]
        if self.config.augment:
            generator = torch.Generator(device="cpu").manual_seed(self.config.seed * 1_000_003 + step)
            padding, flip = AUGMENTATION[self.data.name]
            x = augment(x, generator, padding, flip=flip)
        return x, y

    def _loss_and_grads(self, indices: torch.Tensor):
        """Mean loss, correct count and gradients; full batch: a fixed partition into ghost batches."""
        self.optimizer.zero_grad(set_to_none=False)
        total = indices.numel()
        parts = indices.split(self.config.batch_size) if self.config.full_batch else (indices,)
        loss_sum, correct = 0.0, 0
        for part in parts:
            x, y = self._batch(part, self.step)
            logits = self.model(x)
            loss = F.cross_entropy(logits, y, reduction="sum") / total
            loss.backward()
            loss_sum = loss_sum + loss.detach()
            correct = correct + (logits.argmax(1) == y).sum()
        return loss_sum, correct / total

    @property
    def stability_threshold(self) -> float | None:
        """The η̃·s̃ above which SGD leaves a minimum (:func:`stability_threshold`)."""
        return stability_threshold(self.lr, self.config.wd, self.config.momentum)

    def _step_batches(self, indices: torch.Tensor, step: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The loss of ``step`` as (ghost) batches: the step's batch, or the full batch's fixed partition."""
        parts = indices.split(self.config.batch_size) if self.config.full_batch else (indices,)
        return [self._batch(p, step) for p in parts]

    def _sharpness(self, step: int, indices: torch.Tensor, weights: list[torch.Tensor] | None = None) -> dict:
        """λ_max of ``step``'s loss on the SI weights (Lanczos to :data:`SHARPNESS_TOL`) and s̃ = ρ²·λ_max, at the
        model's weights or at ``weights`` (all parameters of a past step, loaded into the shadow model).

        Lanczos starts from the top eigenvector measured nearest in time within the last K steps (a warm start,
        a few HVPs), cold otherwise."""
        model, si_params = self.model, self.si_params
        if weights is not None:
            model, si_params = self._shadow, self._shadow_si
            with torch.no_grad():
                torch._foreach_copy_(list(model.parameters()), weights)
        near = [t for t in self._eigenvectors if abs(t - step) < self.config.sharpness_every]
        warm = self._eigenvectors[min(near, key=lambda t: abs(t - step))] if near else None
        found = effective_sharpness(
            model, self._step_batches(indices, step), si_params=si_params, tol=SHARPNESS_TOL, v0=warm
        )
        self._eigenvectors[step] = found["eigenvector"]
        for t in [t for t in self._eigenvectors if t < step - self.config.sharpness_every]:
            del self._eigenvectors[t]
        return {"sharpness": found["sharpness"], "eff_sharpness": found["eff_sharpness"]}

    def _measure(self, indices: torch.Tensor) -> dict:
        """The curvature measurements due at this step (before its update); keeps its weights for later ones.

        When ρ rose on the step before and :meth:`empirical.tracking.CrossingSearch.look_back` asks for it, that
        step is measured from the ring buffer first, and a crossing it brackets is located."""
        found = {}
        if self._search is not None:
            rho = float(self._norms()[0])
            if self.series and self._search.look_back(self.step, rho > self.series[-1]["si_norm"]):
                self._measure_past(self.step - 1, looked_back=True)
            self._history.append((self.step, indices, [p.detach().clone() for p in self.model.parameters()]))
            if self._search.due(self.step, theory.effective_lr(self.lr, rho)):
                found |= self._sharpness(self.step, indices)
        every = self.config.batch_sharpness_every
        if every and self.step % every == 0:
            found |= self._batch_sharpness(self.step)
        return found

    def _measure_past(self, step: int, looked_back: bool = False) -> float | None:
        """η̃·s̃ at a past ``step``: measured before, or now from the ring buffer into its record; None if the step
        is no longer kept. With ``looked_back``, the measurement goes to the schedule, and a crossing it brackets
        is located."""
        record = self.series[step]
        if "elr_times_sharpness" in record and not looked_back:
            return record["elr_times_sharpness"]
        kept = {t: (indices, weights) for t, indices, weights in self._history}
        if step not in kept:
            return None
        record.update(self._sharpness(step, *kept[step]))
        record["elr_times_sharpness"] = record["elr"] * record["eff_sharpness"]
        if looked_back:
            bracket = self._search.update(step, record["elr"], record["eff_sharpness"], looked_back=True)
            if bracket:
                locate_crossing(*bracket, self._measure_past, self.stability_threshold)
        return record["elr_times_sharpness"]

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

    def _train_step(self, indices: torch.Tensor) -> dict:
        loss, acc = self._loss_and_grads(indices)
        with torch.no_grad():
            grads = [p.grad for p in self.si_params]
            before = [p.detach().clone() for p in self.si_params]
            norms = self._norms()
            grad_norm = torch.stack(torch._foreach_norm(grads)).norm()
            self.optimizer.step()
            if self.fixed_norm is not None:
                self._project()
            after = [p.detach() for p in self.si_params]
            along = torch.stack([t.sum() for t in torch._foreach_mul(before, after)]).sum() / norms[0] ** 2
            # The orthogonal part w⁺ − (⟨w,w⁺⟩/ρ²)w is formed explicitly: accurate for tiny angles.
            orthogonal = torch.stack(torch._foreach_norm(torch._foreach_sub(after, torch._foreach_mul(before, along))))
            angle = torch.atan2(orthogonal.norm(), along * norms[0])
            values = torch.cat([torch.stack([loss, acc.to(loss.dtype), grad_norm, angle]), norms]).tolist()
        loss, acc, grad_norm, angle, rho, *per_tensor = values
        record = {"step": self.step, "loss": loss, "acc": acc, "si_norm": rho, "grad_norm": grad_norm}
        if math.isfinite(rho) and rho > 0 and math.isfinite(grad_norm):
            record["elr"] = float(theory.effective_lr(self.lr, rho))
            record["eff_grad_norm"] = float(theory.effective_grad_norm(grad_norm, rho))
        else:
            record["elr"] = record["eff_grad_norm"] = float("nan")
        record["angular_update"] = angle
        record["si_norm_per_tensor"] = per_tensor
        return record

    # --- evaluation ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def _evaluate(self) -> dict:
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
                loss += float(F.cross_entropy(logits, y_all[part], reduction="sum"))
                correct += int((logits.argmax(1) == y_all[part]).sum())
            record[f"{split}_loss"], record[f"{split}_acc"] = loss / y_all.numel(), correct / y_all.numel()
        self.model.train(True)
        for name, b in self.model.named_buffers():
            b.copy_(buffers[name])
        return record

    # --- files --------------------------------------------------------------------------------------------

    def _checkpoint(self) -> None:
        state = {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "series": self.series,
            "evals": self.evals,
            "si_norm0": self.si_norm0,
            "fixed_norm": self.fixed_norm,
        }
        tmp = self.out / "checkpoint.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, self.out / "checkpoint.pt")
        self._write_records()

    def _write_records(self) -> None:
        write_jsonl(self.out / "series.jsonl", self.series)
        write_jsonl(self.out / "eval.jsonl", self.evals)

    def resume(self) -> bool:
        """Continue from ``out/checkpoint.pt`` if there is one; return whether there was."""
        path = self.out / "checkpoint.pt"
        if not path.exists():
            return False
        # A checkpoint written before the schema names ρ "rho": its state and records are read in today's names.
        state = current_record(torch.load(path, map_location=self.data.train_x.device, weights_only=False))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.evals = state["step"], state["evals"]
        self.series = [current_record(r) for r in state["series"]]
        self.si_norm0, self.fixed_norm = state["si_norm0"], state["fixed_norm"]  # the run's, not this fresh model's
        measured = [r for r in self.series if "eff_sharpness" in r]
        if measured and self._search is not None:  # the schedule goes on from the last measurement, cold
            self._search.update(measured[-1]["step"], measured[-1]["elr"], measured[-1]["eff_sharpness"])
        return True

    def _order(self, epoch: int) -> list[torch.Tensor]:
        device = self.data.train_y.device
        if self.config.full_batch:
            return [torch.arange(self.data.n_train, device=device)]
        return epoch_batches(
            self.data.n_train, self.config.batch_size, seed=self.config.seed, epoch=epoch, device=device
        )

    def run(self, progress: bool = True) -> dict:
        """Train to ``config.steps``; write config, series, evals, checkpoints and the summary; return the summary."""
        self.out.mkdir(parents=True, exist_ok=True)
        write_json(self.out / "config.json", self._config_record())
        evaluate_at = set(eval_steps(self.config.steps, self.config.eval_points))
        per_epoch = 1 if self.config.full_batch else math.ceil(self.data.n_train / self.config.batch_size)
        self.model.train(True)
        bar = tqdm(total=self.config.steps, initial=self.step, disable=not progress, desc="train", unit="step")
        while self.step < self.config.steps and self.diverged_at is None:
            epoch, offset = divmod(self.step, per_epoch)
            for indices in self._order(epoch)[offset:]:
                if self.step in evaluate_at:
                    self.evals.append(self._evaluate())
                curvature = self._measure(indices)
                record = self._train_step(indices)
                if "eff_sharpness" in curvature:  # the record's η̃ is the one before the step, where s̃ was measured
                    curvature["elr_times_sharpness"] = record["elr"] * curvature["eff_sharpness"]
                if "eff_batch_sharpness" in curvature:
                    curvature["elr_times_batch_sharpness"] = record["elr"] * curvature["eff_batch_sharpness"]
                record.update(curvature)
                self.series.append(record)
                if "eff_sharpness" in curvature and math.isfinite(record["elr"]):
                    bracket = self._search.update(self.step, record["elr"], curvature["eff_sharpness"])
                    if bracket:
                        locate_crossing(*bracket, self._measure_past, self.stability_threshold)
                self.step += 1
                bar.update(1)
                if not (math.isfinite(record["loss"]) and math.isfinite(record["si_norm"])):
                    self.diverged_at = record["step"]
                    break
                if self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0:
                    self._checkpoint()
                if self.step >= self.config.steps:
                    break
        bar.close()
        if self.diverged_at is None and self.step in evaluate_at:
            self.evals.append(self._evaluate())
        self._write_records()
        summary = self.summary()
        write_json(self.out / "summary.json", summary)
        return summary

    def _config_record(self) -> dict:
        """What ``config.json`` holds: the config, the learning rate applied to the SI weights, ρ₀, the fixed norm
        (None for a free one), the SI groups and the weights' dtype (whose rounding floors the prediction's
        escape delay)."""
        return {
            **asdict(self.config),
            "lr_effective": self.lr,
            "si_norm0": self.si_norm0,
            "fixed_norm": self.fixed_norm,
            "si_groups": self.si_groups,
            "weights_dtype": str(self.si_params[0].dtype).removeprefix("torch."),
        }

    def summary(self) -> dict:
        """The run's summary (:func:`summarize_records` of its config and the records so far)."""
        return summarize_records(self._config_record(), self.series)
