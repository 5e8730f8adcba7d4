"""Every quantity bnwd writes, named once: per-step series, evaluations and run summaries.

A simulated run and a measured one write the same names: ``si_norm`` is ρ in the simulator's CSV, in the trainer's
``series.jsonl``, in every summary row and in the analysis. Each :class:`Field` states its unit and meaning; the
writers' output is checked against these tables (:func:`validate`, ``tests/test_schema.py``).

Missing values: a float that is undefined (a period of a run without periods) is NaN in memory and ``null`` in
JSON, an empty cell in CSV (:mod:`analysis.records` converts, where a file is written, and back, where it is read);
an optional integer or string (``diverged_at`` of a run that did not diverge) is None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "EVAL_FIELDS",
    "KINDS",
    "LEGACY_NAMES",
    "NORM_CONTROLS",
    "SERIES",
    "SERIES_FIELDS",
    "SUMMARY_FIELDS",
    "Field",
    "NormControl",
    "current_name",
    "validate",
]

KINDS = ("int", "float", "str", "list", "dict")


@dataclass(frozen=True)
class Field:
    """One named quantity: ``kind`` is its JSON type (one of :data:`KINDS`), ``optional`` that it may be None
    (a float is never None in memory: NaN)."""

    name: str
    unit: str
    meaning: str
    kind: str = "float"
    optional: bool = False


def _table(*fields: Field) -> dict[str, Field]:
    return {f.name: f for f in fields}


SERIES_FIELDS = _table(
    Field("step", "step", "index of the optimiser step; the record's quantities are taken before its update", "int"),
    Field("loss", "nats", "cross-entropy (or the toy model's loss) of the step's (mini)batch"),
    Field("acc", "", "accuracy of the step's (mini)batch (measured runs)"),
    Field("si_norm", "", "ρ = ‖w‖, the joint norm of the scale-invariant weights"),
    Field("si_norm_per_tensor", "", "‖w_i‖ of each scale-invariant tensor, in the order of the SI groups", "list"),
    Field("grad_norm", "", "‖∇L_B(w)‖ of the step's gradient with respect to the scale-invariant weights"),
    Field("elr", "", "effective learning rate η̃ = η/ρ²"),
    Field("eff_grad_norm", "", "effective gradient norm ‖g̃‖ = ρ‖∇L_B(w)‖"),
    Field("angular_update", "rad", "angle between the scale-invariant weights before and after the step"),
    Field(
        "grad_cosine",
        "",
        "cos(∇L_t, ∇L_{t−1}) of consecutive steps' gradients on the scale-invariant weights (measured runs; NaN at "
        "the first step): near −1 when the top direction flips the gradient every step, past the stability threshold",
    ),
    Field(
        "warning",
        "",
        "1 while the early warning says a destabilisation comes within a quarter of a period, at least 5 steps "
        "ahead (analysis.early_warning.EarlyWarning, from this and earlier records only), else 0",
        "int",
    ),
    Field(
        "steps_to_threshold",
        "step",
        "steps until η̃ reaches the η̃ at which the next destabilisation is predicted, by pure decay (NaN before 3 "
        "destabilisations were seen)",
    ),
    Field("lr", "", "η applied to the scale-invariant weights at the step, read from the optimizer (measured runs)"),
    Field("wd", "", "λ, the weight decay of the scale-invariant weights at the step (measured runs)"),
    Field(
        "momentum",
        "",
        "β, the momentum of the scale-invariant weights at the step (measured runs; 0 without; Adam's β₁, "
        "as config.json's hyperparameters_read_from says)",
    ),
    Field("sharpness", "", "λ_max of the Hessian of the step's loss on the scale-invariant weights (where measured)"),
    Field("eff_sharpness", "", "effective sharpness s̃ = ρ²·λ_max (where measured)"),
    Field("elr_times_sharpness", "", "η̃·s̃; gradient descent leaves a minimum above 2(1−ηλ) (where measured)"),
    Field("batch_sharpness", "", "E_B[g_Bᵀ H_B g_B/‖g_B‖²] on the SI weights over random minibatches (where measured)"),
    Field("eff_batch_sharpness", "", "ρ²·batch_sharpness (where measured)"),
    Field("eff_batch_sharpness_ci_low", "", "lower end of its 95 % confidence interval"),
    Field("eff_batch_sharpness_ci_high", "", "upper end of its 95 % confidence interval"),
    Field("elr_times_batch_sharpness", "", "η̃·ρ²·batch_sharpness, to compare with 2(1−ηλ) (where measured)"),
)

SERIES = ("loss", "si_norm", "grad_norm", "elr", "eff_grad_norm", "angular_update")
"""The per-step series every run has, simulated or measured (besides ``step``)."""

EVAL_FIELDS = _table(
    Field("step", "step", "step before which the evaluation was taken", "int"),
    Field("train_loss", "nats", "loss on the training set, BatchNorm in train mode on fixed batches"),
    Field("train_acc", "", "accuracy on the training set, as train_loss"),
    Field("test_loss", "nats", "loss on the test set, BatchNorm in eval mode"),
    Field("test_acc", "", "accuracy on the test set, as test_loss"),
)

NormControl = Literal["free", "fixed_norm", "fixed_elr"]
NORM_CONTROLS: tuple[NormControl, ...] = get_args(NormControl)
"""How ρ evolved: freely, projected back to a fixed norm after each step, or fixed so that η̃ is fixed."""

SUMMARY_FIELDS = _table(
    Field("run_id", "", "the run's name: the hash of a measured run's spec, the grid label of a simulated one", "str"),
    Field("lr", "", "learning rate η as configured"),
    Field("lr_effective", "", "learning rate applied to the scale-invariant weights (η, unless η̃ was fixed)"),
    Field("wd", "", "weight decay λ"),
    Field("momentum", "", "heavy-ball momentum β"),
    Field("lr_wd", "", "ηλ, with the applied learning rate"),
    Field("norm_control", "", f"how ρ evolved: one of {', '.join(NORM_CONTROLS)}", "str"),
    Field("steps_trained", "step", "optimiser steps recorded (fewer than asked after a divergence)", "int"),
    Field("diverged_at", "step", "first step with a non-finite loss or ρ; None if there is none", "int", True),
    Field(
        "detected_on",
        "",
        "the signals that decided the destabilisations, joined by +: si_norm+loss (ρ's jumps confirmed by the loss's "
        "spikes), si_norm+eff_grad_norm, si_norm, or loss (at a fixed norm)",
        "str",
    ),
    Field("detection_window", "step", "the measured rise time: the window each jump and spike is measured over", "int"),
    Field("regime", "", "one of analysis.regimes.REGIMES", "str"),
    Field("regime_rule", "", "the rule that decided the regime, in words", "str"),
    Field("regime_evidence", "", "the numbers that decided the regime (analysis.regimes.classify)", "dict"),
    Field("n_destabilizations", "", "number of destabilisations detected", "int"),
    Field("events", "step", "step of each destabilisation: the last step before the rise", "list"),
    Field("periods", "step", "lengths of the periods between events, the transient first one dropped", "list"),
    Field("period_measured", "step", "mean of periods"),
    Field("period_std", "step", "standard deviation of periods (ddof = 1)"),
    Field("frequency", "1/step", "1/period_measured"),
    Field("frequency_ci_low", "1/step", "low end of the 95 % bootstrap interval of frequency"),
    Field("frequency_ci_high", "1/step", "high end of the 95 % bootstrap interval of frequency"),
    Field(
        "detection_band",
        "",
        "per setting of the detector's sensitivity band: n_destabilizations and period (mean, steps)",
        "dict",
    ),
    Field("n_destabilizations_band_low", "", "fewest destabilisations over the band", "int"),
    Field("n_destabilizations_band_high", "", "most destabilisations over the band", "int"),
    Field("period_band_low", "step", "shortest mean period over the band"),
    Field("period_band_high", "step", "longest mean period over the band"),
    Field("eff_sharpness", "", "effective sharpness s̃ of the minima: the model's, or the median of those measured"),
    Field("elr_critical", "", "threshold η̃_c = 2(1−ηλ)/s̃ from eff_sharpness"),
    Field("elr_at_destabilization", "", "mean η̃ at the events"),
    Field("period_predicted", "step", "the period law's mean period with the threshold elr_critical"),
    Field("relative_error", "", "(period_predicted − period_measured)/period_measured"),
    Field(
        "period_predicted_measured_threshold", "step", "the period law's mean period with the η̃ measured at each event"
    ),
    Field("relative_error_measured_threshold", "", "relative error of period_predicted_measured_threshold"),
    Field(
        "period_predicted_with_delay",
        "step",
        "period_predicted plus the escape delay from the depth of convergence, floored at rounding or noise (β = 0)",
    ),
    Field("relative_error_with_delay", "", "relative error of period_predicted_with_delay"),
    Field(
        "period_predicted_a_priori",
        "step",
        "2 × the escape delay from the floor alone (theory.plane_period; β = 0): nothing measured on the run",
    ),
    Field("relative_error_a_priori", "", "relative error of period_predicted_a_priori"),
    Field(
        "elr_times_sharpness_threshold",
        "",
        "where η̃·s̃ was measured: 2(1−ηλ), or (1+z₊)(z₊+β)/z₊ − ηλ with momentum (theory.stability_threshold)",
    ),
    Field(
        "elr_times_sharpness_before_destabilization",
        "",
        "per event, η̃·s̃ at the last measurement, the last one below the threshold and the crossing after it "
        "(analysis.summary.threshold_crossings)",
        "list",
    ),
    Field(
        "early_warning",
        "",
        "the early warning's score (analysis.early_warning.score_run): per horizon (a fraction of the mean period) "
        "recall, precision, F1, false alarms per 1000 steps and lead times, beside the clock at matched precision and "
        "the reactive detectors; its verdict against the targets. None without a free norm, λ > 0, and 4 "
        "destabilisations",
        "dict",
        True,
    ),
    Field(
        "period_forecast",
        "",
        "per threshold, each period predicted at a quarter of its mean length (nothing from its own end), its "
        "baselines, controls and the forecast's coverage and interval score, and the next destabilisation's "
        "forecast (analysis.forecast.run_forecast); runs with a free norm, λ > 0 and at least 5 periods",
        "dict",
    ),
)

LEGACY_NAMES = {"rho": "si_norm", "rho_per_tensor": "si_norm_per_tensor", "rho0": "si_norm0"}
"""Names that folders written before this schema use; readers accept them, writers never emit them."""


def current_name(name: str) -> str:
    """The schema's name for ``name``, which may be a :data:`LEGACY_NAMES` one."""
    return LEGACY_NAMES.get(name, name)


def _fits(field: Field, value) -> bool:
    if value is None:
        return field.optional
    if field.kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if field.kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {"str": str, "list": list | tuple, "dict": dict}[field.kind])


def validate(record: dict, table: dict[str, Field], *, required=()) -> None:
    """Check one record (a series record, an evaluation, a summary row) against ``table``.

    Parameters
    ----------
    record : dict
        Name -> value, as a writer emits it or a reader returns it (a float may be NaN, or None as in JSON).
    table : dict of Field
        :data:`SERIES_FIELDS`, :data:`EVAL_FIELDS` or :data:`SUMMARY_FIELDS`.
    required : iterable of str
        Names the record must have.

    Raises
    ------
    ValueError
        Naming every unknown name, missing name, and value of the wrong type.
    """
    problems = [f"unknown field {name!r}" for name in record if name not in table]
    problems += [f"missing field {name!r}" for name in required if name not in record]
    for name, value in record.items():
        field = table.get(name)
        if field is None:
            continue
        if field.kind == "float" and value is None:
            continue  # NaN as JSON writes it
        if not _fits(field, value):
            problems.append(f"{name}: expected {field.kind}{' or None' if field.optional else ''}, got {value!r}")
    if problems:
        raise ValueError("; ".join(problems))
