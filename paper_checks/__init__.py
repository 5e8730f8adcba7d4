"""The top layer: one module per claim of the paper, and the ``bnwd`` command line (:mod:`paper_checks.cli`)."""
