"""What the tests of where the early warning is shown share: a toy run (the Rayleigh-quotient model, numpy, well
under a second) with the destabilisations a score needs, in the shape of a finished run read back."""

from __future__ import annotations

from types import SimpleNamespace

from bnwd.analysis.early_warning import warnings_of
from bnwd.analysis.summary import summarize_run
from bnwd.simulate.integrate import integrate
from bnwd.simulate.models import RayleighQuotient

TOY = RayleighQuotient.evenly_spaced(16)


def toy_run(wd: float, steps: int, *, lr: float = 1.0, recorded_warning: bool = True, **summary_options):
    """A toy run at (``lr``, ``wd``) as :class:`paper_checks.common.Run` has it: ``steps``, ``series``, ``records``
    (with the online ``warning`` when ``recorded_warning``, as a run recorded before it existed without) and the
    ``summary`` of :func:`analysis.summary.summarize_run` (``summary_options`` passed on, e.g. ``norm_control``)."""
    trajectory = integrate(TOY, [lr], [wd], steps=steps)
    series = {name: values[0] for name, values in trajectory.series.items()}
    options = {"lr": lr, "wd": wd, "momentum": 0.0} | summary_options
    summary = summarize_run(trajectory.steps, series, eff_sharpness=TOY.eff_sharpness, **options)
    records = [{"step": int(t), "elr": float(e)} for t, e in zip(trajectory.steps, series["elr"], strict=True)]
    if recorded_warning:
        warned = warnings_of(trajectory.steps, series["elr"], lr, wd)["warning"]
        records = [r | {"warning": int(w)} for r, w in zip(records, warned, strict=True)]
    return SimpleNamespace(steps=trajectory.steps, series=series, records=records, summary=summary)
