"""C6: the minima of different periods are different, and an ensemble of them beats its members.

One SGD run (shared with other checks through :meth:`CheckContext.train`) gives the destabilisations. The *end* of
period k is the step of its event ``e_k`` (the last step before ρ jumps; the weights with which step ``e_k``'s loss
was computed), its *middle* the step ``(e_{k-1} + e_k) // 2``. The trainer keeps no weights of past steps, so the run
is repeated with the same spec truncated at the last step needed (``steps`` changes only the evaluation schedule,
and evaluation restores BatchNorm's running statistics, so training is unchanged), and the trainer's ``after_step``
copies the model's state at the chosen steps. Training on a CPU is deterministic; the check does not take that on faith:
the ρ of every copied state must equal the ρ the first run recorded at that step (``reproduce_rtol``).

Measured:

- cosine similarity of the flattened SI weights between checkpoints: *along* a period ``cos(w_mid_k, w_end_k)``
  and *across* periods ``cos(w_end_{k-1}, w_end_k)``;
- test accuracy (the trainer's evaluation: eval mode, BatchNorm running statistics refreshed on the training set)
  of each period-end checkpoint and of their ensemble (the
  averaged softmax), and of an ensemble of as many nets trained independently (other seeds, same spec, final
  weights).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from bnwd.empirical.runs import build_trainer, run_id
from bnwd.paper_checks.common import CheckContext, PlannedRun, Verdict

__all__ = ["CLAIM", "DETECTOR_BAND", "SETTINGS", "TITLE", "cosine_matrix", "evaluate_state", "plan", "run", "si_vector"]

CLAIM = "C6"
TITLE = "Minima of different periods differ, and an ensemble of period-end checkpoints beats its members"
DETECTOR_BAND = "not evaluated: each setting of the band would replay the run to copy its weights at other steps"

_RUN = {"model": "convnet_si", "width": 8, "data": "digits", "batch_size": 128}
_DECISION = {
    # "different minima": on average and in most periods, the end of the previous period is further from a period's
    # end than the middle of that same period is (a half period of drift), so the jump moved the net elsewhere
    "min_across_lower_fraction": 0.75,
    # an ensemble "beats its members" when it is at least as accurate as its best member (and so above their mean)
    "ensemble_vs": "best member",
    # the rerun's ρ (float64 norm of float32 weights) vs the recorded one (float32 norm): rounding is ~1e-7, while
    # one step moves ρ by ~ηλ ≥ 1e-3, so a rerun off by a step or drifting from the first run fails this
    "reproduce_rtol": 1e-5,
}

SETTINGS = {
    "tiny": {
        "run": {**_RUN, "width": 4, "lr": 1.0, "wd": 0.03, "steps": 200, "train_subset": 256, "batch_size": 64},
        "n_periods": 2,
        "independent_seeds": [1, 2],
        **_DECISION,
    },
    "small": {
        "run": {**_RUN, "lr": 1.0, "wd": 0.01, "steps": 800},
        "n_periods": 3,
        "independent_seeds": [1, 2, 3],
        **_DECISION,
    },
    # C1's periodic run (η = 0.03, ≈ 64-epoch periods in the paper: ~14 in 1001 epochs); three independent nets,
    # each as long as the reference, are the baseline's cost
    "paper": {
        "run": {**_RUN, "width": 32, "data": "cifar10", "lr": 0.03, "wd": 1e-3, "epochs": 1001},
        "n_periods": 5,
        "independent_seeds": [1, 2, 3],
        **_DECISION,
    },
}


def si_vector(state: dict, si_names: list[str]) -> torch.Tensor:
    """The SI weights of a model state (``state_dict``) flattened into one float64 vector, in ``si_names`` order."""
    return torch.cat([state[name].reshape(-1).to(torch.float64) for name in si_names])


def cosine_matrix(vectors: list[torch.Tensor]) -> np.ndarray:
    """Cosine similarities ``⟨u, v⟩ / (‖u‖‖v‖)`` between all pairs, shape (n, n)."""
    stacked = torch.stack(vectors)
    unit = stacked / stacked.norm(dim=1, keepdim=True)
    return (unit @ unit.T).cpu().numpy()


def evaluate_state(trainer, state: dict) -> tuple[torch.Tensor, dict]:
    """Load ``state`` into ``trainer.model`` and evaluate it with the trainer's own evaluation
    (:meth:`~empirical.trainer.Trainer.evaluate`: BatchNorm running statistics refreshed by a train-mode pass over
    the training set, then the test set in eval mode). Returns the test softmax outputs, shape (n_test, classes),
    captured by a forward hook during the eval-mode pass, and the evaluation record (``test_acc``, ...)."""
    trainer.model.load_state_dict(state)
    outputs = []

    def keep_eval_outputs(module, args, output):
        if not module.training:
            outputs.append(output.detach())

    handle = trainer.model.register_forward_hook(keep_eval_outputs)
    try:
        record = trainer.evaluate()
    finally:
        handle.remove()
    return F.softmax(torch.cat(outputs), dim=1), record


def _states_at(ctx: CheckContext, spec, steps: list[int]) -> tuple[dict[int, dict], object]:
    """Repeat ``spec`` up to ``max(steps)`` and copy the model state at each step of ``steps`` (the weights before
    that step's update). Returns the states and the trainer (its model, data and SI names). The replay copies at
    chosen steps, so it starts from the beginning each time and writes no checkpoints."""
    short = spec.replace(steps=max(steps), eval_points=0, checkpoint_every=0)
    trainer = build_trainer(short, ctx.out / "c6" / run_id(short))
    wanted, states = set(steps), {}

    def copy_state(step: int) -> None:
        if step + 1 in wanted:  # after the update of step t: the weights of step t + 1
            states[step + 1] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

    trainer.run(progress=ctx.progress, after_step=copy_state)
    return states, trainer


def _final_state(ctx: CheckContext, spec) -> dict:
    """The model state at the end of ``spec`` (resumed from its checkpoint when an earlier attempt was cut short)."""
    trainer = build_trainer(spec.replace(eval_points=0), ctx.out / "c6" / run_id(spec.replace(eval_points=0)))
    trainer.resume()
    trainer.run(progress=ctx.progress)
    return trainer.model.state_dict()


def plan(settings: dict) -> list[PlannedRun]:
    """The reference run, its replay to copy weights at period ends and middles, and the independent seeds."""
    independent = [
        PlannedRun(f"independent net, seed {seed}", settings["run"] | {"seed": seed, "eval_points": 0})
        for seed in settings["independent_seeds"]
    ]
    replay = {"steps": "up to the reference's last destabilisation (at most its steps)"}
    return [
        PlannedRun("the reference run", settings["run"]),
        PlannedRun("its replay, weights copied", settings["run"] | {"eval_points": 0}, derived=replay),
        *independent,
    ]


def run(ctx: CheckContext, settings: dict) -> Verdict:
    """Cosine similarities along and across periods, and the accuracy of period-end and independent ensembles.

    Passes when at least ``n_periods + 1`` destabilisations were found, the rerun reproduced ρ, the mean across-period
    similarity is below the mean along-period one and ``across_k < along_k`` in at least ``min_across_lower_fraction``
    of the periods, and the period-end ensemble's test accuracy is ≥ its best member's.
    """
    spec = ctx.spec(**settings["run"])
    reference = ctx.train(spec)
    events = [int(e) for e in reference.summary["events"]]
    n = settings["n_periods"]
    tolerance = {
        "min_events": n + 1,
        "min_across_lower_fraction": settings["min_across_lower_fraction"],
        "ensemble_vs": settings["ensemble_vs"],
        "reproduce_rtol": settings["reproduce_rtol"],
    }
    if len(events) < n + 1:
        summary = f"{len(events)} destabilisations (need ≥ {n + 1} for {n} periods with a previous period end)"
        return Verdict(CLAIM, TITLE, False, summary, {"n_events": len(events), "events": events}, tolerance)
    ends = events[-(n + 1) :]
    mids = [(a + b) // 2 for a, b in itertools.pairwise(ends)]
    states, trainer = _states_at(ctx, spec, ends + mids)
    names = {id(p): name for name, p in trainer.model.named_parameters()}
    si_names = [names[id(p)] for p in trainer.si_params]
    rho_rerun = np.array([float(si_vector(states[s], si_names).norm()) for s in ends + mids])
    rho_first = reference.series["si_norm"][np.array(ends + mids)]
    reproduce_error = float(np.max(np.abs(rho_rerun / rho_first - 1)))

    # order of the heatmap: end_0, mid_1, end_1, mid_2, end_2, ...
    order = [ends[0]] + [s for pair in zip(mids, ends[1:], strict=True) for s in pair]
    sims = cosine_matrix([si_vector(states[s], si_names) for s in order])
    along = np.array([sims[2 * k + 1, 2 * k + 2] for k in range(n)])
    across = np.array([sims[2 * k, 2 * k + 2] for k in range(n)])
    lower_fraction = float(np.mean(across < along))

    test_y = trainer.data.test_y

    def accuracy(probs: torch.Tensor) -> float:
        return float((probs.argmax(1) == test_y).double().mean())

    period_probs = [evaluate_state(trainer, states[s])[0] for s in ends[1:]]
    independent_probs = [
        evaluate_state(trainer, _final_state(ctx, spec.replace(seed=s)))[0] for s in settings["independent_seeds"]
    ]
    member_acc = [accuracy(p) for p in period_probs]
    independent_acc = [accuracy(p) for p in independent_probs]
    ensemble_acc = accuracy(torch.stack(period_probs).mean(0))
    independent_ensemble_acc = accuracy(torch.stack(independent_probs).mean(0))

    similar_ok = across.mean() < along.mean() and lower_fraction >= settings["min_across_lower_fraction"]
    ensemble_ok = ensemble_acc >= max(member_acc)
    reproduced = reproduce_error <= settings["reproduce_rtol"]
    passed = bool(similar_ok and ensemble_ok and reproduced)
    numbers = {
        "n_events": len(events),
        "period_ends": ends[1:],
        "previous_period_end": ends[0],
        "period_mids": mids,
        "cos_along_period": along.tolist(),
        "cos_across_periods": across.tolist(),
        "across_lower_fraction": lower_fraction,
        "member_test_acc": member_acc,
        "member_test_acc_mean": float(np.mean(member_acc)),
        "period_ensemble_test_acc": ensemble_acc,
        "independent_test_acc": independent_acc,
        "independent_ensemble_test_acc": independent_ensemble_acc,
        "rerun_rho_max_relative_error": reproduce_error,
        "cosine_matrix_steps": order,
    }
    summary = (
        f"cos across periods {across.mean():.4f} vs along {along.mean():.4f} (lower in {lower_fraction:.0%}, "
        f"need ≥ {settings['min_across_lower_fraction']:.0%}); ensemble of {n} period ends {ensemble_acc:.3f} vs "
        f"members mean {np.mean(member_acc):.3f} / best {max(member_acc):.3f} (need ≥ best); "
        f"{len(independent_acc)} independent nets: ensemble {independent_ensemble_acc:.3f}, "
        f"mean {np.mean(independent_acc):.3f}; rerun ρ error {reproduce_error:.0e} "
        f"(need ≤ {settings['reproduce_rtol']:.0e})"
    )
    figure = ctx.figure_path(CLAIM)
    independent = dict(zip(settings["independent_seeds"], independent_acc, strict=True))
    _plot(figure, sims, order, ends, member_acc, ensemble_acc, independent, independent_ensemble_acc)
    return Verdict(CLAIM, TITLE, passed, summary, numbers, tolerance, figure=figure.name)


def _plot(path, sims, order, ends, member_acc, ensemble_acc, independent, independent_ensemble_acc) -> None:
    """Heatmap of the cosine similarities and bars of the test accuracies (``independent``: seed → accuracy)."""
    fig = Figure(figsize=(11, 4.5))
    left, right = fig.subplots(1, 2)
    image = left.imshow(sims, cmap="viridis")
    labels = [f"{'end' if s in ends else 'mid'} {s}" for s in order]
    left.set_xticks(range(len(order)), labels, rotation=90, fontsize=7)
    left.set_yticks(range(len(order)), labels, fontsize=7)
    left.set_title("cosine similarity of SI weights")
    fig.colorbar(image, ax=left)
    bars = [*member_acc, ensemble_acc, *independent.values(), independent_ensemble_acc]
    colors = ["C0"] * len(member_acc) + ["C1"] + ["C2"] * len(independent) + ["C3"]
    names = [f"end {s}" for s in ends[1:]] + ["period ens."] + [f"seed {s}" for s in independent]
    right.bar(range(len(bars)), bars, color=colors)
    right.set_xticks(range(len(bars)), [*names, "indep. ens."], rotation=60, fontsize=7)
    right.set_ylim(max(0.0, min(bars) - 0.05), min(1.0, max(bars) + 0.02))
    right.set_ylabel("test accuracy")
    right.set_title(f"{CLAIM}: period-end vs independent ensembles")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
