"""Every per-step quantity of scale-invariant training, measured inside any training loop.

:class:`Monitor` attaches to the user's optimizer through its step hooks and measures, at every optimizer step:
the joint norm ρ of the scale-invariant (SI) weights and the norm of each SI tensor, ‖∇_SI L‖ of the gradient the
step applies, the angle between the SI weights before and after the step (after whatever else the step's
post-hooks do, such as a projection registered before the monitor), and η, λ, β as the optimizer's
``param_groups`` hold them at that step (a scheduler's η, not a stale copy). From those it derives η̃ = η/ρ² and
‖g̃‖ = ρ‖∇L‖ where the theory covers the optimizer (SGD, with or without heavy-ball momentum, coupled weight
decay); for any other optimizer it records what is well defined and names what it does not compute
(:attr:`Monitor.not_computed`). It records the cosine of consecutive steps' SI gradients (``grad_cosine``: −1 when
the top direction flips the gradient each step) and the early warning of the next destabilisation
(:class:`analysis.early_warning.EarlyWarning`, fed each record in order: ``warning``, ``steps_to_threshold``,
:attr:`Monitor.warning`). On a schedule it measures the effective sharpness s̃ = ρ²λ_max densely where η̃·s̃
is predicted to cross the stability threshold (:mod:`empirical.tracking`), from the weights of the last K steps
kept in a shadow model, so the training is untouched (:mod:`empirical.sharpness_schedule`). The records go to
``series.jsonl`` as the run goes (:mod:`empirical.record_stream`); :meth:`Monitor.close` writes the rest and
returns the run's summary (:func:`analysis.summary.summarize_records`): destabilisations, periods, regime and the
forecast of the next period. The monitor coordinates these parts: its hooks, the buffering and the theory's
quantities are its own, its checkpoint state is assembled from theirs.

The hooks see the gradient the optimizer applies: clipped if the loop clipped it, accumulated over micro-batches
if it accumulated, unscaled by a ``GradScaler`` (which unscales before it steps). A step the scaler skips calls no
hook and leaves no record; :meth:`Monitor.log` counts the calls that came with no step. An optimizer called with a
closure (L-BFGS style, or PyTorch Lightning's automatic optimization) has its closure wrapped, so the gradient is
read once the closure has made it.

Values stay on the device and are brought to the host every ``sync_every`` steps in one transfer (every step while
the sharpness schedule needs η̃ to decide); a run that diverges is recorded up to its first non-finite step.

Every record has the same columns whatever the optimizer, so that ``pandas.read_json(..., lines=True)["elr"]`` works
for any run: η̃ and ‖g̃‖ are NaN (``null`` in ``series.jsonl``) where the theory does not cover the optimizer, and
``config.json``'s ``not_computed`` says why. ``lr``, ``wd`` and ``momentum`` are what the SI weights' param group
holds, and ``config.json``'s ``hyperparameters_read_from`` says from which entry and what it means: ``momentum`` is
heavy-ball β where the group has a ``momentum`` (SGD, RMSprop), β₁ = ``betas[0]`` for the Adam family (the first
moment's averaging, which the theory's β is not), 0 for an optimizer with neither; ``wd`` is ``weight_decay``,
coupled (λw joins the gradient, as the theory has it) or decoupled (AdamW: w ← (1 − ηλ)w beside the step).

The monitor refuses at construction what would make its numbers meaningless, in the words of the CLI
(:func:`theory.validate`): where the theory covers the optimizer, η > 0, λ ≥ 0, β in [0, 1) and ηλ < 1, all finite;
for another optimizer η > 0 and λ ≥ 0, finite (a warmup starts above η = 0). A schedule that takes η, λ, β out of
that domain later loses nothing: the records are kept (η̃ NaN where η = 0), and the summary, whose theory needs them
at the last step, is left out with the reason in ``not_computed``. :meth:`Monitor.close` writes ``series.jsonl`` and
``config.json`` before it computes the summary, so that an error there raises with the records on disk.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bnwd import theory
from bnwd.analysis.destabilization import DEFAULT_SETTINGS
from bnwd.analysis.early_warning import EarlyWarning
from bnwd.analysis.records import write_json
from bnwd.analysis.summary import summarize_records
from bnwd.empirical.record_stream import RecordStream
from bnwd.empirical.scale_invariance import find_si_groups, si_parameters
from bnwd.empirical.sharpness_schedule import SharpnessSchedule

__all__ = ["SHARPNESS_TOL", "SYNC_EVERY", "THEORY_QUANTITIES", "Monitor", "theory_covers"]

SHARPNESS_TOL = 1e-3
"""Relative error bound of each measured λ_max (Lanczos, :func:`empirical.eigensolvers.top_eigenvalues`), which also
certifies that λ_max is at most :data:`~empirical.eigensolvers.MISS_TOL` above it at
:data:`~empirical.eigensolvers.CONFIDENCE`."""

SYNC_EVERY = 64
"""Steps between transfers of the buffered values to the host, by default."""

THEORY_QUANTITIES = ("elr", "eff_grad_norm", "elr_times_sharpness", "summary")
"""What an optimizer outside the theory's reach gets no value for."""

