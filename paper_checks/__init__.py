"""The top layer: one module per claim of the paper (``c1_periodic`` … ``c10_simulator``, loaded by
:func:`~bnwd.paper_checks.checks.load_checks`), the demo (:func:`~bnwd.paper_checks.demo.run_demo`) and the ``bnwd``
command line (:mod:`bnwd.paper_checks.cli`)."""

from bnwd import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {"checks": ("load_checks",), "demo": ("run_demo",)})
