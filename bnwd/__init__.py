"""bnwd: the periodic behaviour of training with BatchNorm and weight decay, in theory, simulation and measurement.

The layers, each importing only those before it:

- :mod:`bnwd.theory`: every formula derived in sympy and exported as a numpy function;
- :mod:`bnwd.analysis`: any run, simulated or measured: its schema and files, what counts as a destabilisation,
  how a period is predicted, forecasts, the run's summary row;
- :mod:`bnwd.simulate`: toy scale-invariant models and their vectorised integrators;
- :mod:`bnwd.empirical`: torch nets, data, the per-step monitor, curvature, training, runs and sweeps;
- :mod:`bnwd.paper_checks`: one module per claim of the paper, the demo and the ``bnwd`` command line.

Importing ``bnwd`` imports none of them (``bnwd --help`` loads neither torch nor sympy).
"""

__all__: list[str] = []
