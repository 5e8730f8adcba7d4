"""bnwd: the periodic behaviour of training with BatchNorm and weight decay, in theory, simulation and measurement.

The layers, each importing only those before it:

- :mod:`bnwd.theory`: every formula derived in sympy and exported as a numpy function;
- :mod:`bnwd.analysis`: any run, simulated or measured: its schema and files, what counts as a destabilisation,
  how a period is predicted, forecasts, the run's summary row;
- :mod:`bnwd.simulate`: toy scale-invariant models and their vectorised integrators;
- :mod:`bnwd.empirical`: torch nets, data, the per-step monitor, curvature, training, runs and sweeps;
- :mod:`bnwd.paper_checks`: one module per claim of the paper, the demo and the ``bnwd`` command line.

Importing ``bnwd`` imports none of them (``bnwd --help`` loads neither torch nor sympy), and each package's main
entry points, named in its ``__all__``, load with the module that holds them on first use (:func:`lazy_exports`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]]) -> tuple[list[str], Callable, Callable]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for a package whose entry points live in its modules
    (PEP 562): ``bnwd.analysis.analyze`` imports ``bnwd.analysis.destabilization`` when it is first read.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : dict of str -> tuple of str
        Module name (relative to the package) -> the names it provides.
    """
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(where)

    return sorted(where), __getattr__, __dir__