_PRODUCTS = {"eff_sharpness": "elr_times_sharpness", "eff_batch_sharpness": "elr_times_batch_sharpness"}


def theory_covers(optimizer: torch.optim.Optimizer) -> str | None:
    """Why the theory's per-step quantities do not apply to ``optimizer``; None when they do: plain SGD with
    coupled weight decay, without momentum or with heavy-ball momentum (no dampening, not Nesterov)."""
    if type(optimizer) is not torch.optim.SGD:
        return f"{type(optimizer).__name__} is not SGD"
    for group in optimizer.param_groups:
        if group.get("nesterov"):
            return "Nesterov momentum"
        if group.get("maximize"):
            return "maximize=True"
        if group.get("momentum", 0.0) and group.get("dampening", 0.0):
            return "momentum with dampening"
    return None


def _momentum(group: dict) -> float:
    """The param group's momentum-like coefficient (what ``config.json``'s ``hyperparameters_read_from`` names)."""
    if "momentum" in group:
        return float(group["momentum"])
    return float(group["betas"][0]) if "betas" in group else 0.0


def _hyperparameters_read_from(group: dict) -> dict[str, str]:
    """Which entry of the param group ``group`` each of the records' ``lr``, ``wd`` and ``momentum`` is, and what
    it means where the theory's η, λ, β are not what the optimizer applies."""
    if "momentum" in group:
        momentum = "momentum (Nesterov's β)" if group.get("nesterov") else "momentum (heavy-ball β)"
    elif "betas" in group:
        momentum = "betas[0] (β₁, the first moment's averaging: not heavy-ball β)"
    else:
        momentum = "none: the optimizer has no momentum, 0"
    decoupled = group.get("decoupled_weight_decay", False)
    return {
        "lr": "lr",
        "wd": "weight_decay (decoupled: w ← (1 − ηλ)w beside the step)"
        if decoupled
        else "weight_decay (coupled: λw joins the gradient)",
        "momentum": momentum,
    }


def _distributed_rank() -> int:
    return (
        torch.distributed.get_rank() if torch.distributed.is_available() and torch.distributed.is_initialized() else 0
    )


