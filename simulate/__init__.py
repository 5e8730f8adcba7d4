"""Toy scale-invariant models and their vectorised integrators (built on :mod:`bnwd.analysis`).

The models (:mod:`~bnwd.simulate.models`), their SGD integrated over many configurations at once
(:mod:`~bnwd.simulate.integrate`), a grid with its summary and figure (:mod:`~bnwd.simulate.sweep`), the norm
recursion replayed from measured gradients (:mod:`~bnwd.simulate.norm_map`) and the reduced model of a run's
periods (:mod:`~bnwd.simulate.reduced`), and the catapult simulator fed one run's constants
(:mod:`~bnwd.simulate.catapult`).
"""

from bnwd import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "models": ("BatchNormMLP", "RayleighQuotient", "SoftmaxRegression"),
        "integrate": ("Trajectory", "integrate"),
        "sweep": ("simulate_grid",),
        "norm_map": ("replay_elr", "replay_si_norm"),
        "reduced": ("ReducedModel", "predict_period", "run_reduced"),
        "catapult": ("one_run_calibrations", "simulated_periods"),
    },
)
