"""The effective sharpness s̃ measured during training on the schedule of :mod:`empirical.tracking`, from weights
kept in a shadow model, so that the training is untouched.

At every step :class:`SharpnessSchedule` keeps a copy of the weights before the update (and the step's batch) in a
ring buffer of the last K + 1 steps. Once the step's record is on the host, :meth:`SharpnessSchedule.settle` runs
the schedule: it measures the step before when ρ rose on this one (a destabilisation was under way:
:meth:`empirical.tracking.CrossingSearch.look_back`), this one when the search says it is due, and locates a
crossing of η̃·s̃ = threshold that two measurements bracket (:func:`empirical.tracking.locate_crossing`), each
measurement at a past step made by loading its kept weights into the shadow model. The measurements are written
into the steps' records.
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from collections import deque
from collections.abc import Callable

import torch

from bnwd import theory
from bnwd.empirical.curvature import effective_sharpness
from bnwd.empirical.eigensolvers import CONFIDENCE
from bnwd.empirical.tracking import CrossingSearch, locate_crossing

__all__ = ["SharpnessSchedule"]


def _summed(loss_fn: Callable) -> Callable:
    """``loss_fn(outputs, targets)`` (a mean) as the sum :class:`empirical.curvature.HessianOperator` expects."""

    def summed(outputs, targets, reduction="sum"):
        return loss_fn(outputs, targets) * targets.shape[0]

    return summed


class SharpnessSchedule:
    """s̃ of the last K steps of ``model``, measured where :class:`~empirical.tracking.CrossingSearch` says (see the
    module docstring).

    Parameters
    ----------
    model : nn.Module
        The model trained; its weights are copied at every step, never changed.
    si_params : list of nn.Parameter
        Its SI weights.
    probe : (inputs, targets)
        The batch s̃ is measured on at steps whose batch was not given (:meth:`keep_batch`).
    loss_fn : callable
        ``loss_fn(outputs, targets)``, the mean loss trained on.
    every : int
        K ≥ 1: s̃ is measured at least every K steps, and the weights of the last K + 1 steps are kept.
    tol : float
        Relative error bound of each λ_max (:func:`empirical.eigensolvers.top_eigenvalues`'s ``tol``).
    record_of : callable
        ``record_of(step)``: the record of ``step`` (``lr``, ``wd``, ``momentum``, ``si_norm`` and, where the theory
        applies, ``elr``), or None once it left memory; measurements are written into it.

    Attributes
    ----------
    search : CrossingSearch
        When to measure; its state is the schedule's state in a checkpoint.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        si_params: list[torch.nn.Parameter],
        probe: tuple[torch.Tensor, torch.Tensor],
        loss_fn: Callable,
        every: int,
        tol: float,
        record_of: Callable[[int], dict | None],
    ) -> None:
        self.model, self.probe, self.loss_fn, self.tol, self.record_of = model, probe, loss_fn, tol, record_of
        self.search = CrossingSearch(math.inf, every)
        self._shadow = copy.deepcopy(model).train()
        positions = {id(p): i for i, p in enumerate(model.parameters())}
        shadow = list(self._shadow.parameters())  # deepcopy keeps the order: the SI weights sit where they do
        self._shadow_si = [shadow[positions[id(p)]] for p in si_params]
        self._history: deque = deque(maxlen=every + 1)  # [step, weights before its update, its batches or None]

    @torch.no_grad()
    def keep_weights(self, step: int) -> None:
        """Keep a copy of the model's weights as they are before the update of ``step``."""
        self._history.append([step, [p.detach().clone() for p in self.model.parameters()], None])

    def keep_batch(self, batch) -> None:
        """Keep ``batch`` ((inputs, targets), or a list of them: ghost batches) as that of the step kept last."""
        if self._history:
            self._history[-1][2] = [batch] if isinstance(batch, tuple) else list(batch)

    def settle(self, step: int, theory_applies: bool) -> None:
        """Run the schedule for ``step``, whose record is on the host: the step before it measured when ρ rose on it
        (:meth:`empirical.tracking.CrossingSearch.look_back`), this one when due, a crossing they bracket located.
        ``theory_applies``: the records hold η̃ (the optimizer is within the theory's reach)."""
        record = self.record_of(step)
        lr, wd, momentum = record["lr"], record["wd"], record["momentum"]
        # without a threshold (momentum outside the theory's domain) s̃ is measured every K steps only
        covered = theory_applies and theory.monotone_decay(lr, wd, momentum)
        self.search.threshold = float(theory.stability_threshold(lr, wd, momentum)) if covered else math.inf
        previous = self.record_of(step - 1)
        rising = previous is not None and record["si_norm"] > previous["si_norm"]
        product_at = functools.partial(self._measure, theory_applies=theory_applies)
        if self.search.look_back(step, rising):
            product_at(step - 1, looked_back=True)
        if self.search.due(step, theory.effective_lr(lr, record["si_norm"])):
            product_at(step)
            bracket = self.search.update(step, theory.effective_lr(lr, record["si_norm"]), record["eff_sharpness"])
            if bracket:
                locate_crossing(*bracket, product_at, self.search.threshold)

    def _measure(self, step: int, theory_applies: bool, looked_back: bool = False) -> float | None:
        """η̃·s̃ at ``step`` (s̃ of its batch at the weights before its update, λ_max by Lanczos to ``tol`` and
        certified to :data:`~empirical.eigensolvers.MISS_TOL`, cold-started: a warm start saves nothing under the
        certificate, :func:`~empirical.eigensolvers.krylov_margin`): measured before, or now from the weights kept
        into its record; None if the step is no longer kept or the theory does not apply. With ``looked_back``,
        the measurement goes to the search, and a crossing it brackets is located."""
        record = self.record_of(step)
        if record is None:
            return None
        if "eff_sharpness" in record and not looked_back:
            return record.get("elr_times_sharpness", math.nan)
        kept = {t: (weights, batches) for t, weights, batches in self._history}
        if step not in kept:
            return None
        weights, batches = kept[step]
        with torch.no_grad():
            torch._foreach_copy_(list(self._shadow.parameters()), weights)
        found = effective_sharpness(
            self._shadow,
            batches or [self.probe],
            si_params=self._shadow_si,
            loss_fn=_summed(self.loss_fn),
            tol=self.tol,
        )
        if not found.eigen.converged:
            warnings.warn(
                f"Monitor: s̃ at step {step} is not certified within {found.eigen.n_hvp} HVPs (λ_max "
                f"{found.sharpness:.4g}, at most {found.eigen.upper_bound:.4g} at {CONFIDENCE:.0%} "
                "confidence); recorded as measured",
                RuntimeWarning,
                stacklevel=2,
            )
        record |= {"sharpness": found.sharpness, "eff_sharpness": found.eff_sharpness}
        if not theory_applies:
            return None
        record["elr_times_sharpness"] = record["elr"] * record["eff_sharpness"]
        if looked_back:
            elr = record["elr"]
            bracket = self.search.update(step, elr, record["eff_sharpness"], looked_back=True)
            if bracket:
                locate_crossing(
                    *bracket, functools.partial(self._measure, theory_applies=theory_applies), self.search.threshold
                )
        return record["elr_times_sharpness"]

    def state_dict(self) -> dict:
        """The search's state (plain values); the kept weights are not part of it."""
        return dict(vars(self.search))

    def load_state_dict(self, state: dict) -> None:
        """Go on from :meth:`state_dict`'s ``state``."""
        vars(self.search).update(state)