class Monitor:
    """Measure every step of ``optimizer`` on ``model`` (see the module docstring).

    Parameters
    ----------
    model : nn.Module
        In train mode; a ``DistributedDataParallel`` wrapper is unwrapped.
    optimizer : torch.optim.Optimizer
        Whose param groups hold every SI parameter, all of them with one η, λ, β at every step.
    probe : (inputs, targets)
        A batch (size ≥ 2) on which the SI groups are found (:func:`empirical.scale_invariance.find_si_groups`) and
        on which s̃ is measured at steps whose batch :meth:`log` was not given.
    loss_fn : callable
        ``loss_fn(outputs, targets)``, the mean loss the loop trains on; used for the SI search and for s̃.
    out : path, optional
        Where the records are streamed to ``series.jsonl`` in chunks of
        :data:`empirical.record_stream.STREAM_CHUNK` as the run goes (so that memory stays flat), and where
        :meth:`close` writes ``config.json`` and ``summary.json`` (only rank 0 under DDP). Without it the records
        stay in memory.
    sharpness_every : int
        K > 0 measures s̃ at least every K steps, densely where η̃·s̃ is predicted to cross the stability threshold
        and at the step before ρ rises; the upward crossing before each destabilisation is located to one step.
    sync_every : int, optional
        Steps between transfers of the values to the host (default :data:`SYNC_EVERY`; 1 while s̃ is scheduled).
    settings : DetectorSettings
        The detector's settings for the summary.
    run_config : dict, optional
        Written into ``config.json`` over the monitor's own entries (a trainer's configuration, ``fix_norm``, ...).
    si_groups : list of list of str, optional
        The SI groups when the caller found them already; the probe then only serves s̃.
    on_records : callable, optional
        Called with each list of records as they reach the host (a logger's hook).
    early_warning : bool
        Add to each record the early warning of the next destabilisation (``warning``, ``steps_to_threshold``:
        :class:`analysis.early_warning.EarlyWarning`, from that record and the ones before it); :attr:`warning`
        says whether it is on now.

    Attributes
    ----------
    record_stream : RecordStream
        The records on the host: the latest in memory, the others in ``series.jsonl``.
    sharpness_schedule : SharpnessSchedule or None
        Where and when s̃ is measured; None without ``sharpness_every``.
    step : int
        Optimizer steps taken.
    not_computed : dict
        What is not computed (a name of :data:`THEORY_QUANTITIES`) and why.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        probe: tuple[torch.Tensor, torch.Tensor],
        loss_fn: Callable = F.cross_entropy,
        *,
        out: str | Path | None = None,
        sharpness_every: int = 0,
        sync_every: int | None = None,
        settings=DEFAULT_SETTINGS,
        run_config: dict | None = None,
        si_groups: list[list[str]] | None = None,
        on_records: Callable[[list[dict]], None] | None = None,
        early_warning: bool = True,
    ):
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        if not model.training:
            raise ValueError(
                "the model is in eval mode: BatchNorm makes the weights scale-invariant in train mode; "
                "call model.train() before creating the Monitor"
            )
        if int(sharpness_every) != sharpness_every or sharpness_every < 0:
            raise ValueError(f"sharpness_every must be an integer >= 0, got {sharpness_every!r}")
        if sync_every is not None and (int(sync_every) != sync_every or sync_every < 1):
            raise ValueError(f"sync_every must be an integer >= 1, got {sync_every!r}")
        inputs, targets = self._probe(probe)
        if si_groups is None:
            try:
                si_groups = find_si_groups(model, inputs, targets, loss_fn=loss_fn)
            except (RuntimeError, TypeError, IndexError) as error:
                raise ValueError(f"the probe does not fit the model or the loss: {error}") from None
        self.si_groups = si_groups
        self.si_params = si_parameters(model, si_groups)
        if not self.si_params:
            raise ValueError("the model has no scale-invariant parameters (no weight feeds a BatchNorm)")
        self._groups = self._si_param_groups(model, optimizer)
        self.model, self.optimizer, self.loss_fn, self.probe = model, optimizer, loss_fn, (inputs, targets)
        self._outside_theory = theory_covers(optimizer)
        self._check_settings()  # a clear error now rather than at the first step or in close()
        self.not_computed = dict.fromkeys(THEORY_QUANTITIES, self._outside_theory) if self._outside_theory else {}
        if self._outside_theory:
            warnings.warn(
                f"bnwd Monitor: {self._outside_theory}; the theory covers SGD with coupled weight decay (heavy-ball "
                f"momentum allowed): recording ρ, ‖∇L‖ and the angular update, not {', '.join(THEORY_QUANTITIES)}",
                stacklevel=2,
            )
        self.out = None if out is None else Path(out)
        self.settings, self.run_config, self.on_records = settings, dict(run_config or {}), on_records
        self.sharpness_every = int(sharpness_every)
        self.sync_every = 1 if self.sharpness_every else (sync_every or SYNC_EVERY)
        self.si_norm0 = math.hypot(*torch.stack(torch._foreach_norm(self.si_params)).tolist())
        self.step = 0
        self.skipped_steps = 0
        self.diverged_at: int | None = None  # the first step on the host whose loss or ρ is not finite
        self.closed = False
        self._last_hyper: tuple[float, float, float] | None = None  # η, λ, β of the last step
        self._lr_varies = False
        # With ``out``, records leave memory for the stream once the sharpness schedule can no longer revisit them:
        # those of its last K + 1 steps, with room to spare.
        self.record_stream = RecordStream(
            None if self.out is None or _distributed_rank() != 0 else self.out / "series.jsonl",
            keep=4 * (self.sharpness_every + 1) if self.sharpness_every else 0,
        )
        self._pending: list[tuple[dict, torch.Tensor, int, dict]] = []  # record, device values, #grads, log()
        self._before: tuple | None = None  # what the pre-hook saw, until the post-hook
        self._last_grad: torch.Tensor | None = None  # the SI gradient of the step before (grad_cosine)
        self._last_grad_norm = math.nan
        self.early_warning = EarlyWarning(min_decay_steps=settings.min_decay_steps) if early_warning else None
        self._stepped_since_log = False
        self._unsettled: int | None = None  # a step whose sharpness schedule is still to be run
        self.sharpness_schedule = (
            SharpnessSchedule(
                model,
                self.si_params,
                self.probe,
                loss_fn,
                self.sharpness_every,
                SHARPNESS_TOL,
                self.record_stream.record,
            )
            if self.sharpness_every
            else None
        )
        self._handles = [
            optimizer.register_step_pre_hook(self._pre_hook),
            optimizer.register_step_post_hook(self._post_hook),
        ]

    # --- validation ---------------------------------------------------------------------------------------

    @staticmethod
    def _probe(probe) -> tuple[torch.Tensor, torch.Tensor]:
        if not (isinstance(probe, Sequence) and len(probe) == 2 and all(torch.is_tensor(t) for t in probe)):
            raise ValueError("probe must be a pair (inputs, targets) of tensors")
        inputs, targets = probe
        if inputs.ndim == 0 or inputs.shape[0] < 2 or targets.shape[:1] != inputs.shape[:1]:
            raise ValueError(
                f"the probe needs at least 2 samples and as many targets as inputs; got inputs of shape "
                f"{tuple(inputs.shape)} and targets of shape {tuple(targets.shape)}"
            )
        return inputs, targets

    def _si_param_groups(self, model, optimizer) -> list[int]:
        """Indices of the param groups holding SI parameters; ``ValueError`` if one is in none."""
        where = {id(p): i for i, group in enumerate(optimizer.param_groups) for p in group["params"]}
        names = {id(p): n for n, p in model.named_parameters()}
        missing = [names[id(p)] for p in self.si_params if id(p) not in where]
        if missing:
            raise ValueError(f"the optimizer's param groups do not hold the scale-invariant parameters {missing}")
        return sorted({where[id(p)] for p in self.si_params})

    def _hyperparameters(self) -> tuple[float, float, float]:
        """η, λ, β of the SI parameters now; ``ValueError`` if their param groups disagree."""
        settings = {
            (float(g["lr"]), float(g.get("weight_decay", 0.0)), _momentum(g))
            for g in (self.optimizer.param_groups[i] for i in self._groups)
        }
        if len(settings) > 1:
            raise ValueError(
                f"the scale-invariant parameters sit in param groups {self._groups} with different (lr, weight_decay,"
                f" momentum) {sorted(settings)}: ρ, η̃ and the threshold need one η, λ, β for all of them"
            )
        return settings.pop()

    def _check_settings(self) -> None:
        """η, λ, β of the SI weights in the domain the records need (the module docstring), ``ValueError`` in
        :func:`theory.validate`'s words otherwise; one η, λ, β for all of them (:meth:`_hyperparameters`)."""
        lr, wd, momentum = self._hyperparameters()
        if self._outside_theory:  # λ's meaning, and so ηλ's, depends on the optimizer
            theory.validate(lr=lr)
            theory.validate(wd=wd)
        else:
            theory.validate(lr=lr, wd=wd, momentum=momentum)

    # --- the step -----------------------------------------------------------------------------------------

    def _pre_hook(self, optimizer, args, kwargs):
        self._settle()
        if len(self._pending) >= self.sync_every:
            self._flush()
        # args[0] is the optimizer itself, the closure comes after it or by name
        closure = kwargs.get("closure", args[1] if len(args) > 1 else None)
        if closure is None:
            self._capture()
            return None

        def closure_then_capture():
            loss = closure()
            self._capture()
            return loss

        if "closure" in kwargs:
            return args, {**kwargs, "closure": closure_then_capture}
        return (args[0], closure_then_capture, *args[2:]), kwargs

    @torch.no_grad()
    def _flat_si(self) -> torch.Tensor:
        """The SI weights as one vector (a copy): two such vectors give the step's angle in a few kernels."""
        return torch.cat([p.reshape(-1) for p in self.si_params])

    @torch.no_grad()
    def _capture(self) -> None:
        """The step's gradient and weights, before the optimizer moves them."""
        hyper = self._hyperparameters()
        grads = [p.grad for p in self.si_params if p.grad is not None]
        if self.sharpness_schedule is not None:
            self.sharpness_schedule.keep_weights(self.step)
        per_tensor = torch._foreach_norm(self.si_params)
        # ⟨∇L_t, ∇L_{t−1}⟩: past the stability threshold the top direction flips the gradient's sign every step
        grad = torch.cat([g.reshape(-1) for g in grads]) if len(grads) == len(self.si_params) else None
        grad_dot = (
            grad.dot(self._last_grad)
            if grad is not None and self._last_grad is not None and self._last_grad.shape == grad.shape
            else torch.full((), math.nan, device=self.si_params[0].device)
        )
        self._last_grad = grad
        norms = [*torch._foreach_norm(grads), *per_tensor]
        self._before = (hyper, self._flat_si(), [grad_dot.to(per_tensor[0].dtype), *norms], len(grads))

    @torch.no_grad()
    def _post_hook(self, optimizer, args, kwargs) -> None:
        # Few kernels per step (the loop's step is often small): the reductions are done here, the arithmetic on
        # the host when the values get there.
        hyper, before, (grad_dot, *norms), n_grads = self._before
        after = self._flat_si()
        dot = before.dot(after)
        # The orthogonal part w⁺ − (⟨w,w⁺⟩/ρ²)w is formed explicitly: accurate for tiny angles. The same formula as
        # simulate.integrate's numpy one, written again in torch: simulate has no torch, and the weights stay here.
        orthogonal = torch.addcmul(after, before, dot / before.dot(before), value=-1).norm()
        lr, wd, momentum = hyper
        record = {"step": self.step, "lr": lr, "wd": wd, "momentum": momentum}
        self._lr_varies = self._lr_varies or (self._last_hyper is not None and lr != self._last_hyper[0])
        self._last_hyper = hyper
        self._pending.append((record, torch.stack([dot, orthogonal, grad_dot, *norms]), n_grads, {}))
        self._before = None
        self._stepped_since_log = True
        self._unsettled = self.step if self.sharpness_every else None
        self.step += 1

    def log(self, batch=None, **values) -> None:
        """Add ``values`` (``loss=``, ``acc=``, … as tensors or numbers) to the record of the step just taken, and
        give the monitor that step's ``batch`` ((inputs, targets), or a list of them: ghost batches) for s̃.

        Call it after ``optimizer.step()``, once per step. A call with no step since the previous one (a step that
        ``GradScaler`` skipped) is counted in :attr:`skipped_steps` and its values dropped."""
        if self.closed:
            raise RuntimeError("log() after close()")
        if not self._stepped_since_log:
            self.skipped_steps += 1
            return
        self._stepped_since_log = False
        if self._pending:
            self._pending[-1][3].update(values)
        elif (record := self.record_stream.record(self.step - 1)) is not None:  # on the host already (records())
            record |= {key: float(value) for key, value in values.items()}
            self._note_divergence(record)
        if batch is not None and self.sharpness_schedule is not None:
            self.sharpness_schedule.keep_batch(batch)
        if len(self._pending) >= self.sync_every:
            self._flush()
        self._settle()

    # --- values to the host -------------------------------------------------------------------------------

    def _note_divergence(self, record: dict) -> None:
        if self.diverged_at is None and not (math.isfinite(record["si_norm"]) and math.isfinite(record.get("loss", 0))):
            self.diverged_at = record["step"]

    def _flush(self) -> None:
        """Bring the pending values to the host in one transfer and complete their records; a divergence's first
        step is the last recorded (NaN from there on tells nothing more)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        tensors = [t for _, values, _, extras in pending for t in (values, *extras.values()) if torch.is_tensor(t)]
        flat = iter(torch.cat([t.detach().reshape(-1) for t in tensors]).tolist())
        done = []
        for record, values, n_grads, extras in pending:
            dot, orthogonal, grad_dot, *norms = (next(flat) for _ in range(values.numel()))
            for key, value in extras.items():
                record[key] = next(flat) if torch.is_tensor(value) else float(value)
            rho = math.hypot(*norms[n_grads:])
            grad_norm = math.hypot(*norms[:n_grads])
            record |= {"si_norm": rho, "grad_norm": grad_norm}
            norms_product = grad_norm * self._last_grad_norm
            record["grad_cosine"] = grad_dot / norms_product if norms_product > 0 else math.nan  # NaN: not defined
            self._last_grad_norm = grad_norm
            record["angular_update"] = math.atan2(orthogonal, dot / rho) if rho > 0 else math.nan
            record["si_norm_per_tensor"] = norms[n_grads:]
            done.append(record)
        self._add_theory(done)
        if self.early_warning is not None:
            for record in done:
                record |= self.early_warning.update(
                    record["step"], record["elr"], record["lr"], record["wd"], record["momentum"]
                )
        if self.diverged_at is None:
            kept = []
            for record in done:
                kept.append(record)
                self._note_divergence(record)
                if self.diverged_at is not None:
                    break
            self.record_stream.extend(kept)
            if self.on_records is not None:
                self.on_records(kept)
        self.record_stream.stream_chunk()

    def _add_theory(self, records: list[dict]) -> None:
        """η̃ = η/ρ², ‖g̃‖ = ρ‖∇L‖ and η̃ times the sharpnesses measured, for ``records`` at once: NaN where the
        theory does not cover the optimizer, or where its operands are outside the theory's domain (ρ or ‖∇L‖ not
        finite; η not > 0, which a schedule may set)."""
        lr, rho, grad = (np.array([r[k] for r in records]) for k in ("lr", "si_norm", "grad_norm"))
        norm_ok = np.isfinite(rho) & (rho > 0) & (self._outside_theory is None)
        with_grad, with_lr = norm_ok & np.isfinite(grad), norm_ok & np.isfinite(lr) & (lr > 0)
        elr, eff_grad_norm = np.full(len(records), np.nan), np.full(len(records), np.nan)
        elr[with_lr] = theory.effective_lr(lr[with_lr], rho[with_lr])
        eff_grad_norm[with_grad] = theory.effective_grad_norm(grad[with_grad], rho[with_grad])
        for record, r_elr, r_grad in zip(records, elr.tolist(), eff_grad_norm.tolist(), strict=True):
            record["elr"], record["eff_grad_norm"] = r_elr, r_grad
            for measured, product in _PRODUCTS.items():
                if measured in record:
                    record[product] = r_elr * record[measured]

    @property
    def warning(self) -> bool:
        """Whether the early warning is on (:class:`analysis.early_warning.EarlyWarning`: a destabilisation is
        predicted within a quarter of a period, at least 5 steps ahead), as of the last step whose record reached
        the host: every ``sync_every`` steps, so pass ``sync_every=1`` to have it at every step. False with
        ``early_warning=False``."""
        return self.early_warning is not None and self.early_warning.on

    def records(self) -> list[dict]:
        """The per-step records so far (the :data:`analysis.schema.SERIES_FIELDS` and the values given to
        :meth:`log`), brought to the host: those streamed to ``series.jsonl`` read back, then those in memory."""
        self._flush()
        return self.record_stream.records()

    # --- sharpness on a schedule --------------------------------------------------------------------------

    def _settle(self) -> None:
        """The sharpness schedule of the step just taken, once its record is on the host
        (:meth:`empirical.sharpness_schedule.SharpnessSchedule.settle`)."""
        step, self._unsettled = self._unsettled, None
        if step is None or self.diverged_at is not None:
            return
        self._flush()
        self.sharpness_schedule.settle(step, theory_applies=self._outside_theory is None)

    # --- the run ------------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """What a checkpoint needs to go on after the step just taken: the step count, the stream's length (records
        and bytes, made durable first), the records still in memory and the sharpness schedule's state. Plain values
        only (``torch.load(weights_only=True)`` reads them)."""
        self._settle()
        self._flush()
        return {
            "step": self.step,
            **self.record_stream.state_dict(),
            "skipped_steps": self.skipped_steps,
            "last_hyper": self._last_hyper,
            "lr_varies": self._lr_varies,
            "search": None if self.sharpness_schedule is None else self.sharpness_schedule.state_dict(),
            "early_warning": None if self.early_warning is None else self.early_warning.state_dict(),
            "last_grad": self._last_grad,
            "last_grad_norm": self._last_grad_norm,
        }

    def load_state_dict(self, state: dict) -> None:
        """Go on from :meth:`state_dict`'s ``state``: the stream is cut back to the length it had then (what a run
        killed later wrote after it, a chunk cut short included), the schedule resumes (its kept weights are gone).
        ``ValueError`` if the stream is shorter than that."""
        self.record_stream.load_state_dict(state)
        self.step, self.skipped_steps = state["step"], state["skipped_steps"]
        self._last_hyper = None if state["last_hyper"] is None else tuple(state["last_hyper"])
        self._lr_varies = state["lr_varies"]
        if "last_grad" in state:  # checkpoints from before the warning start it and grad_cosine afresh
            self._last_grad, self._last_grad_norm = state["last_grad"], state["last_grad_norm"]
            if self.early_warning is not None and state["early_warning"] is not None:
                self.early_warning.load_state_dict(state["early_warning"])
        if self.sharpness_schedule is not None and state["search"] is not None:
            self.sharpness_schedule.load_state_dict(state["search"])

    def config(self) -> dict:
        """What ``config.json`` holds: the optimizer, η, λ, β at the last step (and whether η varied) and what they
        are read from, ρ₀, the SI groups, the weights' dtype (whose rounding floors the escape delay), the steps
        ``GradScaler`` skipped and what was not computed; ``run_config`` over them."""
        lr, wd, momentum = self._last_hyper or self._hyperparameters()
        return {
            "optimizer": type(self.optimizer).__name__,
            "lr": lr,
            "wd": wd,
            "momentum": momentum,
            "hyperparameters_read_from": _hyperparameters_read_from(self.optimizer.param_groups[self._groups[0]]),
            "lr_effective": lr,
            "lr_varies": self._lr_varies,
            "si_norm0": self.si_norm0,
            "si_groups": self.si_groups,
            "weights_dtype": str(self.si_params[0].dtype).removeprefix("torch."),
            "sharpness_every": self.sharpness_every,
            "skipped_steps": self.skipped_steps,
            "not_computed": self.not_computed,
            **self.run_config,
        }

    def summary(self) -> dict | None:
        """The run's summary (:func:`summarize_records` of the records so far, with η, λ, β of the last step), or
        None with the reason in :attr:`not_computed` (:meth:`_why_no_summary`), which a later call with more steps
        may lift."""
        records = self.records()
        reason = self._why_no_summary(records)
        if reason is not None:
            self.not_computed["summary"] = reason
            return None
        self.not_computed.pop("summary", None)
        return summarize_records(self.config(), records, self.settings)

    def _why_no_summary(self, records: list[dict]) -> str | None:
        """Why ``records`` have no summary: an optimizer outside the theory, no step at all, no loss given to
        :meth:`log` at every step, or η, λ, β of the last step outside the theory's domain; None if they have one."""
        if self._outside_theory:
            return self._outside_theory
        if not records:
            return "no optimizer step was taken"
        missing = [r["step"] for r in records if "loss" not in r]
        if missing:
            return f"no loss given to log() at {len(missing)} steps (first: {missing[0]})"
        config = self.config()
        try:
            theory.validate(lr=config["lr_effective"], wd=config["wd"], momentum=config["momentum"])
        except ValueError as error:  # a schedule took them there: the construction checked the first step's
            return f"η, λ, β of the last step: {error}"
        return None

    def close(self) -> dict | None:
        """Detach from the optimizer, write the rest of ``series.jsonl`` and ``config.json`` to ``out``, then
        ``summary.json`` (rank 0 only under DDP), and return the summary (:meth:`summary`). An error on the way
        raises once the records and ``config.json`` are written."""
        if self.closed:
            raise RuntimeError("the Monitor was closed already")
        for handle in self._handles:
            handle.remove()
        self.closed = True
        try:
            self._settle()
            summary = self.summary()
        finally:  # what was recorded reaches the disk whatever failed above
            self._flush()
            if self.record_stream.path is not None:
                self.record_stream.stream_out(everything=True)
                write_json(self.out / "config.json", self.config())
        if summary is not None and self.record_stream.path is not None:
            write_json(self.out / "summary.json", summary)
        return summary
